"""`meshpilot serve`: the HTTP API, the web chat page and the OpenAI-compatible endpoints."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Annotated

import typer

from rag.settings import Settings
from serving.cli.common import settings_from, stdout

APP_FACTORY = "serving.api.app:create_app_from_env"


def run_server(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    access_log: bool = True,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Bind, call `announce(url)` (the real port, also when 0 asked for a free one), serve until interrupted."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from serving.api.app import create_app

    one = workers == 1
    config = uvicorn.Config(
        create_app(settings, freeze_heap=True) if one else APP_FACTORY,
        factory=not one,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    sock = config.bind_socket()
    bound_port = sock.getsockname()[1]
    url_host = f"[{host}]" if ":" in host else host
    if announce:
        announce(f"http://{url_host}:{bound_port}")
    metrics_dir = None
    try:
        if one:
            uvicorn.Server(config).run(sockets=[sock])
        else:
            # Workers rebuild the settings from the environment and share Prometheus counters
            # through files, so /metrics sums every worker whichever one a scrape reaches.
            metrics_dir = tempfile.mkdtemp(prefix="meshpilot-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
            Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass  # uvicorn re-raises Ctrl-C after its graceful shutdown; stopping is the expected way out
    finally:
        sock.close()
        if metrics_dir:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            shutil.rmtree(metrics_dir, ignore_errors=True)


def announce_url(url: str) -> None:
    stdout.print(f"meshpilot API on [bold]{url}[/] (web chat at /, API docs at /docs); Ctrl-C stops it")
    stdout.file.flush()  # the URL must reach a pipe (tests, scripts) before the server blocks


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on; 0.0.0.0 for every interface.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port; 0 picks a free one.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes (each loads the models).")] = 1,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="Log every request.")] = True,
) -> None:
    """Serve the HTTP API, the web chat page and the OpenAI-compatible endpoints until interrupted.

    Callers need an API key: meshpilot keys create --name NAME --groups g1,g2

    Example: meshpilot serve --host 0.0.0.0 --port 8000 --workers 2
    """
    settings = settings_from(ctx)
    if workers > 1 and settings.database_url is None:
        stdout.print("[dim]embedded database: the workers share this node's server[/]")
    run_server(settings, host=host, port=port, workers=workers, access_log=access_log, announce=announce_url)
