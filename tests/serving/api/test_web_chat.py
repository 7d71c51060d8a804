"""The web chat page in headless Chromium: paste a key, ask, read a cited answer, open the citation; draft a
data product from an uploaded CSV, read its checks and contract, approve or reject it."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.copilot.helpers import FIXTURES, OWNER
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


def draft_in_page(page: Any, data: Path, name: str) -> None:
    page.click("#tab-copilot")
    page.set_input_files("#draft-file", str(data))
    page.fill("#draft-name", name)
    page.fill("#draft-domain", "warehouse_ops")
    page.fill("#draft-owner", OWNER)
    page.click("#draft")
    page.wait_for_selector("#thread[data-status='awaiting_approval']", timeout=120_000)


def test_the_copilot_drafts_an_upload_and_publishes_it_on_approval(
    page: Any, keys: Keys, tmp_path: Path, publish_root: Path
) -> None:
    use_key(page, keys.admin)
    page.wait_for_selector("#key-status:has-text('key accepted')")
    # A column name written as markup must stay text in the page.
    data = tmp_path / "shipments.csv"
    rows = (FIXTURES / "shipments" / "data.csv").read_text().splitlines()
    data.write_text("\n".join([rows[0] + ";<b>note</b>", *(row + ";x" for row in rows[1:])]) + "\n")
    name = f"shipments_{uuid.uuid4().hex[:8]}"
    draft_in_page(page, data, name)

    assert page.locator("#checks li").count() >= 5 and page.locator("#checks li.fail").count() == 0
    contract = page.inner_text("#contract")
    assert "kind: DataContract" in contract and "<b>note</b>" in contract
    assert page.locator("#thread b").count() == 0
    assert page.locator("#decision").is_visible() and page.locator("#artifacts li").count() == 0
    assert not (publish_root / "warehouse_ops" / name).exists()

    page.click("#approve")
    page.wait_for_selector("#thread[data-status='published']")
    assert page.inner_text("#thread-title") == f"warehouse_ops/{name}: published"
    assert not page.locator("#decision").is_visible()
    assert page.locator("#artifacts li", has_text="datacontract.odcs.yaml").count() == 1
    assert (publish_root / "warehouse_ops" / name / "datacontract.odcs.yaml").is_file()


def test_a_plain_key_is_told_why_it_cannot_approve_and_can_ask_and_reject(
    page: Any, keys: Keys, tmp_path: Path
) -> None:
    use_key(page, keys.sales)
    page.wait_for_selector("#key-status:has-text('key accepted')")
    data = tmp_path / "shipments.csv"
    data.write_text((FIXTURES / "shipments" / "data.csv").read_text())
    draft_in_page(page, data, f"shipments_{uuid.uuid4().hex[:8]}")

    page.click("#approve")
    error = page.locator("#thread-log .msg.error").first
    error.wait_for()
    assert "forbidden" in error.inner_text() and "admin key" in error.inner_text()

    page.fill("#thread-input", "How often must batch data products be refreshed?")
    page.click("#thread-send")
    answer = page.locator("#thread-log .msg.answer.done").first
    answer.wait_for()
    assert "24 hours" in answer.locator(".text").inner_text()
    assert answer.locator("ol.citations li").count() >= 1

    page.click("#reject")
    page.wait_for_selector("#thread[data-status='rejected']")
    assert "nothing was written" in page.inner_text("#thread-message")
