"""`wbc evaluate` and `wbc export`: a model scored, a run exported, on the data and config it was made with."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from wbc.cli.train import run_data, training_extra
from wbc.errors import WbcError
from wbc.io import printable, read_json
from wbc.staging import left_as_it_was


def _stored_config(ckpt: str | Path) -> tuple[dict[str, Any], Path]:
    """The training config a checkpoint .pt keeps, and its run folder; an empty config for anything else
    (an exported model; `cmd_evaluate` takes a run folder as its best.pt first)."""
    ckpt = Path(ckpt)
    if ckpt.suffix != ".pt" or not ckpt.is_file():
        return {}, ckpt.parent
    return training_extra("wbc.checkpoint", "load_checkpoint")(ckpt)["train_config"], ckpt.parent


def _card_config(model: str | Path | None) -> tuple[dict[str, Any], Path]:
    """The training config the card of an exported model made from its maker's own images keeps (its data
    folder: what `evaluate` scores by default, not the public TEST), and the model's folder; an empty
    config for a model of the public data set, or a card that cannot be read (evaluate names why)."""
    from wbc.card import resolve_model
    from wbc.info import OWN_IMAGES

    try:
        onnx, card_path = resolve_model(model)
        card = read_json(card_path)
        folder = card["training"]["config"]["data"] if card["data"]["source"] == OWN_IMAGES else None
    except (WbcError, OSError, ValueError, LookupError, AttributeError, TypeError):
        return {}, Path(".")
    return ({"data": folder} if isinstance(folder, str) else {}), onnx.parent


def _checkpoint_data(config: dict[str, Any], run: Path, given: Path | None) -> str | Path | None:
    """run_data for the training config a checkpoint or a card keeps, with a note where its folder is taken."""
    data = run_data(config.get("data"), given, run)
    if given is None and data is not None:
        print(f"wbc: note: data: {data}, the folder the model was trained on (--data gives another)", file=sys.stderr)
    return data


def cmd_evaluate(args: argparse.Namespace) -> int:
    from wbc.io import check_writable_folder

    evaluate = training_extra("wbc.evaluate", "evaluate")
    if args.folder is not None and (args.split is not None or args.data is not None):
        # Scored the folder without a word: a user given --split TRAIN could believe TRAIN was scored.
        raise WbcError(f"--folder scores the images in {args.folder}; --{'split' if args.split else 'data'} names a "
                       "data set's split to score instead: give one or the other")
    args.split = args.split or "TEST"
    check_writable_folder(args.out)
    # WBC_MODEL takes what --model takes (a run folder or checkpoint too), as --model's help says it defaults to it;
    # an exported model stays WBC_MODEL's, whose errors name it as the source
    env = os.environ.get("WBC_MODEL")
    if args.model is None and env and (env.endswith(".pt") or (
            Path(env).is_dir() and not (Path(env) / "model.onnx").exists()
            and ((Path(env) / "best.pt").is_file() or (Path(env) / "last.pt").is_file()))):
        args.model = env
    run = Path(args.model) if args.model else None
    if run is not None and run.is_dir() and not (run / "model.onnx").is_file() and (
            (run / "best.pt").is_file() or (run / "last.pt").is_file()):
        # A run folder: its checkpoint, as `wbc export RUN` takes it, and refused as it refuses one stopped
        # before its first best.pt (it said "model.onnx: model file not found").
        args.model = training_extra("wbc.ship", "run_checkpoint")(
            run, instead=f"evaluate it as it is with --model {run / 'last.pt'}")
        print(f"wbc: note: {printable(str(run))} is a training run: evaluating its best.pt as it is (one view, not "
              "calibrated; `wbc export` makes the model that `wbc predict` and the app use)", file=sys.stderr)
    data = args.data
    if args.folder is None:  # a checkpoint, or a model of its maker's own images: the data it was trained on
        stored = _stored_config(args.model) if args.model and str(args.model).endswith(".pt") else _card_config(args.model)
        data = _checkpoint_data(*stored, given=args.data)
    try:
        m = evaluate(args.model, args.out, folder=args.folder, split=args.split, data=data,
                     skip_bad=args.skip_bad, progress=not args.quiet)
    except KeyboardInterrupt as e:  # it said "interrupted", not whether an earlier evaluation there was kept
        print(f"wbc: interrupted{left_as_it_was(e, args.out)}", file=sys.stderr)
        return 130
    print(f"{printable(str(m['model']))} ({m['read_as']})")
    _print_figures(m)
    if s := m.get("screening"):
        verdicts = ", ".join(f"{n} {v}" for v, n in s["verdicts"].items())
        typed = (", accuracy {:.4f} [{:.4f}, {:.4f}] over those".format(s["accuracy_typed"], *s["accuracy_typed_ci95"])
                 if s["accuracy_typed"] is not None else "")
        files = f"{s['files']} file{'' if s['files'] == 1 else 's'}"
        print(f"with the screening of wbc predict and the app: {s['typed_files']} of {files} given a type{typed} "
              f"({verdicts}; predictions.csv's verdict column names each file read)")
    if "caution" in m:
        print(f"wbc: note: {m['caution']}", file=sys.stderr)
    if caveat := training_extra("wbc.report", "interval_caveat")(m).strip():
        print(f"wbc: note: {caveat}", file=sys.stderr)
    print(f"report written to {printable(str(Path(args.out) / 'report.md'))}")
    return 0


def _print_figures(m: dict[str, Any]) -> None:
    """The headline figures of an evaluation (metrics.json's, or a card's metrics.test), per class."""
    lo, hi = m["accuracy_ci95"]
    scope = training_extra("wbc.metrics", "macro_scope")(m)
    print(f"accuracy over files {m['accuracy']:.4f} [{lo:.4f}, {hi:.4f}]  "
          f"cells {m['cells_correct']}/{m['n_cells']} ({m['cell_accuracy']:.4f}"
          + (" [{:.4f}, {:.4f}]".format(*m["cell_accuracy_ci95"]) if m.get("cell_accuracy_ci95") else "")
          + f")  macro-F1 {m['macro_f1']:.4f}"
          + (" [{:.4f}, {:.4f}]".format(*m["macro_f1_ci95"]) if m.get("macro_f1_ci95") else "")
          + (f" ({scope})" if scope else ""))
    if w := m.get("without_cells_in_train"):
        n, (wlo, whi) = len(w["cells_dropped"]), w["accuracy_ci95"]
        print(f"without the {n} cell{'s' if n != 1 else ''} also in TRAIN: accuracy over files {w['accuracy']:.4f} "
              f"[{wlo:.4f}, {whi:.4f}]  cells {w['cells_correct']}/{w['n_cells']}")
    elo, ehi = m["ece_ci95"]
    print(f"expected calibration error {m['ece']:.4f} [{elo:.4f}, {ehi:.4f}] "
          "(the spread over resampled cells, not a 95% interval: a resampled ECE leans high)")
    figure = training_extra("wbc.metrics", "per_class_figure")
    from wbc.differential import hyphenated

    cells = training_extra("wbc.metrics", "cells_read_right")
    calls = training_extra("wbc.metrics", "calls_right")
    for c, v in m["per_class"].items():
        right, called = hyphenated(cells(v)), hyphenated(calls(v))
        print(f"  {c:11s} " + "  ".join(f"{k} {figure(v[k]):6s}" for k in ("precision", "recall", "f1"))
              + f"  files={v['support']}" + (f"  cells read right {right}" if right else "")
              + (f"  right of the cells read as it {called}" if called else ""))


def cmd_export(args: argparse.Namespace) -> int:
    from wbc.card import DEFAULT_MODEL_DIR
    from wbc.io import check_writable_folder

    export_and_report = training_extra("wbc.ship", "export_and_report")
    if not args.replace_shipped and Path(args.out).resolve() == DEFAULT_MODEL_DIR.resolve():
        # It replaced the shipped model and its TEST report with any run's, which `wbc predict` and the app then used.
        raise WbcError(f"--out {args.out}: that is the shipped model, which `wbc predict` and `wbc app` use unless told "
                       "otherwise; give --replace-shipped to replace it (with --evaluate, its TEST report too), or "
                       "another --out")
    check_writable_folder(args.out)
    ckpt = training_extra("wbc.ship", "run_checkpoint")(args.run)
    config, run = _stored_config(ckpt)
    data = _checkpoint_data(config, run, args.data)
    # Before the export, not after it, and named as given rather than by the staging folder: a model folder
    # in a split is an unknown class folder to every later listing.
    splits = training_extra("wbc.evaluate", "data_set_splits")(data)
    if args.evaluate and not splits:
        from wbc.folders import find_images_root

        find_images_root(data)  # says why there is no data set to evaluate on
    training_extra("wbc.evaluate", "check_out_of")(args.out, splits)
    try:
        card = export_and_report(args.run, args.out, data=data, evaluate_test=args.evaluate,
                                 tta=not args.no_tta, calibrate=not args.no_calibrate, calibration=args.calibration,
                                 match_white=args.match_white, skip_bad=args.skip_bad,
                                 # A run trained leaving unreadable files out is calibrated and checked alike (TEST
                                 # only with --skip-bad: its figures would rest on fewer files than asked).
                                 skip_bad_training=bool(config.get("skip_bad")), progress=not args.quiet)
    except KeyboardInterrupt as e:  # it said "interrupted", not whether a model exported there before was kept
        print(f"wbc: interrupted{left_as_it_was(e, args.out)}", file=sys.stderr)
        return 130
    for note in training_extra("wbc.ship", "export_warnings")(ckpt, card):
        print(f"wbc: warning: {note}", file=sys.stderr)
    print(f"wrote {Path(args.out) / 'model.onnx'} ({card['onnx_bytes'] / 1e6:.2f} MB) and model.json; "
          f"parity max |diff| {card['parity']['max_abs_diff']:.2e} on {card['parity']['images']} images")
    if card["tta_views"] == 1 and not args.no_tta:
        from wbc.imaging import PreprocessSpec

        h, w = PreprocessSpec.from_dict(card["preprocess"]).input_hw
        print(f"one view per image: the network's input ({h}x{w} px) is not square, so it is not rotated")
    if not args.match_white:  # said, not changed: a card's reading is its maker's choice
        print("wbc: note: this card reads a dimmer or tinted photo as it is; the shipped model's matches its white to "
              "the training images' first (--match-white): held out, a warm white balance and a dim field lost 0.3 and 0.4 "
              "points with it, 7.4 and 7.8 without (README)",
              file=sys.stderr)
    if args.evaluate:
        print("TEST, as the card reads it:")
        _print_figures(card["metrics"]["test"])
        if caution := card["metrics"]["test"].get("caution"):
            print(f"wbc: note: {caution}", file=sys.stderr)
        print(f"report written to {Path(args.out) / 'report.md'}")
    return 0
