"""Timing helpers shared by the benchmarks: best-of-n wall time with device synchronization."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from port.util import atomic_write_bytes

RESULTS = Path(__file__).resolve().parent / "results"


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


def save_report(report: dict, suffix: str) -> Path:
    """Write ``report`` atomically as ``benchmarks/results/<time>-<suffix>.json``; returns the path
    relative to the project root."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{report['time_utc'].replace(':', '')}-{suffix}.json"
    atomic_write_bytes(path, lambda f: f.write(json.dumps(report, indent=1).encode()))
    return path.relative_to(RESULTS.parent.parent)
