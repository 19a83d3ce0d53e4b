"""Warm and other colour casts, matched by the screening's white gains up to a spread of 1.5 or further:
what a warm cast's wider bound (`wbc.white_balance.WARM_SPREAD_MAX`) gains, and what the other casts keep.

    python benchmarks/warm_cast.py [--data PATH] [--split TRAIN] [--every 25] [--warm-spread 1.5 2.0]

Every k-th file of the split, as given and under each cast (channel gains R, G, B, clipped), through the
shipped model's whole path (`Predictor.analyse`: the screening, the white matching, the card's views);
for each bound on a warm cast's spread, in turn: how many files are typed, how many of those right, and
the verdicts. TRAIN: the model was trained on it, so a cast's accuracy there says how well the matching
gives the network back the colours it knows, against the same files as given; the selection rule looks
at nothing else.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

CASTS = [(1.0, 1.0, 1.0), (1.15, 1.0, 0.75), (1.2, 0.95, 0.65), (1.25, 0.95, 0.6), (1.3, 0.9, 0.5),
         (0.85, 1.0, 1.2), (0.75, 0.95, 1.3), (1.0, 1.2, 1.0), (1.1, 0.85, 1.1)]
TYPED = ("confident", "needs review")


def main(argv: list[str] | None = None) -> None:
    from wbc import white_balance
    from wbc.cli import whole_number
    from wbc.data import list_split
    from wbc.decode import load_image
    from wbc.folders import find_images_root
    from wbc.imaging import scale_channels
    from wbc.info import CLASSES, SPLITS
    from wbc.predict import Predictor

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="data set folder (default: WBC_DATA, else ../shared/data/blood-cells)")
    ap.add_argument("--split", default="TRAIN", choices=SPLITS)
    ap.add_argument("--every", type=whole_number(1), default=25)
    ap.add_argument("--warm-spread", type=float, nargs="+",
                    default=[white_balance.GAIN_SPREAD_MAX, white_balance.WARM_SPREAD_MAX])
    args = ap.parse_args(argv)
    if bad := [v for v in args.warm_spread if not v > 1]:  # a spread is a ratio of gains: 1 means no cast at all
        ap.error(f"--warm-spread {bad[0]}: choose bounds above 1")
    samples = list_split(find_images_root(args.data), args.split)[:: args.every]
    images = [load_image(s.path) for s in samples]
    pred = Predictor()
    print(f"{args.split}, every {args.every}th file ({len(samples)}); model {pred.onnx_path}")
    print("| warm spread bound | cast (R, G, B) | typed | right of those | verdicts |\n|---|---|---|---|---|")
    kept = white_balance.WARM_SPREAD_MAX
    try:
        for bound in args.warm_spread:
            white_balance.WARM_SPREAD_MAX = bound
            for gains in CASTS:
                res = [pred.analyse(scale_channels(rgb, gains)) for rgb in images]
                probs = pred.predict_probs(np.stack([x for x, _ in res]))
                preds = [pred.verdicts(s.path.name, p, sc) for s, p, (_, sc) in zip(samples, probs, res)]
                typed = [(p, s) for p, s in zip(preds, samples) if p.verdict in TYPED]
                right = sum(p.label == CLASSES[s.label] for p, s in typed)
                verdicts = ", ".join(f"{k} {v}" for k, v in Counter(p.verdict for p in preds).most_common())
                share = f"{100 * right / len(typed):.1f}%" if typed else "-"
                print(f"| {bound:g} | {gains} | {len(typed)} / {len(samples)} | {right} ({share}) | {verdicts} |", flush=True)
    finally:
        white_balance.WARM_SPREAD_MAX = kept


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
