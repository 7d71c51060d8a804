"""The start-up heap kept out of the garbage collector's full passes (`freeze_startup_heap`).

A serving process loads models, guards, SQLAlchemy and FastAPI before its first request: hundreds
of thousands of objects (435,000 in an answer worker) that live as long as it does. CPython's full
(generation 2) collection walks all of them; under load it ran every ~30 s in the API process and
took 230-250 ms, during which its event loop answered nothing (measured on the serving benchmark,
docs/benchmarks.md). Frozen, they are never walked again, and a full collection only visits what was
allocated since. The price: a frozen object that later ends up in unreachable cycles is never freed,
which is why only serving processes, whose start-up objects live as long as they do, freeze (test
processes build apps by the dozen).
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect what start-up left behind, then freeze the rest; returns how many objects are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
