"""`wbc`: one verb per function. main() only parses, wires and turns errors into messages."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import select
import shlex
import signal
import sys
import tempfile
import textwrap
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wbc import __version__
from wbc.errors import OutputError, WbcError
from wbc.io import atomic_write_text, lines_shown, printable
from wbc.imaging import TEST_TIME_VIEWS

if TYPE_CHECKING:  # the training extras (torch) load only when a command needs them
    from wbc.predict import Prediction
    from wbc.train import TrainConfig


def _training(module: str, name: str) -> Any:
    """`name` from a module that needs the training extras; a one-line error where they are missing."""
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as e:
        # Evaluating an ONNX model needs scikit-learn and matplotlib, not PyTorch (gigabytes from PyPI).
        extra = "eval" if (e.name or "").split(".")[0] in ("sklearn", "matplotlib") else "train"
        raise WbcError(f"this command needs the {extra} extras ({e.name} is not installed): pip install -e '.[{extra}]'"
                       + (" (or '.[train]', which holds them)" if extra == "eval" else "")) from e


def cmd_data_download(args: argparse.Namespace) -> int:
    from wbc.download import download

    path = download(args.out)
    print(f"data set ready at {path}\nuse it with --data {path} or WBC_DATA={path}")
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from wbc.data import find_images_root, list_split, load_arrays
    from wbc.imaging import PreprocessSpec
    from wbc.info import CLASSES, SPLITS

    root = find_images_root(args.data)
    print(f"images root: {root}")
    bad, unfit = 0, ""
    for split in SPLITS:
        if not (root / split).is_dir():
            print(f"{split:12s} absent")
            continue
        samples = list_split(root, split)
        per = [(sum(s.label == i for s in samples), len({s.cell for s in samples if s.label == i}))
               for i in range(len(CLASSES))]
        print(f"{split:12s} " + "  ".join(f"{c.title()} {n} files/{k} cells" for c, (n, k) in zip(CLASSES, per)))
        if split == "TRAIN" and (empty := [c for c, (n, _) in zip(CLASSES, per) if not n]):
            unfit = f"{'':12s} no images of {', '.join(empty)}: training refuses this TRAIN"
            print(unfit)
        if args.verify:  # every split is read and its bad files named, before the verdict
            try:
                load_arrays(samples, PreprocessSpec(), skip_bad=False, use_cache=False)
                print(f"{'':12s} all {len(samples)} files decoded")
            except WbcError as e:
                bad += 1
                print(f"{'':12s} {e}")
    if bad:
        print(f"wbc: {bad} split(s) hold files that cannot be read (named above)", file=sys.stderr)
    if unfit:
        print(f"wbc: {unfit.strip()}", file=sys.stderr)
    return 1 if bad or unfit else 0


def cmd_train(args: argparse.Namespace) -> int:
    from wbc.io import check_writable_folder

    fit, preset = _training("wbc.train", "fit"), _training("wbc.train", "preset")
    cfg = preset(args.model or "wbcnet")
    if args.epochs is not None and args.low_res is None:
        cfg = _training("wbc.train", "with_epochs")(cfg, args.epochs)
    overrides: dict[str, Any] = {
        k: v for k, v in {
            "epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size, "seed": args.seed,
            "patience": args.patience, "val_fraction": args.val_fraction, "limit_cells": args.limit_cells,
            "data": _training("wbc.data", "kept_data_folder")(args.data) if args.data else None,
            "threads": args.threads, "augment": args.augment,
            "split_seed": args.split_seed, "fold": args.fold, "distill": args.distill, "mixup": args.mixup,
            "label_smoothing": args.label_smoothing, "pair_smoothing": args.pair_smoothing, "ema": args.ema,
            "weight_decay": args.weight_decay, "optimizer": args.optimizer,
            "low_res_size": args.low_res[0] if args.low_res else None,
            "low_res_epochs": args.low_res[1] if args.low_res else None,
            "low_res_antialias": args.low_res_antialias or None, "context": args.context,
            # Absolute, as --data is kept: the resume command printed must work from any folder
            "teachers": tuple(str(Path(t).resolve()) for t in args.teacher) if args.teacher else None,
            "model": args.model, "skip_bad": args.skip_bad or None, "device": args.device,
        }.items() if v is not None
    }
    cfg = replace(cfg, **overrides)
    if cfg.data is None and not args.resume:  # a new run keeps the default folder as it is now (a resume, its own)
        cfg = replace(cfg, data=_training("wbc.data", "kept_data_folder")(None))
    if args.all_cells:
        if args.fold is not None:
            raise WbcError("--fold and --all-cells exclude each other: --all-cells holds out no fold")
        idle = [flag for flag, v in (("--split-seed", args.split_seed), ("--val-fraction", args.val_fraction),
                                     ("--patience", args.patience)) if v is not None]
        if idle:  # taken without a word, they seemed to act
            print(f"wbc: note: --all-cells holds out no cells, so {', '.join(idle)} (which set or watch the held-out "
                  "cells) change nothing", file=sys.stderr)
        cfg = replace(cfg, fold=None)
    held_out = "-all" if cfg.fold is None else (f"-fold{cfg.fold}" if cfg.fold else "")
    out = args.out or Path("runs") / f"{cfg.model}-seed{cfg.seed}{held_out}"
    if args.resume:
        if args.dry_run:
            raise WbcError("--dry-run starts a new short run; it cannot --resume one")
        asked = {**overrides, **({"fold": None} if args.all_cells else {})}
        network = {"window": args.window, "size": args.input_size, "widths": args.widths}
        cfg, finished = _check_resume(out, asked, {k: v for k, v in network.items() if v is not None}, args.all_cells)
        if finished is not None:
            dry = (f" (a dry run: {cfg.epochs} epoch(s) on {cfg.limit_cells} cells a class; train the real one with "
                   "another --out)" if (out / DRY_RUN_MARK).exists() else "")
            print(f"{out}: this run already finished at epoch {finished}; nothing to do{dry}")
            return 0
        if run_data(cfg.data, args.data, out) is not None and args.data is None:  # the run's own: still there?
            print(f"wbc: note: resuming on data: {cfg.data}, the folder the run was trained on (--data gives another)",
                  file=sys.stderr)
    if args.distill is not None and not cfg.teachers:
        raise WbcError("--distill weighs the teachers' soft targets: give the teachers' runs with --teacher")
    if args.dry_run:  # the settings as the real run has them first: it refused what the shortened one took (--epochs 0)
        _training("wbc.train", "check_config")(cfg)
    if args.dry_run:  # one epoch, or with progressive resizing (wbcnet's default) one at each size
        # Enough cells per class for one in each of the round(1 / val_fraction) cell-grouped folds.
        folds = round(1 / cfg.val_fraction) if 0 < cfg.val_fraction < 0.5 else 0  # else refused with the config
        few = 3 if cfg.fold is None else max(3, folds)
        cfg = replace(cfg, epochs=2 if cfg.low_res_epochs else 1, limit_cells=cfg.limit_cells or few,
                      low_res_epochs=min(cfg.low_res_epochs, 1))
    try:
        model_cfg = _training("wbc.model", "default_config")(cfg.model, args.window, args.input_size, args.widths)
    except ValueError as e:
        raise WbcError(f"network: {e}") from e
    if args.dry_run and args.out is None:
        # A check of the set-up, not a run: in the default folder it would stand in the way of the real one.
        with tempfile.TemporaryDirectory(prefix="wbc-dry-run.") as tmp:
            fit(cfg, Path(tmp) / "run", progress=not args.quiet, model_cfg=model_cfg)
        print("dry run done: the set-up trains; nothing kept (give --out to keep the short run)")
        return 0
    check_writable_folder(out)
    # Inside a split, the run's plots would become images of the class whose folder holds it.
    _training("wbc.evaluate", "check_out_of")(out, _training("wbc.evaluate", "data_set_splits")(cfg.data))
    if not args.resume and (out / DRY_RUN_MARK).exists() and (out / "last.pt").exists():
        # It said "already holds a run; pass --resume", and --resume then "finished": the real run never started.
        raise WbcError(f"{out}: holds a dry run (--dry-run --out), not a run to continue; choose another --out for "
                       "the real one, or remove this folder")
    try:
        run = fit(cfg, out, resume=args.resume, progress=not args.quiet, model_cfg=model_cfg)
    except KeyboardInterrupt:
        if (out / "last.pt").exists():
            print(f"wbc: interrupted; continue the run with: wbc train --out {shlex.quote(str(out))} --resume",
                  file=sys.stderr)
        else:
            print("wbc: interrupted before the first epoch ended: nothing saved to resume; start it again",
                  file=sys.stderr)
        return 130
    if args.dry_run:  # kept with --out: marked, so that it is not taken for the real run later
        atomic_write_text(run / DRY_RUN_MARK, f"a dry run of wbc train: {cfg.epochs} epoch(s) on {cfg.limit_cells} "
                          "cells a class, to check the set-up; not a model to use\n")
    print(f"run written to {run} (best.pt, last.pt, summary.csv, curves.png)"
          + (": a dry run, marked so (DRY_RUN)" if args.dry_run else ""))
    return 0


def _check_resume(out: Path, asked: dict[str, Any], network: dict[str, Any],
                  all_cells: bool) -> tuple[TrainConfig, int | None]:
    """--resume continues a run as it was made: refuse, by name, every option given on the command
    line that differs from the stored run rather than silently ignoring it. Where and how fast it runs
    (--data, --threads, --skip-bad, --device) may change. Returns the TrainConfig to resume with, and
    the epoch a finished run ended at (None for one to continue)."""
    machine = _training("wbc.train", "MACHINE_SETTINGS")
    state = _training("wbc.train", "load_checkpoint")(out / "last.pt")
    # Settings an older checkpoint lacks read as their defaults, as fit fills them.
    stored_cfg = _training("wbc.train", "stored_config")(state, out / "last.pt")
    net = _training("wbc.model", "config_from_dict")(stored_cfg.model, state["model_config"])
    stored = {**asdict(stored_cfg), "widths": getattr(net, "widths", None),
              "window": net.preprocess.window, "size": net.preprocess.size}

    def norm(key: str, v: Any) -> Any:
        v = tuple(v) if isinstance(v, (list, tuple)) else v
        # The teachers are averaged: order is moot; each is a folder, compared as an absolute path (a run of wbc 0.21
        # or before kept them as given: resumed from elsewhere, its relative ones name other folders)
        return tuple(sorted(str(Path(t).resolve()) for t in v)) if key == "teachers" and v else v

    def shown(key: str, v: Any) -> str:
        if v is None:
            return {"fold": "none (--all-cells)", "widths": f"none (a {stored_cfg.model} network)",
                    "split_seed": "not set (= --seed)"}.get(key, "not set")
        if key == "fold":  # "the run: 0" read as no fold
            return f"holds out fold {v}"
        return " ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)

    flags = {"size": "--input-size", "teachers": "--teacher", "fold": "--all-cells" if all_cells else "--fold",
             "low_res_size": "--low-res PX", "low_res_epochs": "--low-res EPOCHS"}
    differ = [
        f"{flags.get(k, '--' + k.replace('_', '-'))} (the run: {shown(k, stored[k])}; asked: {shown(k, v)})"
        for k, v in {**asked, **network}.items()
        if k not in machine and norm(k, stored[k]) != norm(k, v)
    ]
    if differ:
        raise WbcError(f"{out}: --resume continues the run as it was made, and this asks for something else: "
                       f"{'; '.join(differ)}. Drop those options to continue it, or choose another --out")
    finished = state["epoch"] + 1 if state.get("stopped") else None
    return replace(stored_cfg, **{k: v for k, v in asked.items() if k in machine}), finished


def run_data(stored: str | None, given: Path | None, run: Path) -> str | Path | None:
    """The data set for work on a run: --data where given, else the folder the run was trained on (its
    checkpoint keeps it), which must still be there; None where neither names one (WBC_DATA, or the
    shared copy, as when it was trained)."""
    if given is not None or not stored:
        return given
    if not Path(stored).expanduser().is_dir():
        relative = "" if Path(stored).is_absolute() else ", relative to the folder its training started in"
        raise WbcError(f"{stored}: the data folder {run} was trained on (kept in it{relative}) is not found "
                       "from here; give --data")
    return stored


def _stored_config(ckpt: str | Path) -> tuple[dict[str, Any], Path]:
    """The training config a checkpoint .pt keeps, and its run folder; an empty config for anything else
    (an exported model; `cmd_evaluate` takes a run folder as its best.pt first)."""
    ckpt = Path(ckpt)
    if ckpt.suffix != ".pt" or not ckpt.is_file():
        return {}, ckpt.parent
    return _training("wbc.train", "load_checkpoint")(ckpt)["train_config"], ckpt.parent


def _card_config(model: str | Path | None) -> tuple[dict[str, Any], Path]:
    """The training config the card of an exported model made from its maker's own images keeps (its data
    folder: what `evaluate` scores by default, not the public TEST), and the model's folder; an empty
    config for a model of the public data set, or a card that cannot be read (evaluate names why)."""
    import json

    from wbc.info import OWN_IMAGES
    from wbc.predict import resolve_model

    try:
        onnx, card_path = resolve_model(model)
        card = json.loads(card_path.read_text())
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

    evaluate = _training("wbc.evaluate", "evaluate")
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
        args.model = _training("wbc.ship", "run_checkpoint")(
            run, instead=f"evaluate it as it is with --model {run / 'last.pt'}")
        print(f"wbc: note: {printable(str(run))} is a training run: evaluating its best.pt as it is (one view, not "
              "calibrated; `wbc export` makes the model that `wbc predict` and the app use)", file=sys.stderr)
    data = args.data
    if args.folder is None:  # a checkpoint, or a model of its maker's own images: the data it was trained on
        stored = _stored_config(args.model) if args.model and str(args.model).endswith(".pt") else _card_config(args.model)
        data = _checkpoint_data(*stored, given=args.data)
    m = evaluate(args.model, args.out, folder=args.folder, split=args.split, data=data,
                 skip_bad=args.skip_bad, progress=not args.quiet)
    print(f"{printable(str(m['model']))} ({m['read_as']})")
    _print_figures(m)
    if "caution" in m:
        print(f"wbc: note: {m['caution']}", file=sys.stderr)
    if caveat := _training("wbc.report", "interval_caveat")(m).strip():
        print(f"wbc: note: {caveat}", file=sys.stderr)
    print(f"report written to {printable(str(Path(args.out) / 'report.md'))}")
    return 0


def _print_figures(m: dict[str, Any]) -> None:
    """The headline figures of an evaluation (metrics.json's, or a card's metrics.test), per class."""
    lo, hi = m["accuracy_ci95"]
    scope = _training("wbc.metrics", "macro_scope")(m)
    print(f"accuracy over files {m['accuracy']:.4f} [{lo:.4f}, {hi:.4f}]  "
          f"cells {m['cells_correct']}/{m['n_cells']} ({m['cell_accuracy']:.4f})  macro-F1 {m['macro_f1']:.4f}"
          + (" [{:.4f}, {:.4f}]".format(*m["macro_f1_ci95"]) if m.get("macro_f1_ci95") else "")
          + (f" ({scope})" if scope else ""))
    if w := m.get("without_cells_in_train"):
        n, (wlo, whi) = len(w["cells_dropped"]), w["accuracy_ci95"]
        print(f"without the {n} cell{'s' if n != 1 else ''} also in TRAIN: accuracy over files {w['accuracy']:.4f} "
              f"[{wlo:.4f}, {whi:.4f}]  cells {w['cells_correct']}/{w['n_cells']}")
    elo, ehi = m["ece_ci95"]
    print(f"expected calibration error {m['ece']:.4f} [{elo:.4f}, {ehi:.4f}] "
          "(95% interval over cells; a resampled ECE leans high)")
    figure = _training("wbc.metrics", "per_class_figure")
    from wbc.differential import hyphenated

    cells = _training("wbc.metrics", "cells_read_right")
    for c, v in m["per_class"].items():
        right = hyphenated(cells(v))
        print(f"  {c:11s} " + "  ".join(f"{k} {figure(v[k]):6s}" for k in ("precision", "recall", "f1"))
              + f"  files={v['support']}" + (f"  cells read right {right}" if right else ""))


def cmd_export(args: argparse.Namespace) -> int:
    from wbc.io import check_writable_folder
    from wbc.predict import DEFAULT_MODEL_DIR

    export_and_report = _training("wbc.ship", "export_and_report")
    if not args.replace_shipped and Path(args.out).resolve() == DEFAULT_MODEL_DIR.resolve():
        # It replaced the shipped model and its TEST report with any run's, which `wbc predict` and the app then used.
        raise WbcError(f"--out {args.out}: that is the shipped model, which `wbc predict` and `wbc app` use unless told "
                       "otherwise; give --replace-shipped to replace it (with --evaluate, its TEST report too), or "
                       "another --out")
    check_writable_folder(args.out)
    ckpt = _training("wbc.ship", "run_checkpoint")(args.run)
    config, run = _stored_config(ckpt)
    data = _checkpoint_data(config, run, args.data)
    # Before the export, not after it, and named as given rather than by the staging folder: a model folder
    # in a split is an unknown class folder to every later listing.
    splits = _training("wbc.evaluate", "data_set_splits")(data)
    if args.evaluate and not splits:
        from wbc.data import find_images_root

        find_images_root(data)  # says why there is no data set to evaluate on
    _training("wbc.evaluate", "check_out_of")(args.out, splits)
    card = export_and_report(args.run, args.out, data=data, evaluate_test=args.evaluate,
                             tta=not args.no_tta, calibrate=not args.no_calibrate, calibration=args.calibration,
                             match_white=args.match_white, skip_bad=args.skip_bad,
                             # A run trained leaving unreadable files out is calibrated and checked alike (TEST
                             # only with --skip-bad: its figures would rest on fewer files than asked).
                             skip_bad_training=bool(config.get("skip_bad")), progress=not args.quiet)
    for note in _training("wbc.ship", "export_warnings")(ckpt, card):
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


NO_IMAGE = "no image"  # the verdict of a `wbc predict` row that names no image file to read


def _predict_inputs(inputs: list[str]) -> tuple[list[Path | tuple[str, str, str]], int, list[Path], int]:
    """The image files to classify, in the order given, folders searched and patterns a shell left
    unexpanded matched here; an input that names nothing stays as (input, why, verdict), a row of its own
    ("no image", or "not followed" for a link or subfolder found in a folder given). The
    second value counts files given more than once, each classified once; the third lists the files in
    folders given that were passed over, their names not an image's; the fourth counts the rows for
    links and subfolders found in the folders that could not be followed (each named once)."""
    import glob

    from wbc.predict import iter_image_paths

    out: list[Path | tuple[str, str, str]] = []
    seen: set[Path] = set()
    repeats = 0
    others: dict[Path, Path] = {}  # by real path: a folder given twice passes its files over once
    unfollowed: set[Path] = set()  # by its real folder and name: a link to nothing has no real path of its own

    def add(item: str) -> None:
        nonlocal repeats
        try:
            if not Path(item).exists():
                # A link (named, or a pattern's match): it is there (ls shows it), but leads nowhere, as a folder's is told
                why = ("a link to nothing (its target is gone, or it loops)" if Path(item).is_symlink()
                       else "no such file or folder")
                out.append((item, why, NO_IMAGE))
                return
            if Path(item).is_dir():  # the folder search below skips a folder it cannot list, without a word
                os.scandir(item).close()
            held: list[Path] = []
            missed: list[tuple[Path, str]] = []
            found = iter_image_paths([item], held, missed)
        except OSError as e:  # a name too long, a folder that cannot be listed
            out.append((item, f"cannot be read ({e.strerror or e})", NO_IMAGE))
            return
        for f in held:
            others.setdefault(f.resolve(), f)
        for f, why in missed:  # rows of their own: images may be in them or behind them
            # By its real folder: a link to nothing reached again through a link up the tree is the same link
            key = _real_folder(f)
            if key not in unfollowed:
                unfollowed.add(key)
                out.append((str(f), why, "not followed"))
        if not found and not missed:
            out.append((item, "no image files in this folder" + (f" ({_passed_over(held)})" if held else ""), NO_IMAGE))
        for f in found:
            key = f.resolve()
            repeats += key in seen
            if key not in seen:
                seen.add(key)
                out.append(f)

    for item in inputs:
        matches = (sorted(m for m in glob.glob(item, recursive=True) if not _through_a_loop(Path(m)))
                   if glob.has_magic(item) and not _exists(item) else None)
        if matches == []:
            out.append((item, "no image file matches this pattern", NO_IMAGE))
            continue
        for m in matches or [item]:
            add(m)
    return out, repeats, list(others.values()), len(unfollowed)


def _real_folder(f: Path) -> Path:
    """`f` by its folder's real path and its own name (a link to nothing has no real path of its own)."""
    try:
        return f.parent.resolve() / f.name
    except (OSError, RuntimeError):  # a folder in a loop of links
        return f.absolute()


def _through_a_loop(path: Path) -> bool:
    """Whether `path` (a pattern's match) passes through a link to a folder that holds the link: `**` follows
    such a link some 40 levels deep, naming each file there again ("80 file(s) given more than once")."""
    here = Path(path.anchor) if path.is_absolute() else Path()
    for part in path.parts[len(here.parts):-1]:
        here = here / part
        if here.is_symlink():
            try:
                target, home = here.resolve(), here.parent.resolve()
            except (OSError, RuntimeError):
                return True
            if target == home or target in home.parents:
                return True
    return False


def _passed_over(files: list[Path]) -> str:
    from wbc.info import IMAGE_SUFFIXES
    from wbc.io import passed_over

    return (f"{passed_over(files)}; images are read by their names, {' '.join(sorted(IMAGE_SUFFIXES))}; name a file "
            "to read it anyway")


def _exists(path: str) -> bool:
    try:
        return Path(path).exists()
    except OSError:
        return False


def _predictions_table(path: Path) -> bool:
    """Whether the file at `path` is a table `wbc predict` wrote, this version or an earlier one: its
    header begins with the file, class and confidence columns and ends with the verdict (an evaluation's
    predictions.csv, with the true classes after the verdict, is not: it belongs to its report)."""
    try:
        with path.open("rb") as f:  # the header alone: a file name further on may not be UTF-8 (written as it is)
            head = f.read(4096)
        header = re.split(rb"[\r\n]", head, maxsplit=1)[0].decode("utf-8", "replace")  # CR alone: Excel for Mac's
    except OSError:
        return False
    return header.startswith("file,class,confidence,") and header.endswith(",verdict")


SPREADSHEET_SUFFIXES = (".xlsx", ".xls", ".xlsm", ".ods", ".numbers")


def _check_csv_target(csv_path: Path, inputs: list[Path]) -> None:
    """--csv must not overwrite a photo: refuse an image's name and any input file, then check that
    it can be written, before the work."""
    from wbc.info import IMAGE_SUFFIXES
    from wbc.io import check_writable_file

    target = os.path.realpath(csv_path)  # resolve() raises on a link that loops; check_writable_file names it
    if any(os.path.realpath(f) == target for f in inputs):
        raise WbcError(f"--csv {csv_path}: that is one of the images given; writing the table there would "
                       "overwrite it. Give a .csv file name")
    if csv_path.suffix.lower() in IMAGE_SUFFIXES:
        raise WbcError(f"--csv {csv_path}: that is an image's name, not a table's; give a .csv file name")
    if str(csv_path) == "-":  # a file named "-" was written where a Unix user meant the terminal
        raise WbcError("--csv -: the table is printed to the terminal already; give a .csv file name to keep it")
    if csv_path.suffix.lower() in SPREADSHEET_SUFFIXES:  # CSV text under a workbook's name: a spreadsheet refuses it
        raise WbcError(f"--csv {csv_path}: the table is written as CSV text, not a {csv_path.suffix} workbook; give a "
                       ".csv file name (spreadsheets open it)")
    # An earlier table of `wbc predict`'s is replaced (said after); any other file there (a model card, notes,
    # a spreadsheet of the user's) is not ours to replace.
    if csv_path.is_file() and not _predictions_table(csv_path):
        raise WbcError(f"--csv {csv_path}: a file of that name exists and is not a table `wbc predict` wrote; "
                       "writing there would replace it. Give another file name")
    check_writable_file(csv_path)


def _repeats(preds: list[Prediction]) -> dict[int, str]:
    """Index in `preds` -> the file it repeats, for each image read that has the bytes of one read before it,
    whatever the names (the bytes as read for the prediction: a pipe given as a path reads empty a second
    time). Rows with no image read repeat nothing."""
    from wbc.io import first_copies

    keys = [None if p.error or not p.sha256 else p.sha256 for p in preds]
    return {i: str(preds[j].file) for i, j in first_copies(keys).items()}


def _csv_path(csv_path: Path | None, interrupted: bool) -> tuple[Path | None, Path | None]:
    """Where --csv's table goes, and the file kept instead of replaced (or None): an interrupted run's
    table, of the files read before Ctrl+C, does not replace a table already at --csv (a whole run's, it
    was lost to a part) but goes beside it as NAME.partial.csv, unless a file not of `wbc predict` is
    there (then nowhere: None, with the kept file given as that one)."""
    if csv_path is None or not interrupted or not csv_path.is_file():
        return csv_path, None
    partial = csv_path.with_name(f"{csv_path.stem}.partial{csv_path.suffix}")
    if partial.is_file() and not _predictions_table(partial):
        return None, partial
    return partial, csv_path


def cmd_predict(args: argparse.Namespace) -> int:
    from wbc.predict import (CANNOT_JUDGE_VERDICT, NEEDS_REVIEW_VERDICT, NOT_A_WBC_VERDICT, NOT_READ, Prediction,
                             Predictor, weak_model_note, write_predictions_csv)

    entries, repeats, others, unfollowed = _predict_inputs(args.paths)
    paths = [e for e in entries if isinstance(e, Path)]
    if not paths:
        missing = [f"{item}: {why}" for item, why, _ in (e for e in entries if isinstance(e, tuple))]
        raise WbcError("; ".join(missing) if missing else f"no image files found in {' '.join(map(str, args.paths))}")
    if args.csv:
        _check_csv_target(args.csv, paths)
    pred = Predictor(args.model, threads=args.threads)
    if weak := weak_model_note(pred.card):
        print(f"wbc: note: {weak}", file=sys.stderr)
    read: list[Prediction] = []
    try:
        for r in pred.iter_files(paths, progress=len(paths) > 1 and not args.quiet, tta=not args.single_view):
            read.append(r)
    except KeyboardInterrupt:  # keep what was read: the table, the count and the CSV cover those files
        print(f"\nwbc: interrupted after {len(read)} of {len(paths)} file(s); reporting those", file=sys.stderr)
    unread = len(paths) - len(read)
    by_path = iter(read)
    results = [(next(by_path, None) or Prediction(file=e, error=NOT_READ)) if isinstance(e, Path)
               else Prediction(file=e[0], error=e[1], no_image=e[2]) for e in entries]
    named_nothing = len(entries) - len(paths) - unfollowed
    bad = sum(1 for r in results if r.error) - named_nothing - unfollowed - unread  # files that could not be used
    # A typed piece of a cell beside a much larger one is not a cell to count, as in the app; nor, as there,
    # a second copy of an image read (the same bytes under another name: one cell photographed once), whose
    # row and CSV line name the file it repeats (a spreadsheet's total would count it again).
    copies = _repeats(results) if len(paths) > 1 else {}
    results = [replace(r, same_as=copies[i]) if i in copies else r for i, r in enumerate(results)]
    counted = [r for r in results if r.typed and not r.same_as]
    csv_path, kept = _csv_path(args.csv, interrupted=bool(unread))
    unwritten: OutputError | None = None  # the table below still shows what was read
    if csv_path:  # first: a reader of the table that goes away (`| head`) must not cost the file
        replaced = csv_path.is_file()
        try:
            write_predictions_csv(csv_path, results)
        except OutputError as e:  # a full disk found only now: the work is not lost with the file
            unwritten = e
    if repeats:
        print(f"wbc: note: {repeats} file(s) given more than once, each classified and counted once", file=sys.stderr)
    if others and paths:
        print(f"wbc: note: in the folders given, {_passed_over(others)}", file=sys.stderr)
    names = [printable(str(r.file)) for r in results]
    width = min(60, max(map(columns, names)))
    print(f"{'file':{width}s}  {'class':11s}  confidence  verdict")
    for r, name in zip(results, names):
        name = fit(name, width)
        if r.error:  # the verdict as the CSV gives it; the row names the file, so the reason need not again
            why = r.error.removeprefix(f"{r.file}: ")
            said = why if why.startswith(f"{r.verdict}:") else f"{r.verdict}: {why}"  # NOT_READ says it already
            print(f"{name}  {'-':11s}  {'-':>10s}  {said}")
            continue
        note = f"{r.verdict}" + (f": {r.not_wbc}" if r.not_wbc else "")
        if r.typed and (r.needs_review or r.overexposed):  # the runner-up type is no help for the other reasons
            note += " (or " + r.top2[1][0].lower() + f" {r.top2[1][1]:.3f})"  # as the confidence column
        if r.shrunk:
            note += f" [photo shrunk {r.reduced_by:.1f}x towards the training magnification]"
        matched = [w for w, on in (("found only", r.white_balanced), ("read", r.white_matched)) if on]
        if matched:
            note += f" [colours unlike the training images': {' and '.join(matched)} with the white matched]"
        if r.overexposed:
            note += f" [overexposed: {100 * r.clipped:.0f}% of the lit pixels white (clipped); such photos are read poorly]"
        if r.other_cell:  # set only where the screening took the photo for a white cell
            note += f" [{other_cell_note(r)}]"
        if r.same_as:
            note += f" [the same image as {printable(r.same_as)}: " + ("counted once]" if r.typed else "left out once]")
        # No type is given for what the screening rejected or a typed piece of a cell, as in the app.
        kind, conf = (r.label, f"{r.confidence:.3f}") if r.typed else ("-", "-")
        print(f"{name}  {kind:11s}  {conf:>10s}  {note}")
    # A count of one image read is no differential, whatever else was named (copies of it too); of none, it
    # says there is none.
    if len(paths) > 1 and sum(not r.error for r in results) - len(copies) != 1:
        from wbc.differential import differential_lines, misread_figures

        once = [r for r in results if not r.same_as]  # a repeat is left out as such, whatever it was read as
        left_out = [f"{k} {what}" for k, what in ((sum(r.verdict == NOT_A_WBC_VERDICT for r in once),
                                                   "not a white cell"),
                                                  (sum(r.verdict == CANNOT_JUDGE_VERDICT and not r.other_larger
                                                       for r in once), "that cannot be judged"),
                                                  (sum(r.other_larger for r in once),
                                                   "typed on what may be a piece of a cell"),
                                                  (len(copies), "repeat(s) of an image given before"),
                                                  (bad, "unreadable"),
                                                  (named_nothing, "naming no image"),
                                                  (unfollowed, "link(s) or folder(s) not followed"),
                                                  (unread, "not read before the interruption")) if k]
        review = sum(r.verdict == NEEDS_REVIEW_VERDICT for r in counted)
        two = sum(bool(r.other_cell) for r in counted)  # counted photos with a second white cell
        print(f"\nDifferential of the {len(counted)} image(s) read as white cells"
              + (f" (left out: {', '.join(left_out)})" if left_out else "")
              # Not "check those and the count stands": half of a 110-image smear's errors were confident.
              + (f"; {review} {'needs' if review == 1 else 'need'} review: check {'it' if review == 1 else 'them'} by "
                 "eye, and any share out of its range, before using the count" if review else "")
              + (f"; {two} of the {len(counted)} {'shows' if two == 1 else 'show'} a second white cell that is not "
                 f"in the count (marked in {'its row' if two == 1 else 'their rows'})" if two else "")
              + ":")
        print("\n".join(differential_lines([r.label for r in counted], misread_figures(pred.card))))
    if unwritten:
        print(f"wbc: error: {lines_shown(str(unwritten))}; the table above is all there is of this run",
              file=sys.stderr)
    elif csv_path:
        why = (f" (interrupted, so the table at {printable(str(args.csv))} was kept)" if kept
               else " (it replaced the table there)" if replaced else "")
        print(f"wrote {printable(str(csv_path))}{why}")
    elif kept:
        print(f"wbc: interrupted: the table at {printable(str(args.csv))} was kept, and {printable(str(kept))}, "
              "where the part read would go, is a file of another kind: no table written", file=sys.stderr)
    if bad:
        print(f"wbc: {bad} of {len(paths)} file(s) could not be used", file=sys.stderr)
    if named_nothing:  # a mistyped path is the user's to fix: scripts see it in the exit status
        print(f"wbc: {named_nothing} row(s) name no image file (each says why)", file=sys.stderr)
    if unfollowed:  # images may be behind them: the count above may lack them
        print(f"wbc: {unfollowed} link(s) or folder(s) in the folders given could not be followed (each named in its row)",
              file=sys.stderr)
    if unread:
        print(f"wbc: interrupted: {unread} of {len(paths)} file(s) not read", file=sys.stderr)
    if unwritten or (args.csv and csv_path is None):  # before an interruption: the file asked for is not there
        return 2
    if unread:
        return 130
    return 1 if named_nothing or unfollowed or bad else 0


def _columns(c: str) -> int:
    """Terminal columns of one character: two where wide (Chinese, Japanese, Korean), none for a mark
    that joins the one before (accents, Thai vowels, a decomposed Hangul syllable's vowel and final
    consonant) or an invisible format character (a zero-width space), else one."""
    if unicodedata.category(c) in ("Mn", "Me", "Cf") or "\u1160" <= c <= "\u11ff":
        return 0
    return 2 if unicodedata.east_asian_width(c) in "WF" else 1


def columns(text: str) -> int:
    """How many terminal columns `text` takes."""
    return len(text) if text.isascii() else sum(map(_columns, text))


def fit(name: str, width: int) -> str:
    """`name` in exactly `width` columns: padded with spaces, or its start cut and shown as "..." (the end
    of a path tells files apart)."""
    used = columns(name)
    if used > width:
        start, used = len(name), 0
        while start and used + _columns(name[start - 1]) <= width - 3:
            start -= 1
            used += _columns(name[start])
        while start < len(name) and not _columns(name[start]):  # a mark cut from its letter would join the dots
            start += 1
        name, used = "..." + name[start:], used + 3
    return name + " " * (width - used)


def other_cell_note(r: Prediction) -> str:
    """A row's words on a second white cell in its photo (positions in the photo's own px)."""
    from wbc.predict import CROP_EACH

    assert r.other_cell is not None
    ox, oy = r.other_cell
    at = f"x={r.cell[0]}, y={r.cell[1]} px" if r.cell else "the crop's centre"
    if r.other_larger:
        return (f"typed the stained mass at {at}, much smaller than the nucleus of another white cell at x={ox}, "
                f"y={oy} px: the crop may be on a piece of a cell or a speck, so it cannot be judged and is left out "
                f"of the count; {CROP_EACH}")
    return f"typed the cell at {at}; another white cell (at least one) at x={ox}, y={oy} px, not typed: {CROP_EACH}"


def cmd_app(args: argparse.Namespace) -> int:
    import subprocess

    from wbc.app.analysis import MAX_UPLOAD_MB
    from wbc.predict import Predictor

    try:
        import streamlit  # noqa: F401
    except ImportError as e:
        raise WbcError("the app needs Streamlit: pip install -e '.[app]'") from e
    Predictor(args.model)  # fail here, in one line, if the model is missing or corrupt
    # Before the address is printed: Streamlit meets a bad address with a traceback, and names a busy
    # port only after wbc has said where the app is.
    _check_address(args.address, args.port)
    env = dict(os.environ)
    if args.model:
        env["WBC_MODEL"] = str(Path(args.model).resolve())
    page = Path(__file__).parent / "app" / "main.py"
    cmd = [sys.executable, "-m", "streamlit", "run", str(page), "--server.headless", "true",
           "--server.port", str(args.port), "--server.address", args.address,
           "--server.maxUploadSize", str(MAX_UPLOAD_MB), "--browser.gatherUsageStats", "false",
           # Users, not developers: no "File change. Rerun" bar when the installed code changes.
           "--server.fileWatcherType", "none", "--server.runOnSave", "false",
           "--client.toolbarMode", "viewer"]
    print(f"wbc app: http://{args.address}:{args.port}  (Ctrl+C stops it)", flush=True)
    if os.name == "posix":
        # Become the server rather than its parent: a service manager's or container's SIGTERM to
        # `wbc app` then stops Streamlit, where a child would outlive its killed parent and hold the port.
        sys.stderr.flush()
        os.execve(sys.executable, cmd, env)
    return subprocess.call(cmd, env=env)


def _check_address(address: str, port: int = 0) -> None:
    """WbcError unless this machine can listen on `address` at `port` (0: the address alone), probed as
    Streamlit binds: IPv6 where the address holds a ":", else IPv4. A `unix://` socket path is
    Streamlit's to check."""
    import errno
    import socket

    if address.startswith("unix://"):
        return
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        where = socket.getaddrinfo(address, 0, family, socket.SOCK_STREAM)[0][4]
    except (socket.gaierror, UnicodeError) as e:
        raise WbcError(f"--address {address}: not an address or host name this machine can resolve ({e})") from e

    def bind(at_port: int) -> None:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is no refusal
            probe.bind((where[0], at_port, *where[2:]))

    try:
        bind(0)  # any free port: the address alone
    except OSError as e:
        raise WbcError(f"--address {address}: not an address of this machine ({e.strerror or e}); "
                       "give localhost, 0.0.0.0 (every network) or one of its own addresses") from e
    if not port:
        return
    try:
        bind(port)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise WbcError(f"port {port} on {address} is in use (another wbc app, or another server): "
                           f"choose another with --port, e.g. --port {port + 1 if port < 65535 else 8501}") from e
        if e.errno == errno.EACCES:
            raise WbcError(f"port {port}: this user may not listen on it (ports below 1024 need root); "
                           "choose one above 1023 with --port, e.g. the default 8501") from e
        raise WbcError(f"port {port} on {address}: cannot listen there ({e.strerror or e})") from e


def cmd_data_sources(args: argparse.Namespace) -> int:
    import json
    from collections import Counter

    from wbc.data import default_data_path, find_images_root, listed
    from wbc.info import CLASSES
    from wbc.io import check_writable_file
    from wbc.sources import (LINKED, TABLE, data_set_files, linked_fields, match_files, originals_near, read_table, summary,
                             write_linked, write_table)

    root = find_images_root(args.data)
    # The data set's folder however it was given (--data, WBC_DATA or the shared copy): dataset-master is in it.
    originals = originals_near(root, args.data or default_data_path())
    out = args.out or TABLE
    check_writable_file(out)
    check_writable_file(out.with_name(LINKED.name))  # written beside the table once it is built: checked first
    paths = {(split, cls, f.name): f for cls, files in data_set_files(root).items() for split, f in files}
    if os.path.realpath(out) == os.path.realpath(TABLE) and TABLE.is_file():  # realpath: a link loop does not raise
        # The package's table is what every tool groups cells by: a partial copy must not shrink it.
        have = set(paths)
        known = {(m.split, m.class_name, m.file_name) for m in read_table(TABLE)}
        if known - have:
            raise WbcError(
                f"{root}: holds {len(known & have)} of the {len(known)} files the shipped table ({TABLE}) "
                f"covers; rebuilding it from them would drop the other {len(known - have)}, and each of those "
                "would then count as a cell of its own (leaky splits, intervals too narrow). Point --data at "
                "the whole data set, or give --out FILE to write a table of these files alone")
    # Each finished class is kept beside the table, which stays whole until the build is.
    partial = out.with_name(out.name + ".partial")
    reuse = [m for t in (out, partial) if args.reuse and t.is_file() for m in read_table(t)]
    kept = 0

    def keep(done: list[Any]) -> None:
        nonlocal kept
        write_table(done, partial)
        kept = len(done)

    try:
        matches = match_files(root, originals, workers=args.workers, reuse=reuse, class_done=keep)
    except BaseException:  # Ctrl+C, a worker's crash: what is done is kept, and said so
        if kept:
            again = shlex.join(["wbc", "data", "sources", "--reuse", *(a for k, v in (
                ("data", args.data), ("out", args.out), ("workers", args.workers)) if v is not None
                for a in (f"--{k}", str(v)))])
            print(f"wbc: stopped; the {kept} files of the classes finished are kept in {partial}: "
                  f"`{again}` goes on from them", file=sys.stderr)
        raise
    write_table(matches, out)
    partial.unlink(missing_ok=True)
    print(json.dumps(summary(matches), indent=1))
    print(f"wrote {out} ({len(matches)} files)")
    # Beside the table (the package's LINKED beside the package's table): the fields labelled twice.
    linked = linked_fields(originals)
    write_linked(linked, out.with_name(LINKED.name))
    print(f"wrote {out.with_name(LINKED.name)} ({len(linked)} field(s) the originals show under two labels)")
    # A class with no files, or none the originals label with it, has no rows: its files (if any) count as
    # cells of their own, and the table's reader cannot tell that from a class the data set lacks.
    found = Counter(cls for _, cls, _ in paths)
    for cls in CLASSES:
        if not any(m.class_name == cls for m in matches):
            print(f"wbc: note: {cls}: " + (f"none of its {found[cls]} file(s) could be matched: the originals in "
                                           f"{originals} hold no field labelled {cls} alone" if found[cls] else
                                           f"no files in {root} (no class folder, or an empty one)")
                  + "; the table has no rows for it", file=sys.stderr)
    if unreadable := [str(paths.get((m.split, m.class_name, m.file_name), m.file_name)) for m in matches if m.unreadable]:
        print(f"wbc: note: {len(unreadable)} file(s) could not be decoded, so they match no field (each counts as "
              f"a cell of its own):\n  {listed(unreadable)}", file=sys.stderr)
    return 0


def _usable_cpus() -> int:
    """The CPUs this process may run on (a container's or taskset's share), not the host's count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def whole_number(low: int, high: int | None = None, why: str = "") -> Callable[[str], int]:
    """An argparse type: a whole number in low..high (no upper bound: None), refused by name otherwise
    (`why` says whence the bounds). The benchmark scripts take their counts with it too."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if n < low or (high is not None and n > high):
            bounds = f"{low} or more" if high is None else f"{low} to {high}"
            raise argparse.ArgumentTypeError(f"{n}: choose {bounds}" + (f" ({why})" if why else ""))
        return n
    return parse


_DEFAULT_DATA = "WBC_DATA, else ../shared/data/blood-cells from the project's folder, not the current one"
DATA_HELP = f"data set folder (default: {_DEFAULT_DATA})"
# A training run keeps the folder it was trained on: its export, evaluation and resume use it again.
RUN_DATA_HELP = (f"data set folder (default: the one a training run, or a model exported from its maker's own "
                 f"images, was trained on, else {_DEFAULT_DATA})")
DRY_RUN_MARK = "DRY_RUN"  # the file a dry run kept with --out holds, saying what it is
DONE_OR_ERROR = "exit status: 0 done; 2 an error, named on stderr; 130 interrupted (Ctrl+C or SIGTERM); 141 the reader of the output went away"


QUIET_HELP = "no progress bars (none is drawn where stderr is not a terminal: a log, a pipe)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wbc", description="White blood cell classification: train, evaluate, export, predict.")
    p.add_argument("--version", action="version", version=f"wbc {__version__}")
    # More threads than CPUs only slow a CPU run, and ONNX Runtime allocates for every thread asked.
    threads = whole_number(1, _usable_cpus(), "the CPUs this process may use")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="get or check the data set")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    dl = dsub.add_parser("download", help="fetch paultimothymooney/blood-cells from Kaggle with kagglehub",
                         epilog=DONE_OR_ERROR)
    dl.add_argument("--out", type=Path, default=None, help="copy it here (default: kagglehub's cache)")
    dl.set_defaults(func=cmd_data_download)
    ck = dsub.add_parser("check", help="find the images and count files and cells per split",
                         epilog="exit status: 0 done; 1 with --verify, files that cannot be read (named above it), "
                                "or a TRAIN class folder with no images; "
                                "2 an error, named on stderr; 130 interrupted (Ctrl+C or SIGTERM); 141 the reader of the output went away")
    ck.add_argument("--data", type=Path, help=DATA_HELP)
    ck.add_argument("--verify", action="store_true", help="also decode every image and name the bad ones")
    ck.set_defaults(func=cmd_data_check)
    so = dsub.add_parser("sources", help="match every file to the original field (the real cell) it was made from",
                         epilog=DONE_OR_ERROR)
    so.add_argument("--data", type=Path, help=DATA_HELP)
    so.add_argument("--out", type=Path, help="table to write (default: the one shipped in the package, which a data "
                    "set lacking some of its files may not replace)")
    so.add_argument("--workers", type=whole_number(1), default=2, help="processes (default: 2)")
    so.add_argument("--reuse", action="store_true", help="keep the fields of files the table at --out already matched, "
                    "and those of an interrupted build (kept beside it as .partial)")
    so.set_defaults(func=cmd_data_sources)

    t = sub.add_parser("train", help="train a network on TRAIN with a cell-grouped validation split",
                       epilog=DONE_OR_ERROR)
    t.add_argument("--model", choices=["wbcnet", "seed"], help="network (default: wbcnet)")
    t.add_argument("--out", type=Path,
                   help="run folder (default: runs/<model>-seed<seed>, with -fold<K> or -all for those runs)")
    t.add_argument("--data", type=Path, help=f"{DATA_HELP}; --resume keeps the run's unless given")
    t.add_argument("--epochs", type=int, help="maximum epochs (default: 80 wbcnet, 50 seed)")
    t.add_argument("--lr", type=float, help="peak learning rate (default: 2e-3 wbcnet, 1e-4 seed)")
    t.add_argument("--batch-size", type=int, help="default: 64")
    # train.OPTIMIZERS, written out so that the parser needs no torch (a test compares them).
    t.add_argument("--optimizer", choices=["adamw", "adam", "sgd"],
                   help="adamw, adam or sgd (Nesterov momentum 0.9) (default: adamw wbcnet, adam seed)")
    t.add_argument("--seed", type=int, help="seed of the split, shuffling and augmentation (default: 0)")
    t.add_argument("--split-seed", type=int, help="seed of the validation split alone (default: --seed)")
    t.add_argument("--fold", type=int, help="which cell-grouped fold to hold out, 0..k-1 with k = 1/val-fraction "
                   "(default: 0); folds 0..4 under one split seed cross-validate TRAIN")
    t.add_argument("--all-cells", action="store_true",
                   help="hold out no validation cells: train on all of TRAIN for exactly --epochs, for a recipe "
                        "that cross-validation (benchmarks/cv.py) has fixed; export it with --calibration")
    t.add_argument("--teacher", type=Path, action="append",
                   help="a finished run (folder with best.pt) to distil from; repeat for an ensemble. "
                        "Teachers must hold out the same validation cells (same --split-seed)")
    t.add_argument("--distill", type=float, help="weight of the teachers' soft targets (default: 0.7)")
    t.add_argument("--patience", type=int, help="early stopping patience in epochs (default: 20 wbcnet, 10 seed)")
    t.add_argument("--val-fraction", type=float, help="share of TRAIN's cells held out for validation: one of "
                   "round(1 / share) cell-grouped folds, so 0.2 holds out 1 of 5, 0.34 1 of 3 and 0.4 to 0.49 1 of 2 "
                   "(below 0.5; default: 0.2)")
    t.add_argument("--limit-cells", type=int, help="use only the first N cells of each class (quick runs; at least "
                   "one per fold: 5 with the default --val-fraction)")
    t.add_argument("--threads", type=threads, help="PyTorch CPU threads (default: 2)")
    t.add_argument("--device", help="train on this torch device: cpu (default), or cuda (cuda:N) where a GPU and a "
                   "CUDA build of torch are present; a GPU run differs from a CPU run in the last digits")
    # train.AUGMENT's keys and "none", written out so that the parser needs no torch (a test compares them).
    t.add_argument("--augment", choices=["robust", "robust-wide", "robust-erase", "robust-exposure",
                                         "robust-overexposed", "robust-erase-overexposed", "robust-erase-sharp",
                                         "basic", "none"],
                   help="augmentation recipe (default: robust-erase for wbcnet, basic for seed; robust: without "
                        "cutout; robust-wide: twice the "
                        "stain jitter; robust-erase: with cutout; robust-exposure: brightness x0.55-1.45 and 15%% "
                        "white-balance jitter; robust-overexposed: a quarter of the images overexposed x1.15-1.5 "
                        "and clipped; robust-erase-overexposed: robust-erase with that quarter; robust-erase-sharp: "
                        "robust-erase warped bicubic, its edge repeated rather than mirrored)")
    t.add_argument("--mixup", type=float, metavar="ALPHA",
                   help="blend pairs of training images and their labels, weight ~ Beta(ALPHA, ALPHA); 0 is off "
                        "(default: 0.4 for wbcnet, off for seed)")
    t.add_argument("--label-smoothing", type=float, metavar="EPS",
                   help="share of each target spread over the other classes (default: 0.2 for wbcnet, 0 for seed)")
    t.add_argument("--pair-smoothing", type=float, metavar="EPS",
                   help="share of an eosinophil's target moved to neutrophil and back, on top of label smoothing; "
                        "below (1 - label smoothing) / 2 (default: 0)")
    t.add_argument("--weight-decay", type=float, metavar="WD",
                   help="the optimizer's weight decay (AdamW's is decoupled; default: 5e-4 wbcnet, 0 seed)")
    t.add_argument("--ema", type=float, metavar="DECAY",
                   help="keep an exponential moving average of the weights (decay per step, e.g. 0.998) and "
                        "validate and save it as the model (default: off)")
    t.add_argument("--low-res", type=int, nargs=2, metavar=("PX", "EPOCHS"),
                   help="progressive resizing: train the first EPOCHS epochs on PX x PX inputs, the rest at full "
                        "size; an epoch's work shrinks with (PX / input size) squared (default: 64 64 for wbcnet, "
                        "kept at 4/5 of the schedule when --epochs changes; off for seed; 0 0 turns it off)")
    t.add_argument("--low-res-antialias", action="store_true",
                   help="with progressive resizing (wbcnet's default, or --low-res): shrink the crops with an antialiasing filter before the low-resolution "
                        "warp, as a camera of lower resolution would, instead of sampling them sparsely")
    t.add_argument("--context", type=int, metavar="PX",
                   help="cache PX px of field (in the network's input px) around each training crop, so that "
                        "rotations and zoom-outs show real field rather than mirrored; a multiple of 3 for the "
                        "default crop (default: 0)")
    t.add_argument("--window", type=int, metavar="PX",
                   help="crop PX x PX source pixels around the cell (resized to the network's input; default: 160)")
    t.add_argument("--input-size", type=int, metavar="PX",
                   help="resize the crop to PX x PX for the network (default: 96; FLOPs grow with its square)")
    t.add_argument("--widths", type=int, nargs="+", metavar="C",
                   help="wbcnet's channels per stage (default: 24 48 96)")
    t.add_argument("--skip-bad", action="store_true", help="leave out unreadable images instead of stopping")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    t.add_argument("--dry-run", action="store_true",
                   help="one epoch on a few cells per class (5 with the default --val-fraction: one per fold; two "
                        "epochs for progressive resizing, one at each size), to check the set-up; in a temporary folder, "
                        "removed afterwards, unless --out is given")
    t.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="metrics, plots and report.md for a model on TEST or a folder",
                       epilog=DONE_OR_ERROR)
    e.add_argument("--model", help="model folder, .onnx, training checkpoint .pt or a run folder (its best.pt) (default: WBC_MODEL, else the shipped model)")
    e.add_argument("--split", choices=["TEST", "TEST_SIMPLE", "TRAIN"],
                   help="the data set's split to score: TEST (default) is the one published figures use; TEST_SIMPLE "
                        "71 unaugmented files of 66 of TEST's 68 cells; TRAIN the images the model learnt from, so "
                        "it flatters")
    e.add_argument("--folder", type=Path, help="evaluate this folder of class folders instead of a split")
    e.add_argument("--data", type=Path, help=RUN_DATA_HELP)
    e.add_argument("--out", type=Path, default=Path("evaluation"), help="output folder (default: evaluation)")
    e.add_argument("--skip-bad", action="store_true", help="leave out unreadable images instead of stopping")
    e.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    e.set_defaults(func=cmd_evaluate)

    x = sub.add_parser("export", help="write model.onnx and model.json from a run, checked against PyTorch",
                       epilog=DONE_OR_ERROR)
    x.add_argument("run", type=Path, help="run folder (its best.pt) or a checkpoint .pt")
    x.add_argument("--out", type=Path, default=Path("export"), help="output folder (default: export)")
    x.add_argument("--data", type=Path, help=f"{RUN_DATA_HELP}: its images check the export and --evaluate scores TEST; "
                   "--out may not lie in its splits")
    x.add_argument("--evaluate", action="store_true", help="also evaluate on TEST into the card and report.md (a "
                   "failed export or evaluation leaves the folder's model as it was)")
    x.add_argument("--skip-bad", action="store_true", help="leave out unreadable images (validation, parity check "
                   "and --evaluate's TEST) instead of stopping; for a run trained with --skip-bad, it is on for "
                   "validation and the parity check")
    x.add_argument("--no-tta", action="store_true", help=f"predict from one view instead of the {TEST_TIME_VIEWS} rotations")
    x.add_argument("--no-calibrate", action="store_true", help="keep temperature 1 instead of fitting it on validation")
    x.add_argument("--calibration", type=Path, metavar="CV_JSON",
                   help="take the temperature and review threshold from a cross-validation of the run's recipe "
                        "(the cv.json of benchmarks/cv.py) instead of the run's validation cells")
    x.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    x.add_argument("--replace-shipped", action="store_true",
                   help="--out may be the shipped model's folder (models/default), which this then replaces")
    x.add_argument("--match-white", action="store_true",
                   help="the card matches a field's white to the data set's before the network where it lies below "
                        "the data set's range (a dimmer or tinted photo)")
    x.set_defaults(func=cmd_export)

    pr = sub.add_parser(
        "predict", help="classify image files or folders with ONNX Runtime",
        formatter_class=argparse.RawDescriptionHelpFormatter,  # the epilog's paragraphs and list as written
        epilog="\n\n".join(textwrap.fill(para, 79) for para in (
            # The verdicts as wbc.predict names them (a test holds them to it; importing it here would slow --help).
            "verdicts (the table's last column): confident: typed at or above the model card's review "
            "threshold; needs review: typed below it, or overexposed: check it by eye (the runner-up type "
            "follows); not a white blood cell, cannot judge: no type given and left out of the count (why "
            "follows).",
            "Only the four types are known: a basophil, a blast or any other cell is read as one of them.",
            "Two or more images end with a differential count: each share with its 95% limits (the counting "
            "error alone), and its place in the adult range from 100 images on.",
            "exit status: 0 every file was read (those called not a white cell included); 1 some file could "
            "not be used, a path names no image, or a link or folder in a folder could not be followed (each "
            "has its row, and the rest are classified); 2 a usage error, no path naming an image at all, a bad "
            "model or a CSV that cannot be written; 130 interrupted, by Ctrl+C or SIGTERM (the files read are reported); 141 the "
            "reader of the output went away")))
    pr.add_argument("paths", nargs="+", help="image files or folders (searched recursively); a name starting with "
                                             "'-' is given as ./-name, or after --")
    pr.add_argument("--model", help="model folder or .onnx (default: WBC_MODEL, else the shipped model)")
    pr.add_argument("--csv", type=Path,
                    help="also write file, class, confidence, all probabilities, the flags, the cells' places and the "
                         "verdict here (its folder is made if missing)")
    pr.add_argument("--threads", type=threads, help="ONNX Runtime threads (default: all cores)")
    pr.add_argument("--single-view", action="store_true",
                    help="one view instead of the card's test-time views: faster, a little less accurate")
    pr.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    pr.set_defaults(func=cmd_predict)

    a = sub.add_parser("app", help="start the web app (Streamlit) on the shipped model",
                       epilog="exit status: 0 stopped (Ctrl+C, or a service manager's SIGTERM); 2 the model, port "
                              "or address cannot be used, named on stderr before the server starts")
    a.add_argument("--model", help="model folder or .onnx (default: WBC_MODEL, else the shipped model)")
    a.add_argument("--port", type=whole_number(1, 65535, "a TCP port"), default=8501, help="default: 8501")
    a.add_argument("--address", default="localhost", help="default: localhost; 0.0.0.0 to serve the network")
    a.set_defaults(func=cmd_app)
    return p


def main(argv: list[str] | None = None) -> int:
    if (data := sys.modules.get("wbc.data")) is not None:  # a second command in one process says its notes again
        data.forget_notes()
    for stream in (sys.stdout, sys.stderr):
        # A file name the terminal's encoding cannot show (latin-1, a Windows code page, bytes that are
        # not UTF-8) is printed escaped, not fatal halfway through a table.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    with terminate_as_interrupt():
        return _run(args)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (what `timeout`, a batch scheduler or `kill` sends) raised as Ctrl+C is, for the block: what was
    done is kept as for Ctrl+C (`wbc predict`'s table of the files read, a training's --resume), where the
    process ended with nothing said. The handler before is put back after (tests call `main` in one process)."""
    try:
        old = signal.signal(signal.SIGTERM, signal.default_int_handler)
    except ValueError:  # not the main thread: the main thread's handler stands
        yield
        return
    try:
        yield
    finally:
        if old is not None:  # None: a handler not set from Python, which cannot be put back from it
            signal.signal(signal.SIGTERM, old)


def _run(args: argparse.Namespace) -> int:
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # a closed pipe surfaces here, not at interpreter exit
        return code
    except WbcError as e:
        print(f"wbc: error: {lines_shown(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("wbc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        if not _stdout_reader_gone():
            raise  # another pipe or socket broke: not ours to hide
        # `wbc ... | head`: the reader has what it wanted. Point stdout at /dev/null so that the
        # interpreter's own flush at exit does not fail again; 141 is what a shell reports for SIGPIPE.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141
    except OSError as e:  # a file system refusal the checks before the work could not foresee
        where = f"{e.filename}: " if e.filename else ""
        print(f"wbc: error: {lines_shown(f'{where}{e.strerror or e}')}", file=sys.stderr)
        return 2


def _stdout_reader_gone() -> bool:
    """Whether stdout's reader has gone: poll reports an error (a pipe) or a hang-up (a socket) on it."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # no file descriptor: captured or replaced
        return False
    if not hasattr(select, "poll"):
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))


if __name__ == "__main__":
    sys.exit(main())
