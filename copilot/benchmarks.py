"""Benchmarks: draft and validate a generated CSV end to end through the graph, timed by stage.

The standards stage uses the documented defaults (no database), so the figure is the copilot's own
cost; retrieval is measured by `meshpilot bench ingest`/the RAG benchmarks.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

GOAL_S = 10.0


def generate_csv(path: Path, rows: int, columns: int) -> None:
    """A mixed table: ids, numbers with NA holes, enumerations, dates, emails, free text."""
    kinds = [
        "i AS order_id",
        "CASE WHEN i % 17 = 0 THEN 'NA' ELSE CAST(round(random() * 1000, 2) AS VARCHAR) END AS amount",
        "['EUR', 'USD', 'GBP'][1 + i % 3] AS currency",
        "CAST(DATE '2024-01-01' + CAST(i % 365 AS INTEGER) AS VARCHAR) AS order_date",
        "'user' || (i % 5000) || '@example.com' AS email",
        "['open', 'shipped', 'closed', 'returned'][1 + i % 4] AS status",
        "CASE WHEN i % 2 = 0 THEN 'true' ELSE 'false' END AS expedited",
        "CAST(i % 97 AS VARCHAR) AS pallet_count",
        "md5(CAST(i AS VARCHAR)) AS note",
    ]
    select = [kinds[0]]
    for c in range(1, columns):
        expr, alias = kinds[1 + (c - 1) % (len(kinds) - 1)].rsplit(" AS ", 1)
        select.append(f"{expr} AS {alias}_{c}")
    with duckdb.connect() as con:
        con.execute(
            f"COPY (SELECT {', '.join(select)} FROM range(1, {rows + 1}) t(i)) TO '{path}' (HEADER, DELIMITER ',')"
        )


def bench_draft(rows: int = 100_000, columns: int = 20) -> dict[str, Any]:
    from langgraph.checkpoint.memory import InMemorySaver

    from copilot import runs
    from copilot.state import Context, InputState

    with tempfile.TemporaryDirectory(prefix="meshpilot-bench-") as tmp:
        data = Path(tmp) / "bench_orders.csv"
        t = time.perf_counter()
        generate_csv(data, rows, columns)
        generate_ms = (time.perf_counter() - t) * 1000
        size = data.stat().st_size
        context = Context()
        inputs: InputState = {
            "data": str(data),
            "name": "bench_orders",
            "domain": "sales",
            "owner": "bench@example.com",
            "out": str(Path(tmp) / "product"),
            "auto_approve": True,
        }
        t = time.perf_counter()
        run = runs.start(inputs, context, InMemorySaver())
        total = time.perf_counter() - t
    return {
        "rows": rows,
        "columns": columns,
        "file_mb": round(size / 1e6, 1),
        "generate_ms": round(generate_ms, 1),
        "stages_ms": {k: round(v, 1) for k, v in context.timings_ms.items()},
        "total_s": round(total, 3),
        "goal_s": GOAL_S,
        "within_goal": total <= GOAL_S,
        "valid": run.valid,
        "checks": len(run.checks),
        "status": run.status,
    }
