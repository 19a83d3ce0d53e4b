"""`wbc predict` on one image in a warm process: decode, find the cell, screen, crop, classify.

    python benchmarks/predict_latency.py [--model M] [--runs 300]

Prints the median milliseconds per image with the card's test-time views (8) and with one view.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "wbc" / "app" / "samples" / "monocyte-1.jpeg"


def main() -> int:
    from wbc.predict import Predictor

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--runs", type=int, default=300)
    args = ap.parse_args()
    p = Predictor(args.model)
    for v in sorted({p.tta_views, 1}, reverse=True):
        for _ in range(10):
            p.predict_files([SAMPLE], tta=v > 1)
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            p.predict_files([SAMPLE], tta=v > 1)
            times.append(time.perf_counter() - t)
        print(f"{v} view(s): {1000 * statistics.median(times):.2f} ms per image (median of {args.runs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
