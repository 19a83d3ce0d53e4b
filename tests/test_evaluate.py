from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

from wbc.evaluate import evaluate  # noqa: E402
from wbc.predict import DEFAULT_MODEL_DIR  # noqa: E402

from conftest import FIXTURE_IMAGES  # noqa: E402


class TestEvaluate:
    def test_writes_every_output(self, tmp_path: Path) -> None:
        """Evaluating a folder writes metrics, both reports, both confusion plots, predictions and report.md."""
        m = evaluate(None, tmp_path, folder=FIXTURE_IMAGES / "TEST_SIMPLE", n_boot=200, progress=False)
        for f in ("metrics.json", "classification_report.txt", "classification_report.json",
                  "confusion.png", "confusion_cells.png", "predictions.csv", "report.md"):
            assert (tmp_path / f).stat().st_size > 0, f
        assert m["n_files"] == 8 and m["n_cells"] == 8
        report = (tmp_path / "report.md").read_text()
        assert "![confusion matrix](confusion.png)" in report and "Cell-level accuracy" in report
        assert json.loads((tmp_path / "metrics.json").read_text())["accuracy"] == m["accuracy"]

    def test_checkpoint_and_onnx_agree(self, tiny_run: Path, tmp_path: Path) -> None:
        """A training checkpoint can be evaluated directly (PyTorch path)."""
        m = evaluate(tiny_run / "best.pt", tmp_path, folder=FIXTURE_IMAGES / "TEST_SIMPLE", n_boot=100, progress=False)
        assert m["n_files"] == 8 and 0 <= m["accuracy"] <= 1

    def test_shipped_model_on_full_test(self, full_data: Path, tmp_path: Path) -> None:
        """Recomputed on all of TEST, the shipped model gives the card's figures and beats the reference."""
        m = evaluate(None, tmp_path, split="TEST", data=full_data, n_boot=300, progress=False)
        card = json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())
        assert m["accuracy"] == pytest.approx(card["metrics"]["test"]["accuracy"], abs=1e-9)
        assert m["n_cells"] == 71 and m["accuracy"] > 0.8601 and m["macro_f1"] > 0.86
