"""Accuracy of a model on TEST under simulated shifts from other laboratories (wbc.robustness).

    python benchmarks/robustness.py [--model models/default] [--data PATH] [--every 1] [--md FILE]

Each shift is applied to the decoded source image before the model's own preprocessing, so the
whole pipeline (finding the cell, cropping, TTA) meets it. Prints a markdown table: accuracy over
files, cells right and macro-F1 under each shift, the drop from clean in points, and how many files
the screening would tell a user are not a white cell, with and without its second look (the field's
white matched to the data set's, wbc.screening). The issue's shifts (wbc.robustness.SHIFTS) come
first, then those beyond its range (EXTRA_SHIFTS).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main() -> int:
    from tqdm import tqdm

    from wbc.data import find_images_root, list_split
    from wbc.imaging import load_image
    from wbc.io import atomic_write_text
    from wbc.predict import Predictor
    from wbc.robustness import EXTRA_SHIFTS, SHIFTS, run_shifts

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model folder or .onnx (default: the shipped model)")
    ap.add_argument("--data", type=Path)
    ap.add_argument("--every", type=int, default=1, help="use every k-th TEST file (default: all)")
    ap.add_argument("--md", type=Path, help="also write the table here")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    pred = Predictor(args.model)
    samples = list_split(find_images_root(args.data), "TEST")[:: args.every]
    images = [load_image(s.path) for s in tqdm(samples, desc="decode")]
    y = np.array([s.label for s in samples])
    cells = [s.cell for s in samples]
    res = {}
    shifts = {**SHIFTS, **EXTRA_SHIFTS}
    for name in tqdm(shifts, desc="shifts"):
        res.update(run_shifts(pred.predict_probs, images, y, cells, pred.spec, {name: shifts[name]}, pred.analyse))
    clean = res["clean"]["accuracy"]
    n_cells = len(set(cells))
    shown = pred.onnx_path.resolve()
    shown = shown.relative_to(Path.cwd()) if shown.is_relative_to(Path.cwd()) else shown
    lines = [f"TEST, {len(samples)} files of {n_cells} cells, model `{shown}`:", "",
             "| shift | accuracy over files | drop (points) | cells right | macro-F1 | told \"not a white cell\" "
             "(without the second look) |", "|---|---|---|---|---|---|"]
    for name, r in res.items():
        flagged = f"{r['flagged']} ({r['flagged'] + r['second_look']})"
        lines.append(f"| {name} | {100 * r['accuracy']:.2f}% | {100 * (clean - r['accuracy']):+.2f} | "
                     f"{round(r['cell_accuracy'] * n_cells)} / {n_cells} | {r['macro_f1']:.3f} | {flagged} |")
    worst = max(clean - res[name]["accuracy"] for name in SHIFTS)
    worst_all = max(clean - r["accuracy"] for r in res.values())
    lines += ["", f"Largest drop from clean: {100 * worst:.2f} points over the issue's shifts, "
              f"{100 * worst_all:.2f} over all."]
    text = "\n".join(lines)
    print(text)
    if args.md:
        atomic_write_text(args.md, text + "\n")
    if args.json:
        atomic_write_text(args.json, json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
