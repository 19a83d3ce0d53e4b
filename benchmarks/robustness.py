"""Accuracy of a model on TEST under simulated shifts from other laboratories (wbc.robustness).

    python benchmarks/robustness.py [--model models/default] [--data PATH] [--every 1] [--offset 0] [--md FILE]
    python benchmarks/robustness.py --cv runs/cv/NAME [--every 3] [--offset 0] [--shifts NAME ...]
                                    [--match-white card|on|off]

With --cv, each fold model of a cross-validation run predicts (one view: the exported fold models carry
no test-time views) the TRAIN files of the cells
it was held out from, and the counts are pooled: validation, for comparing recipes without TEST.

Each shift is applied to the decoded source image before the model's own preprocessing, so the
whole pipeline (finding the cell, cropping, TTA) meets it. Prints a markdown table: accuracy over
files, cells right and macro-F1 under each shift, the drop from clean in points, and how many files
the screening flags (told "not a white blood cell" or "cannot judge", the photo at fault), with and
without its second look (the field's white matched to the data set's, wbc.screening). The issue's shifts (wbc.robustness.SHIFTS) come
first, then those beyond its range (EXTRA_SHIFTS).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gain_ceiling  # noqa: E402


def reason_heads(flagged_by: dict[str, int]) -> Counter[str]:
    """The screening's reasons counted by their heads ("no stained nucleus found"): a dark photo's hint
    names its own share of the data set's white, and a small photo its size, which would split one reason
    into many."""
    heads: Counter[str] = Counter()
    for reason, n in flagged_by.items():
        heads[re.sub(r"\d+", "N", reason.split(" (")[0].split(":")[0].split(";")[0])] += n
    return heads


def main(argv: list[str] | None = None) -> int:
    from wbc.progress import bar

    from wbc.data import list_split
    from wbc.decode import load_image
    from wbc.folders import find_images_root
    from wbc.io import atomic_write_text
    from wbc.metrics import scores_from_confusion
    from wbc.predict import Predictor
    from wbc.robustness import EXTRA_SHIFTS, SHIFTS, run_shifts

    every_shift = {**SHIFTS, **EXTRA_SHIFTS}
    from wbc.cli import whole_number

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model folder or .onnx (default: the shipped model)")
    ap.add_argument("--cv", type=Path, help="a cross-validation run: its fold models on their held-out TRAIN files")
    ap.add_argument("--data", type=Path, help="data set folder (default: WBC_DATA, else ../shared/data/blood-cells)")
    ap.add_argument("--every", type=whole_number(1), default=1, help="use every k-th file (default: all)")
    ap.add_argument("--offset", type=int, default=0,
                    help="skip this many files before taking every k-th (0 to --every - 1): with --every 3, "
                         "--offset 1 takes files --offset 0 does not")
    ap.add_argument("--shifts", nargs="+", metavar="NAME", choices=list(every_shift),
                    help="only these shifts (names as printed; clean is always run)")
    ap.add_argument("--match-white", choices=["card", "on", "off"], default="card",
                    help="match a field's white to the data set's before the network where it lies below the "
                         "data set's range (wbc.white_balance.input_gains): as the model card says (fold models: off), "
                         "or on / off")
    ap.add_argument("--md", type=Path, help="also write the table here")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    gain_ceiling.add_option(ap)
    args = ap.parse_args(argv)
    from wbc.io import check_writable_files

    check_writable_files(args.md, args.json)  # before the work, not after it
    gain_ceiling.apply(ap, args)
    if not 0 <= args.offset < args.every:
        ap.error(f"--offset must be from 0 to --every - 1 ({args.every - 1})")
    if args.cv and args.model:
        ap.error("--cv measures the fold models of a cross-validation; --model does not go with it")
    shifts = {n: every_shift[n] for n in ["clean", *(args.shifts or every_shift)] if n in every_shift}
    root = find_images_root(args.data)
    match_white = {"card": None, "on": True, "off": False}[args.match_white]
    subset = f", one in {args.every}{f' from offset {args.offset}' if args.offset else ''}" if args.every > 1 else ""
    res: dict[str, dict[str, Any]] = {}
    if args.cv:
        import tempfile

        from wbc.ship import exported_folds

        train = list_split(root, "TRAIN")
        parts, n_files, n_cells = [], 0, 0
        with tempfile.TemporaryDirectory() as tmp:
            folds = exported_folds(args.cv, Path(tmp), args.data)
            for model, held in folds:
                samples = [s for s in train if s.cell in held][args.offset:: args.every]
                if not samples:
                    raise SystemExit(f"{model.name}: none of its held-out cells' TRAIN files is in {root}")
                pred = Predictor(model, match_white=match_white)
                images = [load_image(s.path) for s in bar(samples, show=True, desc=f"decode {model.name}")]
                y = np.array([s.label for s in samples])
                cells = [s.cell for s in samples]
                parts.append((len(samples), len(set(cells)), run_shifts(
                    pred.predict_probs, images, y, cells, pred.spec, shifts, pred.analyse)))
                n_files, n_cells = n_files + len(samples), n_cells + len(set(cells))
        for name in shifts:  # pooled over folds: each fold's files and cells are its own
            cm = np.sum([r[name]["confusion"] for _, _, r in parts], axis=0)
            acc, macro = scores_from_confusion(cm[None])
            reasons: Counter[str] = Counter()
            for _, _, r in parts:
                reasons.update(r[name]["flagged_by"])
            res[name] = {
                "accuracy": float(acc[0]),
                "cell_accuracy": sum(c * r[name]["cell_accuracy"] for _, c, r in parts) / n_cells,
                "macro_f1": float(macro[0]),
                "confusion": cm.tolist(),
                "flagged_by": dict(reasons),
                **{k: sum(r[name][k] for _, _, r in parts) for k in ("flagged", "second_look", "overexposed", "white_matched")},
            }
        source = (f"{args.cv}: {len(folds)} fold models, each on the TRAIN files of the cells it was held out "
                  f"from ({n_files} files{subset}, {n_cells} cells)")
    else:
        pred = Predictor(args.model, match_white=match_white)
        samples = list_split(root, "TEST")[args.offset:: args.every]
        images = [load_image(s.path) for s in bar(samples, show=True, desc="decode")]
        y = np.array([s.label for s in samples])
        cells = [s.cell for s in samples]
        for name in bar(shifts, show=True, desc="shifts"):
            res.update(run_shifts(pred.predict_probs, images, y, cells, pred.spec, {name: shifts[name]}, pred.analyse))
        n_files, n_cells = len(samples), len(set(cells))
        shown = pred.onnx_path.resolve()
        shown = shown.relative_to(Path.cwd()) if shown.is_relative_to(Path.cwd()) else shown
        source = f"TEST, {n_files} files{subset} of {n_cells} cells, model `{shown}`"
    clean = res["clean"]["accuracy"]
    source += f"; the field's white matched for the network where it lies below the data set's: {'yes' if pred.match_white else 'no'}"
    lines = [f"{source}:", "",
             "| shift | accuracy over files | drop (points) | cells right | macro-F1 | flagged by the screening "
             "(without the second look) | marked overexposed | white matched for the network |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in res.items():
        flagged = f"{r['flagged']} ({r['flagged'] + r['second_look']})"
        lines.append(f"| {name} | {100 * r['accuracy']:.2f}% | {100 * (clean - r['accuracy']):+.2f} | "
                     f"{round(r['cell_accuracy'] * n_cells)} / {n_cells} | {r['macro_f1']:.3f} | {flagged} | "
                     f"{r['overexposed']} | {r['white_matched']} |")
    issue = [clean - r["accuracy"] for name, r in res.items() if name in SHIFTS and name != "clean"]
    beyond = [clean - r["accuracy"] for name, r in res.items() if name not in SHIFTS]
    parts_text = ([f"{100 * max(issue):.2f} points over the issue's shifts"] if issue else []) + (
        [f"{100 * max(beyond):.2f} over those beyond them"] if beyond else [])
    if parts_text:
        lines += ["", f"Largest drop from clean: {', '.join(parts_text)}."]
    reasons = {name: reason_heads(r["flagged_by"]) for name, r in res.items() if r["flagged_by"]}
    lines += ["", "Why files were flagged (not a white cell, or the photo at fault): " + "; ".join(
        f"{name}: " + ", ".join(f"{k} {v}" for k, v in by.most_common()) for name, by in reasons.items())] if reasons else []
    text = "\n".join(lines)
    print(text)
    if args.md:
        atomic_write_text(args.md, text + "\n")
    if args.json:
        atomic_write_text(args.json, json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
