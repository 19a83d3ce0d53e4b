"""Do TRAIN's and TEST's images differ in colour or framing? Label-free statistics of both splits.

    python benchmarks/split_stats.py [--files 400] [--data DIR]

For a random sample of files of each split: the image's mean RGB, and where `locate_cell` finds the
cell (its distance from the image centre, px). No labels and no model are used, so looking at TEST
this way chooses nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from wbc.cli import whole_number

    ap.add_argument("--files", type=whole_number(1), default=400, help="files drawn from each split (default: 400)")
    ap.add_argument("--data", help="data set folder (default: WBC_DATA, else ../shared/data/blood-cells)")
    args = ap.parse_args()

    from wbc.data import list_split
    from wbc.decode import load_image
    from wbc.folders import find_images_root
    from wbc.imaging import locate_cell

    root = find_images_root(args.data)
    rng = np.random.default_rng(0)
    print("| split | files | mean R / G / B (sd over files) | cell's distance from centre, px: quartiles |")
    print("|---|---|---|---|")
    for split in ("TRAIN", "TEST"):
        samples = list_split(root, split)
        pick = rng.choice(len(samples), min(args.files, len(samples)), replace=False)
        rgb, dist = [], []
        for i in pick:
            a = load_image(samples[i].path)
            rgb.append(a.reshape(-1, 3).mean(0))
            loc = locate_cell(a)
            dist.append(np.hypot(loc.cy - a.shape[0] / 2, loc.cx - a.shape[1] / 2))
        m, sd = np.mean(rgb, 0), np.std(rgb, 0)
        q = np.percentile(dist, [25, 50, 75])
        print(f"| {split} | {len(pick)} | " + " / ".join(f"{a:.1f} ({b:.1f})" for a, b in zip(m, sd)) +
              f" | {q[0]:.0f} / {q[1]:.0f} / {q[2]:.0f} |")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
