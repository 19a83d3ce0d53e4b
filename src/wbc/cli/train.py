"""`wbc train`, and what the verbs on a run share: the training extras imported on demand, the run's data folder."""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
import tempfile
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wbc.errors import WbcError, install_command
from wbc.io import atomic_write_text

if TYPE_CHECKING:  # the training extras (torch) load only when a command needs them
    from wbc.recipe import TrainConfig


DRY_RUN_MARK = "DRY_RUN"  # the file a dry run kept with --out holds, saying what it is


def training_extra(module: str, name: str) -> Any:
    """`name` from a module that needs the training extras; a one-line error where they are missing."""
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as e:
        # Evaluating an ONNX model needs scikit-learn and matplotlib, not PyTorch (gigabytes from PyPI).
        extra = "eval" if (e.name or "").split(".")[0] in ("sklearn", "matplotlib") else "train"
        # From PyPI, torch==2.13.0 for Linux is the CUDA build (gigabytes): the CPU one named first, as the README does
        cpu = (f"; where pip reads PyPI, first {sys.executable} -m pip install torch==2.13.0 --index-url "
               "https://download.pytorch.org/whl/cpu for the CPU build (PyPI's is CUDA's, gigabytes)")
        raise WbcError(f"this command needs the {extra} extras ({e.name} is not installed): {install_command(extra)}"
                       + (" (or the train extras, which hold them)" if extra == "eval" else cpu)) from e


def cmd_train(args: argparse.Namespace) -> int:
    from wbc.io import check_writable_folder

    fit, preset = training_extra("wbc.train", "fit"), training_extra("wbc.recipe", "preset")
    cfg = preset(args.model or "wbcnet")
    if args.epochs is not None and args.low_res is None:
        cfg = training_extra("wbc.recipe", "with_epochs")(cfg, args.epochs)
    overrides: dict[str, Any] = {
        k: v for k, v in {
            "epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size, "seed": args.seed,
            "patience": args.patience, "val_fraction": args.val_fraction, "limit_cells": args.limit_cells,
            "data": training_extra("wbc.folders", "kept_data_folder")(args.data) if args.data else None,
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
        cfg = replace(cfg, data=training_extra("wbc.folders", "kept_data_folder")(None))
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
        training_extra("wbc.recipe", "check_config")(cfg)
    if args.dry_run:  # one epoch, or with progressive resizing (wbcnet's default) one at each size
        # Enough cells per class for one in each of the round(1 / val_fraction) cell-grouped folds.
        folds = round(1 / cfg.val_fraction) if 0 < cfg.val_fraction < 0.5 else 0  # else refused with the config
        few = 3 if cfg.fold is None else max(3, folds)
        cfg = replace(cfg, epochs=2 if cfg.low_res_epochs else 1, limit_cells=cfg.limit_cells or few,
                      low_res_epochs=min(cfg.low_res_epochs, 1))
    try:
        model_cfg = training_extra("wbc.model", "default_config")(cfg.model, args.window, args.input_size, args.widths)
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
    training_extra("wbc.evaluate", "check_out_of")(out, training_extra("wbc.evaluate", "data_set_splits")(cfg.data))
    if not args.resume and (out / DRY_RUN_MARK).exists() and (out / "last.pt").exists():
        # It said "already holds a run; pass --resume", and --resume then "finished": the real run never started.
        raise WbcError(f"{out}: holds a dry run (--dry-run --out), not a run to continue; choose another --out for "
                       "the real one, or remove this folder")
    try:
        run = fit(cfg, out, resume=args.resume, progress=not args.quiet, model_cfg=model_cfg)
    except KeyboardInterrupt:
        if (out / "last.pt").exists():
            print(f"wbc: interrupted; {_how_to_go_on(out)}", file=sys.stderr)
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


def _how_to_go_on(out: Path) -> str:
    """What a stopped run's last.pt keeps, and how to go on: the interruption said only how to resume, not whether an
    hour of epochs or none of them was kept; and a run interrupted once its last epoch was saved has nothing to
    continue."""
    resume = f"continue the run with: wbc train --out {shlex.quote(str(out))} --resume"
    try:
        state = training_extra("wbc.checkpoint", "load_checkpoint")(out / "last.pt")
    except WbcError:
        return resume
    done, epochs = state["epoch"] + 1, state["train_config"].get("epochs")
    if state.get("stopped"):
        return f"the run had finished (epoch {done}): its best.pt is the model to export, `wbc export {shlex.quote(str(out))}`"
    return f"{out / 'last.pt'} keeps epoch {done}{f' of {epochs}' if epochs else ''} (the epoch in progress is lost); {resume}"


def _check_resume(out: Path, asked: dict[str, Any], network: dict[str, Any],
                  all_cells: bool) -> tuple[TrainConfig, int | None]:
    """--resume continues a run as it was made: refuse, by name, every option given on the command
    line that differs from the stored run rather than silently ignoring it. Where and how fast it runs
    (--data, --threads, --skip-bad, --device) may change. Returns the TrainConfig to resume with, and
    the epoch a finished run ended at (None for one to continue)."""
    machine = training_extra("wbc.recipe", "MACHINE_SETTINGS")
    if not (out / "last.pt").exists():  # it said "last.pt: no such checkpoint", naming a file the user never made
        if training_extra("wbc.run_folder", "being_written")(out):  # it said "no run in it", and a new start was refused
            raise WbcError(f"{out}: --resume: another `wbc train` is writing to this run now, before its first epoch "
                           "ended; wait for it to end, or choose another --out")
        held = "no such folder" if not out.exists() else "no run in it: it holds no last.pt, which each epoch writes"
        raise WbcError(f"{out}: --resume: {held}; give the --out of the run to continue, or leave --resume out to "
                       "start one")
    state = training_extra("wbc.run_folder", "resumable_state")(out)
    # Settings an older checkpoint lacks read as their defaults, as fit fills them.
    stored_cfg = training_extra("wbc.checkpoint", "stored_config")(state, out / "last.pt")
    net = training_extra("wbc.model", "config_from_dict")(stored_cfg.model, state["model_config"])
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
    if not Path(os.path.expanduser(stored)).is_dir():
        relative = "" if Path(stored).is_absolute() else ", relative to the folder its training started in"
        raise WbcError(f"{stored}: the data folder {run} was trained on (kept in it{relative}) is not found "
                       "from here; give --data")
    return stored
