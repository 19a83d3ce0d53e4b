"""A phone's full-resolution photo: how far must a field be shrunk? TRAIN files enlarged, read by `wbc predict`.

    python benchmarks/phone_resolution.py [--data PATH] [--files 40] [--size 4000 3000] [--most 8 16]

A phone held to the eyepiece takes 4000 x 3000 px: the data set's 320 x 240 field about 12.5x larger.
The tool shrinks a magnified field in steps of sqrt 2 until its nucleus reads like the data set's
(`wbc.imaging.REDUCTIONS`). Here `--files` TRAIN files, one every len/N, are enlarged to `--size`
(bicubic, JPEG quality 92, in a temporary folder) and read by the shipped model with the shrinking
stopped at each `--most`: how many are typed, and how many of those right. The shipped model trained
on these files, so "right" says the shrunk field lands where the network reads it, not how well it
reads new cells.

The rule, written before the figures were seen (27th session): the steps above 8x (8 sqrt 2, 16) are
added if they type more of these files and leave the share of typed files right no lower.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

from PIL import Image


def main(argv: list[str] | None = None) -> int:
    import wbc.imaging as imaging
    import wbc.photo_checks as photo_checks
    from wbc.cli import whole_number
    from wbc.data import list_split
    from wbc.folders import find_images_root
    from wbc.info import CLASSES
    from wbc.predict import Predictor

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="data set folder (default: WBC_DATA, else ../shared/data/blood-cells)")
    ap.add_argument("--files", type=whole_number(1), default=40, help="TRAIN files to enlarge (default: 40)")
    ap.add_argument("--size", type=whole_number(1), nargs=2, default=(4000, 3000), metavar=("W", "H"),
                    help="px they are enlarged to (default: 4000 3000)")
    ap.add_argument("--most", type=float, nargs="+", default=(8.0, 16.0),
                    help="largest shrink factors to compare, of the tool's own steps (wbc.imaging.REDUCTIONS, "
                         f"{imaging.REDUCTIONS[0]:.3g} to {imaging.REDUCTIONS[-1]:g}; default: 8 16)")
    args = ap.parse_args(argv)
    # Below the first step no shrinking is left to compare (an IndexError traceback); NaN too
    if bad := [m for m in args.most if not imaging.REDUCTIONS[0] - 1e-9 <= m < float("inf")]:
        ap.error(f"--most {' '.join(f'{m:g}' for m in bad)}: choose {imaging.REDUCTIONS[0]:.3g} (the first of the tool's "
                 "steps) or more")

    samples = list_split(find_images_root(args.data), "TRAIN")
    samples = samples[min(5, len(samples) - 1) :: max(1, len(samples) // args.files)][: args.files]
    pred = Predictor()
    kept = imaging.REDUCTIONS
    try:
        with tempfile.TemporaryDirectory() as tmp:
            paths, truth = [], []
            for i, s in enumerate(samples):
                p = Path(tmp) / f"{i:03d}.jpeg"
                Image.open(s.path).convert("RGB").resize(tuple(args.size), Image.BICUBIC).save(p, quality=92)
                paths.append(p)
                truth.append(CLASSES[s.label])
            for most in args.most:
                imaging.REDUCTIONS = photo_checks.REDUCTIONS = tuple(f for f in kept if f <= most + 1e-9)
                ps = pred.predict_files(paths)
                typed = [(p, t) for p, t in zip(ps, truth) if p.typed]
                right = sum(p.label == t for p, t in typed)
                print(f"shrunk {most:g}x at most: {len(typed)} of {len(ps)} typed, {right} of them right; shrunk by "
                      + ", ".join(f"{f:.3g}x {n}" for f, n in sorted(Counter(p.reduced_by for p in ps).items()))
                      + "; verdicts " + ", ".join(f"{v} {n}" for v, n in Counter(p.verdict.split(":")[0] for p in ps).items()))
    finally:
        imaging.REDUCTIONS = photo_checks.REDUCTIONS = kept
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
