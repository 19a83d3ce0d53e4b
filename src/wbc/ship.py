"""`wbc export`: export a run's best checkpoint with its calibration, and optionally its TEST report.

Calibration and the review threshold are fitted on the run's own cell-grouped validation cells;
TEST is only evaluated, never used to choose anything.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from wbc.cache import load_arrays
from wbc.calibration import REVIEW_COVERAGE, fit_temperature, review_threshold, tta_probs
from wbc.crossval import OOF_VIEWS, calibration_from, finished_folds
from wbc.data import Sample, list_split
from wbc.errors import BadImageError, CheckpointError, OutputError
from wbc.evaluate import EVALUATION_FILES, evaluate, evaluation_in
from wbc.export import export
from wbc.decode import load_image
from wbc.folders import find_images_root
from wbc.imaging import TEST_TIME_VIEWS, dihedral_views
from wbc.io import atomic_write_text, json_with_keys
from wbc.metrics import expected_calibration_error
from wbc.card import weak_model_note
from wbc.predict import Predictor
from wbc.staging import interrupt_held, move_in, raise_held, staging
from wbc.model import config_from_dict
from wbc.checkpoint import load_checkpoint
from wbc.run_folder import read_val_cells

PARITY_IMAGES = 32


def parity_images(data: str | Path | None, skip_bad: bool = False) -> list[Path]:
    """Real images spread over TRAIN's classes (labels unused: this is a numeric check); with `skip_bad`,
    only those that decode (a run trained leaving unreadable files out is exported alike)."""
    samples = list_split(find_images_root(data), "TRAIN")
    step = max(1, len(samples) // PARITY_IMAGES)
    picked = [s.path for s in samples[::step]]
    if skip_bad:
        picked = [p for p in picked if _decodes(p)]
    return picked[:PARITY_IMAGES]


def _decodes(path: Path) -> bool:
    try:
        load_image(path)
    except BadImageError:
        return False
    return True


def exported_folds(cv: Path, out: Path, data: str | Path | None = None) -> list[tuple[Path, set[str]]]:
    """Each finished fold run of the cross-validation `cv`, exported to ONNX in `out`/foldK (checked
    against PyTorch on real images), with the cells it was held out from: what benchmarks measure
    validation on."""
    runs = finished_folds(cv)
    if not runs:
        raise CheckpointError(f"{cv}: no finished fold runs (foldK/last.pt) in it")
    images = parity_images(data)
    folds = []
    for run in runs:
        export(run / "last.pt", out / run.name, images)
        folds.append((out / run.name, read_val_cells(run)))
    return folds


def card_metrics(m: dict[str, Any]) -> dict[str, Any]:
    """The part of `evaluate`'s metrics that a model card keeps (no confusion matrices or per-file data)."""
    keys = ("n_files", "n_cells", "accuracy", "accuracy_ci95", "cell_accuracy", "cells_correct",
            "cell_accuracy_ci95", "macro_f1", "macro_f1_ci95", "cell_macro_f1", "ece", "ece_ci95",
            "reliability", "reliability_by_type", "accuracy_at_90_coverage",
            "per_class", "review", "without_cells_in_train", "caution")
    return {k: m[k] for k in keys if k in m}


def validation_samples(run_dir: Path, data: str | Path | None) -> list[Sample]:
    """The TRAIN files of the cells a run held out for validation (its split.json)."""
    val_cells = read_val_cells(run_dir)
    return [s for s in list_split(find_images_root(data), "TRAIN") if s.cell in val_cells]


def validation_view_logits(onnx_dir: Path, run_dir: Path, data: str | Path | None, views: int,
                           window: int | None = None, skip_bad: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Logits (V, N, 4), labels (N,) and cells of the run's validation files, as the exported model
    sees them (`window`: cropped in that many source px instead of the card's window; `skip_bad`: the
    unreadable ones left out, and named, rather than stopping)."""
    samples = validation_samples(run_dir, data)
    pred = Predictor(onnx_dir)
    spec = pred.spec if window is None else replace(pred.spec, window=window)
    x, samples = load_arrays(samples, spec, progress=False, skip_bad=skip_bad)
    if views > 1:
        x = dihedral_views(x, views)
    logits = pred.run(x, ("logits",))[0].reshape(views, len(samples), -1)
    return logits, np.array([s.label for s in samples]), [s.cell for s in samples]


def checkpoint_validation_logits(ckpt: str | Path, data: str | Path | None = None, views: int = 8,
                                 skip_bad: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`validation_view_logits` of a checkpoint in a run folder, through a temporary uncalibrated export."""
    ckpt = Path(ckpt)
    with tempfile.TemporaryDirectory() as tmp:
        export(ckpt, tmp, parity_images(data, skip_bad), extra_card={"tta_views": views})
        return validation_view_logits(Path(tmp), ckpt.parent, data, views, skip_bad=skip_bad)


def run_checkpoint(run: str | Path, instead: str = "") -> Path:
    """The checkpoint a run folder (its best.pt) or a .pt given names; CheckpointError where neither exists.
    `instead`: what to do with a run stopped before its best.pt, besides finishing it (default: export its last.pt)."""
    run = Path(run)
    if not run.exists():
        raise CheckpointError(f"{run}: no such run folder or checkpoint (give the folder `wbc train` wrote, or its .pt)")
    exported = run / "model.onnx" if run.is_dir() else run
    if exported.suffix == ".onnx" and exported.is_file() and not (run.is_dir() and any(
            (run / f).exists() for f in ("best.pt", "last.pt"))):
        # "best.pt: no such checkpoint" and "invalid load key" said nothing of what was given.
        raise CheckpointError(f"{run}: an exported model (model.onnx), not a training run: export reads the folder "
                              "`wbc train` wrote (runs/NAME) or its best.pt; this model is ready for `wbc predict "
                              f"--model {run}` and `wbc evaluate --model {run}`")
    if run.is_dir() and not (run / "best.pt").exists() and (run / "last.pt").exists():
        otherwise = instead or f"export {run / 'last.pt'} as it is"
        if load_checkpoint(run / "last.pt").get("stopped"):  # finished: its best.pt deleted or moved since
            raise CheckpointError(f"{run}: its best.pt is gone, though the run finished (deleted or moved?): put it "
                                  f"back, or {otherwise} (its last epoch's weights: for a run that held cells out, "
                                  "not the epoch chosen on them)")
        # Epochs at a lower resolution (progressive resizing) are never the best: a run stopped among
        # them has a last.pt and no best.pt yet.
        raise CheckpointError(f"{run}: has no best.pt yet, only last.pt: the run stopped before its first "
                              f"full-size epoch; `wbc train --out {run} --resume` finishes it, or {otherwise}")
    return run / "best.pt" if run.is_dir() else run


def export_warnings(ckpt: Path, card: dict[str, Any]) -> list[str]:
    """What a user exporting this checkpoint should know before using the model: a dry run, a run that did not
    finish (interrupted; `--resume` finishes it), held-out or TEST accuracy below 50% (chance, with 4 classes: 25%),
    or a calibration on fewer than MIN_CALIBRATION_FILES validation files."""
    notes = []
    if (ckpt.parent / "DRY_RUN").is_file():  # wbc.cli.train.DRY_RUN_MARK: a check of the set-up, kept with --out
        notes.append(f"the run {ckpt.parent} is a dry run (a few cells, one or two epochs), not a model to use")
    last = ckpt.parent / "last.pt"
    if last.is_file():
        state = load_checkpoint(last)
        if not state.get("stopped"):
            total = state.get("train_config", {}).get("epochs", "?")
            notes.append(f"the run {ckpt.parent} did not finish (epoch {state['epoch'] + 1} of {total}): "
                         f"`wbc train --out {ckpt.parent} --resume` finishes it")
    if weak := weak_model_note(card):
        notes.append(weak)
    calibration = card.get("calibration") or {}
    n = calibration.get("n_files")
    if isinstance(n, int) and n < MIN_CALIBRATION_FILES:
        if "cross-validation" in str(calibration.get("fitted_on", "")):  # --calibration: nothing held out to widen
            notes.append(f"its temperature and review threshold were fitted on only {n} out-of-fold file(s) of the "
                         "cross-validation, so the confidences and the needs-review mark are rough: cross-validate on "
                         "more cells or images")
        else:
            notes.append(f"its temperature and review threshold were fitted on only {n} validation file(s), so the "
                         "confidences and the needs-review mark are rough: hold out more cells (a larger "
                         "--val-fraction), or take them from a cross-validation (--calibration with benchmarks/cv.py's "
                         "cv.json)")
    return notes


# Fewer held-out files than this make a rough temperature and review threshold (a 10% quantile of 8 files
# is one file's confidence).
MIN_CALIBRATION_FILES = 50


# What an export writes, and what `--evaluate` adds beside it: the evaluation's files and the training curves.
MODEL_FILES = ("model.onnx", "model.json")
REPORT_FILES = (*EVALUATION_FILES, "training_curves.png")


def _card_in(out: Path) -> bool:
    """Whether `out` holds a model card `wbc export` wrote (model.json naming its ONNX file's hash and input)."""
    return json_with_keys(out / "model.json", ("onnx_sha256", "preprocess"))


def export_and_report(run: str | Path, out: str | Path, data: str | Path | None = None,
                      evaluate_test: bool = False, tta: bool = True, calibrate: bool = True,
                      calibration: str | Path | None = None,
                      val_logits: tuple[np.ndarray, np.ndarray] | None = None,
                      match_white: bool = False, skip_bad: bool = False, skip_bad_training: bool = False,
                      progress: bool = True) -> dict[str, Any]:
    """Export run/best.pt to out/model.onnx + model.json, with temperature, test-time views and the
    review threshold fitted on validation, or taken from `calibration`, a cross-validation of the
    run's recipe (benchmarks/cv.py); with `evaluate_test`, add TEST metrics and report.md.
    `val_logits`: the checkpoint's validation view logits (V, N, 4) and labels (N,) to fit the
    temperature on, where the caller has them already (`checkpoint_validation_logits`): no second pass
    over the images. It excludes `calibration`, which brings its own temperature. `match_white`: the
    card tells `Predictor` to match a field's white below the data set's range before the network
    (`white_balance.input_gains`), and TEST is evaluated so. `skip_bad`: unreadable images are left out (and
    named) everywhere; `skip_bad_training`: only from the validation files and the parity check (a run
    trained with --skip-bad)."""
    skip_training = skip_bad or skip_bad_training
    # ".." resolved first, as missing_folders walks it: "nope/../exp" could not be written, "runs/../exp" made
    # runs/ and left it.
    out = Path(os.path.normpath(out))
    ckpt = run_checkpoint(run)
    state = load_checkpoint(ckpt)  # its input size, from the stored config: no network built for it
    if evaluate_test:  # before anything is written: an export that cannot be evaluated leaves no model behind
        list_split(find_images_root(data), "TEST")
    # A model.onnx or model.json of the user's (no model card of ours beside it) is not ours to replace either.
    if (mine := [f for f in MODEL_FILES if (out / f).is_file()]) and not _card_in(out):
        raise OutputError(f"{out}: holds {', '.join(mine)}, not a model exported by wbc (no model card of ours); "
                          "exporting there would replace them. Give another --out folder, or move them")
    # A report beside an evaluated model is that model's, not the user's.
    evaluated_before = (out / "model.json").is_file() and (out / "metrics.json").is_file()
    # As `wbc evaluate` refuses them: a user's own report.md beside no model of ours is not ours to replace.
    # A folder `wbc evaluate` wrote is ours too; training_curves.png only where this run has curves to copy.
    writes = [*EVALUATION_FILES, *(["training_curves.png"] if (ckpt.parent / "curves.png").exists() else [])]
    theirs = ([f for f in writes if (out / f).is_file()]
              if evaluate_test and not evaluated_before and not evaluation_in(out) else [])
    if theirs:
        raise OutputError(f"{out}: holds {', '.join(theirs)}, not of a model's evaluation by wbc; --evaluate would "
                          "replace them. Give another --out folder, or move them")
    h, w = config_from_dict(state["model_name"], state["model_config"]).preprocess.input_hw
    views = TEST_TIME_VIEWS if tta and h == w else 1  # rotating by 90 degrees needs a square input
    held_out = read_val_cells(ckpt.parent)
    if calibration is not None:
        if val_logits is not None:
            raise ValueError("val_logits fit a temperature; a calibration brings its own")
        if not calibrate:
            raise CheckpointError("--calibration and --no-calibrate exclude each other")
        # The cross-validation fits its temperature, review threshold and any confidence map on all
        # OOF_VIEWS (8) views; the 4 rotations move the first two by less than 0.01 (e21-avx2: 0.578 ->
        # 0.583, 0.667 both), one view the temperature by 0.04. A map is taken alike, unmeasured with 4
        # views (the shipped recipe's check adopted none).
        if views == 1:
            why = "drop --no-tta" if not tta else f"this network's input ({h}x{w} px) is not square, so it cannot be rotated"
            raise CheckpointError(f"a cross-validation's calibration is fitted on averaged views; {why}")
        calib = calibration_from(calibration, ckpt.parent)
        calib["fitted_on_views"] = OOF_VIEWS
        t, threshold, cmap = calib.pop("temperature"), calib.pop("review_threshold"), calib.pop("confidence_map")
        rule = "out-of-fold"
    else:
        if not held_out:
            raise CheckpointError(
                f"{ckpt.parent}: trained on every cell (--all-cells), it has no validation cells "
                + ("to set the review threshold from, which a card needs even uncalibrated; drop --no-calibrate and "
                   if not calibrate else "to calibrate on; ")
                + "pass --calibration with the cv.json of benchmarks/cv.py for its recipe, or evaluate the "
                f"checkpoint as it is: wbc evaluate --model {ckpt}")
        if val_logits is None:
            logits, y, _ = checkpoint_validation_logits(ckpt, data, views, skip_training)
        else:
            logits, y = val_logits
            if logits.shape[0] != views:
                raise ValueError(f"validation logits of {logits.shape[0]} views given for a {views}-view export")
            if logits.shape[1] != len(y):
                raise ValueError(f"validation logits of {logits.shape[1]} files given with {len(y)} labels")
        t = fit_temperature(logits, y) if calibrate else 1.0
        before, after = tta_probs(logits, 1.0), tta_probs(logits, t)
        calib = {
            # best.pt's epoch was chosen on these cells too: figures fitted on them read better than new cells would.
            "fitted_on": f"{len(y)} validation files of the run's cell-grouped split"
                         + (" (the cells that chose its epoch too)" if ckpt.name == "best.pt" else ""),
            "n_files": len(y),
            "fitted_on_views": views,
            "val_ece_before": expected_calibration_error(before, y),
            "val_ece_after": expected_calibration_error(after, y),
            "val_accuracy": float((after.argmax(1) == y).mean()),
        }
        threshold = review_threshold(after, REVIEW_COVERAGE)
        cmap, rule = None, "validation"  # one run's validation cells are too few to fit a map on
    # Made in a staging folder inside `out` (its file system, its permissions) and moved in only once whole:
    # a failed, interrupted or killed export or evaluation leaves the model there as it was, and usable.
    for f in (*MODEL_FILES, *REPORT_FILES):
        if (out / f).is_dir():
            raise OutputError(f"{out / f}: is a folder; the export writes a file of that name there")
    hit: list[int] = []  # a Ctrl-C held back while the files move in
    with staging(out) as stage:
        card = export(ckpt, stage, parity_images(data, skip_training), temperature=t, extra_card={
            "tta_views": views, "calibration": {"temperature": t, **calib}, "review_threshold": threshold,
            "confidence_map": cmap, "match_white": match_white,
            "review_rule": f"confidence below the {1 - REVIEW_COVERAGE:.0%} quantile of {rule} confidences",
        })
        if evaluate_test:
            m = evaluate(stage, stage, split="TEST", data=data, skip_bad=skip_bad, progress=progress,
                         model_shown_as=out / "model.onnx")
            card["metrics"] = {"test": card_metrics(m), "validation_at_best_epoch": card["training"]["validation_at_best_epoch"]}
            curves = ckpt.parent / "curves.png"
            if curves.exists():
                shutil.copyfile(curves, stage / "training_curves.png")
                kind = "cell-grouped validation" if held_out else "every cell trained, none held out"
                atomic_write_text(stage / "report.md", (stage / "report.md").read_text()
                                  + f"\n## Training curves ({kind})\n\n![training curves](training_curves.png)\n")
            atomic_write_text(stage / "model.json", json.dumps(card, indent=2))
        # The report first, then the model and, last, its card (it names the ONNX file's hash).
        new = sorted((f.name for f in stage.iterdir()), key=lambda f: MODEL_FILES.index(f) + 1 if f in MODEL_FILES else 0)
        # The old model's report goes with it; a user's own file of such a name stays (--evaluate refused it).
        stale = [f for f in REPORT_FILES if evaluated_before and f not in new and (out / f).is_file()]
        with interrupt_held(hit):  # milliseconds
            move_in(stage, out, new)
            for f in stale:
                (out / f).unlink(missing_ok=True)
    if stale:
        print(f"wbc: note: removed the files of the model exported to {out} before that this export does not "
              f"write again ({', '.join(stale)})", file=sys.stderr)
    raise_held(hit, "the model", out)
    return card
