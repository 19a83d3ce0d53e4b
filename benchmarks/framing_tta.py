"""Out of fold, does showing a cross-validation's fold models another crop window change anything?

    python benchmarks/framing_tta.py runs/cv/e10-fields [--windows 128 144 160 184 208]

Each fold run's last epoch predicts its own held-out TRAIN files (8 views) with the cell cropped in
each window (source pixels, resized to the network's input as always), and the pooled out-of-fold
predictions are scored per window, and with the views of all windows averaged (multi-framing
test-time augmentation). No training, no TEST.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np


def main() -> int:
    from wbc.calibration import nll, tta_probs
    from wbc.export import export
    from wbc.metrics import compute_metrics
    from wbc.ship import parity_images, validation_view_logits

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cv", type=Path, help="a cross-validation's folder (foldK run folders inside)")
    ap.add_argument("--windows", type=int, nargs="+", default=[128, 144, 160, 184, 208])
    args = ap.parse_args()
    runs = sorted(p for p in args.cv.glob("fold*") if (p / "last.pt").exists())
    if not runs:
        print(f"framing_tta: {args.cv}: no finished fold runs (foldK/last.pt)", file=sys.stderr)
        return 2
    per: dict[int, list[np.ndarray]] = {w: [] for w in args.windows}
    ys, cells = [], []
    for run in runs:
        with tempfile.TemporaryDirectory() as tmp:
            export(run / "last.pt", tmp, parity_images(None), extra_card={"tta_views": 8})
            for w in args.windows:
                logits, y, c = validation_view_logits(Path(tmp), run, None, views=8, window=w)
                per[w].append(tta_probs(logits))
        ys.append(y)
        cells += c
    y = np.concatenate(ys)
    rows = {f"window {w} px": np.concatenate(per[w]) for w in args.windows}
    rows["all windows averaged"] = sum(rows.values()) / len(args.windows)
    print(f"{args.cv}: {len(runs)} folds, {len(y)} files of {len(set(cells))} cells, out of fold\n")
    print("| framing | accuracy over files | cells right | macro-F1 | NLL |\n|---|---|---|---|---|")
    for name, p in rows.items():
        m = compute_metrics(p, y, cells)
        print(f"| {name} | {100 * m['accuracy']:.2f}% | {m['cells_correct']} / {m['n_cells']} | "
              f"{m['macro_f1']:.3f} | {nll(p, y):.3f} |")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
