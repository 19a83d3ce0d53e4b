"""How much of a photo may be clipped white before the network reads it worse? Asked out of fold, no TEST.

    python benchmarks/overexposure.py --cv runs/cv/e21-avx2 [--every 3] [--gains 1.0 1.2 1.4] [--json out.json]

Each fold model of the cross-validation (with the shipped card's test-time views) predicts the TRAIN
files of the cells it was held out from, each brightened by every gain and clipped as a camera clips
(`wbc.robustness.brightness`). Every file's clipped share (`wbc.white_balance.clipped_share`, the share of
its lit pixels white in every channel) and whether the prediction is right are pooled over the folds.
Prints accuracy per gain, with the share of files the current mark (OVEREXPOSED_SHARE) marks and the
accuracy of those marked and of the rest, and accuracy per bin of clipped share (0-0.1, ..., 0.9-1) against the clean files: where the mark belongs.

With --undo-gain, each marked file is also read after dividing it by a gain estimated from its clipped
share: the gain at which the data set's fields (the median over every 25th TRAIN file of each one's
quantiles of the darkest channel over its lit pixels) would clip that share. Does undoing the
brightness, short of the clipped highlights, bring the network back?
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

GAINS = (1.0, 1.1, 1.15, 1.2, 1.25, 1.3, 1.35, 1.4, 1.5)
BIN = 0.1  # width of the clipped-share bins


def bins(clipped: np.ndarray, right: np.ndarray, clean: float, width: float = 0.1) -> list[dict[str, Any]]:
    """Files (clipped share (N,), right (N,) bool) in bins of clipped share [k * width, (k + 1) * width);
    the last bin takes 1.0 too. Each: its lower edge, files, accuracy and drop from `clean` in points."""
    n = round(1 / width)
    # Rounded first so that a share of exactly 0.3 lands in 0.3-0.4, not (0.3 / 0.1 = 2.999...) below it.
    k = np.minimum(np.floor(np.round(clipped / width, 9)).astype(int), n - 1)
    out: list[dict[str, Any]] = []
    for b in range(n):
        m = k == b
        acc = float(right[m].mean()) if m.any() else None
        out.append({"from": round(b * width, 3), "files": int(m.sum()), "accuracy": acc,
                    "drop": None if acc is None else 100 * (clean - acc)})
    return out


QUANTILES = np.linspace(0, 1, 1001)


def darkest_channel_quantiles(rgb: np.ndarray) -> np.ndarray:
    """QUANTILES of the darkest channel over the lit pixels of `rgb` (H, W, 3): the value a pixel must
    reach to count as clipped (`white_balance.clipped_share`) is in these units."""
    from wbc.pixels import darkest_channel, lit_mask

    return np.quantile(darkest_channel(rgb)[lit_mask(rgb)], QUANTILES)


def undo_gain(rgb: np.ndarray, clipped: float, typical: np.ndarray) -> tuple[np.ndarray, float]:
    """`rgb` divided by the gain that would clip a `clipped` share of a field whose darkest-channel
    quantiles are `typical`, and that gain."""
    from wbc.white_balance import WHITE_LEVEL

    gain = WHITE_LEVEL / float(np.interp(1 - clipped, QUANTILES, typical))
    return np.clip(np.round(rgb.astype(np.float32) / gain), 0, 255).astype(np.uint8), gain


def mean_or_none(a: np.ndarray) -> float | None:
    return float(a.mean()) if len(a) else None


def pct(a: float | None) -> str:
    return "—" if a is None else f"{100 * a:.2f}%"


def main(argv: list[str] | None = None) -> int:
    from wbc.progress import bar

    from wbc.cli import whole_number
    from wbc.data import list_split
    from wbc.decode import load_image
    from wbc.folders import find_images_root
    from wbc.imaging import TEST_TIME_VIEWS
    from wbc.io import atomic_write_text
    from wbc.predict import Predictor
    from wbc.robustness import brightness
    from wbc.ship import exported_folds
    from wbc.white_balance import OVEREXPOSED_SHARE

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cv", type=Path, required=True, help="a cross-validation run (foldK run folders inside)")
    ap.add_argument("--data", type=Path, help="data set folder (default: WBC_DATA, else ../shared/data/blood-cells)")
    ap.add_argument("--every", type=whole_number(1), default=3, help="use every k-th held-out file (default 3)")
    ap.add_argument("--gains", type=float, nargs="+", default=list(GAINS),
                    help="brightness gains, 1.0 (clean) first (default: 1.0 to 1.5)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--undo-gain", action="store_true",
                    help="also read each marked file with its gain, estimated from its clipped share, divided out")
    args = ap.parse_args(argv)
    from wbc.io import check_writable_files

    check_writable_files(args.json)  # before the work, not after it
    if args.gains[0] != 1.0 or any(g < 1 for g in args.gains) or len(set(args.gains)) < len(args.gains):
        ap.error("--gains starts with 1.0 (the clean files the drops are measured from); none below 1, none twice")

    train = list_split(find_images_root(args.data), "TRAIN")
    clipped: dict[float, list[float]] = {g: [] for g in args.gains}
    right: dict[float, list[bool]] = {g: [] for g in args.gains}
    undone: dict[float, list[bool]] = {g: [] for g in args.gains}  # right after the gain was divided out
    estimated: dict[float, list[float]] = {g: [] for g in args.gains}  # that gain, for the marked files
    typical = (np.median(np.stack([darkest_channel_quantiles(load_image(s.path))
                                   for s in bar(train[::25], show=True, desc="typical field")]), 0) if args.undo_gain else None)
    with tempfile.TemporaryDirectory() as tmp:
        for model, held in exported_folds(args.cv, Path(tmp), args.data):
            pred = Predictor(model, tta_views=TEST_TIME_VIEWS)  # fold exports carry no views; measure what the card does
            samples = [s for s in train if s.cell in held][:: args.every]
            if not samples:
                raise SystemExit(f"overexposure: {model.name}: none of its held-out cells' TRAIN files is in the data set")
            images = [load_image(s.path) for s in bar(samples, show=True, desc=f"decode {model.name}")]
            y = np.array([s.label for s in samples])
            for g in bar(args.gains, show=True, desc=f"gains {model.name}"):
                bright = [brightness(g)(img) for img in images]
                crops, screenings = zip(*(pred.analyse(img) for img in bright))
                ok = pred.predict_probs(np.stack(crops)).argmax(1) == y
                clipped[g] += [s.clipped for s in screenings]
                right[g] += ok.tolist()
                if typical is not None:
                    fixed = [undo_gain(img, s.clipped, typical) if s.clipped >= OVEREXPOSED_SHARE else (img, 1.0)
                             for img, s in zip(bright, screenings)]
                    crops = [pred.analyse(img)[0] for img, _ in fixed]
                    undone[g] += (pred.predict_probs(np.stack(crops)).argmax(1) == y).tolist()
                    estimated[g] += [gain for (_, gain), s in zip(fixed, screenings) if s.clipped >= OVEREXPOSED_SHARE]
    c = {g: np.array(v) for g, v in clipped.items()}
    r = {g: np.array(v) for g, v in right.items()}
    clean = float(r[1.0].mean())
    per_gain = {str(g): {"files": len(r[g]), "accuracy": float(r[g].mean()), "drop": 100 * (clean - float(r[g].mean())),
                         "median_clipped": float(np.median(c[g])), "marked_now": float((c[g] >= OVEREXPOSED_SHARE).mean()),
                         "accuracy_marked": mean_or_none(r[g][c[g] >= OVEREXPOSED_SHARE]),
                         "accuracy_unmarked": mean_or_none(r[g][c[g] < OVEREXPOSED_SHARE])}
                for g in args.gains}
    per_bin = bins(np.concatenate(list(c.values())), np.concatenate(list(r.values())), clean, BIN)

    lines = [f"{args.cv}: fold models with {TEST_TIME_VIEWS} views, one in {args.every} held-out TRAIN files "
             f"({len(r[1.0])} files), brightened and clipped", "",
             f"| gain | accuracy | drop (points) | median clipped share | marked at {OVEREXPOSED_SHARE} | "
             "accuracy of those marked / not marked |", "|---|---|---|---|---|---|"]

    lines += [f"| x{g} | {100 * v['accuracy']:.2f}% | {v['drop']:+.2f} | {v['median_clipped']:.3f} | "
              f"{100 * v['marked_now']:.1f}% | {pct(v['accuracy_marked'])} / {pct(v['accuracy_unmarked'])} |"
              for g, v in per_gain.items()]
    lines += ["", "| clipped share | files (all gains) | accuracy | drop from clean (points) |", "|---|---|---|---|"]
    lines += [f"| {b['from']:.1f}-{b['from'] + BIN:.1f} | {b['files']} | "
              + (f"{100 * b['accuracy']:.2f}% | {b['drop']:+.2f} |" if b["files"] else "— | — |") for b in per_bin]
    if typical is not None:
        lines += ["", f"The marked files (clipped share >= {OVEREXPOSED_SHARE}) with the gain estimated from their clipped "
                  "share divided out (--undo-gain); the unmarked files as they are:", "",
                  "| gain | accuracy as brightened | with the gain undone | marked files | estimated gain: median (quartiles) |",
                  "|---|---|---|---|---|"]
        for g in args.gains:
            e = np.array(estimated[g])
            gains_read = f"{np.median(e):.3f} ({np.percentile(e, 25):.3f}-{np.percentile(e, 75):.3f})" if len(e) else "—"
            lines.append(f"| x{g} | {100 * r[g].mean():.2f}% | {100 * np.mean(undone[g]):.2f}% | {len(e)} | {gains_read} |")
        per_gain = {g: {**v, "accuracy_gain_undone": float(np.mean(undone[float(g)]))} for g, v in per_gain.items()}
    print("\n".join(lines))
    if args.json:
        atomic_write_text(args.json, json.dumps({"clean_accuracy": clean, "gains": per_gain, "bins": per_bin}, indent=1))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
