"""The model card: where a model's files are (`resolve_model`), its card read and checked field by field, and its
ONNX graph checked against it. What `predict`, `evaluate` and the app read a model's settings through; no PyTorch."""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wbc.errors import ModelFileError
from wbc.imaging import PreprocessSpec
from wbc.info import CLASSES
from wbc.io import read_json

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_DIR = PROJECT_ROOT / "models" / "default"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve_model(model: str | Path | None = None) -> tuple[Path, Path]:
    """(model.onnx, model.json) for a folder, an .onnx file, or None (WBC_MODEL, else the shipped model)."""
    # A path from the environment is named as such: the user may not remember setting it.
    source = ""
    if model is None:
        model = os.environ.get("WBC_MODEL") or DEFAULT_MODEL_DIR
        source = " (from the environment variable WBC_MODEL)" if os.environ.get("WBC_MODEL") else ""
        if not source and not DEFAULT_MODEL_DIR.is_dir():
            # Installed without the checkout (pip install . copies the code, not models/): say so.
            raise ModelFileError(f"no model given, and the shipped model ({DEFAULT_MODEL_DIR}) is not beside this "
                                 "installation: it lives in the source checkout's models/default; pass --model or "
                                 "set WBC_MODEL to it, or install from the checkout with pip install -e")
    p = Path(os.path.expanduser(model))  # Path's raised RuntimeError for an unknown ~user
    onnx_path = p / "model.onnx" if p.is_dir() else p
    card_path = onnx_path.with_suffix(".json")
    checkpoint = p / "best.pt" if p.is_dir() and not onnx_path.is_file() else p
    if checkpoint.suffix.lower() == ".pt" and checkpoint.is_file():
        what = "a training run (best.pt)" if checkpoint != p else "a training checkpoint"
        raise ModelFileError(f"{p}{source}: {what}, not an exported model: export it with "
                             f"`wbc export {p} --out FOLDER`, or evaluate the checkpoint as it is with "
                             f"`wbc evaluate --model {checkpoint}`")
    if not onnx_path.is_file():
        # A folder of model folders (models/, above models/default): the ones in it, by name.
        try:
            inside = sorted(d.name for d in p.iterdir() if (d / "model.onnx").is_file()) if p.is_dir() else []
        except OSError:  # unreadable: the message below names the file not found
            inside = []
        if inside:
            raise ModelFileError(f"{p}{source}: a folder of models, not a model: give one of them, "
                                 + ", ".join(str(p / d) for d in inside[:5]) + (" ..." if len(inside) > 5 else ""))
        if source:
            hint = "point WBC_MODEL at a model folder (model.onnx and model.json), or unset it for the shipped one"
        elif model != DEFAULT_MODEL_DIR:  # named with --model
            hint = ("give a model folder (model.onnx and model.json) or its model.onnx, or leave --model out for "
                    "the shipped one")
        else:
            hint = "train and export one, or pass --model"
        found = "a folder, not a model file" if onnx_path.is_dir() and onnx_path != p else "model file not found"
        raise ModelFileError(f"{onnx_path}{source}: {found} ({hint})")
    if onnx_path.suffix.lower() != ".onnx":
        raise ModelFileError(f"{onnx_path}{source}: not a model (an ONNX file, .onnx, beside its model card .json); "
                             "give a model folder or its model.onnx")
    if not card_path.is_file():
        what = "is a folder, not a file" if card_path.is_dir() else "is missing"
        raise ModelFileError(f"{card_path}{source}: the model card that must sit beside {onnx_path.name} {what}")
    return onnx_path, card_path


def read_card(card_path: str | Path) -> dict[str, Any]:
    try:
        card = read_json(card_path)
    except (OSError, ValueError) as e:
        raise ModelFileError(f"{card_path}: not a readable model card ({e})") from e
    if not isinstance(card, dict):
        raise ModelFileError(f"{card_path}: not a model card (a JSON object with classes, preprocess, onnx_sha256)")
    for key in ("classes", "preprocess", "onnx_sha256"):
        if key not in card:
            raise ModelFileError(f"{card_path}: model card lacks {key!r}")
    if not isinstance(card["onnx_sha256"], str):
        raise ModelFileError(f"{card_path}: onnx_sha256 is {card['onnx_sha256']!r}; it must be the file's sha256 as hex")
    if not isinstance(card["classes"], list) or tuple(card["classes"]) != CLASSES:
        raise ModelFileError(f"{card_path}: model classes {card['classes']} differ from {list(CLASSES)}")
    # What the report, the app and the exports read from; one of another type (a string) passed here and
    # failed in `wbc evaluate` with a traceback.
    for key in CARD_SECTIONS:
        if card.get(key) is not None and not isinstance(card[key], dict):
            raise ModelFileError(f"{card_path}: {key} is {card[key]!r}; it must be an object (or absent)")
    return card


CARD_SECTIONS = ("calibration", "training", "data", "code", "metrics")  # a card's optional objects


def confidence_map(card: dict[str, Any], card_path: str | Path) -> dict[str, np.ndarray] | None:
    """The card's confidence map as arrays, checked (cards before 0.4 have none: None). Converted once,
    because converting the lists on every call would cost more than the map itself."""
    cmap = card.get("confidence_map")
    if cmap is None:
        return None
    try:
        x, y = np.asarray(cmap["x"], np.float64), np.asarray(cmap["y"], np.float64)
        # Confidences both: a y of NaN was shown as "nan, confident", one of 5 as 100%.
        ok = (x.ndim == 1 and x.shape == y.shape and len(x) > 0 and bool((np.diff(x) >= 0).all())
              and all(bool(((v >= 0) & (v <= 1)).all()) for v in (x, y)))
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise ModelFileError(f"{card_path}: confidence_map must be {{\"x\": [...], \"y\": [...]}}, equally long, "
                             "x ascending, every value a confidence from 0 to 1")
    return {"x": x, "y": y}


WEAK_ACCURACY = 0.5  # held-out accuracy below which a model's verdicts are flagged (chance, with 4 classes: 0.25)


def weak_model_note(card: dict[str, Any]) -> str:
    """A warning where the card's held-out accuracy, or its TEST accuracy where it has one, is below WEAK_ACCURACY
    (a run of an epoch or two; a model read right on 20% of its own TEST was not warned of, its 7 validation files
    read better), else "": its review threshold, a quantile of its own confidences, still calls some answers
    confident."""
    calibration = card.get("calibration")  # a hand-edited card may hold anything here
    metrics = card.get("metrics")
    test = metrics.get("test") if isinstance(metrics, dict) else None
    for accuracy, images in ((calibration.get("val_accuracy") if isinstance(calibration, dict) else None, "held-out"),
                             (test.get("accuracy") if isinstance(test, dict) else None, "test")):
        if isinstance(accuracy, float) and accuracy < WEAK_ACCURACY:
            return (f"this model reads only {100 * accuracy:.1f}% of its {images} images right (chance: 25%); "
                    "its \"confident\" verdicts mean little")
    return ""


def card_spec(card: dict[str, Any], card_path: str | Path) -> PreprocessSpec:
    """The card's preprocessing, each field checked (PreprocessSpec.from_card)."""
    try:
        return PreprocessSpec.from_card(card["preprocess"])
    except ValueError as e:
        raise ModelFileError(f"{card_path}: {e}") from e


def card_number(card: dict[str, Any], card_path: str | Path, key: str, ok: Callable[[float], bool],
                what: str) -> float | None:
    """The card's number `key`, checked by `ok` (`what` says the rule); None where the card has none,
    as cards written before it was added do not."""
    v = card.get(key)
    if v is None:
        return None
    if type(v) not in (int, float) or not math.isfinite(v) or not ok(v):  # type(): true is an int to isinstance
        raise ModelFileError(f"{card_path}: {key} is {v!r}; it must be {what}")
    return float(v)


def calibration_figures(card: dict[str, Any], path: str | Path) -> tuple[float | None, float | None,
                                                                        dict[str, np.ndarray] | None]:
    """A card's (or a cross-validation's, `path` its cv.json) temperature, review threshold and confidence map,
    each checked (ModelFileError naming `path` and the field); None for one it lacks."""
    threshold = card_number(card, path, "review_threshold", lambda v: 0 <= v <= 1, "a confidence in 0..1")
    return (card_number(card, path, "temperature", lambda v: v > 0, "a number above 0"), threshold,
            confidence_map(card, path))


def check_graph(spec: PreprocessSpec, inputs: Sequence[Any], outputs: Sequence[Any], onnx_path: Path,
                card_path: Path) -> None:
    """Refuse a graph this tool cannot run under its card: ONNX Runtime would only say so, cryptically, at
    the first prediction, and a graph of another number of classes would run, its probabilities read as
    the four types'. `inputs`, `outputs`: the session's (`.name`, `.shape`, `.type`). The input, "input",
    is uint8 (N, h, w, 3) since 0.2, float32 (N, 3, h, w) before; "probs" is (N, 4). A named (dynamic)
    axis takes any size."""
    x = inputs[0]
    raw_input = x.type == "tensor(uint8)"
    where = f"{onnx_path}: not a wbc model"
    if len(inputs) != 1 or x.name != "input":
        raise ModelFileError(f"{where}: its input is {', '.join(repr(i.name) for i in inputs)}, not one named 'input'")
    channels = x.shape[3 if raw_input else 1] if len(x.shape) == 4 else None
    if len(x.shape) != 4 or (isinstance(channels, int) and channels != 3):
        layout = "(N, h, w, 3) uint8" if raw_input else "(N, 3, h, w) float32"
        raise ModelFileError(f"{where}: its input is {x.type} of shape {list(x.shape)}, not {layout}")
    probs = next((o for o in outputs if o.name == "probs"), None)
    if probs is None:
        raise ModelFileError(f"{where}: it has no output named 'probs' (its outputs: "
                             f"{', '.join(repr(o.name) for o in outputs)})")
    if len(probs.shape) != 2 or (isinstance(probs.shape[1], int) and probs.shape[1] != len(CLASSES)):
        raise ModelFileError(f"{where}: its probabilities are of shape {list(probs.shape)}, not (N, {len(CLASSES)}) "
                             f"for the {len(CLASSES)} types ({', '.join(CLASSES)})")
    graph_hw = list(x.shape[1:3] if raw_input else x.shape[2:4])
    if any(isinstance(g, int) and g != want for g, want in zip(graph_hw, spec.input_hw)):
        h, w = spec.input_hw
        raise ModelFileError(
            f"{card_path}: preprocess.size {spec.size} (mode {spec.mode!r}) makes {h}x{w} px crops, but "
            f"{onnx_path.name} takes {graph_hw[0]}x{graph_hw[1]}: the card does not belong to this model")
