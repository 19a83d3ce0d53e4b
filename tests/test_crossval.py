"""Cross-validation of a recipe, training on every cell, and exporting such a run with the pooled calibration."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from wbc.checkpoint import load_checkpoint  # noqa: E402
from wbc.crossval import OOF_VIEWS, cross_validate, finished_folds, fold_config, fold_logits, train_or_reuse  # noqa: E402
from wbc.data import list_split  # noqa: E402
from wbc.errors import CheckpointError, DataError  # noqa: E402
from wbc.model import default_config  # noqa: E402
from wbc.predict import Predictor  # noqa: E402
from wbc.recipe import TrainConfig  # noqa: E402
from wbc.ship import export_and_report  # noqa: E402
from wbc.train import fit  # noqa: E402

from conftest import FIXTURE_IMAGES, load_benchmark  # noqa: E402

# val_fraction 0.34: three folds, one cell of each class held out by each.
RECIPE = TrainConfig(epochs=1, batch_size=8, val_fraction=0.34, data=str(FIXTURE_IMAGES), threads=1)


@pytest.fixture(scope="module")
def cv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    work = tmp_path_factory.mktemp("cv")
    runs = {k: work / f"fold{k}" for k in range(3)}
    result = cross_validate(RECIPE, runs, FIXTURE_IMAGES)
    (work / "cv.json").write_text(json.dumps(result))
    return work, result


@pytest.fixture(scope="module")
def all_cells_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fit(replace(RECIPE, fold=None), tmp_path_factory.mktemp("all") / "run", progress=False)


class TestCrossValidate:
    def test_every_file_once(self, cv: tuple[Path, dict]) -> None:
        """Each TRAIN file is scored once, by the fold model that held its cell out; folds are disjoint."""
        work, r = cv
        train = list_split(FIXTURE_IMAGES, "TRAIN")
        assert r["calibrated"]["n_files"] == len(train) and r["calibrated"]["n_cells"] == len({s.cell for s in train})
        held = [set(json.loads((work / f"fold{k}" / "split.json").read_text())["val_cells"]) for k in range(3)]
        assert not (held[0] & held[1] or held[0] & held[2] or held[1] & held[2])
        assert sum(f["files"] for f in r["folds"].values()) == len(train)
        # each fold's accuracy (cv.py's table) is over its held-out files' 8 views averaged
        from wbc.calibration import tta_probs

        for k in range(3):
            lg, y, _ = fold_logits(work / f"fold{k}", FIXTURE_IMAGES)
            assert r["folds"][str(k)]["accuracy"] == float((tta_probs(lg).argmax(1) == y).mean())
        assert r["temperature"] > 0 and r["recipe"]["epochs"] == 1 and "fold" not in r["recipe"]

    def test_left_out_figures_decide_each_fold_at_the_others_temperature(self, cv: tuple[Path, dict]) -> None:
        """Besides the pooled temperature's figures (fitted on the files they score), cv.json keeps those with each
        fold calibrated on the others, and cv.py's table shows them last (a tiny run: its temperatures all meet the
        fit's cap, so `test_left_out_differs_from_the_pooled_temperature` checks the figures themselves)."""
        _, r = cv
        assert r["left_out"]["n_files"] == r["calibrated"]["n_files"] and "nll" in r["left_out"]
        row = load_benchmark("cv").markdown({"x": r}).splitlines()[-1]
        assert row.endswith(f"| {100 * r['left_out']['accuracy']:.2f}% / {r['left_out']['cells_correct']} |")
        assert load_benchmark("cv").markdown({"x": {k: v for k, v in r.items() if k != "left_out"}}).endswith("| — |")

    def test_review_threshold_marks_the_least_confident_tenth(self, cv: tuple[Path, dict]) -> None:
        """The review threshold sets aside the least confident 10% of the pooled out-of-fold files, on the
        confidences the card will show (temperature, then any confidence map)."""
        from wbc.calibration import apply_confidence_map, tta_probs

        work, r = cv
        lg = np.concatenate([fold_logits(work / f"fold{k}", FIXTURE_IMAGES)[0] for k in range(3)], axis=1)
        shown = apply_confidence_map(tta_probs(lg, r["temperature"]), r["confidence_map"]).max(1)
        marked = float((shown < r["review_threshold"]).mean())
        assert abs(marked - 0.1) <= 1 / len(shown)  # a quantile interpolated between two files

    def test_reuses_and_checks_the_recipe(self, cv: tuple[Path, dict]) -> None:
        """A second call reuses the finished folds (and says so: each fold's "done"); fold runs of another recipe
        are refused by name, with the value each side holds (the name alone sent the user to two JSON files)."""
        work, r = cv
        assert [f["done"] for f in r["folds"].values()] == ["trained"] * 3
        again = cross_validate(RECIPE, {k: work / f"fold{k}" for k in range(3)}, FIXTURE_IMAGES)
        assert all(f["reused"] for f in again["folds"].values())
        assert [f["done"] for f in again["folds"].values()] == ["reused"] * 3
        assert again["calibrated"]["accuracy"] == r["calibrated"]["accuracy"]
        with pytest.raises(CheckpointError, match=r"differs in lr \(0\.002 there, 0\.001 asked\)$"):
            cross_validate(replace(RECIPE, lr=1e-3), {k: work / f"fold{k}" for k in range(3)}, FIXTURE_IMAGES)

    def test_fold_logits_are_cached(self, cv: tuple[Path, dict]) -> None:
        """The out-of-fold logits are kept beside last.pt; a damaged cache is rebuilt to the same figures."""
        work, _ = cv
        run = work / "fold0"
        assert (run / "oof_logits.npz").exists()
        lg, y, cells = fold_logits(run, FIXTURE_IMAGES)
        assert lg.shape == (8, len(y), 4)
        (run / "oof_logits.npz").write_bytes(b"not an npz")
        lg2, y2, cells2 = fold_logits(run, FIXTURE_IMAGES)
        assert np.allclose(lg, lg2, atol=1e-5) and np.array_equal(y, y2) and cells == cells2
        assert np.load(run / "oof_logits.npz")["logits"].shape == lg.shape

    def test_fold_logits_follow_a_replaced_checkpoint(self, cv: tuple[Path, dict], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
        """The cache is rebuilt when last.pt is replaced, even by an older file, and reused otherwise."""
        import wbc.ship

        work, _ = cv
        run = tmp_path / "fold0"
        shutil.copytree(work / "fold0", run)
        first = fold_logits(run, FIXTURE_IMAGES)[0]
        real = wbc.ship.checkpoint_validation_logits
        calls: list[Path] = []
        monkeypatch.setattr(wbc.ship, "checkpoint_validation_logits", lambda p, *a, **k: calls.append(p) or real(p, *a, **k))
        fold_logits(run, FIXTURE_IMAGES)
        assert calls == []
        shutil.copy(work / "fold1" / "last.pt", run / "last.pt")  # another model, dated before the cache
        old = (run / "oof_logits.npz").stat().st_mtime_ns - 10**9
        os.utime(run / "last.pt", ns=(old, old))
        rebuilt = fold_logits(run, FIXTURE_IMAGES)[0]
        assert calls == [run / "last.pt"] and not np.allclose(first, rebuilt)
        fold_logits(run, FIXTURE_IMAGES)  # the rebuilt cache serves the next call
        assert calls == [run / "last.pt"]
        (run / "last.pt").unlink()
        with pytest.raises(CheckpointError, match="no such checkpoint"):
            fold_logits(run, FIXTURE_IMAGES)

    def test_fold_logits_follow_a_checkpoint_replaced_within_the_same_second(self, cv: tuple[Path, dict],
                                                                              tmp_path: Path) -> None:
        """A last.pt replaced by one of the same size dated within the same second (a retrained fold on a fast
        machine, a restored copy) rebuilds the cache: whole-second dates would serve the old model's logits."""
        from wbc.checkpoint import save_checkpoint

        work, _ = cv
        run = tmp_path / "fold0"
        shutil.copytree(work / "fold0", run)
        when = 1_700_000_000_100_000_000  # ns: 0.1 s into a second
        state = load_checkpoint(run / "last.pt")
        save_checkpoint(run / "last.pt", state)  # as its replacement is written, to the byte
        os.utime(run / "last.pt", ns=(when, when))
        (run / "oof_logits.npz").unlink()
        first = fold_logits(run, FIXTURE_IMAGES)[0]
        size = (run / "last.pt").stat().st_size
        for v in state["state_dict"].values():  # in place: the file's layout, and so its size, as it was
            if v.is_floating_point():
                v.mul_(2)
        save_checkpoint(run / "last.pt", state)
        assert (run / "last.pt").stat().st_size == size
        os.utime(run / "last.pt", ns=(when + 5 * 10**8, when + 5 * 10**8))
        assert not np.allclose(first, fold_logits(run, FIXTURE_IMAGES)[0])

    def test_folds_holding_out_the_same_cell_are_refused(self, cv: tuple[Path, dict], tmp_path: Path) -> None:
        """Two folds that held out one cell (runs split otherwise) are not one cross-validation: refused by name,
        not pooled with that cell scored twice."""
        work, _ = cv
        for k in range(3):
            shutil.copytree(work / f"fold{k}", tmp_path / f"fold{k}")
        cell = json.loads((tmp_path / "fold0" / "split.json").read_text())["val_cells"][0]
        split_file = tmp_path / "fold1" / "split.json"
        split = json.loads(split_file.read_text())
        split_file.write_text(json.dumps({**split, "train_cells": [c for c in split["train_cells"] if c != cell],
                                          "val_cells": [*split["val_cells"], cell]}))
        (tmp_path / "fold1" / "oof_logits.npz").unlink()
        with pytest.raises(DataError, match="the folds' validation cells overlap"):
            cross_validate(RECIPE, {k: tmp_path / f"fold{k}" for k in range(3)}, FIXTURE_IMAGES)

    def test_views_benchmark_scores_as_cross_validation_does(self, cv: tuple[Path, dict], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
        """benchmarks/views.py's all-8 row is the cross-validation's own pooled figures (accuracy, cells,
        NLL, temperature, the temperature-only ECE left out fold by fold); the 4 rotations are the
        same scoring on views 0-3; each set's difference from all 8 is printed and written."""
        import sys

        from wbc.calibration import fit_temperature, nll, tta_probs

        work, r = cv
        views = load_benchmark("views")
        out = tmp_path / "views.json"
        monkeypatch.setattr(sys, "argv", ["views.py", str(work), "--data", str(FIXTURE_IMAGES), "--json", str(out)])
        assert views.main() == 0
        got = json.loads(out.read_text())
        full, rot = got["recipes"][work.name]["dihedral"], got["recipes"][work.name]["rotations"]
        m = r["calibrated"]
        assert full["accuracy"] == pytest.approx(m["accuracy"]) and full["cells_right"] == m["cells_correct"]
        assert full["nll"] == pytest.approx(m["nll"]) and full["temperature"] == pytest.approx(r["temperature"])
        assert full["shown_ece"] == pytest.approx(r["confidence_map_check"]["ece_temperature"])
        folds = [fold_logits(work / f"fold{k}", FIXTURE_IMAGES) for k in range(3)]
        lg, y = np.concatenate([f[0][:4] for f in folds], axis=1), np.concatenate([f[1] for f in folds])
        t = fit_temperature(lg, y)
        assert rot["temperature"] == pytest.approx(t) and rot["nll"] == pytest.approx(nll(tta_probs(lg, t), y))
        assert got["summary"]["dihedral"]["vs_dihedral"]["cells_right"] == 0
        assert got["summary"]["one"]["vs_dihedral"]["nll"] == pytest.approx(got["summary"]["one"]["nll"] - full["nll"])
        assert "| rotations |" in capsys.readouterr().out

    def test_overexposure_benchmark(self, cv: tuple[Path, dict], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
        """benchmarks/overexposure.py: each fold model on its held-out files at every gain; the clean
        accuracy is the x1.0 row's, every file lands in one bin of clipped share per gain (1.0 in the
        last), clean files are not marked and x1.5 ones are, mostly; gains must start at 1.0."""
        work, _ = cv
        bench = load_benchmark("overexposure")
        b = bench.bins(np.array([0.0, 0.05, 0.1, 0.3, 0.95, 1.0]), np.array([True, False, True, True, True, False]),
                       clean=0.5)
        assert [x["files"] for x in b] == [2, 1, 0, 1, 0, 0, 0, 0, 0, 2]
        assert b[0]["accuracy"] == 0.5 and b[0]["drop"] == 0 and b[9]["drop"] == pytest.approx(0)
        assert b[2]["accuracy"] is None and b[2]["drop"] is None  # an empty bin is null in the JSON, not NaN
        out = tmp_path / "o.json"
        assert bench.main(["--cv", str(work), "--data", str(FIXTURE_IMAGES), "--every", "1", "--gains", "1.0", "1.5",
                           "--json", str(out)]) == 0
        r = json.loads(out.read_text())
        files = len(list_split(FIXTURE_IMAGES, "TRAIN"))
        assert r["gains"]["1.0"]["files"] == r["gains"]["1.5"]["files"] == files
        assert r["clean_accuracy"] == r["gains"]["1.0"]["accuracy"] and r["gains"]["1.0"]["marked_now"] == 0
        assert r["gains"]["1.5"]["marked_now"] > 0.8 and r["gains"]["1.5"]["median_clipped"] > 0.4
        g = r["gains"]["1.5"]  # the marked and the rest make up the whole
        rest = 0.0 if g["accuracy_unmarked"] is None else g["accuracy_unmarked"] * (1 - g["marked_now"])
        assert g["accuracy_marked"] * g["marked_now"] + rest == pytest.approx(g["accuracy"])
        assert r["gains"]["1.0"]["accuracy_marked"] is None
        assert sum(x["files"] for x in r["bins"]) == 2 * files
        for gains in (["1.2", "1.4"], ["1.0", "0.8"], ["1.0", "1.4", "1.4"]):
            with pytest.raises(SystemExit) as e:
                bench.main(["--cv", str(work), "--gains", *gains])
            assert e.value.code == 2 and "--gains starts with 1.0" in capsys.readouterr().err

    def test_overexposure_undo_gain(self, cv: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
        """--undo-gain: the gain estimated from a brightened field's clipped share comes back near the gain
        applied (the fixtures' own fields as the typical one); it is undone on the marked files only, each
        once, and the table counts them."""
        from wbc.decode import load_image
        from wbc.robustness import brightness
        from wbc.white_balance import clipped_share

        work, _ = cv
        bench = load_benchmark("overexposure")
        files = [s.path for s in list_split(FIXTURE_IMAGES, "TRAIN")]
        typical = np.median(np.stack([bench.darkest_channel_quantiles(load_image(f)) for f in files]), 0)
        bright = brightness(1.4)(load_image(files[0]))
        undone, gain = bench.undo_gain(bright, clipped_share(bright), typical)
        assert 1.25 < gain < 1.6 and undone.max() < 255 and undone.dtype == np.uint8
        out = tmp_path / "u.json"
        real, undone = bench.undo_gain, []
        monkeypatch.setattr(bench, "undo_gain", lambda img, share, t: undone.append(share) or real(img, share, t))
        assert bench.main(["--cv", str(work), "--data", str(FIXTURE_IMAGES), "--gains", "1.0", "1.5", "--undo-gain",
                           "--every", "1", "--json", str(out)]) == 0
        r = json.loads(out.read_text())["gains"]
        files = len(list_split(FIXTURE_IMAGES, "TRAIN"))
        marked = round(r["1.5"]["marked_now"] * files)
        assert r["1.0"]["marked_now"] == 0 and marked > 0 and len(undone) == marked  # x1.5's marked files, once each
        assert all(s >= 0.4 for s in undone)
        assert f"| x1.5 | {100 * r['1.5']['accuracy']:.2f}% | {100 * r['1.5']['accuracy_gain_undone']:.2f}% | {marked} |" \
            in capsys.readouterr().out

    def test_ablation_scores_the_epoch_asked_for(self, cv: tuple[Path, dict], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
        """benchmarks/ablation.py scores last.pt, as the cross-validation does, unless asked for best.pt,
        and decodes the validation images once per run."""
        import wbc.ship
        from wbc.calibration import nll, tta_probs

        work, _ = cv
        run = tmp_path / "fold0"
        shutil.copytree(work / "fold0", run)
        shutil.copy(work / "fold1" / "best.pt", run / "best.pt")  # a best.pt unlike last.pt
        ablation = load_benchmark("ablation")
        lg, y, _ = fold_logits(run, FIXTURE_IMAGES)
        decoded: list[int] = []
        load = wbc.ship.load_arrays

        def counted(samples: list, *a: object, **k: object) -> object:
            decoded.append(len(samples))
            return load(samples, *a, **k)

        monkeypatch.setattr(wbc.ship, "load_arrays", counted)
        for checkpoint, same in (("last", True), ("best", False)):
            decoded.clear()
            r = ablation.val_report(run, False, checkpoint, FIXTURE_IMAGES)
            assert decoded == [len(y)]
            assert r["checkpoint"] == checkpoint
            assert (r["tta8"]["nll"] == pytest.approx(nll(tta_probs(lg, r["temperature"]), y), abs=1e-4)) is same
        for bad, says in (((lg[:1], y), "1 views given for a 4-view export"), ((lg[:4], y[:-1]), "labels")):
            with pytest.raises(ValueError, match=says):
                wbc.ship.export_and_report(run / "last.pt", tmp_path / "x", FIXTURE_IMAGES, val_logits=bad)

    def test_ablation_checks_every_run_first(self, cv: tuple[Path, dict], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
        """A run without the checkpoint asked for, or without validation cells, is named in one line
        before any run is scored."""
        work, _ = cv
        ablation = load_benchmark("ablation")
        scored: list[Path] = []
        monkeypatch.setattr(ablation, "val_report", lambda run, *a: scored.append(run) or {})
        (tmp_path / "empty").mkdir()
        all_cells = tmp_path / "all"
        shutil.copytree(work / "fold0", all_cells)
        (all_cells / "split.json").write_text(json.dumps({"train_cells": [], "val_cells": []}))
        for bad, says in ((tmp_path / "empty", "no last.pt"), (all_cells, "holds out no validation cells")):
            monkeypatch.setattr("sys.argv", ["ablation.py", str(work / "fold0"), str(bad)])
            assert ablation.main() == 1
            assert says in capsys.readouterr().err and scored == []

    def test_finished_folds_leave_out_interrupted_runs(self, cv: tuple[Path, dict], tmp_path: Path) -> None:
        """Only fold runs that ran to their end count; a half-trained one (or none) is left out."""
        work, _ = cv
        assert finished_folds(work) == [work / f"fold{k}" for k in range(3)]
        for k in range(3):
            shutil.copytree(work / f"fold{k}", tmp_path / f"fold{k}")
        state = torch.load(tmp_path / "fold1" / "last.pt", weights_only=False)
        torch.save({**state, "stopped": False}, tmp_path / "fold1" / "last.pt")
        (tmp_path / "fold2" / "last.pt").unlink()
        assert finished_folds(tmp_path) == [tmp_path / "fold0"]

    def test_an_interrupted_fold_is_resumed_and_said_to_be(self, cv: tuple[Path, dict], tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
        """A fold whose run was interrupted is continued, and the result calls it resumed (cv.py's summary
        called it "trained", as if begun afresh)."""
        work, _ = cv
        for k in range(3):
            shutil.copytree(work / f"fold{k}", tmp_path / f"fold{k}")
        state = torch.load(tmp_path / "fold1" / "last.pt", weights_only=False)
        torch.save({**state, "stopped": False}, tmp_path / "fold1" / "last.pt")
        r = cross_validate(RECIPE, {k: tmp_path / f"fold{k}" for k in range(3)}, FIXTURE_IMAGES)
        assert [f["done"] for f in r["folds"].values()] == ["reused", "resumed", "reused"]
        assert f"{tmp_path / 'fold1'}: interrupted before, resumed" in capsys.readouterr().out

    def test_patience_of_a_full_run_does_not_matter(self, cv: tuple[Path, dict], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
        """A fold run that ran all its epochs is reused under another patience, and says so as it begins (a reused
        fold was said to be only in the summary at the end); for the calibration of an all-cells run, patience and
        monitor do not count either."""
        work, r = cv
        assert train_or_reuse(replace(fold_config(RECIPE, 0), patience=7), work / "fold0") == "reused"
        assert capsys.readouterr().out == f"{work / 'fold0'}: finished before, reused\n"
        # Through a folder that does not exist and "..": the run and the export land where ".." leads, and
        # that folder is not made (the export could not write there; a run left it behind).
        other = fit(replace(RECIPE, fold=None, patience=3, monitor="val_loss"), tmp_path / "nope" / ".." / "p",
                    progress=False)
        card = export_and_report(other, tmp_path / "none" / ".." / "out", data=FIXTURE_IMAGES,
                                 calibration=work / "cv.json")
        assert card["temperature"] == pytest.approx(r["temperature"])
        assert (tmp_path / "p" / "best.pt").is_file() and (tmp_path / "out" / "model.onnx").is_file()
        assert not (tmp_path / "nope").exists() and not (tmp_path / "none").exists()

    def test_checks_every_fold_before_training_any(self, cv: tuple[Path, dict], tmp_path: Path) -> None:
        """A fold run of another recipe further on is refused before an empty fold 0 is trained."""
        work, _ = cv
        shutil.copytree(work / "fold1", tmp_path / "fold1")
        runs = {0: tmp_path / "fold0", 1: tmp_path / "fold1"}
        with pytest.raises(CheckpointError, match=r"fold1: not the run asked for: it differs in lr \(0\.002 there"):
            cross_validate(replace(RECIPE, lr=1e-3), runs, FIXTURE_IMAGES)
        assert not (tmp_path / "fold0").exists()

        # A fold folder whose last.pt cannot be read is named before any fold trains, not called
        # "already holds a run" after fold 0 has trained.
        (tmp_path / "fold1" / "last.pt").write_bytes(b"not a checkpoint")
        with pytest.raises(CheckpointError, match=r"fold1/last.pt: not a readable checkpoint.*remove .*fold1 to train"):
            cross_validate(RECIPE, runs, FIXTURE_IMAGES)
        assert not (tmp_path / "fold0").exists()

    def test_refuses_a_run_of_another_network(self, cv: tuple[Path, dict]) -> None:
        """Fold runs of another crop window (network input) are not the cross-validation asked for."""
        work, _ = cv
        with pytest.raises(CheckpointError, match="differs in network or preprocessing"):
            cross_validate(RECIPE, {k: work / f"fold{k}" for k in range(3)}, FIXTURE_IMAGES,
                           model_cfg=default_config("wbcnet", 128))

    def test_refuses_a_run_of_another_fold(self, cv: tuple[Path, dict]) -> None:
        """A finished run offered as the wrong fold is refused, not scored on cells it trained on."""
        work, _ = cv
        swapped = {0: work / "fold1", 1: work / "fold0", 2: work / "fold2"}
        with pytest.raises(CheckpointError, match=r"fold \(1 there, 0 asked\)"):
            cross_validate(RECIPE, swapped, FIXTURE_IMAGES)

    def test_partial_pools_only_its_folds(self, cv: tuple[Path, dict], tmp_path: Path) -> None:
        """Some folds: their cells alone are scored, the same fold runs are reused; a fold that does not
        exist is refused."""
        work, r = cv
        part = cross_validate(RECIPE, {0: work / "fold0", 2: work / "fold2"}, FIXTURE_IMAGES)
        assert sorted(part["folds"]) == ["0", "2"] and part["folds_total"] == 3 and r["folds_total"] == 3
        assert all(f["reused"] for f in part["folds"].values())
        assert part["calibrated"]["n_files"] == r["folds"]["0"]["files"] + r["folds"]["2"]["files"]
        with pytest.raises(DataError, match="folds 0..2"):
            cross_validate(RECIPE, {3: tmp_path / "f3"}, FIXTURE_IMAGES)

    def test_every_fold_must_hold_out_every_cell(self, cv: tuple[Path, dict]) -> None:
        """All the folds, yet a cell no fold held out (a fold run split before wbc 0.21, which kept a field
        labelled twice in two folds, pooled with later ones): refused by name, not scored on fewer cells."""
        work, _ = cv
        split_file = work / "fold0" / "split.json"
        kept = split_file.read_text()
        split = json.loads(kept)
        split_file.write_text(json.dumps({**split, "train_cells": [*split["train_cells"], "MONOCYTE/BloodImage_99999"]}))
        try:
            with pytest.raises(DataError, match=r"leave out 1 of the \d+ cells \(MONOCYTE/BloodImage_99999\)"):
                cross_validate(RECIPE, {f: work / f"fold{f}" for f in range(3)}, FIXTURE_IMAGES)
            # Its training cells lost (their logits cached): named, where a KeyError's traceback ended it
            split_file.write_text(json.dumps({"val_cells": split["val_cells"]}))
            with pytest.raises(CheckpointError, match=r"fold0: split.json, the cells the run trained on, is missing or "
                                                      r"damaged; train that fold again"):
                cross_validate(RECIPE, {f: work / f"fold{f}" for f in range(3)}, FIXTURE_IMAGES)
        finally:
            split_file.write_text(kept)


class TestAllCells:
    def test_trains_on_every_cell(self, all_cells_run: Path) -> None:
        """--all-cells: no validation cells, no validation columns, exactly `epochs`, best.pt is the last epoch."""
        split = json.loads((all_cells_run / "split.json").read_text())
        assert split["val_cells"] == [] and len(split["train_cells"]) == 12
        rows = list(csv.DictReader((all_cells_run / "summary.csv").open()))
        assert len(rows) == 1 and not any(k.startswith("val_") for k in rows[0])
        best, last = load_checkpoint(all_cells_run / "best.pt"), load_checkpoint(all_cells_run / "last.pt")
        assert best["epoch"] == last["epoch"] == 0 and last["stopped"]
        assert (all_cells_run / "curves.png").stat().st_size > 0

    def test_refuses_teachers(self, tiny_run: Path, tmp_path: Path) -> None:
        with pytest.raises(DataError, match="holds out none"):
            fit(replace(RECIPE, fold=None, teachers=(str(tiny_run),)), tmp_path / "s", progress=False)

    def test_export_needs_the_cross_validation(self, all_cells_run: Path, tmp_path: Path) -> None:
        """Without validation cells the export asks for a cross-validation's calibration."""
        with pytest.raises(CheckpointError, match="--calibration") as e:
            export_and_report(all_cells_run, tmp_path / "out", data=FIXTURE_IMAGES)
        assert f"wbc evaluate --model {all_cells_run / 'best.pt'}" in str(e.value)
        # --no-calibrate does not get round it: the review threshold needs held-out cells too, and says so
        with pytest.raises(CheckpointError, match="review threshold from, .* drop --no-calibrate and pass --calibration"):
            export_and_report(all_cells_run, tmp_path / "out", data=FIXTURE_IMAGES, calibrate=False)
        assert not (tmp_path / "out" / "model.onnx").exists()

    def test_export_with_the_pooled_calibration(self, all_cells_run: Path, cv: tuple[Path, dict], tmp_path: Path) -> None:
        """The card takes the cross-validation's temperature and review threshold, and says where from."""
        work, r = cv
        card = export_and_report(all_cells_run, tmp_path / "out", data=FIXTURE_IMAGES, calibration=work / "cv.json")
        assert card["temperature"] == pytest.approx(r["temperature"])
        assert card["review_threshold"] == pytest.approx(r["review_threshold"])
        assert "cross-validation" in card["calibration"]["fitted_on"] and "out-of-fold" in card["review_rule"]
        assert card["calibration"]["n_files"] == r["calibrated"]["n_files"]
        # fitted on the out-of-fold files' averaged views, however many the model reads (the report says both)
        assert card["calibration"]["fitted_on_views"] == OOF_VIEWS != card["tta_views"]
        # the ECE before and after the temperature, of the pooled out-of-fold files
        assert r["raw"]["ece"] != r["calibrated"]["ece"]
        assert (card["calibration"]["val_ece_before"], card["calibration"]["val_ece_after"]) == (
            pytest.approx(r["raw"]["ece"]), pytest.approx(r["calibrated"]["ece"]))
        assert "none held out" in card["data"]["training_split"]
        # No cell held out: the epoch kept was chosen on nothing, and no validation figures are claimed.
        assert card["training"]["selected_on"].startswith("nothing") and card["training"]["validation_at_best_epoch"] is None
        assert card["match_white"] is False and Predictor(tmp_path / "out").match_white is False
        card = export_and_report(all_cells_run, tmp_path / "wm", data=FIXTURE_IMAGES, calibration=work / "cv.json",
                                 match_white=True)
        assert card["match_white"] is True and Predictor(tmp_path / "wm").match_white is True

    def test_export_carries_an_adopted_confidence_map(self, all_cells_run: Path, cv: tuple[Path, dict],
                                                       tmp_path: Path) -> None:
        """The cross-validation's verdict on the map is recorded; an adopted map goes into the card
        (made to be adopted here: the fixture's three folds are too few to decide it)."""
        work, r = cv
        check = r["confidence_map_check"]
        assert check["adopted"] == (r["confidence_map"] is not None)
        assert {"ece_temperature", "ece_mapped", "nll_temperature", "nll_mapped"} <= set(check)
        cmap = {"x": [0.25, 0.6, 1.0], "y": [0.25, 0.5, 0.9]}
        (tmp_path / "cv.json").write_text(json.dumps({**r, "confidence_map": cmap}))
        card = export_and_report(all_cells_run, tmp_path / "out", data=FIXTURE_IMAGES, calibration=tmp_path / "cv.json")
        assert card["confidence_map"] == cmap
        # The ECE left out fold by fold is that of what the card shows: the map's where one is carried, else the
        # temperature's alone
        from wbc.crossval import calibration_from

        given = {**r, "confidence_map_check": {**check, "ece_temperature": 0.2, "ece_mapped": 0.1}}
        for kept, ece in ((cmap, 0.1), (None, 0.2)):
            (tmp_path / "given.json").write_text(json.dumps({**given, "confidence_map": kept}))
            assert calibration_from(tmp_path / "given.json", all_cells_run)["val_ece_after_left_out"] == ece
        old = {k: v for k, v in r.items() if k not in ("confidence_map", "confidence_map_check")}
        (tmp_path / "old.json").write_text(json.dumps(old))  # a result from before maps: temperature alone
        card = export_and_report(all_cells_run, tmp_path / "out2", data=FIXTURE_IMAGES, calibration=tmp_path / "old.json")
        assert card["confidence_map"] is None

    def test_export_with_another_seed(self, cv: tuple[Path, dict], tmp_path: Path) -> None:
        """Another seed of the same recipe takes the same calibration."""
        work, r = cv
        other = fit(replace(RECIPE, fold=None, seed=1), tmp_path / "s1", progress=False)
        card = export_and_report(other, tmp_path / "out", data=FIXTURE_IMAGES, calibration=work / "cv.json")
        assert card["temperature"] == pytest.approx(r["temperature"])

    def test_export_refuses_misuse(self, cv: tuple[Path, dict], tiny_run: Path, all_cells_run: Path,
                                   tmp_path: Path) -> None:
        """A run with validation cells, --no-calibrate beside --calibration, and a file that is not a
        cross-validation are each refused with what is wrong."""
        work, _ = cv
        with pytest.raises(CheckpointError, match="holds out validation cells"):
            export_and_report(tiny_run, tmp_path / "a", data=FIXTURE_IMAGES, calibration=work / "cv.json")
        with pytest.raises(CheckpointError, match="exclude each other"):
            export_and_report(all_cells_run, tmp_path / "b", data=FIXTURE_IMAGES, calibrate=False,
                              calibration=work / "cv.json")
        bad = tmp_path / "cv.json"
        bad.write_text(json.dumps({"temperature": 0.5}))
        with pytest.raises(CheckpointError, match="not a cross-validation result"):
            export_and_report(all_cells_run, tmp_path / "c", data=FIXTURE_IMAGES, calibration=bad)
        with pytest.raises(CheckpointError, match=r"gone.json: no such file \(benchmarks/cv.py writes"):
            export_and_report(all_cells_run, tmp_path / "d", data=FIXTURE_IMAGES, calibration=tmp_path / "gone.json")
        # Figures no model card may hold are refused, naming the cv.json: a NaN temperature was exported without a
        # word (parity "nan"), into a model `wbc predict` refused.
        from wbc.errors import ModelFileError

        r = json.loads((work / "cv.json").read_text())
        for edit, says in (({"temperature": float("nan")}, "temperature is nan; it must be a number above 0"),
                           ({"temperature": -1}, "temperature is -1; it must be a number above 0"),
                           ({"review_threshold": 1.7}, "review_threshold is 1.7; it must be a confidence in 0..1"),
                           ({"confidence_map": {"bogus": 1}}, "confidence_map must be")):
            bad.write_text(json.dumps({**r, **edit}))
            with pytest.raises(ModelFileError, match=f"^{re.escape(str(bad))}: {re.escape(says)}"):
                export_and_report(all_cells_run, tmp_path / "e", data=FIXTURE_IMAGES, calibration=bad)
            assert not (tmp_path / "e").exists()
        # --no-tta beside --calibration is told to drop --no-tta (it was told its square input is not square)
        with pytest.raises(CheckpointError, match="fitted on averaged views; drop --no-tta$"):
            export_and_report(all_cells_run, tmp_path / "f", data=FIXTURE_IMAGES, calibration=work / "cv.json", tta=False)

    def test_export_refuses_a_calibration_of_other_cells(self, cv: tuple[Path, dict], tmp_path: Path) -> None:
        """A run trained on other cells than the cross-validation held out (another data set, here fewer cells) is
        refused: an own-data run took the public data's calibration unsaid. So with a cv.json written before it
        kept its cells, from its fold runs' split or, with them gone, the number of cells. The card's calibration
        keeps its number of files, which the warning on too few reads."""
        import shutil

        work, r = cv
        fewer = tmp_path / "fewer"
        shutil.copytree(FIXTURE_IMAGES, fewer)
        gone = next((fewer / "TRAIN" / "EOSINOPHIL").glob("*.jpeg"))
        for f in (fewer / "TRAIN" / "EOSINOPHIL").glob("*.jpeg"):
            if f.name.split("_")[1] == gone.name.split("_")[1]:  # every view of that cell
                f.unlink()
        other = fit(replace(RECIPE, fold=None, data=str(fewer)), tmp_path / "other", progress=False)
        without = {k: v for k, v in r.items() if k != "cells"}
        (tmp_path / "old.json").write_text(json.dumps(without))
        kept_out = {**without, "folds": {k: {**f, "run": str(tmp_path / "gone")} for k, f in r["folds"].items()}}
        (tmp_path / "moved.json").write_text(json.dumps(kept_out))
        for cv_json in (work / "cv.json", tmp_path / "old.json", tmp_path / "moved.json"):
            with pytest.raises(CheckpointError, match=f"cross-validates {len(r['cells'])} cells, and .* trained on "
                                                      f"{len(r['cells']) - 1}.*another data set's calibration"):
                export_and_report(other, tmp_path / "out", data=fewer, calibration=cv_json)
        assert not (tmp_path / "out" / "model.onnx").exists()

    def test_export_refuses_a_calibration_of_as_many_other_cells(self, cv: tuple[Path, dict], all_cells_run: Path,
                                                                  tmp_path: Path) -> None:
        """A run trained on as many cells as the cross-validation held out, one of them another: refused, naming it
        among cells the calibration never saw (a count alone took another data set's calibration of its size)."""
        work, r = cv
        run = tmp_path / "run"
        shutil.copytree(all_cells_run, run)
        split = json.loads((run / "split.json").read_text())
        assert len(split["train_cells"]) == len(r["cells"])
        (run / "split.json").write_text(json.dumps({**split, "train_cells": [*split["train_cells"][1:], "x/other"]}))
        with pytest.raises(CheckpointError, match=r"trained on \d+ \(1 of them not among those\): another data set's"):
            export_and_report(run, tmp_path / "out", data=FIXTURE_IMAGES, calibration=work / "cv.json")

    def test_export_refuses_another_recipe(self, cv: tuple[Path, dict], tmp_path: Path) -> None:
        work, _ = cv
        other = fit(replace(RECIPE, fold=None, lr=1e-3), tmp_path / "other", progress=False)
        with pytest.raises(CheckpointError, match=r"another recipe than .*: they differ in lr \(0\.001 in the run, 0\.002 cross-validated\)$"):
            export_and_report(other, tmp_path / "out", data=FIXTURE_IMAGES, calibration=work / "cv.json")

    def test_export_refuses_a_partial_cross_validation(self, cv: tuple[Path, dict], all_cells_run: Path,
                                                       tmp_path: Path) -> None:
        """A cross-validation of some folds left cells out: it calibrates nothing."""
        work, _ = cv
        part = cross_validate(RECIPE, {0: work / "fold0", 1: work / "fold1"}, FIXTURE_IMAGES)
        (tmp_path / "cv.json").write_text(json.dumps(part))
        with pytest.raises(CheckpointError, match="partial cross-validation"):
            export_and_report(all_cells_run, tmp_path / "out", data=FIXTURE_IMAGES, calibration=tmp_path / "cv.json")

    def test_export_refuses_early_stopped_folds(self, cv: tuple[Path, dict], all_cells_run: Path,
                                                tmp_path: Path) -> None:
        """Fold runs that stopped before the recipe's epochs are not what --all-cells trains: refused."""
        work, r = cv
        assert all(f["epochs_run"] == RECIPE.epochs for f in r["folds"].values())
        short = json.loads((work / "cv.json").read_text())
        short["recipe"]["epochs"], short["folds"]["1"]["epochs_run"] = 3, 2
        (tmp_path / "cv.json").write_text(json.dumps(short))
        with pytest.raises(CheckpointError, match="stopped early .*fold 1 at epoch 2"):
            export_and_report(all_cells_run, tmp_path / "out", data=FIXTURE_IMAGES, calibration=tmp_path / "cv.json")


def test_a_null_split_seed_is_the_runs_seed() -> None:
    """A plain `wbc train` saves split_seed null and splits by its seed: cv.py's split_seed 0 is that
    run's split, and a run of seed 3 with null is seed 3's split, not 0's (cv.py refused `--use 0=RUN` of
    a plain run: "split_seed differ")."""
    from wbc.crossval import differences, differences_shown

    assert differences({"seed": 0, "split_seed": None}, {"seed": 0, "split_seed": 0}) == []
    assert differences({"seed": 3}, {"seed": 3, "split_seed": 3}) == []
    assert differences({"seed": 3, "split_seed": None}, {"seed": 3, "split_seed": 0}) == ["split_seed"]
    assert differences({"seed": 0, "split_seed": 1}, {"seed": 0}) == ["split_seed"]
    # Shown with the split each side makes, not a null that reads as "no split seed".
    assert differences_shown({"seed": 3, "split_seed": None}, {"seed": 3, "split_seed": 0}, "there", "asked") == [
        "split_seed (3 there, 0 asked)"]


def test_left_out_differs_from_the_pooled_temperature() -> None:
    """pooled_figures' "left_out": each fold's views tempered by the temperature fitted on the other folds, not by the
    pooled one (fitted on the very files it scores); here the folds are made to want different temperatures, so the
    two differ, and a single fold gives none."""
    from wbc.calibration import fit_temperature, nll, tta_probs
    from wbc.crossval import pooled_figures, tempered_left_out

    rng = np.random.default_rng(0)
    fold_lg, fold_y = [], []
    for k, scale in enumerate((0.5, 2.0, 6.0)):  # sharper logits fold by fold: each fold's own temperature differs
        y = rng.integers(0, 4, 60)
        lg = rng.normal(size=(8, 60, 4))
        lg[:, np.arange(60), y] += 1.0
        fold_lg.append(scale * lg)
        fold_y.append(y)
    lg, y = np.concatenate(fold_lg, axis=1), np.concatenate(fold_y)
    cells = [f"c{i}" for i in range(len(y))]
    t = fit_temperature(lg, y)
    out = pooled_figures(lg, y, cells, t, tempered_left_out(fold_lg, fold_y))
    held = []
    for i in range(3):
        rest = [j for j in range(3) if j != i]
        held.append(tta_probs(fold_lg[i], fit_temperature(np.concatenate([fold_lg[j] for j in rest], 1),
                                                          np.concatenate([fold_y[j] for j in rest]))))
    assert out["left_out"]["nll"] == pytest.approx(nll(np.concatenate(held), y))
    assert abs(out["left_out"]["nll"] - out["calibrated"]["nll"]) > 0.01
    assert out["calibrated"]["nll"] == pytest.approx(nll(tta_probs(lg, t), y))
    assert "left_out" not in pooled_figures(fold_lg[0], fold_y[0], cells[:60], t, tempered_left_out([fold_lg[0]], [fold_y[0]]))



def test_a_confidence_map_is_adopted_only_where_it_lowers_the_ece_without_raising_the_nll(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The map's check adopts it where, left out fold by fold, it lowers the ECE and does not raise the NLL. Ten
    files of one type, the temperature's all right at 0.6 (ECE 0.4, NLL 0.51): a map that reads every one at 1.0,
    one of them wrong, lowers the ECE to 0.1 but costs that file a certain wrong answer (NLL 2.76): not adopted;
    one that reads all right at 0.9 lowers both: adopted. The temperature's at 0.9 with one wrong (ECE 0, NLL
    0.43): a map reading the nine right at 0.95 and the wrong one at 0.7 lowers the NLL (0.17) but raises the
    ECE (0.115): not adopted."""
    from wbc import crossval
    from wbc.calibration import nll
    from wbc.metrics import expected_calibration_error

    def rows(top: float, wrong: float | None = None) -> np.ndarray:
        p = np.tile([top, *[(1 - top) / 3] * 3], (10, 1))
        if wrong is not None:  # the last file read as a lymphocyte at `wrong`, its own type at the rest
            p[9] = [1 - wrong, wrong, 0, 0]
        return p

    y = np.zeros(10, dtype=int)
    for tempered, mapped, adopted in ((rows(0.6), rows(1.0, 1.0), False), (rows(0.6), rows(0.9), True),
                                      (rows(0.9, 0.9), rows(0.95, 0.7), False)):
        monkeypatch.setattr(crossval, "left_out", lambda *_, m=mapped: m)
        check = crossval.confidence_map_check([np.zeros((1, 10, 4))], [y], tempered)
        assert check["ece_mapped"] == pytest.approx(expected_calibration_error(mapped, y))
        assert check["ece_temperature"] == pytest.approx(expected_calibration_error(tempered, y))
        assert check["nll_mapped"] == nll(mapped, y) and check["nll_temperature"] == nll(tempered, y)
        assert check["adopted"] is adopted
    assert (check["ece_mapped"], check["ece_temperature"]) == (pytest.approx(0.115), pytest.approx(0.0, abs=1e-12))
    assert check["nll_mapped"] < check["nll_temperature"]


def test_cv_interrupted_says_the_same_command_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl+C (or SIGTERM) during the folds exits 130 saying that the same command continues, what is kept (it
    said only "cv.py: interrupted")."""
    import wbc.crossval

    def stopped(*a, **k):  # noqa: ANN002, ANN003
        raise KeyboardInterrupt

    monkeypatch.setattr(wbc.crossval, "cross_validate", stopped)
    monkeypatch.setattr(sys, "argv", ["cv.py", "--name", "x", "--work", str(tmp_path), "--data", str(FIXTURE_IMAGES)])
    assert load_benchmark("cv").main() == 130
    assert ("cv: interrupted; the same command goes on: the folds finished are kept, and the one in progress "
            "continues from its last finished epoch (or starts again, stopped in its first)") in capsys.readouterr().err
    # A dry run keeps nothing: no word of going on (the interrupt goes up, as a plain stop)
    monkeypatch.setattr(sys, "argv", ["cv.py", "--name", "x", "--work", str(tmp_path), "--data", str(FIXTURE_IMAGES),
                                      "--dry-run"])
    with pytest.raises(KeyboardInterrupt):
        load_benchmark("cv").main()
    assert "goes on" not in capsys.readouterr().err


def test_a_fold_whose_last_pt_may_not_be_read_is_not_to_be_removed(tiny_run: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A fold's last.pt the user may not read (another user's, mode 600) says it cannot be read, and why: not
    "remove the fold to train it afresh", a whole fold lost to a permission; a damaged one still says so."""
    import wbc.checkpoint
    from wbc.crossval import check_reusable

    run = tmp_path / "fold0"
    shutil.copytree(tiny_run, run)

    def refused(path: Path, **k: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(wbc.checkpoint.torch, "load", refused)
    with pytest.raises(CheckpointError) as e:
        check_reusable(TrainConfig(epochs=2), run)
    assert str(e.value) == f"{run / 'last.pt'}: cannot be read (PermissionError: [Errno 13] Permission denied: " \
                           f"'{run / 'last.pt'}')"
    monkeypatch.undo()
    (run / "last.pt").write_bytes(b"cut")
    with pytest.raises(CheckpointError, match=f"; remove {re.escape(str(run))} to train this fold afresh$"):
        check_reusable(TrainConfig(epochs=2), run)

    def cut_short(path: Path, **k: object) -> None:  # torch's reader on a file cut short: damaged too
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(wbc.checkpoint.torch, "load", cut_short)
    with pytest.raises(CheckpointError, match=f"damaged or cut short .*; remove {re.escape(str(run))} to train"):
        check_reusable(TrainConfig(epochs=2), run)
