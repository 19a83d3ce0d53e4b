"""Cell-grouped cross-validation of a training recipe over all of TRAIN (no TEST).

    python benchmarks/cv.py --render runs/cv/*/cv.json
    python benchmarks/cv.py --name e10 [--use 0=runs/e10-light-80] [--epochs N] [--augment A]
                            [--mixup ALPHA] [--label-smoothing EPS] [--pair-smoothing EPS] [--optimizer O] [--lr LR] [--batch-size B] [--ema DECAY] [--low-res PX EPOCHS] [--low-res-antialias] [--window PX] [--input-size PX] [--widths C ...] [--seed 0] [--folds K ...] [--limit-cells N] [--work runs/cv] [--json out.json] [--dry-run]

TRAIN's 261 cells (original fields, `wbc.sources`) are dealt into 5 class-stratified folds (`wbc train --fold K`; fold 0 is the
split every single run uses). The recipe is trained once per fold, each model holding out one
fold and starting from its own initial-weight seed (seed + K) (`wbc.crossval`; resumable: finished fold runs are reused, an interrupted one continues; `--use K=RUN` takes
an existing finished run as fold K after checking that its recipe is the same). Every TRAIN file
is then predicted (8 views) by the one model that never saw its cell, and the pooled out-of-fold
predictions are scored like TEST: accuracy over files and cells with 95% intervals over cells,
per-class precision/recall, macro-F1, ECE. That rests on 261 cells (15 monocytes) instead of one
fold's 51-54 (2-4 monocytes), and it also gives one temperature and review threshold fitted on all of
them: `wbc export RUN --calibration WORK/NAME/cv.json` gives them to a run of the same recipe
trained on every cell (`wbc train --all-cells`), which has no validation cells of its own.
`--folds 0 1 2` runs and pools only those folds (written to cv-folds012.json): a cheaper comparison
of recipes on the same folds, which calibrates nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from wbc.io import atomic_write_text

def shown(r: dict[str, Any]) -> str:
    """`crossval.shown_ece` as the table prints it: "—" before that check, "(map)" where one is adopted."""
    from wbc.crossval import shown_ece

    e = shown_ece(r)
    return "—" if e is None else f"{e:.3f}" + (" (map)" if r.get("confidence_map") else "")


def markdown(results: dict[str, dict[str, Any]]) -> str:
    """One row per recipe: the pooled out-of-fold figures (calibrated with the pooled temperature, and, last, with
    each fold's left out), and the folds run, as "1 of 5 (0)" ("0 of 5" read as none of them)."""
    from wbc.metrics import per_class_figure

    lines = [
        "| recipe | folds | files / cells | accuracy over files [95% CI] | cells right | macro-F1 [95% CI] | "
        "mono recall | neut precision | NLL | ECE raw / T / shown (left out) | pooled T | accuracy per fold | "
        "accuracy / cells, T left out |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        m, folds = r["calibrated"], r["folds"]
        pc = m["per_class"]
        lines.append(
            f"| {name} | {len(folds)} of {r.get('folds_total', len(folds))} ({', '.join(folds)}) | {m['n_files']} / {m['n_cells']} | {100 * m['accuracy']:.2f}% "
            f"[{100 * m['accuracy_ci95'][0]:.1f}, {100 * m['accuracy_ci95'][1]:.1f}] | {m['cells_correct']} | "
            f"{m['macro_f1']:.3f} [{m['macro_f1_ci95'][0]:.3f}, {m['macro_f1_ci95'][1]:.3f}] | "
            f"{per_class_figure(pc['MONOCYTE']['recall'], 3)} | {per_class_figure(pc['NEUTROPHIL']['precision'], 3)} | "
            f"{m['nll']:.3f} | "
            f"{r['raw']['ece']:.3f} / {m['ece']:.3f} / {shown(r)} | {r['temperature']:.2f} | "
            + " · ".join(f"{100 * f['accuracy']:.2f}%" for f in folds.values()) + f" | {_left_out(r)} |")
    return "\n".join(lines)


def _left_out(r: dict[str, Any]) -> str:
    """The accuracy and cells right with each fold decided at the temperature of the others (a pooled temperature is
    fitted on the files it scores, and can move a decision): "—" for one fold, or a result from before wbc 0.25."""
    m = r.get("left_out")
    return f"{100 * m['accuracy']:.2f}% / {m['cells_correct']}" if m else "—"


def read_result(path: Path) -> dict[str, Any]:
    """A cv.json written by this script; ConfigError naming the file where it is not one."""
    from wbc.errors import ConfigError

    if path.is_dir():
        raise ConfigError(f"{path}: a folder; name its cv.json (or a cv-foldsK.json of a partial run)")
    try:
        r = json.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read ({e.strerror or e}); cv.py writes WORK/NAME/cv.json, and runs/ "
                          "is not in the repository: make it with `python benchmarks/cv.py --name NAME` first") from None
    except ValueError as e:
        raise ConfigError(f"{path}: not JSON ({e})") from None
    if not isinstance(r, dict) or not {"calibrated", "raw", "folds", "temperature"} <= set(r):
        raise ConfigError(f"{path}: not a cv.py result (no pooled out-of-fold figures in it)")
    return r


def main() -> int:
    from wbc.errors import WbcError
    from wbc.folders import kept_data_folder
    from wbc.recipe import AUGMENT, OPTIMIZERS, preset, with_epochs

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", help="recipe name: fold runs go to WORK/NAME/foldK")
    ap.add_argument("--render", type=Path, nargs="+", metavar="CV_JSON",
                    help="only print the table of earlier results (one row each, named by their folder)")
    ap.add_argument("--work", type=Path, default=Path("runs/cv"))
    ap.add_argument("--use", action="append", default=[], metavar="K=RUN",
                    help="an existing finished run with the same recipe as fold K (e.g. 0=runs/wbcnet-seed0)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the folds; fold K's run has initial-weight seed SEED+K (default: 0)")
    recipe = preset("wbcnet")
    ap.add_argument("--epochs", type=int, help=f"default: {recipe.epochs}, the recipe's")
    ap.add_argument("--patience", type=int, help="epochs without improvement before a fold stops (to calibrate an "
                    "--all-cells run every fold must run all its epochs: give --patience >= --epochs; default: "
                    f"{recipe.patience}, the recipe's)")
    ap.add_argument("--augment", choices=[*AUGMENT, "none"], help=f"default: {recipe.augment}, the recipe's")
    ap.add_argument("--mixup", type=float, metavar="ALPHA", help="mixup alpha (default: 0.4, the recipe's; 0 is off)")
    ap.add_argument("--label-smoothing", type=float, metavar="EPS", help="label smoothing (default: 0.2, the recipe's)")
    ap.add_argument("--pair-smoothing", type=float, metavar="EPS",
                    help="share of an eosinophil's target moved to neutrophil and back, on top of label smoothing; "
                         "below (1 - label smoothing) / 2 (default: 0)")
    ap.add_argument("--weight-decay", type=float, metavar="WD", help="the optimizer's weight decay (default: 5e-4)")
    ap.add_argument("--optimizer", choices=OPTIMIZERS, help="default: adamw, the recipe's")
    ap.add_argument("--lr", type=float, help="peak learning rate (default: 2e-3)")
    ap.add_argument("--batch-size", type=int, help="default: 64")
    ap.add_argument("--ema", type=float, metavar="DECAY", help="average the weights (decay per step; default: off)")
    ap.add_argument("--low-res", type=int, nargs=2, metavar=("PX", "EPOCHS"),
                    help="train the first EPOCHS epochs on PX x PX inputs (progressive resizing; default: 64 64, the "
                         "recipe's, kept at 4/5 of the schedule when --epochs changes; 0 0 turns it off)")
    ap.add_argument("--low-res-antialias", action="store_true",
                    help="with progressive resizing (wbcnet's default, or --low-res): shrink the crops with an antialiasing filter before the low-resolution warp")
    ap.add_argument("--context", type=int, metavar="PX",
                    help="px of field (network input px) cached around each training crop for the warp (default: 0)")
    ap.add_argument("--window", type=int, metavar="PX", help="crop window around the cell in source px (default: 160)")
    ap.add_argument("--input-size", type=int, metavar="PX", help="the network's input in px (default: 96)")
    ap.add_argument("--widths", type=int, nargs="+", metavar="C", help="wbcnet's channels per stage (default: 24 48 96)")
    ap.add_argument("--folds", type=int, nargs="+", metavar="K",
                    help="run and pool only these folds: a cheaper comparison of recipes on the same folds "
                         "(it calibrates nothing; default: all)")
    ap.add_argument("--limit-cells", type=int, metavar="N",
                    help="use only the first N cells of each class (quick runs; at least one per fold: 5 with the "
                         "default folds); such a cross-validation calibrates no model of all the cells")
    ap.add_argument("--dry-run", action="store_true",
                    help="every fold for one epoch (two with progressive resizing, one at each size) on a few cells "
                         "a class, in a temporary folder removed afterwards, to check the set-up; writes nothing")
    ap.add_argument("--data", help="data set folder (default: WBC_DATA, else ../shared/data/blood-cells)")
    ap.add_argument("--json", type=Path, help="write the figures here (default: WORK/NAME/cv.json)")
    args = ap.parse_args()
    if args.render and args.dry_run:
        ap.error("--render prints earlier results and --dry-run trains: give one of them")
    if args.render:
        # A folder's partial cross-validations (cv-foldsK.json) sit beside its full one: keep both rows.
        rows = []
        for p in args.render:
            name = p.parent.name if p.name == "cv.json" else f"{p.parent.name} ({p.stem})"
            result = read_result(p)
            try:  # row by row, so that a result short of a figure is named
                rows.append(markdown({name: result}).splitlines()[2])
            except (KeyError, TypeError, IndexError, ValueError, AttributeError) as e:
                raise WbcError(f"{p}: lacks a figure the table needs ({type(e).__name__}: {e}); was it written by "
                               "cv.py?") from None
        print("\n".join(markdown({}).splitlines()[:2] + rows))
        return 0
    if not args.name:
        ap.error("--name is required (or --render)")
    if args.dry_run and (args.use or args.json):
        ap.error("--dry-run trains every fold afresh, briefly, and keeps nothing: leave out --use and --json")

    cfg = replace(preset("wbcnet"), seed=args.seed, data=kept_data_folder(args.data))
    if args.epochs is not None and args.low_res is None:
        cfg = with_epochs(cfg, args.epochs)
    overrides = {k: getattr(args, k) for k in ("epochs", "patience", "augment", "mixup", "label_smoothing",
                                              "pair_smoothing", "ema", "weight_decay", "optimizer", "lr", "batch_size", "context",
                                              "limit_cells")}
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    if args.low_res:
        cfg = replace(cfg, low_res_size=args.low_res[0], low_res_epochs=args.low_res[1])
    if args.low_res_antialias:
        if not cfg.low_res_epochs:
            ap.error("--low-res-antialias applies to progressive resizing: add --low-res PX EPOCHS")
        cfg = replace(cfg, low_res_antialias=True)
    from wbc.crossval import cross_validate, folds_of
    from wbc.model import default_config
    from wbc.recipe import check_config

    # Before any fold: a setting no run takes was refused only after "fold0: training" (--limit-cells 0), and too
    # few cells a class for the folds in wording of an option cv.py does not have (--val-fraction).
    check_config(cfg)
    k = folds_of(cfg)  # the folds' number rests on the validation share, which the dry run below keeps
    if cfg.limit_cells is not None and cfg.limit_cells < k:
        ap.error(f"--limit-cells {cfg.limit_cells}: at least {k}, a cell of each class for each of the {k} folds to "
                 "hold out")
    try:
        use = {int(k): Path(v) for k, v in (u.split("=", 1) for u in args.use)}
    except ValueError:
        print("cv: --use takes K=RUN, e.g. 0=runs/wbcnet-seed0", file=sys.stderr)
        return 2
    # An existing run: a path mistyped trained a new fold there, 15 minutes, outside --work and without a word.
    if missing := [f"{k}={run}" for k, run in use.items() if not (run / "last.pt").is_file()]:
        print(f"cv: --use {', '.join(missing)}: no run there (a folder `wbc train` wrote, with its last.pt); leave "
              "--use out to train the fold under --work", file=sys.stderr)
        return 2
    if args.dry_run:  # checked above as the real run has them, as `wbc train --dry-run` does
        cfg = replace(with_epochs(cfg, 2 if cfg.low_res_epochs else 1), limit_cells=cfg.limit_cells or max(3, k))

    try:
        model_cfg = default_config(cfg.model, args.window, args.input_size, args.widths)
    except ValueError as e:
        ap.error(f"network: {e}")

    folds = sorted(set(args.folds)) if args.folds else list(range(k))
    if not set(folds) <= set(range(k)):
        ap.error(f"--folds: folds are 0..{k - 1}")
    out = args.json or args.work / args.name / ("cv.json" if len(folds) == k else f"cv-folds{''.join(map(str, folds))}.json")
    if not args.dry_run:  # before the folds' hours of training: a --json that cannot be written failed after them
        from wbc.io import check_writable_file

        check_writable_file(out)
    work = Path(tempfile.mkdtemp(prefix="wbc-cv-dry-run.")) if args.dry_run else args.work
    runs = {fold: use.get(fold, work / args.name / f"fold{fold}") for fold in folds}
    try:
        result = cross_validate(cfg, runs, args.data, model_cfg=model_cfg)
    except WbcError as e:
        print(f"cv: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args.dry_run:
            raise
        # It said "cv.py: interrupted", not that hours of folds were kept and how to go on.
        print("cv: interrupted; the same command goes on: the folds finished are kept, and the one in progress "
              "continues from its last finished epoch (or starts again, stopped in its first)", file=sys.stderr)
        return 130
    finally:
        if args.dry_run:
            shutil.rmtree(work, ignore_errors=True)
    for fold, f in result["folds"].items():  # a dry run's folders are gone: not named
        print(f"fold {fold}: {'' if args.dry_run else f['run'] + ' '}({f['done']})")
    if args.dry_run:
        print(markdown({args.name: result}))
        which = ("every fold trains and is scored" if len(folds) == k else f"fold {folds[0]} trains and is scored"
                 if len(folds) == 1 else f"folds {', '.join(map(str, folds))} train and are scored")
        print(f"dry run done: {which} ({cfg.epochs} epoch(s) on {cfg.limit_cells} cells a class); nothing kept")
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(result, indent=2))
    print(markdown({args.name: result}))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
