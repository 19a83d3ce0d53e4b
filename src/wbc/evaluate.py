"""`wbc evaluate`: a model (ONNX or checkpoint) on TEST or any folder of class folders, to files."""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wbc.cache import Prepared, load_prepared
from wbc.card import resolve_model, weak_model_note
from wbc.data import Sample, list_folder, list_split, listed, test_copies_of
from wbc.decode import load_image
from wbc.differential import counting_limits
from wbc.errors import DataError, ModelFileError, OutputError, WbcError, install_command
from wbc.folders import find_images_root
from wbc.info import CLASSES, SPLITS
from wbc.io import atomic_write_text, json_with_keys, read_json
from wbc.metrics import classification_report_text, compute_metrics
from wbc.predict import OTHER_LARGER_WHY, UNREADABLE_VERDICT, VERDICTS, Prediction, Predictor, predictions_csv
from wbc.report import markdown_name, plot_confusion, write_report
from wbc.sources import read_table, summary
from wbc.staging import interrupt_held, move_in, raise_held, staging


def _shown(path: str | Path) -> str:
    """A path as reports show it: relative to the working folder where that is shorter, absolute from the
    root folder (there "tmp/run/model.onnx" reads as relative to wherever the report is read)."""
    if os.path.dirname(os.path.abspath(os.curdir)) == os.path.abspath(os.curdir):  # the root: "/", "C:\\"
        return os.path.abspath(path)
    rel = os.path.relpath(path)
    return rel if len(rel) < len(str(path)) else str(path)


def check_out_of(out: str | Path, folders: Sequence[str | Path]) -> None:
    """OutputError where the output folder `out` lies inside one of `folders`, which are read by class
    folder (a folder evaluated, a data set's splits): the next listing would take the output for an
    unknown class folder, or its plots for images. Real paths compared (os.path.realpath: a link loop
    does not raise, as Path.resolve does on Python 3.11)."""
    real_out = os.path.realpath(out)
    for folder in folders:
        real = os.path.realpath(folder)
        if os.path.commonpath([real_out, real]) == real:
            raise OutputError(f"{out}: is inside {folder}, which is read by class folder: the next listing would "
                              "take this output folder for a class folder, or the pictures in it for cells. Give an "
                              "output folder outside it")


def data_set_splits(data: str | Path | None) -> list[Path]:
    """The split folders of the data set `data` names (or WBC_DATA, or the shared copy), which training and
    evaluation read by class folder; none where no data set is found."""
    try:
        root = find_images_root(data)
    except DataError:
        return []
    return [root / s for s in SPLITS]


@dataclass(frozen=True)
class Reader:
    """What read the images: the model's file, its card's review threshold (0: none) and, in words,
    how it read them (views, temperature, white matching), so that two reports are compared alike."""

    name: str
    review_threshold: float
    read_as: str
    trained: str = ""  # how the model was made, from its card (`card_provenance`); blank where none says
    weak: str = ""  # card.weak_model_note of its card: a run too short to trust
    calibrated: str = ""  # where its card's temperature was fitted (`calibration_provenance`)
    predictor: Predictor | None = None  # the exported model that read them (None: a checkpoint), which can screen them


CHECKPOINT_READING = "a training checkpoint as it is: one view, temperature 1 (not calibrated), no white matching"


def card_reading(pred: Predictor) -> str:
    """How `pred` reads an image, in words, from its card."""
    t = pred.card.get("temperature", (pred.card.get("calibration") or {}).get("temperature"))
    if isinstance(t, (int, float)):
        temperature = "temperature 1 (not calibrated)" if t == 1 else f"temperature {t:.2f}"
    else:
        temperature = "the card's temperature"
    parts = [f"{pred.tta_views} views averaged" if pred.tta_views > 1 else "one view", temperature]
    if pred.confidence_map is not None:
        parts.append("the card's confidence map")
    parts.append("white matched where it lies below the data set's range" if pred.match_white else "no white matching")
    return "the model card's reading: " + ", ".join(parts)


def calibration_provenance(card: dict[str, Any]) -> str:
    """Where a card's temperature and review threshold were fitted, in a line ("" where it does not say):
    not on what the report scores, and perhaps read with other views or by other networks (a
    cross-validation's fold models), which is why a report's calibration can fall short of the fit's."""
    calib = card.get("calibration") or {}
    if not calib.get("fitted_on"):
        return ""
    views, reads = calib.get("fitted_on_views"), card.get("tta_views")
    return (str(calib["fitted_on"]) + (f", {views} views averaged" if isinstance(views, int) and views > 1 else "")
            + (f" (the model reads {reads})" if isinstance(views, int) and isinstance(reads, int) and reads != views else ""))


def card_provenance(card: dict[str, Any]) -> str:
    """How a card's model was trained, in a line: network, epochs, seed, data and code, so that a report
    names what it scored ("" where the card says nothing of it)."""
    training, data, code = card.get("training") or {}, card.get("data") or {}, card.get("code") or {}
    cfg = training.get("config") or {}
    parts = []
    if cfg.get("model") and training.get("epochs_run"):
        parts.append(f"{cfg['model']}, {training['epochs_run']} epoch(s) of {cfg.get('epochs', '?')}, "
                     f"seed {cfg.get('seed', '?')}"
                     + (f", epoch {training['best_epoch']} kept (selected on {training['selected_on']})"
                        if training.get("best_epoch") and training.get("selected_on") else ""))
    if data.get("training_split"):
        parts.append(f"on {data.get('source', 'its data')}: {data['training_split']}")
    if code.get("wbc"):
        commit = code.get("git_commit")
        # The exporter's: a run keeps no version of its own.
        shown = f"{str(commit)[:12]}{'+modified' if str(commit).endswith('+modified') else ''}" if commit else ""
        parts.append(f"exported by wbc {code['wbc']}" + (f", commit {shown}" if shown else ""))
    return "; ".join(parts)


def model_probs(model: str | Path | None, samples: list[Sample], skip_bad: bool = False,
                progress: bool = True) -> tuple[np.ndarray, Prepared, np.ndarray, Reader]:
    """Probabilities (N, 4) for samples, from an ONNX model (folder/.onnx/None) or a .pt checkpoint,
    with the kept samples as prepared, which of them the network saw with the white matched (N,) and
    what read them."""
    if model is not None and str(model).endswith(".pt"):
        try:
            from wbc.checkpoint import load_checkpoint, model_from_checkpoint
            from wbc.train import predict_probs, to_tensor
        except ImportError as e:  # the eval extras evaluate ONNX models; a checkpoint is PyTorch's
            raise ModelFileError(f"{model}: a training checkpoint, which needs PyTorch ({e.name or e} is not installed): "
                                 f"{install_command('train')}, or evaluate its export (`wbc export`) instead") from e

        net, spec = model_from_checkpoint(load_checkpoint(model), model)
        p = load_prepared(samples, spec, skip_bad=skip_bad, progress=progress)
        return (predict_probs(net, to_tensor(p.x), spec), p, np.zeros(len(p.x), bool),
                Reader(str(model), 0.0, CHECKPOINT_READING))
    pred = Predictor(model)
    p = load_prepared(samples, pred.spec, skip_bad=skip_bad, progress=progress)
    x, matched = white_matched(pred, p)
    return (pred.predict_probs(x), p, matched,
            Reader(str(pred.onnx_path), pred.review_threshold, card_reading(pred), card_provenance(pred.card),
                   weak_model_note(pred.card), calibration_provenance(pred.card), pred))


def white_matched(pred: Predictor, p: Prepared) -> tuple[np.ndarray, np.ndarray]:
    """The crops (N, h, w, 3) as the card's network sees them (`Predictor.with_gains`, from the
    gains `load_prepared` kept), and which were changed (N,)."""
    if not pred.match_white:
        return p.x, np.zeros(len(p.x), bool)
    x, matched = p.x.copy(), np.zeros(len(p.x), bool)
    for i, g in enumerate(p.gains):
        x[i], matched[i] = pred.with_gains(x[i], None if np.isnan(g).any() else g)
    return x, matched


def with_truth(table: str, true_classes: Sequence[str], read_as: Sequence[str]) -> str:
    """`predictions_csv`'s table with two columns appended, so that existing readers are unchanged:
    each file's true class and whether the network read it so (yes/no): `read_as`, its top class, as the
    figures score it, where the screening leaves the row's class blank."""
    rows = list(csv.reader(io.StringIO(table)))
    if not len(rows) - 1 == len(true_classes) == len(read_as):
        raise ValueError(f"{len(rows) - 1} prediction rows for {len(true_classes)} true classes and {len(read_as)} "
                         "readings")
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow([*rows[0], "true_class", "correct"])
    for row, true, read in zip(rows[1:], true_classes, read_as):
        w.writerow([*row, true, "yes" if read == true else "no"])
    return out.getvalue()


def screened_predictions(pred: Predictor, samples: Sequence[Sample], probs: np.ndarray, folder: Path,
                         progress: bool = True) -> list[Prediction]:
    """Each sample's prediction as `wbc predict` and the app give it: the network's reading `probs` (N, 4)
    with the screening's verdict of its photo, decoded again (the prepared crops keep no screening)."""
    from wbc.progress import bar

    return [pred.verdicts(os.path.relpath(s.path, folder), p, pred.analyse(load_image(s.path))[1])
            for s, p in bar(list(zip(samples, probs)), show=progress, desc="screen", unit="image")]


def screening_summary(preds: Sequence[Prediction], y: np.ndarray, unreadable: Sequence[str] = ()) -> dict[str, Any]:
    """How many of `preds` (screened, of true classes y (N,)) and of the files left out as `unreadable`
    (--skip-bad, which `wbc predict` calls so) get each verdict, the accuracy over the files given a type and
    over those read but given none, and the files given none with why: the figures score every file read as
    the network reads it, which a photo the screening sets aside is not."""
    right = np.array([p.label == CLASSES[t] for p, t in zip(preds, y)], bool)
    typed = np.array([p.typed for p in preds], bool)
    counts = Counter(p.verdict for p in preds) + Counter({UNREADABLE_VERDICT: len(unreadable)})
    right_by = Counter(p.verdict for p, ok in zip(preds, right) if ok)
    n_typed, k_typed = int(typed.sum()), int(right[typed].sum())
    return {"files": len(preds) + len(unreadable),
            "verdicts": {v: counts[v] for v in (*VERDICTS, UNREADABLE_VERDICT) if counts[v]},
            # files the network read right, by verdict: a folder mostly *needs review* (overexposed) reads worse
            "right_by_verdict": {v: right_by[v] for v in VERDICTS if counts[v]},
            "typed_files": n_typed,
            "typed_right": k_typed,
            "accuracy_typed": k_typed / n_typed if n_typed else None,
            # exact limits, each file its own cell (a folder's files cannot be matched to their cells)
            "accuracy_typed_ci95": list(counting_limits(k_typed, n_typed)) if n_typed else None,
            "not_typed_right": int(right[~typed].sum()),
            "accuracy_not_typed": float(right[~typed].mean()) if (~typed).any() else None,
            "not_typed": [{"file": p.file, "verdict": p.verdict, "why": p.not_wbc or OTHER_LARGER_WHY}
                          for p in preds if not p.typed]
                         + [{"file": f, "verdict": UNREADABLE_VERDICT, "why": UNREADABLE_WHY} for f in unreadable]}


UNREADABLE_WHY = "not a readable image: left out of the figures (--skip-bad)"


def review_split(probs: np.ndarray, y: np.ndarray, threshold: float,
                 cells: Sequence[str] | None = None) -> dict[str, float | int | None]:
    """What the card's review threshold does here: the share of files it sets aside, the accuracy on
    those and on the rest, and the share of the wrong files that it catches (None where undefined:
    nothing marked, everything marked, no error). With `cells`, also how many cells have a wrong file
    and in how many of those at least one wrong file is marked: errors come in whole cells, and one
    cell read wrong in all its views can hold most of the wrong files."""
    flagged = probs.max(1) < threshold
    right = probs.argmax(1) == y
    errors = int((~right).sum())
    out: dict[str, float | int | None] = {
        "threshold": threshold,
        "flagged_share": float(flagged.mean()),
        "accuracy_flagged": float(right[flagged].mean()) if flagged.any() else None,
        "accuracy_rest": float(right[~flagged].mean()) if (~flagged).any() else None,
        "errors_flagged_share": float((~right & flagged).sum() / errors) if errors else None,
    }
    if cells is not None:
        wrong = {c for c, ok in zip(cells, right) if not ok}
        out["cells_with_errors"] = len(wrong)
        out["cells_with_errors_marked"] = len({c for c, ok, f in zip(cells, right, flagged) if not ok and f})
    return out


def without_cells(probs: np.ndarray, y: np.ndarray, cells: Sequence[str], drop: Sequence[str],
                  n_boot: int = 2000) -> dict[str, Any]:
    """The headline figures over the files of cells not in `drop`, and which were dropped: a split's
    figures without the cells the training split shows too (the data set put views of two TEST cells in
    TRAIN as well, so a model trained on TRAIN has seen them)."""
    dropped = set(drop)
    keep = np.array([c not in dropped for c in cells])
    m = compute_metrics(probs[keep], y[keep], [c for c, k in zip(cells, keep) if k], n_boot=n_boot)
    return {"cells_dropped": sorted(drop), "files_dropped": int((~keep).sum()),
            **{k: m[k] for k in ("n_files", "n_cells", "accuracy", "accuracy_ci95", "cells_correct", "cell_accuracy",
                                 "cell_accuracy_ci95", "macro_f1", "macro_f1_ci95")}}


def _trained_copies(root: Path, samples: Sequence[Sample]) -> int:
    """How many of `samples` (a split of the data at `root`) are byte-for-byte copies of its TRAIN images: a user's
    own TEST made of copies was scored with no word of it (`wbc train` names them; the data set's files, told apart
    by their fields, are not read for it)."""
    try:
        train = list_split(root, "TRAIN")
    except DataError:
        return 0
    return len(test_copies_of(root, train, samples))


def cells_also_in_train(cells: Sequence[str]) -> list[str]:
    """The cells of `cells` (a split of the data set other than TRAIN) whose original field TRAIN shows
    too, by the package's table of the data set's files (no TRAIN folder need be beside them)."""
    shared = set(summary(read_table())["fields_in_train_and_test"])
    return sorted(set(cells) & shared)


TRAIN_CAUTION = ("TRAIN is what wbc's models learn from (an all-cells model, as the shipped one is, every cell of it; a "
                 "fold model four fifths): these figures say how well the model fits what it learned, not how it "
                 "reads new cells, which TEST measures")


# What `evaluate` writes into its folder.
EVALUATION_FILES = ("metrics.json", "classification_report.txt", "classification_report.json", "confusion.png",
                    "confusion_cells.png", "predictions.csv", "report.md")


def evaluate(
    model: str | Path | None,
    out: str | Path,
    folder: str | Path | None = None,
    split: str = "TEST",
    data: str | Path | None = None,
    skip_bad: bool = False,
    n_boot: int = 2000,
    progress: bool = True,
    model_shown_as: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate and write metrics.json, classification_report.{txt,json}, confusion PNGs,
    predictions.csv and report.md into `out`. Returns the metrics. `model_shown_as`: the model's path
    as the report names it, where the model is read from elsewhere (an export's staging folder)."""
    on_train = folder is None and split == "TRAIN"
    on_folder = folder is not None
    out = Path(out)
    _refuse_others_files(out)
    _refuse_another_models_folder(out, model, on_test=folder is None and split == "TEST")
    if folder is None:
        folder = find_images_root(data) / split
        samples = list_split(folder.parent, split)
    else:
        samples = list_folder(folder, require_all_classes=False)
    check_out_of(out, [folder, *data_set_splits(data)] if on_folder else [folder.parent / s for s in SPLITS])
    where = _shown(folder)
    probs, prepared, matched, reader = model_probs(model, samples, skip_bad, progress)
    samples = prepared.samples
    model_name = _shown(model_shown_as or reader.name)
    y = np.array([s.label for s in samples])
    cells = [s.cell for s in samples]
    m = compute_metrics(probs, y, cells, n_boot=n_boot)
    threshold = reader.review_threshold
    m_out = {"model": model_name, "read_as": reader.read_as, "data": where, **m}
    if prepared.skipped:  # --skip-bad: the figures are over fewer files than the folder holds
        m_out["skipped_files"] = [os.path.relpath(f, folder) for f in prepared.skipped]
    if on_train:
        m_out["caution"] = TRAIN_CAUTION
    elif not on_folder and (copies := _trained_copies(folder.parent, samples)):
        m_out["caution"] = (f"{copies} of the {len(samples)} {split} images are byte-for-byte copies of TRAIN images: "
                            f"a model trained on this TRAIN has seen them, and these figures would score them as new "
                            f"(remove them from {split}, or a copy of a {split} image made into TRAIN from TRAIN)")
    if threshold > 0:
        m_out["review"] = review_split(probs, y, threshold, cells)
    if on_folder and reader.predictor is not None:
        # Another laboratory's photos: the screening, whose thresholds were set on the data set's (it sets
        # aside 0.3% of those), may refuse many of them, and a user asks how well the rest are read.
        preds = screened_predictions(reader.predictor, samples, probs, folder, progress)
        m_out["screening"] = screening_summary(preds, y, m_out.get("skipped_files", []))
    else:
        preds = [
            Prediction(file=os.path.relpath(s.path, folder), label=CLASSES[int(p.argmax())], confidence=float(p.max()),
                       probs=tuple(float(v) for v in p), needs_review=float(p.max()) < threshold,
                       reduced_by=float(r), white_matched=bool(w), screened=False)
            for s, p, r, w in zip(samples, probs, prepared.reduced_by, matched)
        ]
    if not on_folder and not on_train and (shared := cells_also_in_train(cells)) and len(shared) < len(set(cells)):
        m_out["without_cells_in_train"] = without_cells(probs, y, cells, shared, n_boot)
    hit: list[int] = []  # a Ctrl-C held back while the files move in
    with staging(out) as stage:  # every file made here, then moved in whole
        atomic_write_text(stage / "metrics.json", json.dumps(m_out, indent=2))
        text = classification_report_text(probs, y)
        atomic_write_text(stage / "classification_report.txt", text)
        atomic_write_text(stage / "classification_report.json", json.dumps(m["per_class"], indent=2))
        plot_confusion(m["confusion"], stage / "confusion.png", "Files")
        plot_confusion(m["cell_confusion"], stage / "confusion_cells.png", "Cells")
        atomic_write_text(stage / "predictions.csv", with_truth(predictions_csv(preds), [CLASSES[s.label] for s in samples],
                                                                [p.label for p in preds]))
        write_report(stage, m_out, f"Evaluation of {Path(model_name).name}",
                     {"model": model_name, **({"trained": reader.trained} if reader.trained else {}),
                      "read as": reader.read_as,
                      **({"temperature and review threshold fitted on": reader.calibrated} if reader.calibrated else {}),
                      "data": where, "files": str(m["n_files"]),
                      "cells": str(m["n_cells"]),
                      **({"left out (unusable, --skip-bad)": f"{len(prepared.skipped)} file(s): "
                          + listed([markdown_name(f) for f in m_out["skipped_files"]], sep=", ")}
                         if prepared.skipped else {}),
                      **({"caution": m_out["caution"]} if "caution" in m_out else {}),
                      **({"weak model": reader.weak} if reader.weak else {})}, text)
        if curves := _kept_curves(out):
            atomic_write_text(stage / "report.md", (stage / "report.md").read_text().rstrip("\n") + "\n" + curves)
        with interrupt_held(hit):  # milliseconds; the metrics last: a folder with them holds the whole evaluation
            move_in(stage, out, sorted(EVALUATION_FILES, key=lambda f: f == "metrics.json"))
    raise_held(hit, "the evaluation", out)
    return m_out


def _refuse_others_files(out: Path) -> None:
    """OutputError, before the work, where `out` holds files of EVALUATION_FILES' names that are not an
    earlier evaluation's (a rerun's replace their own): a user's report.md is not ours to replace; and
    where one of those names is a folder (the move in would fail after the work)."""
    folders = [f for f in EVALUATION_FILES if (out / f).is_dir()]
    if folders:
        raise OutputError(f"{out}: holds folder(s) named {', '.join(folders)}, where the evaluation writes files of "
                          "those names. Give another --out folder")
    if evaluation_in(out):
        return
    theirs = [f for f in EVALUATION_FILES if (out / f).exists()]
    if theirs:
        raise OutputError(f"{out}: holds {', '.join(theirs)}, not of an evaluation by wbc; evaluating there would "
                          "replace them. Give another --out folder")


def _refuse_another_models_folder(out: Path, model: str | Path | None, on_test: bool) -> None:
    """OutputError, before the work, where `out` holds an exported model and this evaluation is not of that model
    (the same ONNX bytes) on TEST: its report, and the metrics.json whose confusion matrix the app shows beside the
    model as the test images', would then describe another model or other images than its card (`--out
    models/default` replaced the shipped model's with a tiny run's, without a word). A model that cannot be read
    is left to the evaluation to name."""
    own = out / "model.onnx"
    if not own.is_file():
        return
    if not str(model).endswith(".pt"):
        try:
            onnx, card = resolve_model(model)
            same = onnx.read_bytes() == own.read_bytes() and _reading(card) == _reading(out / "model.json")
        except (WbcError, OSError):
            return
    else:
        same = False
    if not same:
        raise OutputError(f"{out}: holds an exported model (model.onnx, model.json) other than the one evaluated; its "
                          "report there would describe this one. Give another --out folder (or evaluate that folder's "
                          "own model into it)")
    if not on_test:
        raise OutputError(f"{out}: holds the model evaluated, whose report there (and the figures the app shows beside "
                          "it) are of TEST; give another --out folder for other images")


READING = ("preprocess", "tta_views", "temperature", "match_white", "confidence_map", "review_threshold")


def _reading(card: Path) -> dict[str, Any] | None:
    """How a model card has its images read (READING): two exports of one network with other settings are two
    models, whose figures differ."""
    try:
        kept = read_json(card)
        return {k: kept.get(k) for k in READING}
    except (OSError, ValueError, AttributeError):
        return None


def _kept_curves(out: Path) -> str:
    """The *Training curves* section an export appended to `out`'s report.md (its picture beside it), for an
    evaluation of that model written there again: it was cut, the picture left with nothing naming it; ""."""
    try:
        text = (out / "report.md").read_text()
    except (OSError, UnicodeDecodeError):
        return ""
    at = text.find("\n## Training curves")
    return text[at:] if at >= 0 and (out / "training_curves.png").is_file() else ""


def evaluation_in(out: Path) -> bool:
    """Whether `out` holds an evaluation's metrics.json (a rerun's files replace their own)."""
    return json_with_keys(out / "metrics.json", ("model", "read_as", "n_files"))
