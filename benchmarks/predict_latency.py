"""`wbc predict` on one image in a warm process: decode, find the cell, screen, crop, classify.

    python benchmarks/predict_latency.py [--model M] [--runs 300] [--stages]

Prints the median milliseconds per image with the card's test-time views (8) and with one view.
With --stages, also the median of each step of the 8-view path timed alone, in alternation, on
the same image: where the time goes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wbc.predict import Predictor

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "wbc" / "app" / "samples" / "monocyte-1.jpeg"


def median_ms(f: Callable[[], object], runs: int) -> float:
    for _ in range(10):
        f()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def stages(p: Predictor, runs: int) -> dict[str, float]:
    """Median ms of each step of one 8-view prediction, the steps timed in turn, round after round."""
    from wbc.imaging import crop_square, dihedral_views, load_image, locate_at_data_scale
    from wbc.imaging import _resize as resize
    from wbc.screening import screen

    raw = SAMPLE.read_bytes()
    rgb = load_image(raw)
    field, loc = locate_at_data_scale(rgb)
    crop = resize(crop_square(field, loc.cy, loc.cx, p.spec.window), p.spec)
    views = dihedral_views(crop[None])
    steps: dict[str, Callable[[], object]] = {
        "decode (Pillow)": lambda: load_image(raw),
        "find the cell (stain map, blur, centroid)": lambda: locate_at_data_scale(rgb),
        "crop and resize": lambda: resize(crop_square(field, loc.cy, loc.cx, p.spec.window), p.spec),
        "screen (checks, clipped share)": lambda: screen(field, loc),
        "8 views": lambda: dihedral_views(crop[None]),
        "network, batch 8 (ONNX Runtime)": lambda: p.run(views),
        "whole `predict_files`": lambda: p.predict_files([SAMPLE]),
    }
    times: dict[str, list[float]] = {k: [] for k in steps}
    for f in steps.values():
        for _ in range(10):
            f()
    for _ in range(runs):
        for name, f in steps.items():
            t = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t)
    return {k: 1000 * statistics.median(v) for k, v in times.items()}


def main() -> int:
    from wbc.predict import Predictor

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--stages", action="store_true", help="also time each step of the 8-view path alone")
    args = ap.parse_args()
    p = Predictor(args.model)
    for v in sorted({p.tta_views, 1}, reverse=True):
        ms = median_ms(lambda: p.predict_files([SAMPLE], tta=v > 1), args.runs)
        print(f"{v} view(s): {ms:.2f} ms per image (median of {args.runs})")
    if args.stages:
        res = stages(p, args.runs)
        parts = sum(v for k, v in res.items() if not k.startswith("whole"))
        print("\n| step (8 views) | median ms |\n|---|---|")
        for name, ms in res.items():
            print(f"| {name} | {ms:.3f} |")
        print(f"| the steps added up | {parts:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
