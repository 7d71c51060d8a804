"""`meshpilot bench ...`: benchmarks that print JSON (never timed unit tests)."""

from __future__ import annotations

import contextlib
import gc
import os
from typing import Annotated, Any

import typer

from rag.errors import NotFound, UsageError
from serving.cli.common import database, print_json, settings_from, stderr, stdout

app = typer.Typer(help="Benchmarks (JSON on stdout).", no_args_is_help=True)


@app.command("ingest")
def ingest_cmd(
    ctx: typer.Context,
    copies: Annotated[int, typer.Option(min=1, max=200, help="Copies of the sample knowledge base to ingest.")] = 5,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="Encoder processes (default: one per core).")
    ] = None,
    rounds: Annotated[
        int, typer.Option(min=1, max=20, help="Pipeline runs, each between two raw-encoder runs; the median counts.")
    ] = 5,
    json_out: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")] = False,
) -> None:
    """Whole ingestion pipeline vs the raw encoder on the same chunks, in one run; prints both and their ratio.

    Example: meshpilot bench ingest --json
    """
    from evals.benchmarks.ingest import run
    from rag.database import open_database

    settings = settings_from(ctx)
    # Embedded: a database of the benchmark's own, so the user's knowledge (and the size of its HNSW
    # index, which makes every insert slower) cannot change the figure from one run to the next.
    own = settings.database_url is None
    db = open_database(settings.model_copy(update={"home": settings.home / "bench-ingest"})) if own else database(ctx)
    try:
        result = run(db, settings, copies=copies, workers=workers, fresh_index=own, rounds=rounds)
    finally:
        db.close()
    if json_out:
        print_json(result)
    else:
        stdout.print(
            f"{result['chunks']} chunks: pipeline {result['pipeline']['chunks_per_s']}/s, raw encoder "
            f"{result['raw_encoder']['chunks_per_s']}/s, ratio {result['ratio']} (goal >= {result['goal_ratio']})"
        )


BENCH_KEY = "bench-serve"
# The bench measures the service, not its rate limit: the server it starts gets this one.
UNLIMITED = "1000000000"


@app.command("guards")
def guards_cmd(
    ctx: typer.Context,
    repeats: Annotated[int, typer.Option(min=1, max=100, help="Passes over the messages.")] = 3,
    json_out: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")] = False,
) -> None:
    """Cost of the guards per message: input, retrieved context and output stages, p50 and p95.

    Goal: <= 10 ms p50 for the whole pipeline, the question's embedding reused from retrieval.

    Example: meshpilot bench guards --json
    """
    from evals.benchmarks.guards import run
    from rag.embeddings import get_embedder

    settings = settings_from(ctx)
    db = database(ctx)
    try:
        result = run(db, settings, get_embedder(settings), repeats=repeats)
    finally:
        db.close()
    if json_out:
        print_json(result)
        return
    for stage, s in result["stages"].items():
        stdout.print(f"{stage:>8}: p50 {s['p50_ms']:7.3f} ms  p95 {s['p95_ms']:7.3f} ms", highlight=False)
    stdout.print(
        f"guardrails-ai share of the p50: {result['guardrails_share_p50']:.0%}; "
        f"goal p50 <= {result['goal_p50_ms']} ms: {'met' if result['goal_met'] else 'MISSED'}",
        highlight=False,
    )


@app.command("serve")
def serve_cmd(
    ctx: typer.Context,
    chunks: Annotated[int, typer.Option(min=1000, max=500_000, help="Chunks in the benchmark corpus.")] = 50_000,
    clients: Annotated[int, typer.Option(min=1, max=256, help="Concurrent clients (closed loop).")] = 32,
    seconds: Annotated[float, typer.Option(min=1, max=600, help="Measured duration.")] = 30.0,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Server worker processes.")] = 1,
    json_out: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")] = False,
) -> None:
    """Concurrent clients on /v1/ask against a real server on 127.0.0.1, embedded stack, offline answerer;
    reports throughput, p50/p95/p99, errors, and the in-process RagService.ask latency as a baseline.

    The corpus is built once (about a minute) under $MESHPILOT_HOME/bench-serve and reused.

    Example: meshpilot bench serve --json
    """
    from evals.benchmarks.serve import GROUP, baseline, build_corpus, golden_questions, run_load
    from rag.database import open_database
    from rag.embeddings import get_embedder, query_embedder, query_precision
    from rag.service import RagService
    from serving.api.answer_workers import worker_shape
    from serving.api.keys import create_key, revoke_key
    from serving.api.startup_heap import freeze_startup_heap
    from serving.server_process import ServerProcess, postmaster_pid

    settings = settings_from(ctx)
    if settings.llm_base_url:
        raise UsageError("bench serve measures the offline answerer: unset MESHPILOT_LLM_BASE_URL")
    embedded = settings.database_url is None
    # A database of its own when embedded, so 50,000 benchmark chunks never mix with real products.
    bench_settings = settings.model_copy(update={"home": settings.home / "bench-serve"}) if embedded else settings
    questions = golden_questions()
    db = open_database(bench_settings)
    try:
        embedder = get_embedder(bench_settings)
        stderr.print(f"benchmark corpus: {chunks} chunks (built once, then cached)")
        corpus = build_corpus(db, bench_settings, embedder, chunks)
        with db.transaction() as conn:
            with contextlib.suppress(NotFound):
                revoke_key(conn, BENCH_KEY, actor="bench")
            key = create_key(conn, BENCH_KEY, [GROUP], actor="bench").key
        stderr.print("baseline: RagService.ask in this process, one question at a time")
        in_process = baseline(RagService.build(bench_settings, db, embedder=embedder), questions)
    finally:
        db.close()

    env = {"MESHPILOT_API_RATE_LIMIT_PER_MINUTE": UNLIMITED}
    if embedded:
        env["MESHPILOT_HOME"] = str(bench_settings.home)
    stderr.print(f"starting the server ({workers} worker{'s' if workers > 1 else ''}) and warming it up")
    with ServerProcess(workers=workers, env=env) as server:
        run_load(server.url, key, questions, clients=clients, seconds=min(3.0, seconds))
        stderr.print(f"measuring: {clients} clients for {seconds:.0f} s")
        pids = {"server": server.proc.pid, "database": postmaster_pid(bench_settings.data_dir) if embedded else None}
        # This process holds the baseline's models: a full collection here (0.2 s) would stop every
        # client at once and be measured as the server's latency.
        freeze_startup_heap()
        try:
            before = _cpu_seconds(pids)
            load = run_load(server.url, key, questions, clients=clients, seconds=seconds)
            spent = {name: after - before[name] for name, after in _cpu_seconds(pids).items()}
        finally:
            gc.unfreeze()
    load["cpu_ms_per_request"] = {
        "client": load.pop("client_cpu_ms_per_request"),
        **{name: round(secs * 1000 / max(load["ok"], 1), 2) for name, secs in spent.items()},
    }

    result = _report(load, in_process, corpus.to_dict(), clients=clients, seconds=seconds, workers=workers)
    # What the server embeds questions with (the same settings): int8 by default, see docs/benchmarks.md.
    result["query_embedding_precision"] = query_precision(query_embedder(bench_settings, embedder))
    # How each server process answers (the same settings): worker processes and questions at once.
    result["answer_processes"] = worker_shape(bench_settings)[0]
    result["ask_concurrency"] = bench_settings.ask_concurrency
    if json_out:
        print_json(result)
        return
    lat = load["latency_ms"]
    stdout.print(
        f"{load['throughput_rps']} req/s, p50 {lat['p50']} ms, p95 {lat['p95']} ms, p99 {lat['p99']} ms, "
        f"{load['errors']} errors (goal: 0 errors, p95 <= 300 ms: {'met' if result['passed'] else 'missed'}); "
        f"in-process baseline p50 {in_process['latency_ms']['p50']} ms, {in_process['per_s']}/s"
    )


def _cpu_seconds(pids: dict[str, int | None]) -> dict[str, float]:
    """CPU seconds so far of each named process tree, and of the whole machine (every tenant's)."""
    import psutil

    from serving.server_process import tree_cpu_seconds

    busy = psutil.cpu_times()
    machine = sum(getattr(busy, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq"))
    return {**{name: tree_cpu_seconds(pid) for name, pid in pids.items() if pid is not None}, "machine": machine}


def _report(
    load: dict[str, Any],
    in_process: dict[str, Any],
    corpus: dict[str, Any],
    *,
    clients: int,
    seconds: float,
    workers: int,
) -> dict[str, Any]:
    p95 = load["latency_ms"]["p95"]
    return {
        "benchmark": "serve",
        "endpoint": "POST /v1/ask (JSON, one question per request, the golden questions in turn)",
        "stack": "embedded PostgreSQL + pgvector, MiniLM on CPU, offline extractive answerer, uvicorn on 127.0.0.1",
        "clients": clients,
        "seconds": seconds,
        "workers": workers,
        "cpu_count": os.cpu_count(),
        "note": (
            "the load generator runs on the same machine and shares its cores; a warm-up (3 s at most) is excluded;"
            " cpu_ms_per_request: the client (this process), the server's processes, the embedded PostgreSQL's"
            " (backends alive at the end only: connections opened and closed during the run are missed)"
            " and the whole machine's (every process on it, other tenants included)"
        ),
        "corpus": corpus,
        **load,
        "baseline_in_process": in_process,
        "ratios": {
            "throughput_vs_in_process": round(load["throughput_rps"] / in_process["per_s"], 2),
            "p50_vs_in_process": round(load["latency_ms"]["p50"] / in_process["latency_ms"]["p50"], 2),
        },
        "goal": {"errors": 0, "p95_ms": 300},
        "passed": load["errors"] == 0 and p95 <= 300,
    }
