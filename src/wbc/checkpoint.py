"""Checkpoints: `save_checkpoint`, `load_checkpoint` (checked as this version's), the settings and network one holds."""

from __future__ import annotations

import io
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wbc.errors import CheckpointError, CheckpointNotPermitted, WbcError
from wbc.imaging import PreprocessSpec
from wbc.info import CLASSES
from wbc.io import atomic_write_bytes
from wbc.model import build_model, config_from_dict
from wbc.recipe import TrainConfig


CHECKPOINT_VERSION = 1


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by `fit`; CheckpointError if it is missing or not ours."""
    path = Path(path)
    if path.is_dir() and path.suffix != ".pt":  # a run folder; a folder named last.pt is named as itself
        path = path / "best.pt"
    if path.is_dir():
        raise CheckpointError(f"{path}: a folder, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        # weights_only: tensors, numbers, strings and containers, all a checkpoint of `fit` holds; any other
        # object is refused unbuilt, since unpickling a .pt someone else made (`wbc evaluate --model x.pt`) could
        # run code of theirs.
        with warnings.catch_warnings():  # a pickle of another protocol: a stray line naming no file
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several unrelated types for a damaged file
        # Its first sentence: torch's next ones (a truncated file's "internal miniz error. If you are seeing this
        # error, ...") ran to four more lines of advice.
        said = f"{type(e).__name__}: {first_sentence(one_line(e), str(path))}"
        what = "not a readable checkpoint"
        if isinstance(e, PermissionError):
            raise CheckpointNotPermitted(f"{path}: cannot be read ({said})") from e
        if not isinstance(e, pickle.UnpicklingError):
            # torch's own words for a file cut short are its reader's ("[Errno 22] Invalid argument")
            what += ", damaged or cut short"
        else:
            # torch's refusal wraps why in paragraphs of advice (to load the file unchecked): the object it names
            if found := re.search(r"GLOBAL ([\w.]+)", str(e)):
                raise CheckpointError(f"{path}: holds objects other than a wbc checkpoint's tensors and settings "
                                      f"({found.group(1)}); not loaded, since building them could run code: use a "
                                      "checkpoint `wbc train` wrote") from e
            said = found.group(0) if (found := re.search(r"Unsupported[^\n.]*", str(e))) else "not a checkpoint"
        raise CheckpointError(f"{path}: {what} ({said})") from e
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION or "model_name" not in state:
        raise CheckpointError(f"{path}: not a wbc checkpoint of version {CHECKPOINT_VERSION}")
    if tuple(state.get("classes", ())) != CLASSES:
        raise CheckpointError(f"{path}: trained for classes {state.get('classes')}, expected {CLASSES}")
    # What every reader takes from it: a file of this version without them (edited, or another tool's) gave
    # KeyError and TypeError tracebacks in evaluate, export and --resume.
    for key, kind, what in CHECKPOINT_FIELDS:
        if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
            held = "missing" if key not in state else f"{state[key]!r:.40}"
            raise CheckpointError(f"{path}: a damaged checkpoint: its {key} is {held}, not {what}")
    try:  # (its train_config is read by --resume alone: a later version's new settings do not stop an export)
        config_from_dict(state["model_name"], state["model_config"])
    except (TypeError, ValueError, KeyError, AttributeError, WbcError) as e:
        raise CheckpointError(f"{path}: its settings are not this version's ({type(e).__name__}: {e})") from e
    return state


CHECKPOINT_FIELDS: tuple[tuple[str, type, str], ...] = (
    ("model_name", str, "a name"), ("model_config", dict, "an object"), ("train_config", dict, "an object"),
    ("state_dict", dict, "a set of weights"), ("epoch", int, "a whole number"), ("history", list, "a list"))


def stored_config(state: dict[str, Any], path: str | Path) -> TrainConfig:
    """The settings a checkpoint (read from `path`) was trained with, those it lacks at their defaults (as `fit`
    fills them); CheckpointError where it holds one this version does not know (a later version's run, or an
    edited file), which --resume cannot honour."""
    try:
        return TrainConfig(**state["train_config"])
    except TypeError as e:
        raise CheckpointError(f"{path}: its settings are not this version's ({e}); resume it with the version that "
                              "started it") from e


def one_line(e: BaseException, limit: int = 300) -> str:
    """An error's words on one line, cut at `limit` characters (torch's run to many lines, one per weight)."""
    return " ".join(str(e).split())[:limit]


def first_sentence(text: str, path: str) -> str:
    """`text` up to its first ". ", where one in `path`, which an OSError's text quotes, ends no sentence."""
    return text.replace(path, "\0").split(". ")[0].replace("\0", path)


def model_from_checkpoint(state: dict[str, Any], path: str | Path = "the checkpoint") -> tuple[nn.Module, PreprocessSpec]:
    """Rebuild the network a checkpoint (read from `path`, for messages) describes, with its weights, in eval mode."""
    try:
        cfg = config_from_dict(state["model_name"], state["model_config"])
        model = build_model(state["model_name"], cfg)
        model.load_state_dict(state["state_dict"])
    except (RuntimeError, TypeError, ValueError) as e:  # torch's "size mismatch for fc.weight ...", a width of "x"
        raise CheckpointError(f"{path}: its weights do not fit the network its model_config describes, or that "
                              f"network cannot be built ({one_line(e)})") from e
    model.eval()
    return model, cfg.preprocess
