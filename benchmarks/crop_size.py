"""How tight a crop around a cell can the network judge? What `wbc.photo_checks.MIN_SIDE_PX` rests on.

    python benchmarks/crop_size.py [--cv runs/cv/NAME] [--every 40] [--sides 32 40 48 56 64 72 96] [--data PATH]

Each TRAIN file (every k-th) is cut to a square of each side (px, at the data set's magnification)
around the cell `wbc.imaging.locate_cell` finds, kept inside the photo, and read whole as well, with
the screening's size floor lifted. Prints accuracy over files and the files read wrong with a
confidence at or above the card's review threshold ("confident and wrong"; fold models' cards have
none) at each side. By default
the shipped model reads TRAIN, whose cells it learnt from, so read the fall from "whole", not the
level; with --cv, each fold model of a cross-validation reads the files of the cells it was held
out from.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def tight_crop(rgb: np.ndarray, side: int) -> np.ndarray:
    """A side x side square of `rgb` (H, W, 3) around its cell, moved inside the photo where it would
    cross an edge."""
    from wbc.imaging import locate_cell

    loc = locate_cell(rgb)
    h, w = rgb.shape[:2]
    top = int(np.clip(round(loc.cy) - side // 2, 0, h - side))
    left = int(np.clip(round(loc.cx) - side // 2, 0, w - side))
    return rgb[top : top + side, left : left + side]


def main(argv: list[str] | None = None) -> int:
    import tempfile

    from wbc.progress import bar

    import wbc.photo_checks
    from wbc.cli import whole_number
    from wbc.data import list_split
    from wbc.decode import load_image
    from wbc.folders import find_images_root
    from wbc.predict import Predictor
    from wbc.ship import exported_folds

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cv", type=Path, help="a cross-validation run: its fold models on their held-out TRAIN files")
    ap.add_argument("--every", type=whole_number(1), default=40, help="use every k-th TRAIN file (default: 40)")
    ap.add_argument("--sides", type=whole_number(8), nargs="+", default=[32, 40, 48, 56, 64, 72, 96],
                    help="square sides to cut, px (default: 32 40 48 56 64 72 96)")
    ap.add_argument("--data", type=Path, help="data set folder (default: WBC_DATA, else ../shared/data/blood-cells)")
    args = ap.parse_args(argv)
    if max(args.sides) > 240:
        ap.error("--sides must fit in the data set's 320 x 240 photos (240 at most)")
    train = list_split(find_images_root(args.data), "TRAIN")
    wbc.photo_checks.MIN_SIDE_PX = 1  # this measures what the floor guards against
    sides: list[int | None] = [*sorted(args.sides), None]  # None: the whole photo
    right = dict.fromkeys(sides, 0)
    confident_wrong = dict.fromkeys(sides, 0)
    n, thresholds = 0, []
    with tempfile.TemporaryDirectory() as tmp:
        if args.cv:
            readers = [(Predictor(model), [s for s in train if s.cell in held][:: args.every])
                       for model, held in exported_folds(args.cv, Path(tmp), args.data)]
        else:
            readers = [(Predictor(), train[:: args.every])]
        for pred, samples in readers:
            thresholds.append(pred.review_threshold)
            images = [load_image(s.path) for s in bar(samples, show=True, desc="decode")]
            y = np.array([s.label for s in samples])
            n += len(samples)
            for side in sides:
                x = np.stack([pred.analyse(img if side is None else tight_crop(img, side))[0] for img in images])
                probs = pred.predict_probs(x)
                wrong = probs.argmax(1) != y
                right[side] += int((~wrong).sum())
                confident_wrong[side] += int((wrong & (probs.max(1) >= pred.review_threshold)).sum())
    who = f"the fold models of {args.cv} on their held-out" if args.cv else "the shipped model on (seen)"
    print(f"{who} TRAIN files, one in {args.every}: {n} files\n")
    # Fold models' cards carry no review threshold: every error would count as confident.
    marked = all(t > 0 for t in thresholds)
    print("| crop side | accuracy over files | confident and wrong |\n|---|---|---|")
    for side in sides:
        print(f"| {'whole photo' if side is None else f'{side} px'} | {100 * right[side] / n:.1f}% | "
              f"{f'{confident_wrong[side]} of {n}' if marked else 'no review threshold in the cards'} |")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
