from __future__ import annotations

import csv
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from wbc.errors import ModelFileError, OutputError
from wbc.info import CLASSES, DATASET
from wbc.card import DEFAULT_MODEL_DIR, sha256_file
from wbc.predict import Prediction, Predictor, iter_image_paths, predictions_csv

from conftest import FIXTURE_IMAGES


@pytest.fixture(scope="module")
def exported(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from wbc.export import export

    out = tmp_path_factory.mktemp("export")
    images = sorted((FIXTURE_IMAGES / "TRAIN").rglob("*.jpeg"))
    export(tiny_run / "best.pt", out, images)
    return out


class TestExport:
    def test_card(self, exported: Path) -> None:
        """The card names the classes, input, preprocessing, versions and the ONNX file's sha256."""
        card = json.loads((exported / "model.json").read_text())
        assert card["classes"] == list(CLASSES)
        assert card["input"]["shape"] == ["batch", 96, 96, 3] and card["input"]["dtype"] == "uint8"
        assert card["preprocess"]["mode"] == "cell"
        assert card["onnx_sha256"] == sha256_file(exported / "model.onnx")
        assert card["code"]["torch"] and card["data"]["source"] == "paultimothymooney/blood-cells"
        assert card["parity"]["images"] == 24

    def test_card_calibration_is_fitted_on_the_validation_cells(self, tiny_run: Path, data_copy: Path,
                                                                 tmp_path: Path) -> None:
        """An export's temperature is the one fitted on the run's validation files (those of the cells it held
        out), and its review threshold sets aside the least confident 10% of them at that temperature, as its
        review rule says."""
        from wbc.calibration import fit_temperature, tta_probs
        from wbc.run_folder import read_val_cells
        from wbc.ship import checkpoint_validation_logits, export_and_report

        card = export_and_report(tiny_run, tmp_path / "m", data=data_copy)
        logits, y, cells = checkpoint_validation_logits(tiny_run / "best.pt", data_copy, card["tta_views"])
        assert set(cells) == read_val_cells(tiny_run) and card["calibration"]["n_files"] == len(cells)
        assert card["temperature"] == pytest.approx(fit_temperature(logits, y))
        confidences = tta_probs(logits, card["temperature"]).max(1)
        assert card["review_threshold"] == pytest.approx(np.quantile(confidences, 0.1))
        assert card["review_rule"] == "confidence below the 10% quantile of validation confidences"
        # The graph's probabilities are its logits' softmax at that temperature (what every confidence shown is)
        from wbc.calibration import softmax

        assert card["temperature"] != pytest.approx(1.0)
        x = np.random.default_rng(0).integers(0, 256, (3, 96, 96, 3), dtype=np.uint8)
        graph_probs, graph_logits = Predictor(tmp_path / "m").run(x, ("probs", "logits"))
        assert graph_probs == pytest.approx(softmax(graph_logits, card["temperature"]), abs=1e-5)
        # The card's validation figures: the ECE before and after that temperature
        from wbc.metrics import expected_calibration_error

        assert (card["calibration"]["val_ece_before"], card["calibration"]["val_ece_after"]) == (
            pytest.approx(expected_calibration_error(tta_probs(logits, 1.0), y)),
            pytest.approx(expected_calibration_error(tta_probs(logits, card["temperature"]), y)))
        assert card["calibration"]["val_accuracy"] == float((tta_probs(logits, card["temperature"]).argmax(1) == y).mean())

    @pytest.mark.parametrize("parity", [{"max_abs_diff": 2e-4, "argmax_agree": 1.0},
                                        {"max_abs_diff": 0.0, "argmax_agree": 0.5}])
    def test_export_that_onnx_runtime_reads_otherwise_is_refused(self, tiny_run: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch, parity: dict) -> None:
        """An ONNX file whose probabilities differ from PyTorch's beyond the tolerance, or whose classes do,
        is refused, and no model is left in the folder."""
        import wbc.export
        from wbc.errors import WbcError

        monkeypatch.setattr(wbc.export, "parity_check", lambda *a: {"images": 4, **parity})
        with pytest.raises(WbcError, match="ONNX Runtime disagrees with PyTorch"):
            wbc.export.export(tiny_run / "best.pt", tmp_path / "m", sorted((FIXTURE_IMAGES / "TRAIN").rglob("*.jpeg"))[:4])
        assert not (tmp_path / "m" / "model.onnx").exists() and not (tmp_path / "m" / "model.json").exists()

    def test_card_says_what_it_trained_on(self, exported: Path, tiny_run: Path) -> None:
        """The card counts the cells the run trained on and held out, from its split.json."""
        card = json.loads((exported / "model.json").read_text())
        split = json.loads((tiny_run / "split.json").read_text())
        assert card["data"]["training_cells"] == len(split["train_cells"]) > 0
        assert f"{len(split['val_cells'])} held out" in card["data"]["training_split"]
        assert card["training"]["selected_on"] == "validation cells"
        assert "val_macro_f1" in card["training"]["validation_at_best_epoch"]

    def test_card_names_the_public_data_set_only_for_its_cells(self, tmp_path: Path) -> None:
        """A card claims the public data set's source and licence only where every cell of the run is one
        of its original fields; a run on a user's own images (each file its own cell) says so, and counts
        any public cells among them (a hospital's model was described as BCCD's)."""
        from wbc.export import training_split
        from wbc.info import OWN_IMAGES

        def split(train: list[str], val: list[str]) -> Path:
            (tmp_path / "split.json").write_text(json.dumps({"train_cells": train, "val_cells": val}))
            return tmp_path

        public = training_split(split(["EOSINOPHIL/BloodImage_00009"], ["MONOCYTE/BloodImage_00123"]))
        assert public["source"] == "paultimothymooney/blood-cells" and public["licence"] == "MIT (BCCD)"
        own = training_split(split(["EOSINOPHIL/cell 01"], ["LYMPHOCYTE/x"]))
        assert own["source"] == OWN_IMAGES and own["public_cells"] == 0 and "licence" not in own
        mixed = training_split(split(["EOSINOPHIL/cell 01", "MONOCYTE/BloodImage_00123"], ["LYMPHOCYTE/x"]))
        assert mixed["source"] == OWN_IMAGES and mixed["public_cells"] == 1 and mixed["training_cells"] == 2
        assert mixed["licence"] == "MIT (BCCD), for the public cells (paultimothymooney/blood-cells)"

    def test_card_counts_the_whole_run_and_its_best_epoch_from_one(self, tiny_run: Path, tmp_path: Path) -> None:
        """best.pt of an earlier epoch than the run's last: the card's best_epoch counts from 1 (epoch index 0 is
        the first), and its epochs run and wall time are the whole run's, from last.pt's history, not the part up
        to the best epoch."""
        import torch

        from wbc.export import export

        run = tmp_path / "run"
        run.mkdir()
        shutil.copy(tiny_run / "split.json", run / "split.json")
        last = torch.load(tiny_run / "last.pt", map_location="cpu", weights_only=False)
        assert len(last["history"]) == 2
        torch.save(last, run / "last.pt")
        best = torch.load(tiny_run / "best.pt", map_location="cpu", weights_only=False)
        best["epoch"], best["history"] = 0, last["history"][:1]
        torch.save(best, run / "best.pt")
        card = export(run / "best.pt", tmp_path / "m", sorted((FIXTURE_IMAGES / "TRAIN").rglob("*.jpeg"))[:4])
        assert card["training"]["best_epoch"] == 1 and card["training"]["epochs_run"] == 2
        assert card["training"]["wall_seconds"] == round(sum(r["seconds"] for r in last["history"]), 1)

    def test_no_calibrate_keeps_the_networks_own_confidences(self, tiny_run: Path, data_copy: Path,
                                                             tmp_path: Path) -> None:
        """--no-calibrate exports at temperature 1, the network's softmax as it is: its validation ECE is the same
        before and after."""
        from wbc.ship import export_and_report

        card = export_and_report(tiny_run, tmp_path / "m", data=data_copy, calibrate=False)
        assert card["temperature"] == 1.0 and card["calibration"]["temperature"] == 1.0
        assert card["calibration"]["val_ece_before"] == card["calibration"]["val_ece_after"]

    def test_card_of_a_last_epoch_says_it_was_not_chosen(self, tiny_run: Path, tmp_path: Path) -> None:
        """last.pt (a fold model as cross-validation scores it) was chosen on nothing unless it is also the best."""
        from wbc.checkpoint import load_checkpoint
        from wbc.export import export
        from wbc.ship import parity_images

        last, best = load_checkpoint(tiny_run / "last.pt"), load_checkpoint(tiny_run / "best.pt")
        card = export(tiny_run / "last.pt", tmp_path / "last", parity_images(FIXTURE_IMAGES))
        assert card["training"]["selected_on"] == ("validation cells" if last["epoch"] == best["epoch"]
                                                   else "nothing: the last epoch of a run with validation cells")

    def test_export_with_evaluate_adds_test_figures_and_curves(self, tiny_run: Path, data_copy: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
        """--evaluate: the card gains its TEST figures, and report.md (written whole, not appended in
        place) its evaluation and the run's training curves."""
        from wbc.ship import export_and_report

        (data_copy / "TEST_SIMPLE").rename(data_copy / "TEST")
        card = export_and_report(tiny_run, tmp_path / "m", data=data_copy, evaluate_test=True)
        report = (tmp_path / "m" / "report.md").read_text()
        assert card["metrics"]["test"]["n_files"] == json.loads((tmp_path / "m" / "metrics.json").read_text())["n_files"]
        assert report.startswith("# Evaluation of model.onnx")
        # evaluated in a staging folder, named as where the model is
        assert json.loads((tmp_path / "m" / "metrics.json").read_text())["model"].endswith(str(Path("m") / "model.onnx"))
        assert report.rstrip().endswith("![training curves](training_curves.png)")
        assert "## Training curves (cell-grouped validation)" in report
        assert (tmp_path / "m" / "training_curves.png").is_file()
        # Exported again without --evaluate: the report of the model before is not left beside this one.
        export_and_report(tiny_run, tmp_path / "m", data=data_copy)
        assert sorted(f.name for f in (tmp_path / "m").iterdir()) == ["model.json", "model.onnx"]
        assert "removed the files of the model exported to" in capsys.readouterr().err
        # A folder that held no evaluated model keeps its files: a predictions.csv there is the user's, even
        # after a second export into it.
        (tmp_path / "mine").mkdir()
        (tmp_path / "mine" / "predictions.csv").write_text("file,class\n")
        for _ in range(2):
            export_and_report(tiny_run, tmp_path / "mine", data=data_copy)
            assert (tmp_path / "mine" / "predictions.csv").read_text() == "file,class\n"
        assert sorted(f.name for f in (tmp_path / "mine").iterdir()) == ["model.json", "model.onnx", "predictions.csv"]
        # ... and --evaluate there is refused before any work, as `wbc evaluate` refuses it (it replaced a user's
        # report.md with a note): the folder is as it was.
        (tmp_path / "mine" / "report.md").write_text("my notes\n")
        before = {f.name: f.read_bytes() for f in (tmp_path / "mine").iterdir()}
        with pytest.raises(OutputError, match="holds predictions.csv, report.md, not of a model's evaluation by wbc"):
            export_and_report(tiny_run, tmp_path / "mine", data=data_copy, evaluate_test=True)
        assert {f.name: f.read_bytes() for f in (tmp_path / "mine").iterdir()} == before
        # A folder `wbc evaluate` wrote is an evaluation by wbc: --evaluate replaces it with this model's.
        from wbc.evaluate import evaluate

        evaluate(None, tmp_path / "ev", folder=data_copy / "TEST", n_boot=20, progress=False)
        export_and_report(tiny_run, tmp_path / "ev", data=data_copy, evaluate_test=True)
        assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["model"].endswith(str(Path("ev") / "model.onnx"))
        # A user's own model.onnx or model.json (no card of ours) is refused before the work: it was replaced unsaid
        for theirs in ({"model.onnx": "mine"}, {"model.json": '{"my": 1}'}, {"model.onnx": "x", "model.json": "{}"}):
            folder = tmp_path / f"theirs{len(theirs)}{sorted(theirs)[0]}"
            folder.mkdir()
            for name, text in theirs.items():
                (folder / name).write_text(text)
            with pytest.raises(OutputError, match=f"^{folder}: holds .*not a model exported by wbc"):
                export_and_report(tiny_run, folder, data=data_copy)
            assert {f.name: f.read_text() for f in folder.iterdir()} == theirs
        export_and_report(tiny_run, tmp_path / "m", data=data_copy)  # an export of ours there: replaced, as before

    def test_failed_evaluation_leaves_the_folder_as_it_was(self, tiny_run: Path, data_copy: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
        """An export whose evaluation fails (an unreadable TEST file) or is interrupted leaves the folder's
        evaluated model and report as they were, byte for byte; --skip-bad evaluates the rest."""
        import wbc.ship
        from wbc.errors import DataError
        from wbc.ship import export_and_report

        (data_copy / "TEST_SIMPLE").rename(data_copy / "TEST")
        out = tmp_path / "m"
        export_and_report(tiny_run, out, data=data_copy, evaluate_test=True)
        before = {f.name: f.read_bytes() for f in out.iterdir()}
        (data_copy / "TEST" / "MONOCYTE" / "broken.jpeg").write_bytes(b"not a jpeg")
        with pytest.raises(DataError, match="unusable image"):
            export_and_report(tiny_run, out, data=data_copy, evaluate_test=True)
        # A run trained with --skip-bad leaves unreadable files out of its own calibration, not out of TEST:
        # its figures would rest on fewer files than the user asked for.
        with pytest.raises(DataError, match="unusable image"):
            export_and_report(tiny_run, out, data=data_copy, evaluate_test=True, skip_bad_training=True)
        assert {f.name: f.read_bytes() for f in out.iterdir()} == before
        # A new output folder under folders that do not exist yet: none of them is left after a failure.
        with pytest.raises(DataError, match="unusable image"):
            export_and_report(tiny_run, tmp_path / "a" / "b" / "m", data=data_copy, evaluate_test=True)
        assert not (tmp_path / "a").exists()

        def interrupted(*a: object, **k: object) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(wbc.ship, "evaluate", interrupted)
        with pytest.raises(KeyboardInterrupt):
            export_and_report(tiny_run, out, data=data_copy, evaluate_test=True, skip_bad=True)
        assert {f.name: f.read_bytes() for f in out.iterdir()} == before
        with pytest.raises(KeyboardInterrupt):
            export_and_report(tiny_run, tmp_path / "new", data=data_copy, evaluate_test=True)
        assert not (tmp_path / "new").exists()
        # A killed export's staging folder (inside the output, its process gone) is cleared by the next; a
        # running export's and a folder of the user's named alike stay. A folder where a file goes is
        # refused before anything is made.
        import subprocess
        import sys

        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout.strip()
        running_pid = str(os.getppid())  # pytest's parent: alive, and not this process
        killed, running, users = (out / f".wbc-staging.{k}" for k in (f"{gone}.x", f"{running_pid}.y", "users"))
        for folder in (killed, running, users):
            folder.mkdir()
            (folder / "model.onnx").write_bytes(b"half")
        (tmp_path / "odd" / "report.md").mkdir(parents=True)
        from wbc.errors import OutputError

        with pytest.raises(OutputError, match=r"report\.md: is a folder"):
            export_and_report(tiny_run, tmp_path / "odd", data=data_copy)
        assert [f.name for f in (tmp_path / "odd").iterdir()] == ["report.md"]
        monkeypatch.undo()
        card = export_and_report(tiny_run, out, data=data_copy, evaluate_test=True, skip_bad=True)
        assert sorted(out.glob(".wbc-staging.*")) == sorted([running, users])
        assert json.loads((out / "metrics.json").read_text())["skipped_files"] == ["MONOCYTE/broken.jpeg"]
        assert card["metrics"]["test"]["n_files"] == 8

    def test_ctrl_c_while_the_files_move_in_is_held_back(self, tiny_run: Path, data_copy: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
        """A Ctrl-C as the new files move in (signalled to the process, as a terminal does) waits until all
        are in, then is raised with a note that the model was exported: never a new model under the old card."""
        import signal

        import wbc.ship
        from wbc.ship import export_and_report

        out = tmp_path / "m"
        export_and_report(tiny_run, out, data=data_copy)
        real = os.replace
        moved: list[str] = []

        def replace_then_interrupt(src: object, dst: object) -> None:
            real(src, dst)  # type: ignore[arg-type]
            if Path(str(dst)).parent == out:  # a file moving in (the staging folder's are written so too)
                moved.append(Path(str(dst)).name)
                if len(moved) == 1:
                    signal.raise_signal(signal.SIGINT)  # to this thread: os.kill may reach another, later

        monkeypatch.setattr(wbc.ship.os, "replace", replace_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            export_and_report(tiny_run, out, data=data_copy, tta=False)
        monkeypatch.undo()
        assert moved == ["model.onnx", "model.json"]
        assert json.loads((out / "model.json").read_text())["tta_views"] == 1
        assert "the model was written to" in capsys.readouterr().err
        Predictor(out)  # the card names the ONNX file it sits beside
        assert not list(out.glob(".wbc-staging.*"))

    def test_a_move_that_fails_is_undone(self, tiny_run: Path, data_copy: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
        """Where moving a file in fails (a file held open elsewhere, a folder's permissions), the files moved
        before it are put back: the model there still loads with its own card and report."""
        import wbc.ship
        from wbc.ship import export_and_report

        (data_copy / "TEST_SIMPLE").rename(data_copy / "TEST")
        out = tmp_path / "m"
        export_and_report(tiny_run, out, data=data_copy, evaluate_test=True)
        before = {f.name: f.read_bytes() for f in out.iterdir()}
        real = os.replace

        def fails_at_the_card(src: object, dst: object) -> None:
            if Path(str(dst)) == out / "model.json":
                raise PermissionError(13, "Permission denied", str(dst))
            real(src, dst)  # type: ignore[arg-type]

        monkeypatch.setattr(wbc.ship.os, "replace", fails_at_the_card)
        with pytest.raises(PermissionError):
            export_and_report(tiny_run, out, data=data_copy, evaluate_test=True, calibrate=False)
        monkeypatch.undo()
        assert {f.name: f.read_bytes() for f in out.iterdir()} == before
        Predictor(out)

    def test_export_with_evaluate_needs_test_before_writing(self, tiny_run: Path, data_copy: Path,
                                                            tmp_path: Path) -> None:
        """Data without TEST: --evaluate is refused before a model is written (it left one without figures)."""
        from wbc.errors import DataError
        from wbc.ship import export_and_report

        with pytest.raises(DataError, match="TEST"):
            export_and_report(tiny_run, tmp_path / "m", data=data_copy, evaluate_test=True)
        assert not (tmp_path / "m").exists()

    def test_parity_with_torch(self, exported: Path, tiny_run: Path) -> None:
        """ONNX Runtime and PyTorch agree on real images to 1e-4 (the export's own check, recomputed)."""
        import torch

        from wbc.cache import load_arrays
        from wbc.checkpoint import load_checkpoint, model_from_checkpoint
        from wbc.data import list_split
        from wbc.train import predict_probs, to_tensor

        net, spec = model_from_checkpoint(load_checkpoint(tiny_run / "best.pt"))
        x, _ = load_arrays(list_split(FIXTURE_IMAGES, "TEST_SIMPLE"), spec, progress=False)
        with torch.no_grad():
            ref = predict_probs(net, to_tensor(x), spec)
        got = Predictor(exported).predict_probs(x)
        assert np.abs(got - ref).max() < 1e-4

    def test_cam_output(self, exported: Path) -> None:
        """The default network also exports class activation maps (N, 4, 6, 6)."""
        p = Predictor(exported)
        x = np.zeros((2, 96, 96, 3), np.uint8)
        probs, cam = p.run(x, ("probs", "cam"))
        assert probs.shape == (2, 4) and cam.shape == (2, 4, 6, 6)
        assert np.allclose(probs.sum(1), 1, atol=1e-5)


    def test_float_input_model_still_read(self, exported: Path, tiny_run: Path, tmp_path: Path) -> None:
        """A model exported before 0.2 (float32 NCHW input, normalised outside the graph) gives the same
        probabilities as the current uint8-input export."""
        import torch

        from wbc.checkpoint import load_checkpoint, model_from_checkpoint

        net, spec = model_from_checkpoint(load_checkpoint(tiny_run / "best.pt"))
        net.eval()
        old = tmp_path / "old"
        old.mkdir()
        class Old(torch.nn.Module):  # its outputs as every export's: probabilities and logits
            def __init__(self) -> None:
                super().__init__()
                self.net = net

            def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                logits = self.net(x)
                return logits.softmax(1), logits

        torch.onnx.export(
            Old().eval(), (torch.zeros(1, 3, 96, 96),), str(old / "model.onnx"), input_names=["input"],
            output_names=["probs", "logits"], dynamic_axes={"input": {0: "batch"}, "probs": {0: "batch"},
                                                            "logits": {0: "batch"}}, dynamo=False,
        )
        card = json.loads((exported / "model.json").read_text())
        card.update(onnx_sha256=sha256_file(old / "model.onnx"), input={"shape": ["batch", 3, 96, 96]})
        (old / "model.json").write_text(json.dumps(card))
        x = np.random.default_rng(0).integers(0, 256, (5, 96, 96, 3), dtype=np.uint8)
        old_pred, new_pred = Predictor(old), Predictor(exported)
        assert not old_pred.raw_input and new_pred.raw_input
        got = old_pred.run(x, ("logits",))[0]
        want = new_pred.run(x, ("logits",))[0]
        assert np.abs(got - want).max() < 1e-4


class TestModelFiles:
    def test_corrupt_model_is_refused(self, exported: Path, tmp_path: Path) -> None:
        """A model file whose sha256 differs from its card is refused by name."""
        bad = tmp_path / "m"
        shutil.copytree(exported, bad)
        data = bytearray((bad / "model.onnx").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (bad / "model.onnx").write_bytes(bytes(data))
        with pytest.raises(ModelFileError, match="does not match its card"):
            Predictor(bad)

    def test_missing_model(self, tmp_path: Path) -> None:
        """A folder without model.onnx is a clear error."""
        with pytest.raises(ModelFileError, match="model file not found .give a model folder"):
            Predictor(tmp_path)
        # The folder above models (models/ for models/default): the models in it are named.
        (tmp_path / "models" / "default").mkdir(parents=True)
        (tmp_path / "models" / "default" / "model.onnx").write_bytes(b"")
        with pytest.raises(ModelFileError, match=r"models: a folder of models, not a model: give one of them, "
                                                 r".*models[/\\]default$"):
            Predictor(tmp_path / "models")
        photo = tmp_path / "cell.jpeg"  # a photo given as --model: not "its card is missing"
        photo.write_bytes(b"\xff\xd8")
        with pytest.raises(ModelFileError, match="cell.jpeg: not a model .an ONNX file"):
            Predictor(photo)
        (tmp_path / "best.pt").write_bytes(b"")  # a training run's folder: say how to use it
        with pytest.raises(ModelFileError, match=f"a training run .best.pt., not an exported model: export it with "
                                                 f"`wbc export {tmp_path} --out FOLDER`, or .* `wbc evaluate --model "
                                                 f"{tmp_path / 'best.pt'}`"):
            Predictor(tmp_path)
        with pytest.raises(ModelFileError, match=f"best.pt: a training checkpoint, not an exported model: export it "
                                                 f"with `wbc export {tmp_path / 'best.pt'} --out FOLDER`"):
            Predictor(tmp_path / "best.pt")  # the checkpoint itself: not "not a model (an ONNX file"

    def test_missing_card(self, exported: Path, tmp_path: Path) -> None:
        """An ONNX file without its card is refused; a card or model file that is a folder is called one (it
        read "missing", or "model file not found", beside the folder of that name)."""
        shutil.copy(exported / "model.onnx", tmp_path / "model.onnx")
        with pytest.raises(ModelFileError, match="model card that must sit beside model.onnx is missing"):
            Predictor(tmp_path)
        (tmp_path / "model.json").mkdir()
        with pytest.raises(ModelFileError, match="model.json: the model card .* is a folder, not a file"):
            Predictor(tmp_path)
        (tmp_path / "m" / "model.onnx").mkdir(parents=True)
        with pytest.raises(ModelFileError, match=r"model.onnx: a folder, not a model file \(give a model folder"):
            Predictor(tmp_path / "m")
        with pytest.raises(ModelFileError, match="model file not found"):
            Predictor(tmp_path / "none")

    def test_card_nested_too_deep_is_refused(self, tmp_path: Path) -> None:
        """A card of brackets nested 200,000 deep ended in Python's RecursionError: refused, naming the card."""
        shutil.copy(DEFAULT_MODEL_DIR / "model.onnx", tmp_path / "model.onnx")
        (tmp_path / "model.json").write_text("[" * 200_000)
        with pytest.raises(ModelFileError, match=r"model.json: not a readable model card \(nested too deeply"):
            Predictor(tmp_path)


def shipped_copy(folder: Path, edit: dict[str, object], drop: tuple[str, ...] = ()) -> Path:
    """The shipped model in `folder` with its card edited: top-level keys, or "preprocess.<field>" for
    a preprocessing field (the card's sha256 covers model.onnx alone, so the card may be edited)."""
    shutil.copy(DEFAULT_MODEL_DIR / "model.onnx", folder / "model.onnx")
    card = json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())
    for key, value in edit.items():
        section, _, field = key.rpartition(".")
        (card[section] if section else card)[field] = value
    for key in drop:
        section, _, field = key.rpartition(".")
        del (card[section] if section else card)[field]
    (folder / "model.json").write_text(json.dumps(card))
    return folder


class TestCardFields:
    @pytest.mark.parametrize("key,value,says", [
        ("preprocess", None, "preprocess is None"),
        ("preprocess", [96], "preprocess is \\[96\\]"),
        ("preprocess.size", "96", "preprocess.size is '96'"),
        ("preprocess.size", 0, "preprocess.size is 0"),
        ("preprocess.size", True, "preprocess.size is True"),
        ("preprocess.size", 64, "preprocess.size 64 .* 64x64 px crops, but model.onnx takes 96x96"),
        ("preprocess.mode", "frame", "preprocess.size 96 \\(mode 'frame'\\) makes 96x128 px crops"),
        ("preprocess.mode", "whole", "preprocess.mode is 'whole'"),
        ("preprocess.window", -5, "preprocess.window is -5"),
        ("preprocess.window", 160.5, "preprocess.window is 160.5"),
        ("preprocess.window", 10**9, "preprocess.window is 1000000000; it must be a whole number of pixels, 1 to 4096"),
        ("preprocess.mean", [0.5, 0.5], "preprocess.mean is"),
        ("preprocess.mean", [0.5, "0.5", 0.5], "preprocess.mean is"),
        ("preprocess.std", [0.25, 0.0, 0.25], "preprocess.std is"),
        ("preprocess.std", None, "preprocess.std is None"),
        ("review_threshold", "high", "review_threshold is 'high'"),
        ("review_threshold", 1.5, "review_threshold is 1.5"),
        ("temperature", "x", "temperature is 'x'"),
        ("temperature", -1.0, "temperature is -1.0"),
        ("classes", None, "model classes None"),
        # The four types in another order: each probability would be read as another type's.
        ("classes", [CLASSES[1], CLASSES[0], *CLASSES[2:]], "model classes \\['LYMPHOCYTE', 'EOSINOPHIL'"),
        ("classes", list(CLASSES[:3]), "model classes"),
        ("onnx_sha256", 5, "onnx_sha256 is 5"),
        *((section, "abc", f"{section} is 'abc'; it must be an object") for section in
          ("calibration", "training", "data", "code", "metrics")),
    ])
    def test_bad_field_is_refused_at_load(self, tmp_path: Path, key: str, value: object, says: str) -> None:
        """A card field of the wrong type, out of range, unknown, or not fitting the ONNX graph's input is
        refused when the model loads, by the card's path and the field, not at the first prediction."""
        folder = shipped_copy(tmp_path, {key: value})
        with pytest.raises(ModelFileError, match=f"^{re.escape(str(tmp_path / 'model.json'))}: {says}"):
            Predictor(folder)

    @pytest.mark.parametrize("key", ["classes", "preprocess", "onnx_sha256"])
    def test_a_card_without_a_field_every_card_has_is_refused(self, tmp_path: Path, key: str) -> None:
        """A card without its classes, its preprocessing or its graph's sha256 (edited, or another tool's) is
        refused by its path and the field, not a KeyError at the first use."""
        folder = shipped_copy(tmp_path, {}, drop=(key,))
        with pytest.raises(ModelFileError, match=f"^{re.escape(str(tmp_path / 'model.json'))}: model card lacks '{key}'$"):
            Predictor(folder)

    def test_older_cards_still_load(self, tmp_path: Path) -> None:
        """A card without the fields older versions did not write (temperature, review threshold, views,
        white matching, confidence map; preprocessing's window, mean and std), or with them null, loads
        with the defaults, and predicts."""
        bare = shipped_copy(tmp_path, {}, drop=("temperature", "review_threshold", "tta_views", "match_white",
                                                "confidence_map", "calibration", "preprocess.window",
                                                "preprocess.mean", "preprocess.std"))
        p = Predictor(bare)
        assert (p.review_threshold, p.tta_views, p.match_white, p.confidence_map) == (0.0, 1, False, None)
        assert p.spec == Predictor().spec
        nulls = tmp_path / "nulls"
        nulls.mkdir()
        q = Predictor(shipped_copy(nulls, {"temperature": None, "review_threshold": None}))
        assert q.review_threshold == 0.0
        files = sorted((FIXTURE_IMAGES / "TEST_SIMPLE").rglob("*.jpeg"))[:2]
        assert [r.label for r in p.predict_files(files)] == [f.parent.name for f in files]

    @pytest.mark.parametrize("key,value", [
        ("temperature", 0), ("temperature", 0.0), ("temperature", True), ("temperature", float("inf")),
        ("temperature", float("nan")), ("review_threshold", True), ("review_threshold", False),
    ])
    def test_a_number_out_of_its_range_is_refused(self, tmp_path: Path, key: str, value: object) -> None:
        """A temperature of 0 (every probability divided by it), of Infinity (every answer a tie) or NaN, and a
        JSON true or false where a number belongs, are refused naming the card and the field, not read as 1 or 0."""
        from wbc.card import calibration_figures

        card_path = tmp_path / "model.json"
        card_path.write_text(json.dumps({key: value}))  # json writes NaN and Infinity, and reads them back
        with pytest.raises(ModelFileError, match=f"^{re.escape(str(card_path))}: {key} is "):
            calibration_figures(json.loads(card_path.read_text()), card_path)

    def test_the_numbers_at_their_bounds_are_read(self) -> None:
        """A review threshold of 0 or 1 and a small or whole-number temperature are read, as floats."""
        from wbc.card import calibration_figures

        assert calibration_figures({"temperature": 1, "review_threshold": 0}, "c.json")[:2] == (1.0, 0.0)
        assert calibration_figures({"temperature": 1e-3, "review_threshold": 1}, "c.json")[:2] == (1e-3, 1.0)


class TestWeakModelNote:
    @pytest.mark.parametrize("accuracy,warned", [(0.3, True), (0.45, True), (0.4999, True), (0.5, False),
                                                 (0.71, False)])
    @pytest.mark.parametrize("where", ["calibration", "test"])
    def test_below_half_is_warned_of(self, accuracy: float, warned: bool, where: str) -> None:
        """A held-out or TEST accuracy below 50% is warned of (near chance with four types); 50% is not."""
        from wbc.card import weak_model_note

        card = ({"calibration": {"val_accuracy": accuracy}} if where == "calibration"
                else {"metrics": {"test": {"accuracy": accuracy}}})
        assert bool(weak_model_note(card)) == warned
        if warned:
            images = "held-out" if where == "calibration" else "test"
            assert weak_model_note(card).startswith(f"this model reads only {100 * accuracy:.1f}% of its {images}")

    @pytest.mark.parametrize("accuracy", [False, True, "0.2", None, [0.2]])
    def test_an_accuracy_that_is_no_fraction_is_not_read(self, accuracy: object) -> None:
        """A hand-edited accuracy of false, a string or a list says nothing, not "reads only 0.0%"."""
        from wbc.card import weak_model_note

        assert weak_model_note({"calibration": {"val_accuracy": accuracy},
                                "metrics": {"test": {"accuracy": accuracy}}}) == ""


def toy_graph(path: Path, classes: int = 4, input_name: str = "input", output: str = "probs",
              shape: tuple[int | str, ...] = ("N", 96, 96, 3), dtype: str = "uint8", softmax: bool = True) -> str:
    """A valid ONNX graph other than a wbc model's: the image's mean colour (N, 3) times a (3, classes) matrix,
    through a softmax (or, without `softmax`, as they are) as `output`. Its sha256, for a card."""
    import onnx
    from onnx import TensorProto, helper

    elem = TensorProto.UINT8 if dtype == "uint8" else TensorProto.FLOAT
    axes = [1, 2] if len(shape) == 4 and dtype == "uint8" else list(range(1, len(shape) - 1)) or [1]
    nodes = [helper.make_node("Cast", [input_name], ["f"], to=TensorProto.FLOAT),
             helper.make_node("ReduceMean", ["f"], ["m"], axes=axes, keepdims=0),
             helper.make_node("MatMul", ["m", "w"], ["z" if softmax else output]),
             *([helper.make_node("Softmax", ["z"], [output], axis=-1)] if softmax else [])]
    w = helper.make_tensor("w", TensorProto.FLOAT, [3, classes], np.linspace(0, 1, 3 * classes).tolist())
    graph = helper.make_graph(nodes, "toy", [helper.make_tensor_value_info(input_name, elem, list(shape))],
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", classes])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return sha256_file(path)


class TestGraphFitsTheTool:
    @pytest.mark.parametrize("kwargs,says", [
        ({"classes": 3}, r"its probabilities are of shape \['N', 3\], not \(N, 4\) for the 4 types"),
        ({"classes": 5}, r"its probabilities are of shape \['N', 5\]"),
        ({"input_name": "x"}, r"its input is 'x', not one named 'input'"),
        ({"output": "scores"}, r"it has no output named 'probs' \(its outputs: 'scores'\)"),
        ({"shape": ("N", 96, 96, 3), "dtype": "float"}, r"its input is tensor\(float\) of shape \['N', 96, 96, 3\], "
                                                        r"not \(N, 3, h, w\) float32"),
    ])
    def test_another_graph_is_refused_at_load(self, tmp_path: Path, kwargs: dict[str, object], says: str) -> None:
        """A valid ONNX graph of another number of classes ran, its 3 probabilities read as the four types' and
        its CSV rows a field short (5 gave a traceback), and one with another input or output name failed at
        the first prediction with ONNX Runtime's words: each is refused when it loads, naming model.onnx."""
        folder = shipped_copy(tmp_path, {})
        card = json.loads((folder / "model.json").read_text())
        card["onnx_sha256"] = toy_graph(folder / "model.onnx", **kwargs)
        (folder / "model.json").write_text(json.dumps(card))
        with pytest.raises(ModelFileError, match=f"^{re.escape(str(folder / 'model.onnx'))}: not a wbc model: {says}"):
            Predictor(folder)

    def test_a_graph_whose_outputs_are_no_probabilities_is_refused(self, tmp_path: Path) -> None:
        """Scores that are not probabilities (here a mean colour times a matrix, in the tens) read as a confidence of
        186 "confident", NaN as "nan, confident": refused at the first prediction, naming model.onnx."""
        folder = shipped_copy(tmp_path, {})
        card = json.loads((folder / "model.json").read_text())
        card["onnx_sha256"] = toy_graph(folder / "model.onnx", softmax=False)
        (folder / "model.json").write_text(json.dumps(card))
        files = sorted((FIXTURE_IMAGES / "TEST_SIMPLE").rglob("*.jpeg"))[:2]
        with pytest.raises(ModelFileError, match=f"^{re.escape(str(folder / 'model.onnx'))}: not a wbc model: its "
                                                 "outputs are not probabilities"):
            Predictor(folder).predict_files(files)

    def test_what_counts_as_probabilities(self) -> None:
        """Rows of floats from 0 to 1 summing to 1 pass, a float16 softmax's too; NaN, a negative value, a row not
        summing to 1, values above 1 and integers do not."""
        from wbc.predict import _probabilities

        z = np.random.default_rng(0).normal(size=(1000, 4)) * 5
        for dtype in (np.float64, np.float32, np.float16):
            soft = np.exp(z.astype(dtype) - z.astype(dtype).max(1, keepdims=True))
            assert _probabilities(soft / soft.sum(1, keepdims=True, dtype=dtype)), dtype
        good = np.array([[0.7, 0.1, 0.1, 0.1]], np.float32)
        assert _probabilities(good)
        for bad in ([[np.nan, 0.4, 0.3, 0.3]], [[-0.2, 0.6, 0.3, 0.3]], [[0.5, 0.1, 0.1, 0.1]], [[1.5, -0.5, 0, 0]],
                    [[186.0, 0, 0, 0]]):
            assert not _probabilities(np.array(bad, np.float32)), bad
        assert not _probabilities(np.array([[1, 0, 0, 0]], np.int64))
        # Where the type decides: float16 is rounded coarser than the 0.001 that float32 is held to
        off = [[0.502, 0.2, 0.2, 0.1]]  # adds to 1.002
        assert _probabilities(np.array(off, np.float16)) and not _probabilities(np.array(off, np.float32))
        assert _probabilities(np.array([[1.0 + float(np.finfo(np.float16).eps), 0, 0, 0]], np.float16))

    def test_a_graph_of_four_classes_runs(self, tmp_path: Path) -> None:
        """The same toy graph with 4 classes passes the checks and predicts: the checks refuse what differs only."""
        folder = shipped_copy(tmp_path, {})
        card = json.loads((folder / "model.json").read_text())
        card["onnx_sha256"] = toy_graph(folder / "model.onnx")
        (folder / "model.json").write_text(json.dumps(card))
        files = sorted((FIXTURE_IMAGES / "TEST_SIMPLE").rglob("*.jpeg"))[:2]
        assert all(len(p.probs) == 4 for p in Predictor(folder).predict_files(files))


class TestConfidenceMapInCard:
    def test_predictor_applies_the_cards_map(self, exported: Path, tmp_path: Path) -> None:
        """A card's confidence map changes the confidences as mapped, never the classes."""
        from wbc.calibration import apply_confidence_map

        mapped = tmp_path / "m"
        shutil.copytree(exported, mapped)
        card = json.loads((mapped / "model.json").read_text())
        card["confidence_map"] = {"x": [0.25, 1.0], "y": [0.25, 0.4]}
        (mapped / "model.json").write_text(json.dumps(card))
        images = sorted((FIXTURE_IMAGES / "TRAIN").rglob("*.jpeg"))[:6]
        plain = Predictor(exported).predict_files(images)
        got = Predictor(mapped).predict_files(images)
        want = apply_confidence_map(np.array([p.probs for p in plain]), card["confidence_map"])
        assert [p.label for p in got] == [p.label for p in plain]
        assert np.array([p.probs for p in got]) == pytest.approx(want, abs=1e-6)
        assert all(p.confidence < 0.41 for p in got)

    @pytest.mark.parametrize("cmap", [{"x": [0.3, 0.2], "y": [0.3, 0.4]}, {"x": [0.3]}, [1, 2], {"x": [0.3], "y": [0.3, 1]},
                                      {"x": [0.5], "y": [float("nan")]}, {"x": [0.2, 0.9], "y": [5, 5]},
                                      {"x": [0.2, 0.9], "y": [-1, -1]}, {"x": [0.2, float("inf")], "y": [0.3, 0.4]},
                                      {"x": [], "y": []}])
    def test_damaged_map_is_refused(self, exported: Path, tmp_path: Path, cmap: object) -> None:
        bad = tmp_path / "m"
        shutil.copytree(exported, bad)
        card = json.loads((bad / "model.json").read_text())
        card["confidence_map"] = cmap
        (bad / "model.json").write_text(json.dumps(card))
        with pytest.raises(ModelFileError, match="confidence_map"):
            Predictor(bad)


class TestPredict:
    def test_bad_file_in_batch(self, exported: Path, tmp_path: Path) -> None:
        """A corrupt file gets its own error; the good ones are still predicted."""
        good = sorted((FIXTURE_IMAGES / "TEST_SIMPLE").rglob("*.jpeg"))[:3]
        bad = tmp_path / "broken.jpg"
        bad.write_bytes(b"nope")
        res = Predictor(exported).predict_files([good[0], bad, *good[1:]])
        assert [bool(r.error) for r in res] == [False, True, False, False]
        assert "broken.jpg" in res[1].error
        assert all(r.label in CLASSES and 0.25 <= r.confidence <= 1 for r in res if not r.error)

    def test_csv_quotes_an_error_a_spreadsheet_would_run(self) -> None:
        """The error column, which may name another path than the row's (a link's target), is quoted as the file
        column is where it starts as a formula; the row's own name before it is taken off first."""
        from wbc.io import unquoted

        rows = list(csv.DictReader(predictions_csv([
            Prediction(file="a.jpeg", error='=HYPERLINK("http://x","y").jpeg: cannot be read (Permission denied)'),
            Prediction(file="=b.jpeg", error="=b.jpeg: the file is empty"),
            Prediction(file="c.jpeg", error="c.jpeg: -1 px wide")]).splitlines()))
        assert [r["error"] for r in rows] == ["'=HYPERLINK(\"http://x\",\"y\").jpeg: cannot be read (Permission denied)",
                                              "the file is empty", "'-1 px wide"]
        assert [r["file"] for r in rows] == ["a.jpeg", "'=b.jpeg", "c.jpeg"]
        assert unquoted(rows[0]["error"]).startswith("=HYPERLINK(")

    def test_csv_columns(self, exported: Path) -> None:
        """The CSV holds file, class, confidence and all four probabilities summing to 1."""
        files = sorted((FIXTURE_IMAGES / "TEST_SIMPLE").rglob("*.jpeg"))
        rows = list(csv.DictReader(predictions_csv(Predictor(exported).predict_files(files)).splitlines()))
        assert len(rows) == 8
        assert list(rows[0])[:3] == ["file", "class", "confidence"]
        for r in rows:
            assert sum(float(r[f"p_{c.lower()}"]) for c in CLASSES) == pytest.approx(1, abs=1e-4)

    def test_folders_are_searched(self) -> None:
        """A folder argument expands to its image files, recursively and sorted."""
        paths = iter_image_paths([FIXTURE_IMAGES / "TEST_SIMPLE"])
        assert len(paths) == 8 and paths == sorted(paths)


class TestWhereAndWhatIsRead:
    def test_a_cell_is_placed_in_the_photo_as_given(self) -> None:
        """A point of the searched field is put back in the photo as (x, y): scaled by the shrinking, then moved by
        the frame cut off its top (y) and left (x)."""
        from wbc.predict import photo_xy

        assert photo_xy((10.0, 20.0), 2.0, (3, 5)) == (45, 23)
        assert photo_xy(None, 2.0, (3, 5)) is None

    def test_the_heat_map_is_of_the_view_as_given(self) -> None:
        """With the card's views averaged, the class activation maps are the unturned view's, which the app lays
        over the photo as shown, not a turned or flipped view's."""
        p = Predictor()
        assert p.tta_views > 1
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (2, *p.spec.input_hw, 3), dtype=np.uint8)
        _, cams = p.predict(x, tta=True, cam=True)
        _, plain = p.predict(x, tta=False, cam=True)
        assert cams is not None and plain is not None and np.allclose(cams, plain, atol=1e-5)

    def test_a_long_strip_is_read_in_its_middle(self) -> None:
        """A strip too narrow to hold a cell and longer than STRIP_READ_PX is read in its middle, and placed there."""
        from wbc.predict import STRIP_READ_PX

        p = Predictor()
        rng = np.random.default_rng(1)
        strip = rng.integers(0, 256, (20, STRIP_READ_PX + 1000, 3), dtype=np.uint8)
        x, sc = p.analyse(strip)
        middle_x, middle_sc = p.analyse(strip[:, 500:500 + STRIP_READ_PX])
        assert np.array_equal(x, middle_x) and not sc.is_cell
        assert sc.offset_yx == (middle_sc.offset_yx[0], middle_sc.offset_yx[1] + 500)

    def test_a_confidence_at_the_threshold_is_not_marked(self) -> None:
        """needs_review marks a confidence below the card's review threshold; one equal to it is not below it."""
        from wbc.photo_checks import Screening

        p = Predictor()
        t = p.review_threshold
        sc = Screening(is_cell=True, reason="", peak=1.0, nucleus_px=100, sharpness=1.0)
        rest = (1 - t) / 3
        assert not p.verdicts("a.png", np.array([t, rest, rest, rest]), sc).needs_review
        assert p.verdicts("a.png", np.array([np.nextafter(t, 0), rest, rest, rest]), sc).needs_review

    @pytest.mark.parametrize("views", [3, 2, True, "4"])
    def test_views_asked_that_are_not_averaged_are_refused_as_the_callers(self, views: object) -> None:
        """A number of views asked of the Predictor other than 1, 4 or 8 is the caller's error, said as such, not
        blamed on the model's card."""
        with pytest.raises(ValueError, match=f"^tta_views is {re.escape(repr(views))}: give 1, 4, 8 or None"):
            Predictor(tta_views=views)  # type: ignore[arg-type]


class TestShippedModel:
    def test_card_matches_file(self) -> None:
        """The committed model loads: its sha256 matches its card; it is under 5 MB."""
        p = Predictor()
        assert p.onnx_path == DEFAULT_MODEL_DIR / "model.onnx"
        assert p.onnx_path.stat().st_size <= 5_000_000

    def test_clear_test_simple_images(self) -> None:
        """The shipped model names the true class of the committed TEST_SIMPLE examples."""
        files = sorted((FIXTURE_IMAGES / "TEST_SIMPLE").rglob("*.jpeg"))
        res = Predictor().predict_files(files)
        assert [r.label for r in res] == [f.parent.name for f in files]

    def test_readme_quotes_the_cards_test_figures(self) -> None:
        """The README's table of the shipped model gives the card's TEST figures and intervals, as computed by
        `wbc evaluate` when the model was exported (a re-export without updating the README fails here)."""
        t = json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())["metrics"]["test"]
        rows = {line.split("|")[1].strip(): line.split("|")[2].strip()
                for line in (DEFAULT_MODEL_DIR.parents[1] / "README.md").read_text().splitlines()
                if line.startswith("| ") and line.count("|") >= 4}

        def ci(key: str, scale: float = 100.0, digits: int = 1, unit: str = "") -> str:
            return ", ".join(f"{scale * v:.{digits}f}{unit}" for v in t[key])

        assert rows["Accuracy over files"] == f"**{100 * t['accuracy']:.2f}%** [{ci('accuracy_ci95')}]"
        assert rows["Cells right (a cell's views' probabilities averaged)"] == (
            f"**{t['cells_correct']} of {t['n_cells']}** [{ci('cell_accuracy_ci95', unit='%')}] (exact binomial limits)")
        assert rows["Macro-F1 over files"] == f"**{t['macro_f1']:.3f}** [{ci('macro_f1_ci95', 1.0, 3)}]"
        assert rows["ECE (calibrated: temperature)"].startswith(f"{t['ece']:.3f} [{ci('ece_ci95', 1.0, 3)}]")
        per_class = t["per_class"]
        mono = per_class["MONOCYTE"]
        lo, hi = mono["cell_recall_ci95"]
        neut = per_class["NEUTROPHIL"]
        nlo, nhi = neut["cell_precision_ci95"]
        assert rows["Monocyte recall / neutrophil precision"] == (
            f"{mono['recall']:.3f} / {neut['precision']:.3f} (monocytes: {mono['cells_right']} of "
            f"TEST's {mono['cells']} monocyte cells, exact limits {100 * lo:.0f}\u2013{100 * hi:.0f}%; of the "
            f"{neut['cells_called']} cells read as neutrophils, {neut['cells_right']} are, "
            f"{100 * nlo:.0f}\u2013{100 * nhi:.0f}%; `report.md` gives each type's)")

    def test_card_reports_test_metrics(self) -> None:
        """The card carries the TEST figures the README quotes, beating the reference (86.01%)."""
        card = json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())
        test = card["metrics"]["test"]
        assert test["n_files"] == 2487 and test["n_cells"] == DATASET["distinct_cells"]["TEST"]
        assert test["accuracy"] > DATASET["reference_test_accuracy"] and test["macro_f1"] > 0.86


def test_the_card_records_the_checkout_it_was_exported_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The card's commit is the package's own checkout's, marked "+modified" where its src/ has changes not
    committed (a clean HEAD was recorded for edited code), and "unknown" where the package lies in another
    project's repository (that repository's commit was recorded)."""
    import subprocess

    import wbc.export as export_module

    def repo(root: Path, package: str) -> Path:
        (root / package).mkdir(parents=True)
        (root / package / "export.py").write_text("# a copy\n")
        for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
            subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
        return root / package / "export.py"

    own = repo(tmp_path / "own", "src/wbc")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path / "own", capture_output=True, text=True).stdout.strip()
    monkeypatch.setattr(export_module, "__file__", str(own))
    assert export_module._git_commit() == head
    own.write_text("# edited\n")
    assert export_module._git_commit() == f"{head}+modified"
    other = repo(tmp_path / "project", "venv/lib/wbc")
    monkeypatch.setattr(export_module, "__file__", str(other))
    assert export_module._git_commit() == "unknown"


def test_a_calibration_on_few_files_warns_with_advice_for_where_it_came_from(tmp_path: Path) -> None:
    """Too few files under the temperature warn; the advice fits where they came from: a run's validation cells
    (hold out more) or a cross-validation's out-of-fold files (an --all-cells run holds out nothing to widen)."""
    from wbc.ship import export_warnings

    ckpt = tmp_path / "best.pt"  # no last.pt beside it: no word on an unfinished run
    run = export_warnings(ckpt, {"calibration": {"n_files": 24, "fitted_on": "24 validation files of the run's split"}})
    cv = export_warnings(ckpt, {"calibration": {"n_files": 24, "fitted_on": "24 out-of-fold files of 6 cells: 3-fold "
                                                                           "cell-grouped cross-validation of the recipe"}})
    assert len(run) == len(cv) == 1
    assert "only 24 validation file(s)" in run[0] and "a larger --val-fraction" in run[0]
    assert "only 24 out-of-fold file(s) of the cross-validation" in cv[0] and "--val-fraction" not in cv[0]
    assert export_warnings(ckpt, {"calibration": {"n_files": 500, "fitted_on": "x"}}) == []


def test_csv_rows_leave_blank_what_is_not_known() -> None:
    """predictions_csv's columns for each kind of row: a file read and typed has them all; one not taken for a white
    cell keeps the network's probabilities, its shrinking and white matching, but no type, confidence, review mark or
    places (its crop is on no cell); a typed piece beside a larger cell keeps its places and the other cell's size;
    a cell alone says nothing of another's; an unreadable file has none of it."""
    from wbc.photo_checks import NOT_PURPLE

    p = (0.1, 0.2, 0.3, 0.4)
    common = {"probs": p, "reduced_by": 2.0, "white_matched": True, "cell": (5, 6), "other_cell": (7, 8)}
    rows = {r["file"]: r for r in csv.DictReader(predictions_csv([
        Prediction("typed.png", "NEUTROPHIL", 0.4, **common),
        Prediction("alone.png", "NEUTROPHIL", 0.4, **{**common, "other_cell": None}),
        Prediction("none.png", "NEUTROPHIL", 0.4, not_wbc=NOT_PURPLE, other_larger=True, **common),
        Prediction("piece.png", "NEUTROPHIL", 0.4, other_larger=True, **common),
        Prediction("bad.png", error="bad.png: not an image")]).splitlines())}
    columns = ("class", "confidence", "needs_review", "not_white_cell", "shrunk_by", "white_matched", "cell_x",
               "other_cell_y", "other_cell_larger", "verdict")
    assert {f: [r[c] for c in columns] for f, r in rows.items()} == {
        "typed.png": ["NEUTROPHIL", "0.400000", "no", "", "2.00", "yes", "5", "8", "no", "confident"],
        "alone.png": ["NEUTROPHIL", "0.400000", "no", "", "2.00", "yes", "5", "", "", "confident"],
        "none.png": ["", "", "", NOT_PURPLE, "2.00", "yes", "", "", "", "not a white blood cell"],
        "piece.png": ["", "", "", "", "2.00", "yes", "5", "8", "yes", "cannot judge"],
        "bad.png": ["", "", "", "", "", "", "", "", "", "unreadable"]}
    assert rows["none.png"]["p_neutrophil"] == "0.400000" and rows["bad.png"]["p_neutrophil"] == ""
