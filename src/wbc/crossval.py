"""Cell-grouped cross-validation of a training recipe, and the calibration it yields.

TRAIN's cells are dealt into k = round(1 / val_fraction) class-stratified folds (`TrainConfig.fold`).
The recipe is trained once per fold (each with its own initial-weight seed); every TRAIN file is then predicted (8 views) by the last epoch
of the one model that never saw its cell. The pooled out-of-fold predictions score the recipe on
every cell, and fit one temperature (plus a confidence map where, left out fold by fold, it helps)
and review threshold: the calibration of a model trained with
the same recipe on every cell (`TrainConfig.fold = None`, whose model is also its last epoch), which
has no validation cells of its own.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from wbc.calibration import (
    REVIEW_COVERAGE,
    apply_confidence_map,
    fit_confidence_map,
    fit_mapped_calibrator,
    fit_temperature,
    fit_temperature_calibrator,
    left_out,
    nll,
    review_threshold,
    tta_probs,
)
from wbc.checkpoint import load_checkpoint
from wbc.errors import CheckpointError, CheckpointNotPermitted, DataError
from wbc.io import atomic_write_bytes, read_json
from wbc.model import SeedConfig, WbcNetConfig, config_from_dict, config_to_dict, default_config
from wbc.card import calibration_figures
from wbc.recipe import MACHINE_SETTINGS, TrainConfig
from wbc.run_folder import read_val_cells, run_split
from wbc.train import fit

IGNORED = {*MACHINE_SETTINGS, "fold"}  # where and on which fold a run was made, not its recipe
SEEDS = {"seed", "split_seed"}  # a calibration carries over to another seed of the same recipe
# Early stopping and best-epoch choice: an all-cells run uses neither, and the cross-validation
# scores the folds' last epochs (cv.json records each fold's epochs_run; calibration_from refuses
# to calibrate an all-cells run on folds that stopped early).
STOPPING = {"patience", "monitor"}
# Views every held-out file is predicted under: all 8, so that any subset can be scored from the cache.
OOF_VIEWS = 8


def recipe(cfg: TrainConfig | dict[str, Any]) -> dict[str, Any]:
    """What a run learns by: its TrainConfig as saved (JSON types), less fold and machine."""
    d = asdict(cfg) if isinstance(cfg, TrainConfig) else cfg
    return {k: v for k, v in json.loads(json.dumps(d)).items() if k not in IGNORED}


def _effective(d: dict[str, Any]) -> dict[str, Any]:
    """A saved recipe with the defaults of settings it lacks, and a split seed of None as the run's seed (as
    `wbc train` splits by it: a plain run's null is seed 0's)."""
    e = {**recipe(TrainConfig()), **d}
    return {**e, "split_seed": e.get("seed") if e.get("split_seed") is None else e["split_seed"]}


def differences(saved: dict[str, Any], want: dict[str, Any], ignore: set[str] = frozenset()) -> list[str]:
    """Settings in which two saved recipes differ, as `_effective` reads them."""
    keys = (set(saved) | set(want)) - IGNORED - set(ignore)
    a, b = _effective(saved), _effective(want)
    return sorted(k for k in keys if a.get(k) != b.get(k))


def differences_shown(saved: dict[str, Any], want: dict[str, Any], there: str, asked: str,
                      ignore: set[str] = frozenset()) -> list[str]:
    """`differences`, each with both values ("lr (0.002 there, 0.001 asked)"): a name alone sent the user
    to read two JSON files to learn what to change."""
    a, b = _effective(saved), _effective(want)
    return [f"{k} ({a.get(k)} {there}, {b.get(k)} {asked})" for k in differences(saved, want, ignore)]


def saved_config(run: Path) -> dict[str, Any]:
    """The run's config.json: {"train": TrainConfig as saved, "model": network and preprocessing, ...}."""
    try:
        cfg = read_json(run / "config.json")
        if not isinstance(cfg.get("train"), dict) or not isinstance(cfg.get("model"), dict):
            raise ValueError("no train or model section")
        return cfg
    except (OSError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{run}: config.json is missing or damaged ({e})") from e


def network(model: str, cfg: SeedConfig | WbcNetConfig | dict[str, Any] | None = None) -> dict[str, Any]:
    """Network `model`'s config and preprocessing as config.json saves it (JSON types): `cfg`, or one
    saved (read through config_from_dict, which gives fields that older runs lack the values they
    had), or the default."""
    if isinstance(cfg, dict):
        cfg = config_from_dict(model, cfg)
    return json.loads(json.dumps(config_to_dict(cfg or default_config(model))))


def check_reusable(cfg: TrainConfig, run: Path,
                   model_cfg: SeedConfig | WbcNetConfig | None = None) -> tuple[bool, bool]:
    """(finished, resumable) of what `run` holds for `cfg` (network `model_cfg`, default the recipe's);
    a run made there with another recipe, network or on another fold raises CheckpointError."""
    finished, resume = False, (run / "last.pt").exists()
    if resume:  # one that cannot be read is named now, not after the folds before it have trained
        try:
            state = load_checkpoint(run / "last.pt")
        except CheckpointNotPermitted:  # a whole fold: not to remove
            raise
        except CheckpointError as e:
            raise CheckpointError(f"{e}; remove {run} to train this fold afresh") from e
        finished = bool(state.get("stopped", False))
    if resume:
        config = saved_config(run)
        saved = config["train"]
        # Patience only matters if it stops a run: one that ran all its epochs is the same either way.
        ran_all = finished and int(state["epoch"]) + 1 == cfg.epochs
        differ = differences_shown(saved, recipe(cfg), "there", "asked", ignore={"patience"} if ran_all else set())
        if saved.get("fold", 0) != cfg.fold:
            differ.append(f"fold ({saved.get('fold', 0)} there, {cfg.fold} asked)")
        if network(cfg.model, config["model"]) != network(cfg.model, model_cfg):
            differ.append("network or preprocessing")
        if differ:
            raise CheckpointError(f"{run}: not the run asked for: it differs in {'; '.join(differ)}")
    return finished, resume


REUSED, RESUMED, TRAINED = "reused", "resumed", "trained"  # what `train_or_reuse` did with a run


def train_or_reuse(cfg: TrainConfig, run: Path, progress: bool = False,
                   model_cfg: SeedConfig | WbcNetConfig | None = None) -> str:
    """Train `cfg` (network `model_cfg`, default the recipe's) into `run` unless it is finished there
    (an interrupted run continues); a run made with another recipe, network or on another fold is
    refused. REUSED, RESUMED or TRAINED: what was done."""
    finished, resume = check_reusable(cfg, run, model_cfg)
    # Said as each run begins: a resumed fold showed only "epoch 2" after its header, a reused one nothing
    # until the summary at the end.
    print(f"{run}: " + ("finished before, reused" if finished else "interrupted before, resumed" if resume
                        else "training"), flush=True)
    if finished:
        return REUSED
    fit(cfg, run, resume=resume, progress=progress, model_cfg=model_cfg)
    return RESUMED if resume else TRAINED


def folds_of(cfg: TrainConfig) -> int:
    return round(1 / cfg.val_fraction)


def fold_config(cfg: TrainConfig, fold: int) -> TrainConfig:
    """The recipe's run for one fold: the folds of split seed `cfg.seed`, and its own initial-weight
    seed `cfg.seed + fold`, so that the fold runs are also seeds of the recipe."""
    split = cfg.seed if cfg.split_seed is None else cfg.split_seed
    return replace(cfg, fold=fold % folds_of(cfg), seed=split + fold, split_seed=split)


def tempered_left_out(fold_logits: list[np.ndarray], fold_ys: list[np.ndarray]) -> np.ndarray | None:
    """The folds' probabilities (sum N_k, 4), each fold's view logits (V, N_k, 4) tempered by the temperature fitted
    on the other folds (`calibration.left_out`); None under two folds."""
    return left_out(fold_logits, fold_ys, fit_temperature_calibrator) if len(fold_logits) > 1 else None


def confidence_map_check(fold_logits: list[np.ndarray], fold_ys: list[np.ndarray],
                         tempered: np.ndarray) -> dict[str, Any]:
    """Does a confidence map on top of the temperature help on cells it was not fitted on? Leave one
    fold out: both are fitted on the other folds' view logits (V, N_k, 4) and labels, applied to it,
    and the pooled results compared (`tempered`: the temperature's, `tempered_left_out`). Adopted only if
    the map lowers the ECE without raising the NLL."""
    from wbc.metrics import expected_calibration_error

    y = np.concatenate(fold_ys)
    a, b = tempered, left_out(fold_logits, fold_ys, fit_mapped_calibrator)
    out = {"ece_temperature": expected_calibration_error(a, y), "ece_mapped": expected_calibration_error(b, y),
           "nll_temperature": nll(a, y), "nll_mapped": nll(b, y)}
    out["adopted"] = bool(out["ece_mapped"] < out["ece_temperature"] and out["nll_mapped"] <= out["nll_temperature"])
    return out


def shown_ece(cv: dict[str, Any]) -> float | None:
    """ECE of what a model calibrated by this cross-validation shows (the temperature, plus the map
    where adopted), each fold calibrated on the others; None for results from before that check."""
    check = cv.get("confidence_map_check", {})
    if "ece_mapped" not in check:
        return None
    return float(check["ece_mapped" if cv.get("confidence_map") else "ece_temperature"])


def run_label(run: str | Path) -> str:
    """A run folder's name in a table; a fold run (cv/NAME/foldK) is named by its cross-validation too,
    since every cross-validation's folds share their names."""
    run = Path(run)
    return f"{run.parent.name}/{run.name}" if run.name.startswith("fold") else run.name


def finished_folds(cv: Path) -> list[Path]:
    """The fold runs (cv/foldK) that ran to their end; an interrupted one would score a half-trained network."""
    runs = []
    for p in sorted(cv.glob("fold*")):
        try:
            if load_checkpoint(p / "last.pt").get("stopped"):
                runs.append(p)
        except CheckpointError:
            continue
    return runs


def fold_logits(run: Path, data: str | Path | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A fold run's held-out view logits (8, N, 4), labels (N,) and cells from its last epoch, cached
    beside its last.pt (oof_logits.npz) until last.pt changes (size or mtime): rendering, calibration and ensemble
    comparisons then cost no second pass over the images. The cache is keyed on the checkpoint alone:
    `data` must be the same data set each time (it is the fold's TRAIN cells)."""
    from wbc.ship import checkpoint_validation_logits

    cache, ckpt = run / "oof_logits.npz", run / "last.pt"
    if not ckpt.is_file():
        raise CheckpointError(f"{ckpt}: no such checkpoint (the fold run has not finished an epoch)")
    st = ckpt.stat()
    # The checkpoint's size and mtime in ns, stored in the cache: a copied, restored or retrained
    # last.pt differs in one of them even where a whole-second mtime comparison would not see it.
    source = np.array([st.st_size, st.st_mtime_ns], dtype=np.int64)
    if cache.exists():
        try:
            with np.load(cache) as z:
                if np.array_equal(z["source"], source):
                    return z["logits"], z["y"], [str(c) for c in z["cells"]]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # a damaged or older cache is rebuilt below
    lg, y, cells = checkpoint_validation_logits(ckpt, data, views=OOF_VIEWS)
    buf = io.BytesIO()
    np.savez_compressed(buf, logits=lg, y=y, cells=np.array(cells), source=source)
    atomic_write_bytes(cache, buf.getvalue())
    return lg, y, cells


def cross_validate(cfg: TrainConfig, runs: dict[int, Path], data: str | Path | None = None,
                   progress: bool = False, model_cfg: SeedConfig | WbcNetConfig | None = None) -> dict[str, Any]:
    """Train (or reuse) one run per fold, then pool their out-of-fold predictions (see module doc)."""
    k = folds_of(cfg)
    if not runs or not set(runs) <= set(range(k)):
        raise DataError(f"cross-validation takes runs of the folds 0..{k - 1}, got {sorted(runs)}")
    # Every fold's folder is checked before any trains: a mismatch found at fold 3 would otherwise
    # come after hours of training and leave a folder of two recipes.
    for fold, run in sorted(runs.items()):
        check_reusable(fold_config(cfg, fold), run, model_cfg)
    logits, ys, cells, per_fold, models = [], [], [], {}, []
    for fold, run in sorted(runs.items()):
        done = train_or_reuse(fold_config(cfg, fold), run, progress, model_cfg)
        models.append(network(cfg.model, saved_config(run)["model"]))
        lg, y, c = fold_logits(run, data)
        per_fold[str(fold)] = {"run": str(run), "reused": done == REUSED, "done": done, "files": len(y), "cells": len(set(c)),
                               "epochs_run": int(load_checkpoint(run / "last.pt")["epoch"]) + 1,
                               "temperature": fit_temperature(lg, y),
                               "accuracy": float((tta_probs(lg).argmax(1) == y).mean())}
        logits.append(lg)
        ys.append(y)
        cells += c
    if any(m != models[0] for m in models):
        raise CheckpointError("the fold runs do not share one network and preprocessing (config.json, model)")
    if sum(f["cells"] for f in per_fold.values()) != len(set(cells)):
        raise DataError("the folds' validation cells overlap: these runs are not one cross-validation")
    if len(runs) == k:  # every fold: together they hold out every cell the runs split, once
        _, trained, held_out = run_split(next(iter(runs.values())), "train that fold again")
        every = trained | held_out
        if left := sorted(every - set(cells)):
            raise DataError(f"the folds' validation cells leave out {len(left)} of the {len(every)} cells "
                            f"({', '.join(left[:3])}): these runs are not one cross-validation (runs split before "
                            "wbc 0.21 kept a field labelled twice in two folds, and later ones in one); train the "
                            "folds of one version")
    lg, y = np.concatenate(logits, axis=1), np.concatenate(ys)
    t = fit_temperature(lg, y)
    held = tempered_left_out(logits, ys)  # the map's check and the "left_out" figures both read it
    check = confidence_map_check(logits, ys, held) if held is not None else {"adopted": False}
    cmap = fit_confidence_map(tta_probs(lg, t), y) if check["adopted"] else None
    # The review threshold is on the confidences the model will show: temperature, then map.
    shown = apply_confidence_map(tta_probs(lg, t), cmap)
    # A partial cross-validation (some folds) compares recipes on fewer cells; it calibrates nothing.
    # "calibrated" is temperature alone, comparable across recipes; the map's own figures, left out
    # fold by fold, are in confidence_map_check.
    out: dict[str, Any] = {"recipe": recipe(cfg), "model": models[0], "temperature": t, "confidence_map": cmap,
                           "confidence_map_check": check, "folds": per_fold, "folds_total": k,
                           "review_threshold": review_threshold(shown, REVIEW_COVERAGE),
                           "cells": sorted(set(cells))}  # what a run calibrated by it must have trained on
    return {**out, **pooled_figures(lg, y, cells, t, held)}


def pooled_figures(lg: np.ndarray, y: np.ndarray, cells: list[str], t: float,
                   held: np.ndarray | None = None) -> dict[str, dict[str, Any]]:
    """The card's figures of pooled out-of-fold view logits (V, N, 4), "raw" and "calibrated" by the
    temperature `t`, each with its NLL; given `held` (`tempered_left_out` of the folds, in the order `lg`
    pools them), also "left_out": each fold calibrated on the others."""
    from wbc.metrics import compute_metrics
    from wbc.ship import card_metrics

    # The pooled temperature is fitted on the very files "calibrated" scores, and since the views' softmax is
    # averaged after it, it can move a decision: "left_out" decides each fold with the temperature of the others.
    out = {}
    for name, probs in (("raw", tta_probs(lg)), ("calibrated", tta_probs(lg, t)),
                        *((("left_out", held),) if held is not None else ())):
        out[name] = card_metrics(compute_metrics(probs, y, cells))
        out[name]["nll"] = nll(probs, y)
    return out


def _folds_cells(cv: dict[str, Any]) -> set[str] | None:
    """The cells a cross-validation written before it kept them ("cells") split, from its first fold run's
    split.json where that run is still there; else None."""
    try:
        split = read_json(Path(next(iter(cv["folds"].values()))["run"]) / "split.json")
        return set(split["train_cells"]) | set(split["val_cells"])
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        return None


def _check_same_cells(cv_json: str | Path, run: Path, cv_cells: set[str] | None, n_cells: int) -> None:
    """CheckpointError where the --all-cells `run` trained on other cells than the cross-validation calibrated
    on (its cells, where known, else their number): a calibration of another data set's cells was taken unsaid
    (an own-data run with the public data's cv.json)."""
    try:
        trained = set(read_json(run / "split.json")["train_cells"])
    except (OSError, ValueError, KeyError, TypeError):
        return  # a run without its split.json is refused for that where it is read
    known = cv_cells is not None
    if (trained != cv_cells) if known else (len(trained) != n_cells):
        among = f" ({len(trained - cv_cells)} of them not among those)" if known else ""
        raise CheckpointError(f"{cv_json}: cross-validates {len(cv_cells) if known else n_cells} cells, and {run} "
                              f"trained on {len(trained)}{among}: another data set's calibration; cross-validate the "
                              "recipe on the run's data (benchmarks/cv.py --data)")


def calibration_from(cv_json: str | Path, run: str | Path) -> dict[str, Any]:
    """The temperature and review threshold of a cross-validation, for a run of the same recipe and
    network trained on every cell (a run with validation cells is calibrated on them instead)."""
    run = Path(run)
    try:
        cv = read_json(cv_json)
        calib = {
            "fitted_on": f"{cv['calibrated']['n_files']} out-of-fold files of {cv['calibrated']['n_cells']} cells: "
                         f"{len(cv['folds'])}-fold cell-grouped cross-validation of the recipe "
                         f"({Path(cv_json).as_posix()})",
            "temperature": float(cv["temperature"]), "review_threshold": float(cv["review_threshold"]),
            # Older results have none: temperature alone.
            "confidence_map": cv.get("confidence_map"),
            "val_ece_before": float(cv["raw"]["ece"]), "val_ece_after": float(cv["calibrated"]["ece"]),
            # Fitted and scored on the same cells a map looks too good: its ECE left out fold by fold.
            "val_ece_after_left_out": shown_ece(cv),
            "val_accuracy": float(cv["calibrated"]["accuracy"]),
            "n_files": int(cv["calibrated"]["n_files"]),  # too few warns at export, as a run's own calibration does
        }
        want, model = dict(cv["recipe"]), dict(cv["model"])
        cv_cells = set(cv["cells"]) if "cells" in cv else _folds_cells(cv)
        n_cells = int(cv["calibrated"]["n_cells"])
    except FileNotFoundError as e:
        raise CheckpointError(f"{cv_json}: no such file (benchmarks/cv.py writes a recipe's cv.json under "
                              "runs/cv/NAME/)") from e
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{cv_json}: not a cross-validation result of benchmarks/cv.py ({e})") from e
    # As a model card's: a NaN temperature exported without a word, into a model `wbc predict` then refused.
    calibration_figures(cv, cv_json)
    done, total = len(cv.get("folds", {})), cv.get("folds_total", len(cv.get("folds", {})))
    if done < total:
        raise CheckpointError(f"{cv_json}: a partial cross-validation ({done} of {total} folds) leaves cells out; "
                              "calibrate on one that ran every fold")
    short = {k: f.get("epochs_run") for k, f in cv.get("folds", {}).items()
             if f.get("epochs_run") is not None and f["epochs_run"] < want.get("epochs", 0)}
    if short:
        raise CheckpointError(
            f"{cv_json}: fold runs stopped early ({', '.join(f'fold {k} at epoch {e}' for k, e in short.items())} "
            f"of {want.get('epochs')}), so they are not the model a --all-cells run of the recipe trains for "
            "all its epochs; cross-validate a recipe whose patience lets every fold run its epochs")
    if read_val_cells(run):
        raise CheckpointError(f"{run}: holds out validation cells, so it is calibrated on them; "
                              "--calibration is for a run trained with --all-cells")
    _check_same_cells(cv_json, run, cv_cells, n_cells)
    saved = saved_config(run)
    differ = differences_shown(saved["train"], want, "in the run", "cross-validated", ignore=SEEDS | STOPPING)
    name = saved["train"].get("model", "wbcnet")
    if network(name, saved["model"]) != network(name, model):
        differ.append("network or preprocessing")
    if differ:
        raise CheckpointError(f"{cv_json}: cross-validates another recipe than {run}: they differ in "
                              f"{'; '.join(differ)}")
    return calib
