"""The web chat page in headless Chromium: paste a key, ask, read a cited answer, open the citation."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.serving.api.conftest import CANARY, CANARY_QUESTION, Keys, LiveServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The network is closed here: without these flags Chromium hangs on background connection attempts.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("chromium") is None, reason="Chromium is not installed (apt-get install chromium; make test does)"
    ),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, live: LiveServer) -> Iterator[Any]:
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    tab.goto(live.url + "/")
    yield tab
    context.close()


def use_key(page: Any, key: str) -> None:
    page.fill("#key", key)
    page.click("#use-key")


def ask(page: Any, question: str) -> Any:
    before = page.locator(".msg.answer.done").count()
    page.fill("#question", question)
    page.click("#ask")
    # A locator wait: the page's Content-Security-Policy (no eval) also binds the test's scripts.
    answer = page.locator(".msg.answer.done").nth(before)
    answer.wait_for()
    return answer


def test_ask_and_open_a_citation(page: Any, keys: Keys) -> None:
    use_key(page, keys.sre)
    page.wait_for_selector("#key-status:has-text('key accepted')")
    assert page.locator("#product option[value='platform-runbooks']").count() == 1

    answer = ask(page, "How fast does on-call have to acknowledge a SEV1?")
    assert "15 minutes" in answer.locator(".text").inner_text()
    citation = answer.locator("ol.citations li").first
    assert not citation.locator("blockquote").is_visible()

    answer.locator("a.cite").first.click()
    assert "active" in (citation.get_attribute("class") or "")
    assert citation.locator("blockquote").is_visible()
    assert "SEV1" in citation.locator("blockquote").inner_text()
    assert citation.locator("a.source").inner_text().endswith("/oncall-escalation.md")


def test_restricted_knowledge_stays_hidden_in_the_page(page: Any, keys: Keys) -> None:
    use_key(page, keys.sre)
    page.wait_for_selector("#key-status:has-text('key accepted')")
    answer = ask(page, CANARY_QUESTION)
    assert "I don't know" in answer.inner_text()
    assert CANARY not in page.content()


def test_a_wrong_key_says_why(page: Any) -> None:
    use_key(page, "mp_not-a-real-key")
    page.wait_for_selector("#key-status.error")
    assert "unauthorized" in page.inner_text("#key-status")
