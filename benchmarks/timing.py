"""The one timing loop the benchmarks share."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def time_it(fn: Callable[[], object], min_seconds: float = 1.5, min_runs: int = 10) -> float:
    """Median seconds per call over repeated runs (after a warm-up)."""
    for _ in range(3):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)
