"""`wbc predict` on one image in a warm process: decode, find the cell, screen, crop, classify.

    python benchmarks/predict_latency.py [--model M] [--runs 300] [--stages]

Prints the median milliseconds per image with 8 views, with the card's test-time views (4, the
rotations) and with one view, side by side: the three are timed in turn, image after image, so that the
machine's drift reaches each alike. For a card that matches a field's white (match_white), also the
card's path with it and without it, in turn. With --stages, also the median of each step of the card's path
timed alone, in alternation, on the same image: where the time goes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from wbc.predict import Predictor

ALL_EIGHT = "network, batch 8 (ONNX Runtime; all 8 views, for comparison)"  # not a step of the card's path
K = TypeVar("K", str, int)
SAMPLE = Path(__file__).resolve().parents[1] / "src" / "wbc" / "app" / "samples" / "monocyte-1.jpeg"


def alternated(steps: dict[K, Callable[[], object]], runs: int) -> dict[K, float]:
    """Median ms of each step, the steps timed in turn round after round (after 10 warm-up calls each),
    so that the machine's drift reaches each alike."""
    times: dict[K, list[float]] = {k: [] for k in steps}
    for f in steps.values():
        for _ in range(10):
            f()
    for _ in range(runs):
        for k, f in steps.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    return {k: 1000 * statistics.median(v) for k, v in times.items()}


def side_by_side(p: Predictor, counts: list[int], runs: int) -> dict[int, float]:
    """Median ms of `predict_files` on SAMPLE averaging each number of views in `counts`, timed in turn."""
    card_views = p.tta_views

    def with_views(v: int) -> Callable[[], object]:
        def f() -> object:
            p.tta_views = v if v > 1 else card_views
            return p.predict_files([SAMPLE], tta=v > 1)
        return f

    try:
        return alternated({v: with_views(v) for v in counts}, runs)
    finally:
        p.tta_views = card_views


def stages(p: Predictor, runs: int) -> dict[str, float]:
    """Median ms of each step of one prediction with the card's views, the steps timed in turn, round after round."""
    try:
        from wbc.decode import load_image
    except ImportError:  # an earlier commit's src (the old side of predict_ab.sh): decoding was in wbc.imaging
        from wbc.imaging import load_image
    from wbc.imaging import crop_square, dihedral_views, locate_at_data_scale, resize
    from wbc.screening import screen
    try:
        from wbc.white_balance import input_gains
    except ImportError:  # an earlier commit's src (the old side of predict_ab.sh): input_gains was in wbc.screening
        from wbc.screening import input_gains

    raw = SAMPLE.read_bytes()
    rgb = load_image(raw)
    field, loc = locate_at_data_scale(rgb)
    crop = resize(crop_square(field, loc.cy, loc.cx, p.spec.window), p.spec)
    n = p.tta_views
    views, views8 = dihedral_views(crop[None], n), dihedral_views(crop[None], 8)
    steps: dict[str, Callable[[], object]] = {
        "decode (Pillow)": lambda: load_image(raw),
        "find the cell (stain map, blur, centroid)": lambda: locate_at_data_scale(rgb),
        "crop and resize": lambda: resize(crop_square(field, loc.cy, loc.cx, p.spec.window), p.spec),
        "screen (checks, clipped share)": lambda: screen(field, loc),
        **({"white gains (the card's match_white)": lambda: input_gains(field)} if p.match_white else {}),
        f"{n} views": lambda: dihedral_views(crop[None], n),
        f"network, batch {n} (ONNX Runtime)": lambda: p.run(views),
        ALL_EIGHT: lambda: p.run(views8),
        "whole `predict_files`": lambda: p.predict_files([SAMPLE]),
    }
    return alternated(steps, runs)


def main() -> int:
    from wbc.cli import whole_number
    from wbc.predict import Predictor

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--runs", type=whole_number(1), default=300)
    ap.add_argument("--stages", action="store_true", help="also time each step of the card's path alone")
    args = ap.parse_args()
    p = Predictor(args.model)
    if p.tta_views == 1:
        print("predict_latency: the model's card averages no views; this compares view counts", file=sys.stderr)
        return 2
    res_views = side_by_side(p, sorted({8, p.tta_views, 1}, reverse=True), args.runs)
    for v, ms in res_views.items():
        card = " (the card's)" if v == p.tta_views else ""
        print(f"{v} view(s){card}: {ms:.2f} ms per image (median of {args.runs}), "
              f"{res_views[8] / ms:.2f}x the speed of 8 views")
    if p.match_white:  # what the card's white matching costs: the same path with it off, in turn
        off = Predictor(args.model, match_white=False)
        res = alternated({"on": lambda: p.predict_files([SAMPLE]), "off": lambda: off.predict_files([SAMPLE])}, args.runs)
        print(f"the card's views with its match_white: {res['on']:.2f} ms, without: {res['off']:.2f} ms "
              f"({res['on'] / res['off']:.2f}x)")
    if args.stages:
        res = stages(p, args.runs)
        parts = sum(v for k, v in res.items() if not k.startswith("whole") and k != ALL_EIGHT)
        print(f"\n| step ({p.tta_views} views) | median ms |\n|---|---|")
        for name, ms in res.items():
            print(f"| {name} | {ms:.3f} |")
        print(f"| the steps added up | {parts:.3f} |")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
