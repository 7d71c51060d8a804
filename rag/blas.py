"""One BLAS thread per process.

numpy's OpenBLAS starts a thread per core and hands even tiny products to them (the injection
guard's MLP: a document's chunks x 785 features x 160). On this product's busy cores, the encoder
workers or other requests hold every core, so the call waits for its helper thread to be scheduled
and the helpers then spin: during ingestion the guard's products took 7 ms a call instead of 0.06,
and the parent process spent 4.0 s of CPU instead of 1.5 s. The project's matrices are small;
parallelism comes from processes and requests, not from BLAS.
"""

from __future__ import annotations

import os


def use_one_blas_thread() -> None:
    """Limit every BLAS library loaded in this process to one thread; children inherit it through the
    environment. An operator's own `OPENBLAS_NUM_THREADS`/`OMP_NUM_THREADS` wins."""
    if "OPENBLAS_NUM_THREADS" in os.environ or "OMP_NUM_THREADS" in os.environ:
        return
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    import numpy  # noqa: F401  (loads OpenBLAS, so that threadpoolctl finds it)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
