"""Where a model's errors are: per true class, how many cells have wrong views and how many of them.

    python benchmarks/cell_errors.py models/default/predictions.csv

Reads the predictions.csv that `wbc evaluate` (or `wbc export --evaluate`) writes, whose file column
is CLASS/<file name>; cells are keyed by the folder the metrics.json beside it names (TEST unless it
names another, or `--split` says so), and prints one row per true class: cells (original fields, see
`wbc.sources`), cells with at least one wrong view, the range of the share of views wrong among those, and where the wrong views go.
Then the accuracy over files without the fields that TRAIN and TEST both show (photographed twice).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

from wbc.data import cell_key
from wbc.evaluate import cells_also_in_train
from wbc.info import SPLITS
from wbc.io import unquoted


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("predictions", type=Path, help="an evaluation's predictions.csv, or the folder `wbc evaluate` wrote it in")
    ap.add_argument("--split", choices=SPLITS,
                    help="the data set split the predictions are of (default: the folder the metrics.json beside "
                         "them names, else TEST)")
    args = ap.parse_args()
    if args.predictions.is_dir():  # the evaluation's folder (models/default): it said "Is a directory"
        args.predictions = args.predictions / "predictions.csv"
    # Cells are keyed as `wbc evaluate` keyed them: by the name of the folder it read (a split, or --folder's).
    try:
        data = json.loads((args.predictions.parent / "metrics.json").read_text())["data"]
        evaluated = Path(str(data)).name
    except (OSError, ValueError, KeyError, TypeError):
        evaluated = None
    if args.split and evaluated and args.split != evaluated:
        ap.error(f"--split {args.split}: the metrics.json beside {args.predictions} says they are of {data}")
    args.split = args.split or evaluated or "TEST"
    views: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    marked: Counter[tuple[str, str]] = Counter()  # a cell's wrong views that the card marked for review
    try:
        with args.predictions.open() as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        ap.error(f"{args.predictions}: {e.strerror or e}")
    except (UnicodeDecodeError, csv.Error) as e:
        ap.error(f"{args.predictions}: not a CSV file ({e})")
    if not rows or not {"file", "class"} <= rows[0].keys():
        ap.error(f"{args.predictions}: not a predictions.csv of `wbc evaluate` (no file and class columns)")
    for row in rows:
        # CLASS/<path under the class folder>: the true class is the column `wbc evaluate` writes since
        # 0.11, else the class folder in any case; the path groups a user's files as evaluate does (alike
        # names in two subfolders: two cells).
        cls_folder, *under = Path(unquoted(row["file"])).parts or ("",)
        true = row.get("true_class") or cls_folder.upper()
        key = (true, cell_key(true, "/".join(under) or cls_folder, args.split))
        read = network_reading(row)
        views[key][read] += 1
        if read != true and (row.get("needs_review") == "yes" or given_no_type(row)):
            marked[key] += 1
    print("| true class | cells | cells with wrong views | share of views wrong there | wrong views go to | "
          "wrong views marked *needs review* or given no type |")
    print("|---|---|---|---|---|---|")
    for cls in sorted({t for t, _ in views}):
        cells = {c: v for (t, c), v in views.items() if t == cls}
        wrong = {c: 1 - v[cls] / sum(v.values()) for c, v in cells.items() if v[cls] < sum(v.values())}
        to = Counter()
        for v in cells.values():
            to.update({k: n for k, n in v.items() if k != cls})
        share = f"{100 * min(wrong.values()):.0f}-{100 * max(wrong.values()):.0f}%" if wrong else "—"
        # Per cell with wrong views: marked / wrong (a card's CSV has needs_review; a checkpoint's reads "no").
        per_cell = [f"{marked[(cls, c)]}/{sum(cells[c].values()) - cells[c][cls]}" for c in sorted(wrong)]
        flagged = (f"{sum(marked[(cls, c)] for c in cells)} of {sum(to.values())}"
                   + (f" (by cell: {', '.join(per_cell)})" if per_cell else "")) if "needs_review" in rows[0] else "—"
        print(f"| {cls} | {len(cells)} | {len(wrong)} | {share} | "
              f"{', '.join(f'{k} {n}' for k, n in to.most_common()) or '—'} | {flagged} |")
    # Cells "CLASS/BloodImage_NNNNN" that TRAIN and TEST both show (TEST_SIMPLE repeats TEST's own).
    in_both = set(cells_also_in_train([cell for _, cell in views]))
    shared = {key for key in views if key[1] in in_both}
    rest = {key: v for key, v in views.items() if key not in shared}
    n = sum(sum(v.values()) for v in rest.values())
    right = sum(v[t] for (t, _), v in rest.items())
    print(f"\nWithout the {len(shared)} fields that TRAIN and TEST both show "
          f"({sum(sum(views[k].values()) for k in shared)} files): {100 * right / max(n, 1):.2f}% of {n} files right")
    return 0


def given_no_type(row: dict[str, str]) -> bool:
    """Whether the screening gave a row's file no type (a folder's evaluation, since 0.27): a user is told not to
    take its reading, as for one marked *needs review*, whose column it leaves blank."""
    return bool(row.get("verdict")) and not row["class"]


def network_reading(row: dict[str, str]) -> str:
    """The class the network read a row's file as: its class column, or, where the screening left that blank (a
    folder's evaluation, since 0.27: a photo given no type), the largest of its p_ columns, as the figures score it."""
    probs = {k.removeprefix("p_").upper(): v for k, v in row.items() if k.startswith("p_") and v}
    return row["class"] or (max(probs, key=lambda c: float(probs[c])) if probs else "")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
