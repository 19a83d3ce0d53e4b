"""Batch-1 ONNX Runtime latency of several trained networks, side by side in one process.

    python benchmarks/arch_latency.py runs/bench/seed-seed0 runs/e4-borderfill runs/e5-light-wide ...

Exports each run's best.pt (one view, no calibration: the network alone) and times one image
through `Predictor.predict_probs` as `wbc predict --single-view` runs it, in the same process and
thread setting; prints ms/image and the ratio of the first run (the baseline) to each.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import time_it  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, nargs="+", help="run folders; the first is the baseline")
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads (default: 2)")
    args = ap.parse_args()

    from wbc.model import count_flops
    from wbc.predict import Predictor
    from wbc.ship import parity_images
    from wbc.export import export
    from wbc.train import load_checkpoint, model_from_checkpoint

    images = parity_images(None)
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, run in enumerate(args.runs):
            out = Path(tmp) / str(i)
            export(run / "best.pt", out, images)
            pred = Predictor(out, threads=args.threads)
            net, spec = model_from_checkpoint(load_checkpoint(run / "best.pt"))
            h, w = pred.spec.input_hw
            x = np.random.default_rng(0).integers(0, 255, (1, h, w, 3), dtype=np.uint8)
            rows.append((run.name, count_flops(net, (h, w)) / 1e6, 1000 * time_it(lambda: pred.predict_probs(x, tta=False), 3.0)))
    base = rows[0][2]
    print("| run | MFLOPs | ORT ms/image, batch 1 | baseline / run |\n|---|---|---|---|")
    for name, mflops, ms in rows:
        print(f"| {name} | {mflops:.0f} | {ms:.3f} | {base / ms:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
