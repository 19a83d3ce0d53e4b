"""The timing loops the benchmarks share."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np


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


def time_interleaved(fns: dict[str, Callable[[], object]], rounds: int = 15,
                     seconds_per_round: float = 0.2) -> dict[str, float]:
    """Median seconds per call of each function, timed in alternation: every round times each one
    for about `seconds_per_round`, so a slow or busy spell of a shared machine falls on all of them
    alike instead of on whichever happened to run then."""
    return {name: statistics.median(v) for name, v in time_rounds(fns, rounds, seconds_per_round).items()}


def time_rounds(fns: dict[str, Callable[[], object]], rounds: int = 15,
                seconds_per_round: float = 0.2) -> dict[str, list[float]]:
    """`time_interleaved`'s rounds: each function's median seconds per call in every round, in order,
    so that ratios can be taken round by round (one round's functions ran within about
    len(fns) x seconds_per_round of each other)."""
    for fn in fns.values():
        for _ in range(3):
            fn()
    per_round: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times: list[float] = []
            start = time.perf_counter()
            while len(times) < 3 or time.perf_counter() - start < seconds_per_round:
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
            per_round[name].append(statistics.median(times))
    return per_round


def _one_crop(pred: Any) -> np.ndarray:
    """One random prepared crop, uint8 (1, h, w, 3), of a Predictor's input size."""
    h, w = pred.spec.input_hw
    return np.random.default_rng(0).integers(0, 255, (1, h, w, 3), dtype=np.uint8)


def single_pass(pred: Any) -> Callable[[], object]:
    """One network pass of a `wbc.predict.Predictor` on one random crop of its input size, without
    test-time views: what the benchmarks call ONNX Runtime's batch-1 time."""
    x = _one_crop(pred)
    return lambda: pred.predict_probs(x, tta=False)


def session_pass(pred: Any) -> Callable[[], object]:
    """The same image straight into the Predictor's ONNX Runtime session: the network's inference
    alone, without the Python around it (chunking, averaging, the card's confidence map)."""
    x = _one_crop(pred)
    h, w = pred.spec.input_hw
    feed = {"input": x if pred.raw_input else np.zeros((1, 3, h, w), np.float32)}
    return lambda: pred.session.run(["probs"], feed)
