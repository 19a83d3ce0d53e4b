"""Cell-grouped cross-validation of a training recipe, and the calibration it yields.

TRAIN's cells are dealt into k = round(1 / val_fraction) class-stratified folds (`TrainConfig.fold`).
The recipe is trained once per fold; every TRAIN file is then predicted (8 views) by the one model
that never saw its cell. The pooled out-of-fold predictions score the recipe on every cell, and fit
one temperature and review threshold: the calibration of a model trained with the same recipe on
every cell (`TrainConfig.fold = None`), which has no validation cells of its own.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from wbc.calibration import REVIEW_COVERAGE, fit_temperature, review_threshold, tta_probs
from wbc.errors import CheckpointError, DataError
from wbc.train import TrainConfig, fit, load_checkpoint

IGNORED = {"data", "threads", "skip_bad", "fold"}  # where and on which fold a run was made, not its recipe


def recipe(cfg: TrainConfig | dict[str, Any]) -> dict[str, Any]:
    """What a run learns by: its TrainConfig as saved (JSON types), less fold and machine."""
    d = asdict(cfg) if isinstance(cfg, TrainConfig) else cfg
    return {k: v for k, v in json.loads(json.dumps(d)).items() if k not in IGNORED}


def same_recipe(saved: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """Names of the settings in which a saved config differs (a key it lacks counts as the default)."""
    defaults = recipe(TrainConfig())
    return [k for k, v in want.items() if saved.get(k, defaults.get(k)) != v]


def saved_config(run: Path) -> dict[str, Any]:
    try:
        return json.loads((run / "config.json").read_text())["train"]
    except (OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"{run}: config.json is missing or damaged") from e


def fold_run(cfg: TrainConfig, run: Path, progress: bool = False) -> bool:
    """Train fold `cfg.fold` into `run` unless it is finished there (an interrupted run continues);
    a run made with another recipe is refused. True when it was reused."""
    try:
        finished = bool(load_checkpoint(run / "last.pt").get("stopped", False))
        resume = True
    except CheckpointError:
        finished, resume = False, False
    if resume:
        differ = same_recipe(saved_config(run), recipe(cfg))
        if differ:
            raise CheckpointError(f"{run}: not the same recipe as this cross-validation ({', '.join(differ)} differ)")
    if not finished:
        fit(cfg, run, resume=resume, progress=progress)
    return finished


def folds_of(cfg: TrainConfig) -> int:
    return round(1 / cfg.val_fraction)


def cross_validate(cfg: TrainConfig, runs: dict[int, Path], data: str | Path | None = None,
                   progress: bool = False) -> dict[str, Any]:
    """Train (or reuse) one run per fold, then pool their out-of-fold predictions (see module doc)."""
    from wbc.metrics import compute_metrics
    from wbc.ship import card_metrics, checkpoint_validation_logits

    k = folds_of(cfg)
    if sorted(runs) != list(range(k)):
        raise DataError(f"cross-validation needs a run for each of the folds 0..{k - 1}, got {sorted(runs)}")
    logits, ys, cells, per_fold = [], [], [], {}
    for fold, run in runs.items():
        reused = fold_run(replace(cfg, fold=fold), run, progress)
        lg, y, c = checkpoint_validation_logits(run / "best.pt", data, views=8)
        per_fold[str(fold)] = {"run": str(run), "reused": reused, "files": len(y), "cells": len(set(c)),
                               "temperature": fit_temperature(lg, y),
                               "accuracy": float((tta_probs(lg).argmax(1) == y).mean())}
        logits.append(lg)
        ys.append(y)
        cells += c
    lg, y = np.concatenate(logits, axis=1), np.concatenate(ys)
    t = fit_temperature(lg, y)
    out: dict[str, Any] = {"recipe": recipe(cfg), "temperature": t, "folds": per_fold,
                           "review_threshold": review_threshold(tta_probs(lg, t), REVIEW_COVERAGE)}
    for name, temp in (("raw", 1.0), ("calibrated", t)):
        probs = tta_probs(lg, temp)
        out[name] = card_metrics(compute_metrics(probs, y, cells))
        out[name]["nll"] = float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1)).mean())
    return out


def calibration_from(cv_json: str | Path, run: str | Path) -> dict[str, Any]:
    """The temperature and review threshold of a cross-validation, for a run of the same recipe."""
    try:
        cv = json.loads(Path(cv_json).read_text())
        t, threshold, want = float(cv["temperature"]), float(cv["review_threshold"]), cv["recipe"]
        n, cells = cv["calibrated"]["n_files"], cv["calibrated"]["n_cells"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{cv_json}: not a cross-validation result of benchmarks/cv.py ({e})") from e
    differ = same_recipe(saved_config(Path(run)), want)
    if differ:
        raise CheckpointError(f"{cv_json}: cross-validates another recipe than {run} ({', '.join(differ)} differ)")
    return {
        "fitted_on": f"{n} out-of-fold files of {cells} cells: {len(cv['folds'])}-fold cell-grouped "
                     f"cross-validation of the recipe ({Path(cv_json).as_posix()})",
        "temperature": t, "review_threshold": threshold,
        "val_ece_before": cv["raw"]["ece"], "val_ece_after": cv["calibrated"]["ece"],
        "val_accuracy": cv["calibrated"]["accuracy"],
    }
