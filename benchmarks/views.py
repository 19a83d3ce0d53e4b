"""How many test-time views does a prediction need? Asked out of fold, no TEST, no training.

    python benchmarks/views.py runs/cv/e21-avx2 runs/cv/e30-sgd [--folds 0 1 2] [--json out.json]

Every fold run caches its held-out files' logits under all 8 dihedral views (foldK/oof_logits.npz,
view v at index v as `wbc.imaging.dihedral_views` orders them). For each recipe and each view set of
VIEW_SETS this scores the mean of those views' softmax as
`benchmarks/cv.py` scores 8: accuracy over files and cells right at the pooled temperature, the NLL
there, the ECE shown (each fold calibrated on the others), the pooled temperature and the review
threshold. Then it sums and averages over the recipes, and prints each set's difference from all 8.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from wbc.io import atomic_write_text

# View sets as indices into `dihedral_views`' order (rotation k at k, its mirror at 4 + k).
VIEW_SETS: dict[str, tuple[int, ...]] = {
    "dihedral": tuple(range(8)),
    "rotations": (0, 1, 2, 3),  # 0, 90, 180, 270 degrees: what the shipped card averages (TEST_TIME_VIEWS)
    "klein": (0, 2, 4, 6),  # as given, 180 degrees, and both mirrored
    "one": (0,),
}


def score(fold_lg: list[np.ndarray], fold_y: list[np.ndarray], cells: list[str]) -> dict[str, float | int]:
    """One recipe's figures for view logits (V, N_k, 4) per fold, pooled over the folds."""
    from wbc.calibration import (REVIEW_COVERAGE, fit_temperature, fit_temperature_calibrator, left_out, nll,
                                 review_threshold, tta_probs)
    from wbc.metrics import expected_calibration_error, pool_cells

    lg, y = np.concatenate(fold_lg, axis=1), np.concatenate(fold_y)
    t = fit_temperature(lg, y)
    probs = tta_probs(lg, t)
    cell_p, cell_y, _ = pool_cells(probs, y, cells)
    shown = left_out(fold_lg, fold_y, fit_temperature_calibrator)
    return {"accuracy": float((probs.argmax(1) == y).mean()), "cells_right": int((cell_p.argmax(1) == cell_y).sum()),
            "cells": len(cell_y), "nll": nll(probs, y), "shown_ece": expected_calibration_error(shown, y),
            "temperature": t, "review_threshold": review_threshold(probs, REVIEW_COVERAGE)}


def table(results: dict[str, dict[str, dict[str, float | int]]], sets: list[str]) -> str:
    """Markdown: a row per recipe and view set, then the sums and means over recipes with their
    differences from all 8 views."""
    lines = ["| recipe | views | accuracy over files | cells right | NLL | shown ECE | pooled T | review threshold |",
             "|---|---|---|---|---|---|---|---|"]
    for name, by_set in results.items():
        for s in sets:
            r = by_set[s]
            lines.append(f"| {name} | {s} | {100 * r['accuracy']:.2f}% | {r['cells_right']} of {r['cells']} | "
                         f"{r['nll']:.4f} | {r['shown_ece']:.4f} | {r['temperature']:.3f} | {r['review_threshold']:.3f} |")
    lines += ["", "| views | mean accuracy over files | cells right (sum) | mean NLL | mean shown ECE | "
              "difference from 8 views: accuracy, cells, NLL, shown ECE |", "|---|---|---|---|---|---|"]
    agg = aggregate(results, sets)
    for s in sets:
        a, d = agg[s], agg[s]["vs_dihedral"]
        lines.append(f"| {s} | {100 * a['accuracy']:.2f}% | {a['cells_right']} of {a['cells']} | {a['nll']:.4f} | "
                     f"{a['shown_ece']:.4f} | {100 * d['accuracy']:+.2f} pts, {d['cells_right']:+d}, "
                     f"{d['nll']:+.4f}, {d['shown_ece']:+.4f} |")
    return "\n".join(lines)


def aggregate(results: dict[str, dict[str, dict[str, float | int]]], sets: list[str]) -> dict[str, dict[str, Any]]:
    """Per view set: cells summed, the rest averaged over recipes, and the difference from "dihedral"."""
    out: dict[str, dict[str, Any]] = {}
    for s in sets:
        rows = [by_set[s] for by_set in results.values()]
        out[s] = {"cells_right": sum(r["cells_right"] for r in rows), "cells": sum(r["cells"] for r in rows)}
        for k in ("accuracy", "nll", "shown_ece"):
            out[s][k] = float(np.mean([r[k] for r in rows]))
    for s in sets:
        out[s]["vs_dihedral"] = {k: out[s][k] - out["dihedral"][k] for k in ("accuracy", "cells_right", "nll", "shown_ece")}
    return out


def main() -> int:
    from wbc.cli import whole_number
    from wbc.crossval import finished_folds, fold_logits

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cv", type=Path, nargs="+", help="cross-validation folders (foldK run folders inside)")
    ap.add_argument("--folds", type=whole_number(0), nargs="+", default=[0, 1, 2], help="folds every recipe has (default 0 1 2)")
    ap.add_argument("--data", help="data set folder (default: WBC_DATA, else ../shared/data/blood-cells)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    from wbc.io import check_writable_files

    check_writable_files(args.json)  # before the work, not after it

    results: dict[str, dict[str, dict[str, float | int]]] = {}
    for cv in args.cv:
        have = {int(p.name[4:]) for p in finished_folds(cv)}
        if not set(args.folds) <= have:
            print(f"views: {cv} lacks finished fold runs {sorted(set(args.folds) - have)}; skipped", file=sys.stderr)
            continue
        folds = [fold_logits(cv / f"fold{k}", args.data) for k in args.folds]
        cells = [c for _, _, cs in folds for c in cs]
        results[cv.name] = {name: score([lg[list(idx)] for lg, _, _ in folds], [y for _, y, _ in folds], cells)
                            for name, idx in VIEW_SETS.items()}
    if not results:
        print("views: no cross-validation with the folds asked for", file=sys.stderr)
        return 2
    print(table(results, list(VIEW_SETS)))
    if args.json:
        atomic_write_text(args.json, json.dumps({"folds": args.folds, "recipes": results,
                                                 "summary": aggregate(results, list(VIEW_SETS))}, indent=1))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
