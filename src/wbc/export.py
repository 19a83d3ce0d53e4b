"""ONNX export, its numeric parity check against PyTorch, and the model card."""

from __future__ import annotations

import json
import platform
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wbc import __version__
from wbc.card import sha256_file
from wbc.checkpoint import load_checkpoint, model_from_checkpoint
from wbc.data import is_field_cell
from wbc.decode import load_image
from wbc.errors import BadImageError, WbcError
from wbc.imaging import PreprocessSpec, prepare
from wbc.info import CLASSES, DATASET, OWN_IMAGES
from wbc.io import atomic_write_bytes, atomic_write_text, read_json
from wbc.model import WbcNet, count_flops, count_params

OPSET = 18


class _Deployable(nn.Module):
    """The network as shipped. It takes the prepared crops as they are, uint8 (N, h, w, 3), and does
    the scaling and normalisation inside the graph, where ONNX Runtime runs it in C++ (a third of a
    single image's time went to doing it in NumPy). Outputs: probabilities with temperature, logits
    and, where the network ends in global average pooling + linear, class activation maps
    (N, 4, fh, fw) for the app's heatmap."""

    def __init__(self, net: nn.Module, temperature: float, spec: PreprocessSpec) -> None:
        super().__init__()
        self.net = net
        self.temperature = float(temperature)
        self.cam = isinstance(net, WbcNet)
        # (x / 255 - mean) / std as one multiply-add per channel: (1, 3, 1, 1) each.
        std = torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1)
        self.register_buffer("scale", 1.0 / (255.0 * std))
        self.register_buffer("shift", -torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1) / std)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = x.permute(0, 3, 1, 2).float() * self.scale + self.shift
        if self.cam:
            f = self.net.forward_features(x)
            logits = self.net.fc(f.mean(dim=(2, 3)))
            cam = torch.einsum("kc,nchw->nkhw", self.net.fc.weight, f)
            return F.softmax(logits / self.temperature, 1), logits, cam
        logits = self.net(x)
        return F.softmax(logits / self.temperature, 1), logits


def _git_commit() -> str:
    """The commit of the checkout this package runs from, "+modified" after it where its src/ has changes not
    committed; "unknown" where it runs from no checkout of its own (an installed copy inside another project's
    repository recorded that repository's commit)."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=5, cwd=here).stdout.strip()

    try:
        top = git("rev-parse", "--show-toplevel")
        if not top or Path(top).resolve() / "src" / "wbc" != here:
            return "unknown"
        commit = git("rev-parse", "HEAD")
        return f"{commit}+modified" if commit and git("status", "--porcelain", "--", ":/src") else commit or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def parity_check(onnx_path: Path, module: nn.Module, x: np.ndarray) -> dict[str, float]:
    """Largest |ONNX Runtime - PyTorch| of the probabilities on the prepared crops x, uint8 (N, h, w, 3)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ort_probs = sess.run(["probs"], {"input": x})[0]
    with torch.no_grad():
        torch_probs = module(torch.from_numpy(x))[0].numpy()
    return {
        "images": int(len(x)),
        "max_abs_diff": float(np.abs(ort_probs - torch_probs).max()),
        "argmax_agree": float((ort_probs.argmax(1) == torch_probs.argmax(1)).mean()),
    }


def export(
    checkpoint: str | Path,
    out: str | Path,
    parity_images: list[Path],
    temperature: float = 1.0,
    extra_card: dict[str, Any] | None = None,
    tolerance: float = 1e-4,
) -> dict[str, Any]:
    """Write out/model.onnx and out/model.json from a checkpoint; fail if ONNX Runtime disagrees."""
    state = load_checkpoint(checkpoint)
    net, spec = model_from_checkpoint(state, checkpoint)
    module = _Deployable(net, temperature, spec).eval()
    outputs = ["probs", "logits"] + (["cam"] if module.cam else [])
    h, w = spec.input_hw
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_onnx = Path(tmp) / "model.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, (torch.zeros(1, h, w, 3, dtype=torch.uint8),), str(tmp_onnx), input_names=["input"], output_names=outputs,
                dynamic_axes={k: {0: "batch"} for k in ["input", *outputs]}, opset_version=OPSET, dynamo=False,
            )
        if not parity_images:
            raise WbcError("export needs real images for its parity check; none were given")
        try:
            x = np.stack([prepare(load_image(p), spec) for p in parity_images])
        except BadImageError as e:
            raise BadImageError(f"{e}; the export checks itself on TRAIN images: fix or remove the file (wbc export "
                                "can leave unreadable images out with --skip-bad)") from e
        parity = parity_check(tmp_onnx, module, x)
        if parity["max_abs_diff"] > tolerance or parity["argmax_agree"] < 1.0:
            raise WbcError(f"ONNX Runtime disagrees with PyTorch beyond {tolerance}: {parity}")
        data = tmp_onnx.read_bytes()
    atomic_write_bytes(out / "model.onnx", data)
    last = Path(checkpoint).with_name("last.pt")
    history = load_checkpoint(last)["history"] if last.exists() else state["history"]
    best = Path(checkpoint).with_name("best.pt")
    # best.pt's epoch was chosen on validation; last.pt's (a fold model as cross-validation scores it)
    # only where it is best.pt's epoch too.
    chosen = Path(checkpoint).name == "best.pt" or (best.exists() and load_checkpoint(best)["epoch"] == state["epoch"])
    card = build_card(state, history, spec, module, parity, temperature, out / "model.onnx", outputs,
                      Path(checkpoint).parent, chosen)
    card.update(extra_card or {})
    atomic_write_text(out / "model.json", json.dumps(card, indent=2))
    return card


def training_split(run: Path) -> dict[str, Any]:
    """What the run trained on, from the split.json `fit` wrote beside its checkpoints: its split and
    where its images came from. The public data set's only where every cell is one of its original
    fields (`data.cell_key`); a card made from other images must not claim its source and licence."""
    try:
        split = read_json(run / "split.json")
        cells = [str(c) for c in split["train_cells"] + split["val_cells"]]
        n_train, n_val = len(split["train_cells"]), len(split["val_cells"])
    except (OSError, ValueError, KeyError, TypeError):
        return {"training_split": "TRAIN (the run's split.json is missing)"}
    text = (f"TRAIN, cell-grouped: {n_train} cells trained on, {n_val} held out for validation" if n_val
            else f"TRAIN, all {n_train} cells, none held out")
    public = sum(map(is_field_cell, cells))
    source: dict[str, Any] = (
        {"source": DATASET["kaggle_handle"], "licence": DATASET["licence"]} if cells and public == len(cells) else
        # Some of the public set's cells among the user's own: its licence still holds for them.
        {"source": OWN_IMAGES, "public_cells": public,
         **({"licence": f"{DATASET['licence']}, for the public cells ({DATASET['kaggle_handle']})"} if public else {})})
    return {**source, "training_split": text, "training_cells": n_train}


def build_card(
    state: dict[str, Any], history: list[dict[str, float]], spec: PreprocessSpec, module: _Deployable, parity: dict[str, float],
    temperature: float, onnx_path: Path, outputs: list[str], run: Path, chosen: bool = True,
) -> dict[str, Any]:
    """The model card: what the model is, what it expects, how it was made and how good it is.
    `chosen`: the checkpoint's epoch is the one its run selected (best.pt's)."""
    import onnxruntime as ort

    h, w = spec.input_hw
    train_cfg = state["train_config"]
    held_out = train_cfg.get("fold", 0) is not None  # checkpoints from before --all-cells all held cells out
    if not held_out:
        selected_on = "nothing: every cell trained, the last epoch kept"
    else:
        selected_on = "validation cells" if chosen else "nothing: the last epoch of a run with validation cells"
    return {
        "name": state["model_name"],
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "classes": list(CLASSES),
        "input": {"name": "input", "shape": ["batch", h, w, 3], "dtype": "uint8", "layout": "NHWC",
                  "value": "RGB crop from wbc.imaging.prepare; the graph scales it to 0..1, then (x - mean) / std"},
        "outputs": outputs,
        "preprocess": spec.to_dict(),
        "temperature": temperature,
        "parameters": count_params(module.net),
        "flops_per_image": count_flops(module.net, (h, w)),
        "onnx_bytes": onnx_path.stat().st_size,
        "onnx_sha256": sha256_file(onnx_path),
        "parity": parity,
        "training": {
            "config": train_cfg,
            "epochs_run": len(history),  # the whole run (last.pt), not just up to the best epoch
            "best_epoch": state["epoch"] + 1,
            "selected_on": selected_on,
            "wall_seconds": round(sum(r["seconds"] for r in history), 1),
            "validation_at_best_epoch": state.get("val_metrics") if held_out else None,
        },
        "data": training_split(run),  # (the folder trained on is training.config.data)
        "code": {"wbc": __version__, "git_commit": _git_commit(), "torch": torch.__version__,
                 "onnxruntime": ort.__version__, "opset": OPSET, "python": platform.python_version()},
        "metrics": {},
    }
