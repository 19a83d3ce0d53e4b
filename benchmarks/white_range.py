"""The range of the data set's white, per channel: where `wbc.white_balance.DATA_WHITE_RANGE` comes from.

    python benchmarks/white_range.py [--data PATH] [--split TRAIN] [--every 1]

Each file's white is `wbc.white_balance.field_white` (each channel's 99th percentile over its lit
pixels); prints the 0.1th, 50th and 99.9th percentile of those per channel, and how many files lie
outside the 0.1-99.9 range in some channel.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> None:
    from wbc.progress import bar

    from wbc.cli import whole_number
    from wbc.data import list_split
    from wbc.decode import load_image
    from wbc.folders import find_images_root
    from wbc.info import SPLITS
    from wbc.white_balance import field_white

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="data set folder (default: WBC_DATA, else ../shared/data/blood-cells)")
    ap.add_argument("--split", default="TRAIN", choices=SPLITS)
    ap.add_argument("--every", type=whole_number(1), default=1)
    args = ap.parse_args(argv)
    samples = list_split(find_images_root(args.data), args.split)[:: args.every]
    whites = np.array([field_white(load_image(s.path)) for s in bar(samples, show=True, desc="white")])  # (N, 3)
    lo, mid, hi = np.percentile(whites, [0.1, 50, 99.9], axis=0)
    for name, a in (("0.1th percentile", lo), ("median", mid), ("99.9th percentile", hi)):
        print(f"{name:18s} R {a[0]:.1f}  G {a[1]:.1f}  B {a[2]:.1f}")
    outside = ((whites < lo) | (whites > hi)).any(axis=1)
    below = (whites < lo).any(axis=1)
    print(f"{args.split}: {len(whites)} files, {int(outside.sum())} outside the 0.1-99.9 range in some channel, "
          f"{int(below.sum())} below it (what match_white matches)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
