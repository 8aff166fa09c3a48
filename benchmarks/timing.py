"""Timing helpers shared by the benchmarks: best-of-n wall time with device synchronization."""
from __future__ import annotations

import time
from collections.abc import Callable


def synchronize(xp) -> None:
    """Wait for queued device work (CuPy); nothing to wait for on NumPy."""
    if xp.__name__ == "cupy":
        xp.cuda.Device().synchronize()


def best_of(fn: Callable[[], object], repeats: int, xp=None, warmup: int = 1) -> float:
    """The fastest of ``repeats`` runs of ``fn`` in seconds, after ``warmup`` untimed runs."""
    for _ in range(warmup):
        fn()
    if xp is not None:
        synchronize(xp)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if xp is not None:
            synchronize(xp)
        best = min(best, time.perf_counter() - t0)
    return best
