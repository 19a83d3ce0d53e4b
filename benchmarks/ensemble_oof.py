"""Would an ensemble (or a student distilled from one) beat one network? Asked out of fold, no TEST.

    python benchmarks/ensemble_oof.py runs/cv/e10-fields runs/cv/e11-fields [--folds 0 1 2 3 4]
    python benchmarks/ensemble_oof.py runs/scale/h200-80ep:base runs/scale/h200-seeds:base-s1 ...

Each recipe's fold K run held out the same cells (split seed 0), so its out-of-fold view logits
(foldK/oof_logits.npz, cached by wbc.crossval.fold_logits) pair up file by file. `DIR:RECIPE` names
a recipe of a `benchmarks/scale_cv.py` results folder instead (its scale.npz holds the view logits). For each recipe alone
and for the mean of their probabilities (8 views each) it prints accuracy over files, cells right,
macro-F1 and the wrong cells that are eosinophils and neutrophils confused, then how often the
recipes agree and how many files and cells at least one of them gets right (the most any way of
combining them could reach).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scale_cv, beside it


def scale_logits(arg: Path) -> tuple[dict[int, tuple[np.ndarray, np.ndarray, list[str]]], str]:
    """Fold -> (view logits (8, N, 4), labels (N,), cells) of recipe RECIPE in DIR/scale.npz, from
    `DIR:RECIPE`, and the options its runs were made with that shrink every recipe ("" for none: all
    epochs, every cell). ValueError saying why where the file or the recipe is not there or is damaged."""
    import json
    import zipfile

    from scale_cv import stored_folds, stored_run

    folder, recipe = str(arg).rsplit(":", 1)
    try:
        with np.load(Path(folder) / "scale.npz") as z:
            out = {f: stored_run(z, recipe, f) for f in stored_folds(z, recipe)}
    except FileNotFoundError:
        raise ValueError(f"{arg}: no scale.npz in {folder}") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{arg}: {folder}/scale.npz is damaged ({type(e).__name__}: {e})") from None
    if not out:
        raise ValueError(f"{arg}: no fold of recipe {recipe} in {folder}/scale.npz")
    try:
        options = json.loads((Path(folder) / "scale.json").read_text()).get("options", {})
    except (OSError, ValueError, AttributeError):
        options = {}
    shrunk = [f"--{k.replace('_', '-')} {options[k]}" for k in ("epochs", "limit_cells") if options.get(k) is not None]
    return out, " ".join(shrunk)


def main() -> int:
    from sklearn.metrics import f1_score

    from wbc.calibration import tta_probs
    from wbc.crossval import finished_folds, fold_logits
    from wbc.metrics import pool_cells
    from wbc.train import EOS, NEUT

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cv", type=Path, nargs="+",
                    help="cross-validation folders (foldK run folders inside), or scale_cv.py's DIR:RECIPE")
    ap.add_argument("--folds", type=int, nargs="+", help="folds every recipe has (default: those all have)")
    ap.add_argument("--data", help="data set folder (default: WBC_DATA, else ../shared/data/blood-cells)")
    args = ap.parse_args()
    if len(args.cv) < 2:
        ap.error("name at least two cross-validation folders")
    if len({cv.resolve() for cv in args.cv}) < len(args.cv):
        ap.error("name each cross-validation folder once")
    # Rows are labelled by folder name, or by the path where two folders share a name.
    label = {cv: cv.name if [c.name for c in args.cv].count(cv.name) == 1 else str(cv) for cv in args.cv}
    try:
        read = {cv: scale_logits(cv) for cv in args.cv if ":" in cv.name}
    except ValueError as e:
        print(f"ensemble_oof: {e}", file=sys.stderr)
        return 2
    scale = {cv: logits for cv, (logits, _) in read.items()}
    # A quick check's runs (fewer epochs or cells) are said to be such beside their rows.
    label.update({cv: f"{label[cv]} ({shrunk})" for cv, (_, shrunk) in read.items() if shrunk})
    have = [set(scale[cv]) if cv in scale else {int(p.name[4:]) for p in finished_folds(cv)} for cv in args.cv]
    folds = sorted(args.folds or set.intersection(*have))
    # A fold missing from a scale_cv recipe is named as one of its scale.npz, with the script that adds it.
    missing = [f"fold {k} of {cv}" if cv in scale else f"{cv}/fold{k}"
               for cv, h in zip(args.cv, have) for k in folds if k not in h]
    if not folds or missing:
        empty = [str(cv) for cv, h in zip(args.cv, have) if not h]
        why = (f"no finished fold run (foldK/last.pt) in {', '.join(empty)}" if empty
               else f"no finished fold run at {', '.join(missing)}" if missing else "no fold that all of them finished")
        how = ("`python benchmarks/scale_cv.py run` adds a recipe's folds" if scale and not empty else
               "runs/ is not in the repository: `python benchmarks/cv.py --name NAME` makes runs/cv/NAME")
        print(f"ensemble_oof: {why}; {how}", file=sys.stderr)
        return 2

    probs: dict[str, list[np.ndarray]] = {label[cv]: [] for cv in args.cv}
    ys: list[np.ndarray] = []
    cells: list[str] = []
    for k in folds:
        first: tuple[np.ndarray, list[str]] | None = None
        for cv in args.cv:
            lg, y, c = scale[cv][k] if cv in scale else fold_logits(cv / f"fold{k}", args.data)
            if first is None:
                first = (y, c)
                ys.append(y)
                cells += c
            elif not (np.array_equal(y, first[0]) and c == first[1]):
                print(f"ensemble_oof: {cv}/fold{k} held out other files than {args.cv[0]}/fold{k}", file=sys.stderr)
                return 2
            probs[label[cv]].append(tta_probs(lg))
    y = np.concatenate(ys)
    rows = {name: np.concatenate(p) for name, p in probs.items()}
    rows["mean of all"] = np.mean(list(rows.values()), axis=0)

    # Each row's decision per cell on its pooled views (C,), and the cells' labels (C,): pooled once.
    cell_pred = {name: pool_cells(p, y, cells)[0].argmax(1) for name, p in rows.items()}
    cy = pool_cells(rows["mean of all"], y, cells)[1]

    print(f"{len(y)} out-of-fold files of {len(set(cells))} cells, folds {', '.join(map(str, folds))}\n")
    print("| recipe | accuracy over files | cells right | macro-F1 | wrong cells eos→neut / neut→eos |")
    print("|---|---|---|---|---|")
    for name, p in rows.items():
        pred = cell_pred[name]
        pairs = f"{((cy == EOS) & (pred == NEUT)).sum()} / {((cy == NEUT) & (pred == EOS)).sum()}"
        print(f"| {name} | {(p.argmax(1) == y).mean():.2%} | {(pred == cy).sum()} / {len(cy)} | "
              f"{f1_score(y, p.argmax(1), average='macro'):.3f} | {pairs} |")
    singles = [rows[label[cv]] for cv in args.cv]
    decisions = np.stack([p.argmax(1) for p in singles])  # (recipes, files)
    agree = (decisions == decisions[0]).all(0).mean()
    any_file = (decisions == y).any(0).mean()
    any_cell = np.stack([cell_pred[label[cv]] == cy for cv in args.cv]).any(0).sum()
    print(f"\nAll recipes decide alike on {agree:.2%} of files. At least one is right on {any_file:.2%} of files "
          f"and {any_cell} cells.")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
