"""Batch-1 ONNX Runtime latency of several trained networks, side by side in one process.

    python benchmarks/arch_latency.py runs/bench/seed-seed0 runs/e4-borderfill runs/e5-light-wide ...

Exports each run's best.pt (one view, no calibration: the network alone) and times one image
through `Predictor.predict_probs` as `wbc predict --single-view` runs it, in the same process and
thread setting, in alternation (`timing.time_interleaved`); prints ms/image and the ratio of the
first run (the baseline) to each.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import single_pass, time_interleaved  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, nargs="+", help="run folders; the first is the baseline")
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads (default: 2)")
    ap.add_argument("--rounds", type=int, default=15, help="alternating timing rounds (default: 15)")
    args = ap.parse_args()

    from wbc.model import count_flops
    from wbc.predict import Predictor
    from wbc.ship import parity_images
    from wbc.export import export
    from wbc.train import load_checkpoint, model_from_checkpoint

    images = parity_images(None)
    fns, mflops = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, run in enumerate(args.runs):
            out = Path(tmp) / str(i)
            export(run / "best.pt", out, images)
            pred = Predictor(out, threads=args.threads)
            net, _ = model_from_checkpoint(load_checkpoint(run / "best.pt"))
            mflops[str(run)] = count_flops(net, pred.spec.input_hw) / 1e6
            fns[str(run)] = single_pass(pred)
        ms = {k: 1000 * v for k, v in time_interleaved(fns, rounds=args.rounds).items()}
    base = ms[str(args.runs[0])]
    print("| run | MFLOPs | ORT ms/image, batch 1 | baseline / run |\n|---|---|---|---|")
    for run in map(str, args.runs):
        # A fold run is named by its cross-validation too (runs/cv/NAME/foldK): folds share their names.
        label = f"{Path(run).parent.name}/{Path(run).name}" if Path(run).name.startswith("fold") else Path(run).name
        print(f"| {label} | {mflops[run]:.0f} | {ms[run]:.3f} | {base / ms[run]:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
