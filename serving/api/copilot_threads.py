"""Copilot threads over HTTP (`ThreadView`, `Turn`): drafts from uploaded data, owned by the key that made them.

A thread is one run of the copilot graph (`copilot.runs`) whose state lives in LangGraph's PostgreSQL
checkpointer; the `copilot_threads` row says which key owns it and what was asked for. The uploaded
data stays under `$MESHPILOT_HOME/copilot/<thread>/` (the drafted pipeline reads it), and an approved
draft is published to `<copilot_publish_root>/<domain>/<name>`: a folder the server picks, never the client.

Who may do what: any key may create threads and read, chat in and reject its own. Approving publishes,
which writes on the server and replaces an earlier product of the same domain and name, so it needs
an admin key; admin keys may open every thread to review it. Any other key gets 404.

Graph runs block (DuckDB, subprocesses, the database): callers run these functions in the threadpool;
`chat` is async and does so itself.
"""

from __future__ import annotations

import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from sqlalchemy import text
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool

from copilot import runs
from copilot.checkpoints import postgres_checkpointer
from copilot.errors import BadSource
from copilot.publishing import check_out_dir
from copilot.requests import DraftRequest
from copilot.runs import DraftRun
from copilot.sources import open_source
from copilot.standards import Standards
from copilot.state import Context, InputState
from rag.answers import GroundedAnswer
from rag.errors import NotFound, UsageError
from rag.settings import Settings
from serving.api.audit import record_event
from serving.api.errors import ApiError
from serving.api.keys import Principal
from serving.api.state import ApiState

THREAD_ID = re.compile(r"^[0-9a-f]{32}$")
DATA_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}\.(?i:csv|tsv|txt|parquet|pq|jsonl|ndjson|sql|ddl)$")
COMMANDS = ("approve", "reject", "status")
AWAITING = "awaiting_approval"
HELP = (
    "Drafting needs your data. Create a thread with POST /v1/copilot/threads (multipart: file, name, domain, "
    "owner; or JSON with the file's text in `content`), or use the Copilot tab of the web page at /. Then "
    "name it in the extra body field `thread` to talk about it here: `status`, `approve` (admin keys: it "
    "publishes), `reject`, or a question about your mesh's standards. Without `thread`, questions are "
    "answered from the knowledge your key may read."
)

Action = Literal["approve", "reject", "status", "answer", "help"]


@dataclass(frozen=True)
class ThreadRecord:
    """The `copilot_threads` row: who owns the thread and what was asked for."""

    thread: str
    key_id: int
    name: str
    domain: str
    owner: str
    source: str
    created_at: datetime


@dataclass(frozen=True)
class ThreadView:
    """A thread as the API shows it: the request and the run's current state."""

    record: ThreadRecord
    run: DraftRun

    @property
    def message(self) -> str:
        if self.run.status == AWAITING:  # the run's own message names the CLI
            return f"the valid draft awaits approval: approve it (admin key) to publish {self.target}, or reject it"
        return self.run.message

    @property
    def target(self) -> str:
        return f"{self.record.domain}/{self.record.name}"

    def describe(self) -> str:
        run = self.run
        passed = sum(bool(c["passed"]) for c in run.checks)
        lines = [
            f"{self.target}: {run.status.replace('_', ' ')}. {self.message}",
            f"{passed}/{len(run.checks)} checks passed, {run.revisions} revision(s).",
        ]
        lines += [f"FAIL {c['name']}: {c['reason']}" for c in run.checks if not c["passed"]]
        return "\n".join(lines)


@dataclass(frozen=True)
class Turn:
    """What one chat message did: a decision, a status, or a question answered by the RAG service."""

    action: Action
    note: str
    """The reply's text for every action but `answer` (whose text is the rendered answer)."""
    answer: GroundedAnswer | None = None
    view: ThreadView | None = None


def publish_root(settings: Settings) -> Path:
    root = settings.copilot_publish_root or settings.home / "data-products"
    return root.expanduser().resolve()


def thread_folder(settings: Settings, thread: str) -> Path:
    return settings.home.expanduser().resolve() / "copilot" / thread


def copilot_context(state: ApiState) -> Context:
    """Standards from the knowledge product mesh-standards (ingested on first use), and the chat model."""

    def standards() -> Standards:
        from copilot.standards import ensure_standards_product, retrieve_standards

        ensure_standards_product(state.db, state.settings, state.embedder)
        return retrieve_standards(state.db, state.settings, state.embedder)

    return Context(standards=standards, chat_model=state.chat_model)


def create(
    state: ApiState, principal: Principal, fields: tuple[str, str, str], filename: str, content: bytes
) -> ThreadView:
    """Save the data, run the graph up to the approval interrupt (or the end), record the owner."""
    name, domain, owner = fields
    if not DATA_FILE.fullmatch(filename):
        raise UsageError(
            f"file name {filename[:80]!r}: letters, digits, . _ - and a data suffix (.csv .parquet .jsonl .sql ...)"
        )
    DraftRequest(filename, name, domain, owner)  # bad names fail before anything is written
    thread = uuid.uuid4().hex
    folder = thread_folder(state.settings, thread)
    data = folder / "input" / filename
    out = publish_root(state.settings) / domain / name
    try:
        data.parent.mkdir(parents=True)
        data.write_bytes(content)
        run = _start(state, thread, data, out, fields)
    except BadSource as exc:  # name the upload, not the server's folder
        shutil.rmtree(folder, ignore_errors=True)
        raise BadSource(str(exc).replace(str(data), filename)) from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    with state.db.transaction() as conn:
        row = conn.execute(
            text(
                "INSERT INTO copilot_threads (thread_id, key_id, name, domain, owner, source)"
                " VALUES (:t, :k, :n, :d, :o, :s) RETURNING created_at"
            ),
            {"t": thread, "k": principal.key_id, "n": name, "d": domain, "o": owner, "s": filename},
        ).one()
        _audit(conn, principal, "create", thread, run)
    record = ThreadRecord(thread, principal.key_id, name, domain, owner, filename, row.created_at)
    return ThreadView(record, run)


def _start(state: ApiState, thread: str, data: Path, out: Path, fields: tuple[str, str, str]) -> DraftRun:
    open_source(data)  # a bad file fails here, before any database work
    check_out_dir(out)
    name, domain, owner = fields
    inputs: InputState = {
        "data": str(data),
        "name": name,
        "domain": domain,
        "owner": owner,
        "out": str(out),
        "auto_approve": False,
    }
    with postgres_checkpointer(state.db) as saver:
        try:
            return runs.start(inputs, copilot_context(state), saver, thread=thread)
        except BaseException:
            saver.delete_thread(thread)
            raise


def get(state: ApiState, principal: Principal, thread: str) -> ThreadView:
    with state.db.engine.connect() as conn:
        record = _load(conn, principal, thread)
    with postgres_checkpointer(state.db) as saver:
        return ThreadView(record, runs.current(thread, saver))


def decide(state: ApiState, principal: Principal, thread: str, approved: bool) -> ThreadView:
    """Resume the approval interrupt. The row stays locked meanwhile, so a thread is decided once."""
    with state.db.transaction() as conn:
        record = _load(conn, principal, thread, lock=True)
        if approved and not principal.admin:
            raise ApiError(
                403,
                "forbidden",
                f"approving publishes on the server, which needs an admin key; key {principal.name!r} is not one"
                " (reject the draft, or ask an admin to approve it)",
            )
        with postgres_checkpointer(state.db) as saver:
            status = runs.current(thread, saver).status
            if status != AWAITING:
                raise ApiError(
                    409, "not_awaiting_approval", f"the thread is {status}: only a draft awaiting approval is decided"
                )
            run = runs.resume(thread, approved, Context(chat_model=state.chat_model), saver)
        _audit(conn, principal, "approve" if approved else "reject", thread, run)
    return ThreadView(record, run)


def command_of(message: str) -> str | None:
    word = message.strip().lower().lstrip("/").rstrip(".!")
    return word if word in COMMANDS else None


async def chat(
    state: ApiState,
    principal: Principal,
    thread: str | None,
    message: str,
    *,
    product: str | None = None,
    domain: str | None = None,
) -> Turn:
    """One chat message: `approve`, `reject` or `status` act on the thread; anything else is a question
    answered from the knowledge the key may read. Chat does not edit drafts: revisions come from the
    validation loop, and a different product is a new thread. The thread's work runs in the threadpool;
    a question waits its turn with those of /v1/ask (`ApiState.ask`), so chat cannot crowd them out."""
    command = command_of(message)
    if thread is None and (command is not None or message.strip().lower().startswith("draft")):
        return Turn("help", HELP)
    if thread is not None and command in ("approve", "reject"):
        decided = await run_in_threadpool(decide, state, principal, thread, command == "approve")
        return Turn("approve" if command == "approve" else "reject", decided.describe(), view=decided)
    view = await run_in_threadpool(get, state, principal, thread) if thread is not None else None
    if view is not None and command == "status":
        return Turn("status", view.describe(), view=view)
    answer = await state.ask(message, groups=principal.groups, product=product, domain=domain)
    return Turn("answer", "", answer=answer, view=view)


def _load(conn: Connection, principal: Principal, thread: str, *, lock: bool = False) -> ThreadRecord:
    row = None
    if THREAD_ID.fullmatch(thread):
        row = conn.execute(
            text(
                "SELECT thread_id, key_id, name, domain, owner, source, created_at FROM copilot_threads"
                " WHERE thread_id = :t" + (" FOR UPDATE" if lock else "")
            ),
            {"t": thread},
        ).first()
    if row is None or (row.key_id != principal.key_id and not principal.admin):
        raise NotFound(f"no copilot thread {thread[:64]!r} for this key")
    return ThreadRecord(row.thread_id, row.key_id, row.name, row.domain, row.owner, row.source, row.created_at)


def _audit(conn: Connection, principal: Principal, verb: str, thread: str, run: DraftRun) -> None:
    record_event(
        conn,
        actor=principal.name,
        action=f"copilot.{verb}",
        target=thread,
        details={"status": run.status, "valid": run.valid, "artifacts": len(run.artifacts)},
    )
