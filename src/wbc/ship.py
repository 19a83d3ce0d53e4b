"""`wbc export`: export a run's best checkpoint, and optionally evaluate it on TEST into its card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from wbc.data import find_images_root, list_split
from wbc.evaluate import evaluate
from wbc.export import export
from wbc.io import atomic_write_text

PARITY_IMAGES = 32


def parity_images(data: str | Path | None) -> list[Path]:
    """Real images spread over TRAIN's classes (labels unused: this is a numeric check)."""
    samples = list_split(find_images_root(data), "TRAIN")
    step = max(1, len(samples) // PARITY_IMAGES)
    return [s.path for s in samples[::step]][:PARITY_IMAGES]


def _summary(m: dict[str, Any]) -> dict[str, Any]:
    keys = ("n_files", "n_cells", "accuracy", "accuracy_ci95", "cell_accuracy", "cells_correct",
            "cell_accuracy_ci95", "macro_f1", "macro_f1_ci95", "cell_macro_f1", "ece", "per_class")
    return {k: m[k] for k in keys}


def export_and_report(run: str | Path, out: str | Path, data: str | Path | None = None,
                      evaluate_test: bool = False) -> dict[str, Any]:
    """Export run/best.pt to out/model.onnx + model.json; with `evaluate_test`, add TEST metrics
    to the card and write report.md with its plots and the training curves beside it."""
    run, out = Path(run), Path(out)
    ckpt = run / "best.pt" if run.is_dir() else run
    card = export(ckpt, out, parity_images(data))
    if evaluate_test:
        m = evaluate(out, out, split="TEST", data=data)
        card["metrics"] = {"test": _summary(m), "validation_at_best_epoch": card["training"]["validation_at_best_epoch"]}
        curves = ckpt.parent / "curves.png"
        if curves.exists():
            shutil.copyfile(curves, out / "training_curves.png")
            with open(out / "report.md", "a") as f:
                f.write("\n## Training curves (cell-grouped validation)\n\n![training curves](training_curves.png)\n")
        atomic_write_text(out / "model.json", json.dumps(card, indent=2))
    return card
