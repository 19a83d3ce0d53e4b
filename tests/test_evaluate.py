from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

from conftest import FIXTURE_IMAGES, FIXTURES  # noqa: E402

from wbc.card import DEFAULT_MODEL_DIR  # noqa: E402
from wbc.evaluate import evaluate  # noqa: E402
from wbc.info import DATASET  # noqa: E402


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
        # what a cell's verdict is, and that the screening's verdicts are not these figures
        assert "a cell's verdict is the class of its views' mean probabilities" in report
        # a folder of one's own photos is screened as `wbc predict` screens it, and the report says what it gave
        assert m["screening"]["typed_files"] == 8 and "the 8 files get: " in report
        assert ("Every file is given a type, so these figures are also those of the types `wbc predict` and the app "
                "would give.") in report
        assert json.loads((tmp_path / "metrics.json").read_text())["accuracy"] == m["accuracy"]
        # What each bracket is: the files' intervals approximate, the cells' exact, the ECE's a spread and no floor
        from wbc.differential import counting_limits
        from wbc.report import INTERVALS

        assert INTERVALS in report and "cover the truth less often than 95%" in INTERVALS
        assert m["cell_accuracy_ci95"] == counting_limits(m["cells_correct"], m["n_cells"])
        assert "the bracket is the spread of the resampled ECEs, not a 95% interval" in report

    def test_predictions_flag_what_the_card_says_needs_review(self, tmp_path: Path) -> None:
        """predictions.csv marks needs_review exactly where confidence is below the card's threshold."""
        import csv
        import shutil

        model = tmp_path / "model"
        shutil.copytree(DEFAULT_MODEL_DIR, model)
        card = json.loads((model / "model.json").read_text())
        # A card without a threshold marks nothing, and its figures say nothing of a review mark
        (model / "model.json").write_text(json.dumps({k: v for k, v in card.items() if k != "review_threshold"}))
        out = tmp_path / "eval"
        m = evaluate(model, out, folder=FIXTURE_IMAGES / "TEST_SIMPLE", n_boot=50, progress=False)
        rows = list(csv.DictReader((out / "predictions.csv").open()))
        assert "review" not in m and "Marked *needs review*" not in (out / "report.md").read_text()
        assert {r["needs_review"] for r in rows} == {"no"}
        conf = sorted(float(r["confidence"]) for r in rows)  # printed to 1e-6
        k = next(i for i in range(1, len(conf)) if conf[i] - conf[i - 1] > 2e-6)  # first clear gap
        card["review_threshold"] = (conf[k - 1] + conf[k]) / 2
        (model / "model.json").write_text(json.dumps(card))
        evaluate(model, out, folder=FIXTURE_IMAGES / "TEST_SIMPLE", n_boot=50, progress=False)
        rows = list(csv.DictReader((out / "predictions.csv").open()))
        assert sum(r["needs_review"] == "yes" for r in rows) == k
        for r in rows:
            assert (r["needs_review"] == "yes") == (float(r["confidence"]) < card["review_threshold"])
            # a folder of one's own photos is screened as `wbc predict` screens it: each row's verdict is its own
            assert r["verdict"] == ("needs review" if r["needs_review"] == "yes" else "confident")
            assert r["white_balanced"] == r["overexposed"] == "no"
        review = json.loads((out / "metrics.json").read_text())["review"]
        assert review["flagged_share"] == pytest.approx(k / len(rows))
        right = [r["file"].split("/")[0] == r["class"] for r in rows]
        flagged = [r["needs_review"] == "yes" for r in rows]
        assert review["accuracy_rest"] == pytest.approx(
            sum(a for a, f in zip(right, flagged) if not f) / (len(rows) - k))
        report = (out / "report.md").read_text()  # the review split is in the report too
        assert f"| Marked *needs review* | {100 * review['flagged_share']:.2f}% |" in report
        caught = review["errors_flagged_share"]  # None where the model made no error: undefined, not 0
        assert (caught is None) == all(right) and review["cells_with_errors"] == len(
            {r["file"] for r, ok in zip(rows, right) if not ok})
        assert f"| Wrong files marked *needs review* | {'—' if caught is None else f'{100 * caught:.2f}%'} |" in report

    def test_predictions_say_the_truth_and_whether_right(self, tmp_path: Path) -> None:
        """predictions.csv ends with each file's true class (its class folder) and whether the predicted
        class is it; the columns before them are as before. Class folders in lower case are read alike."""
        import csv
        import shutil

        from wbc.info import CLASSES

        folder = tmp_path / "lower"
        for c in CLASSES:
            shutil.copytree(FIXTURE_IMAGES / "TEST_SIMPLE" / c, folder / c.lower())
        m = evaluate(None, tmp_path / "eval", folder=folder, n_boot=50, progress=False)
        with (tmp_path / "eval" / "predictions.csv").open() as f:
            head = next(csv.reader(f))
            f.seek(0)
            rows = list(csv.DictReader(f))
        assert head[:3] == ["file", "class", "confidence"] and head[-2:] == ["true_class", "correct"]
        assert len(rows) == m["n_files"] == 8
        for r in rows:
            assert r["true_class"] == r["file"].split("/")[0].upper()
            assert r["correct"] == ("yes" if r["class"] == r["true_class"] else "no")
        assert sum(r["correct"] == "yes" for r in rows) / len(rows) == pytest.approx(m["accuracy"])

    def test_a_folder_is_screened_as_wbc_predict_screens_it(self, tmp_path: Path) -> None:
        """A folder of one's own photos holding one with no white cell: the figures still score it as the network
        reads it, but metrics.json, the report and predictions.csv say that `wbc predict` would give it no type,
        and the accuracy over the files given one; a class folder's row keeps whether the network read it right."""
        import csv
        import shutil

        folder = tmp_path / "data"
        shutil.copytree(FIXTURE_IMAGES / "TEST_SIMPLE", folder)
        shutil.copy(FIXTURES / "no-white-cell.jpeg", folder / "MONOCYTE" / "blank.jpeg")
        m = evaluate(None, tmp_path / "eval", folder=folder, n_boot=50, progress=False)
        s = m["screening"]
        assert m["n_files"] == s["files"] == 9 and s["typed_files"] == 8
        assert s["verdicts"].get("not a white blood cell") == 1 and sum(s["verdicts"].values()) == 9
        assert s["not_typed"] == [{"file": "MONOCYTE/blank.jpeg", "verdict": "not a white blood cell",
                                   "why": s["not_typed"][0]["why"]}] and s["not_typed"][0]["why"]
        rows = list(csv.DictReader((tmp_path / "eval" / "predictions.csv").open(newline="")))
        blank = next(r for r in rows if r["file"] == "MONOCYTE/blank.jpeg")
        assert blank["class"] == "" and blank["verdict"] == "not a white blood cell"
        read_right = max(("eosinophil", "lymphocyte", "monocyte", "neutrophil"),
                         key=lambda c: float(blank[f"p_{c}"])) == "monocyte"
        assert blank["correct"] == ("yes" if read_right else "no")
        right = [r["correct"] == "yes" for r in rows]
        assert sum(right) / 9 == pytest.approx(m["accuracy"])  # the blank still scored, as the network read it
        typed = [ok for ok, r in zip(right, rows) if r["file"] != "MONOCYTE/blank.jpeg"]
        assert s["typed_right"] == sum(typed) and s["accuracy_typed"] == pytest.approx(sum(typed) / 8)
        from wbc.differential import counting_limits

        assert s["accuracy_typed_ci95"] == list(counting_limits(sum(typed), 8))
        assert s["accuracy_not_typed"] == float(read_right) and s["not_typed_right"] == int(read_right)
        # the files read right under each verdict, from the rows
        for v, k in s["right_by_verdict"].items():
            assert k == sum(ok for ok, r in zip(right, rows) if r["verdict"] == v)
        assert set(s["right_by_verdict"]) == set(s["verdicts"])
        report = (tmp_path / "eval" / "report.md").read_text()
        assert f"1 *not a white blood cell* ({int(read_right)} read right)" in report
        assert f"- 1 *not a white blood cell*, {s['not_typed'][0]['why']}. File: MONOCYTE/blank.jpeg" in report.splitlines()
        lo, hi = s["accuracy_typed_ci95"]
        assert (f"over the 8 given a type, accuracy is {100 * s['accuracy_typed']:.2f}% [{100 * lo:.2f}%, {100 * hi:.2f}%] "
                "(exact 95% limits, each file taken for a cell of its own)") in report

    def test_files_left_out_with_skip_bad_are_named(self, tmp_path: Path) -> None:
        """--skip-bad evaluates the rest, and the metrics and the report name the file left out."""
        import shutil

        folder = tmp_path / "data"
        shutil.copytree(FIXTURE_IMAGES / "TEST_SIMPLE", folder)
        (folder / "MONOCYTE" / "broken.jpeg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
        m = evaluate(None, tmp_path / "eval", folder=folder, skip_bad=True, n_boot=50, progress=False)
        assert m["n_files"] == 8 and m["skipped_files"] == ["MONOCYTE/broken.jpeg"]
        assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["skipped_files"] == ["MONOCYTE/broken.jpeg"]
        assert "- **left out (unusable, --skip-bad)**: 1 file(s): MONOCYTE/broken.jpeg" in (tmp_path / "eval" / "report.md").read_text()
        assert "skipped_files" not in evaluate(None, tmp_path / "all", folder=FIXTURE_IMAGES / "TEST_SIMPLE",
                                               n_boot=50, progress=False)

    def test_names_left_out_are_shown_as_they_are_in_the_report(self, tmp_path: Path) -> None:
        """A file left out whose name holds a newline or Markdown's marks is one list item in report.md, its name
        shown as it is: a newline in it ended the list item, and "[x](javascript:...)" became a link."""
        import shutil

        folder = tmp_path / "data"
        shutil.copytree(FIXTURE_IMAGES / "TEST_SIMPLE", folder)
        for name in ("[x](javascript:alert(1)) *b*.jpeg", "new\nline|pipe.jpeg"):
            (folder / "MONOCYTE" / name).write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
        evaluate(None, tmp_path / "eval", folder=folder, skip_bad=True, n_boot=50, progress=False)
        line = next(l for l in (tmp_path / "eval" / "report.md").read_text().splitlines() if "left out" in l)
        assert line == ("- **left out (unusable, --skip-bad)**: 2 file(s): MONOCYTE/\\[x\\](javascript:alert(1)) "
                        "\\*b\\*.jpeg, MONOCYTE/new\\\\nline\\|pipe.jpeg")

    def test_images_in_subfolders_of_a_class_folder_count(self, tmp_path: Path) -> None:
        """A class folder's subfolders (a patient's, a slide's) are searched, as `wbc predict` searches
        them; files of one name in two subfolders are two cells, and a byte-for-byte copy (top.jpeg) is the
        cell it copies; an unreadable subfolder is named."""
        import os
        import shutil

        from wbc.errors import DataError
        from wbc.info import CLASSES

        files = {c: sorted((FIXTURE_IMAGES / "TEST_SIMPLE" / c).iterdir()) for c in CLASSES}
        folder = tmp_path / "smears"
        for c in CLASSES:
            (folder / c / "patient1" / "slideA").mkdir(parents=True)
            (folder / c / "patient2").mkdir()
            shutil.copy(files[c][0], folder / c / "patient1" / "slideA" / "x.jpeg")
            shutil.copy(files[c][1], folder / c / "patient2" / "x.jpeg")
        shutil.copy(files["EOSINOPHIL"][0], folder / "EOSINOPHIL" / "top.jpeg")
        m = evaluate(None, tmp_path / "eval", folder=folder, n_boot=50, progress=False)
        assert m["n_files"] == 9 and m["n_cells"] == 8
        assert m["per_class"]["NEUTROPHIL"]["support"] == 2
        # A subfolder that cannot be listed: made to fail here, as root lists any folder whatever its chmod.
        locked, real = folder / "MONOCYTE" / "patient2", os.scandir

        def scandir(path: object = ".") -> object:
            if Path(str(path)) == locked:
                raise PermissionError(13, "Permission denied", str(path))
            return real(path)  # type: ignore[arg-type]

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(os, "scandir", scandir)
            with pytest.raises(DataError, match="patient2: cannot be read"):
                evaluate(None, tmp_path / "eval2", folder=folder, n_boot=50, progress=False)

    def test_a_users_files_are_not_replaced(self, tmp_path: Path) -> None:
        """A report.md of the user's in --out is refused before the work and kept (as `wbc predict --csv`
        keeps a file not its own); an earlier evaluation's files are replaced by a rerun."""
        from wbc.errors import OutputError

        out = tmp_path / "ev"
        out.mkdir()
        (out / "report.md").write_text("my notes")
        with pytest.raises(OutputError, match=f"^{out}: holds report.md, not of an evaluation by wbc"):
            evaluate(None, out, folder=FIXTURE_IMAGES / "TEST_SIMPLE", n_boot=20, progress=False)
        assert (out / "report.md").read_text() == "my notes" and [f.name for f in out.iterdir()] == ["report.md"]
        (out / "report.md").unlink()
        for _ in range(2):
            evaluate(None, out, folder=FIXTURE_IMAGES / "TEST_SIMPLE", n_boot=20, progress=False)
            assert (out / "report.md").read_text().startswith("# Evaluation of ")
        (out / "report.md").unlink()  # a folder in a file's place: refused before the work, even after a rerun
        (out / "report.md").mkdir()
        with pytest.raises(OutputError, match=f"^{out}: holds folder\\(s\\) named report.md"):
            evaluate(None, out, folder=FIXTURE_IMAGES / "TEST_SIMPLE", n_boot=20, progress=False)

    def test_test_images_copied_from_train_are_said(self, tmp_path: Path) -> None:
        """An own data set whose TEST holds byte-for-byte copies of TRAIN images: the figures carry a caution that
        names how many (they were reported as if new); without copies, none."""
        import shutil

        files = sorted(FIXTURE_IMAGES.rglob("*.jpeg"))
        own = tmp_path / "own"
        for split in ("TRAIN", "TEST"):
            for i, f in enumerate(files):
                d = own / split / f.parent.name
                d.mkdir(parents=True, exist_ok=True)
                if (split == "TEST") == bool(i % 2):  # the files apart: TRAIN the even ones, TEST the odd, renamed
                    shutil.copy(f, d / f"{split.lower()}{i}.jpeg")
        clean = evaluate(None, tmp_path / "clean", data=own, split="TEST", n_boot=20, progress=False)
        assert "caution" not in clean
        test_dir = own / "TEST" / files[0].parent.name
        shutil.copy(own / "TRAIN" / files[0].parent.name / "train0.jpeg", test_dir / "copy-a.jpeg")
        shutil.copy(own / "TRAIN" / files[2].parent.name / "train2.jpeg", test_dir / "copy-b.jpeg")
        m = evaluate(None, tmp_path / "ev", data=own, split="TEST", n_boot=20, progress=False)
        assert m["caution"].startswith(f"2 of the {m['n_files']} TEST images are byte-for-byte copies of TRAIN images")
        assert m["caution"].endswith("(remove them from TEST, or a copy of a TEST image made into TRAIN from TRAIN)")
        assert "caution" in (tmp_path / "ev" / "report.md").read_text()

    def test_another_models_folder_is_refused(self, tmp_path: Path) -> None:
        """--out at an exported model other than the one evaluated is refused before the work: its report and the
        metrics.json the app reads beside it would describe another model (a tiny run's figures replaced the
        shipped model's). A folder's own model evaluated into it is not refused."""
        import shutil

        from wbc.card import DEFAULT_MODEL_DIR
        from wbc.errors import OutputError

        mine, other = tmp_path / "mine", tmp_path / "other"
        for d in (mine, other):
            d.mkdir()
            for f in ("model.onnx", "model.json"):
                shutil.copy(DEFAULT_MODEL_DIR / f, d / f)
        data = FIXTURE_IMAGES.parent
        (other / "model.onnx").write_bytes((other / "model.onnx").read_bytes()[:-1] + b"x")  # another model's bytes
        for model in (mine, None, mine / "model.onnx", tmp_path / "run" / "best.pt"):
            with pytest.raises(OutputError, match=f"^{other}: holds an exported model .* other than the one evaluated"):
                evaluate(model, other, data=data, split="TEST_SIMPLE", n_boot=20, progress=False)
        # Its own model, on images other than TEST: the app would show their figures as the test images'
        shutil.copy(DEFAULT_MODEL_DIR / "model.onnx", other / "model.onnx")
        for where in ({"folder": FIXTURE_IMAGES / "TEST_SIMPLE"}, {"data": data, "split": "TRAIN"}):
            with pytest.raises(OutputError, match=f"^{other}: holds the model evaluated, whose report there .* of TEST"):
                evaluate(other, other, n_boot=20, progress=False, **where)
        assert sorted(f.name for f in other.iterdir()) == ["model.json", "model.onnx"]
        # A model that cannot be read is named as such, not as "another model"
        from wbc.errors import ModelFileError

        with pytest.raises(ModelFileError, match="model file not found"):
            evaluate(tmp_path / "typo", other, data=data, split="TEST_SIMPLE", n_boot=20, progress=False)
        test_like = tmp_path / "data"  # the fixture's TEST_SIMPLE as a TEST split
        shutil.copytree(FIXTURE_IMAGES / "TEST_SIMPLE", test_like / "TEST")
        shutil.copytree(FIXTURE_IMAGES / "TRAIN", test_like / "TRAIN")
        for model in (other, other / "model.onnx", mine):  # its own, or the same bytes elsewhere
            evaluate(model, other, data=test_like, split="TEST", n_boot=20, progress=False)
        assert (other / "report.md").is_file()
        # The same network read otherwise (its card's white matching, views) is another model: refused
        card = json.loads((other / "model.json").read_text())
        (other / "model.json").write_text(json.dumps({**card, "match_white": False, "tta_views": 1}))
        with pytest.raises(OutputError, match="other than the one evaluated"):
            evaluate(mine, other, data=test_like, split="TEST", n_boot=20, progress=False)
        # An export's Training curves section, beside its picture, stays in the report written there again (it was
        # cut, the picture left with nothing naming it)
        shutil.copy(DEFAULT_MODEL_DIR / "training_curves.png", mine / "training_curves.png")
        shipped = (DEFAULT_MODEL_DIR / "report.md").read_text()
        (mine / "report.md").write_text(shipped)
        (mine / "metrics.json").write_text((DEFAULT_MODEL_DIR / "metrics.json").read_text())
        evaluate(mine, mine, data=test_like, split="TEST", n_boot=20, progress=False)
        curves = shipped[shipped.index("\n## Training curves"):]
        again = (mine / "report.md").read_text()
        assert again.endswith("```\n" + curves) and again.count("## Training curves") == 1

    def test_a_failed_evaluation_leaves_the_folder_as_it_was(self, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
        """The files are made in a staging folder and moved in whole: a write that fails midway (a full
        disk at the second plot) leaves the earlier evaluation's files as they were, not a mix of two, and
        no staging folder; one that fails where there was none leaves no folder."""
        import shutil

        import wbc.evaluate
        from wbc.errors import OutputError

        out = tmp_path / "ev"
        evaluate(None, out, folder=FIXTURE_IMAGES / "TEST_SIMPLE", n_boot=20, progress=False)
        before = {f.name: f.read_bytes() for f in out.iterdir()}
        real = wbc.evaluate.plot_confusion

        def disk_full_at_the_cells(matrix: object, path: Path, title: str) -> None:
            if title == "Cells":
                raise OutputError(f"{path}: cannot write it (No space left on device)")
            real(matrix, path, title)

        monkeypatch.setattr(wbc.evaluate, "plot_confusion", disk_full_at_the_cells)
        fewer = tmp_path / "fewer"  # another evaluation: other figures in every file
        shutil.copytree(FIXTURE_IMAGES / "TEST_SIMPLE", fewer)
        next(fewer.rglob("*.jpeg")).unlink()
        for target in (out, tmp_path / "new" / "ev"):
            with pytest.raises(OutputError, match="No space left"):
                evaluate(None, target, folder=fewer, n_boot=20, progress=False)
        assert {f.name: f.read_bytes() for f in out.iterdir()} == before
        assert not (tmp_path / "new").exists()

    def test_output_inside_the_folder_is_refused_and_loose_images_are_named(self, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
        """--out inside the folder evaluated is refused before the work (its plots were scored as
        monocytes the next time, in MONOCYTE/, or stopped the next run as an unknown class folder);
        an image beside the class folders, in none, is named as left out rather than dropped unsaid."""
        import shutil

        from wbc.errors import OutputError

        folder = tmp_path / "mine"
        shutil.copytree(FIXTURE_IMAGES / "TEST_SIMPLE", folder)
        for out in (folder / "MONOCYTE", folder / "evaluation", folder):
            with pytest.raises(OutputError, match=f"{out}: is inside {folder}, which is read by class folder"):
                evaluate(None, out, folder=folder, n_boot=50, progress=False)
        assert not (folder / "evaluation").exists() and not list(folder.glob("*.png"))
        # With a split, every split of the data set is guarded (TRAIN's class folders are read by training),
        # but not the rest of the data set's folder: nothing reads a reports folder beside the splits.
        with pytest.raises(OutputError, match=f"is inside {FIXTURE_IMAGES / 'TRAIN'}, which is read by class folder"):
            evaluate(None, FIXTURE_IMAGES / "TRAIN" / "NEUTROPHIL", split="TEST_SIMPLE", data=FIXTURE_IMAGES, progress=False)
        data = tmp_path / "ds"  # a copy: where the guard failed, the report would land in it
        shutil.copytree(FIXTURE_IMAGES / "TEST_SIMPLE", data / "TEST_SIMPLE")
        # With --folder, the data set's splits are guarded too: a report there broke every later listing.
        with pytest.raises(OutputError, match=f"is inside {data / 'TEST_SIMPLE'}, which is read by class folder"):
            evaluate(None, data / "TEST_SIMPLE" / "ev", folder=folder, data=data, progress=False)
        assert evaluate(None, data / "reports", split="TEST_SIMPLE", data=data, n_boot=50, progress=False)["n_files"]
        (tmp_path / "loop").symlink_to(tmp_path / "loop")  # a link loop: a message, not Path.resolve's RuntimeError
        import wbc.evaluate
        from wbc.cli import main

        scored: list[object] = []
        monkeypatch.setattr(wbc.evaluate, "model_probs", lambda *a, **k: scored.append(a) or pytest.fail("evaluated"))
        assert main(["evaluate", "--folder", str(folder), "--out", str(tmp_path / "loop" / "x"), "--quiet"]) == 2
        err = capsys.readouterr().err  # refused before the work, not when the report was written
        assert f"cannot be made: {tmp_path / 'loop'} is a link to nothing (its target is gone, or it loops)" in err
        assert "Traceback" not in err and not scored
        monkeypatch.undo()
        shutil.copy(next((folder / "MONOCYTE").iterdir()), folder / "loose.jpeg")
        shutil.copy(next((folder / "MONOCYTE").iterdir()), folder / "._loose.jpeg")  # hidden: passed over unsaid
        m = evaluate(None, tmp_path / "eval", folder=folder, n_boot=50, progress=False)
        assert m["n_files"] == len(list(folder.rglob("*.jpeg"))) - 2
        assert f"{folder}: 1 image file(s) beside the class folders, in none of them, left out:\n  loose.jpeg" \
            in capsys.readouterr().err
        from wbc.data import list_folder

        list_folder(folder)  # listed again in the same process (an export lists TRAIN three times): said once
        assert "beside the class folders" not in capsys.readouterr().err
        from wbc.cli import main

        # A second command in the same process says it again.
        assert main(["evaluate", "--folder", str(folder), "--out", str(tmp_path / "eval2"), "--quiet"]) == 0
        assert "beside the class folders" in capsys.readouterr().err

    def test_evaluating_on_train_says_the_model_learnt_from_it(self, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
        """--split TRAIN: metrics.json, report.md and the CLI say that these are the cells the model
        learnt from; another split says nothing of the kind."""
        from wbc.cli import main

        m = evaluate(None, tmp_path / "train", split="TRAIN", data=FIXTURE_IMAGES, n_boot=50, progress=False)
        assert "not how it reads new cells" in m["caution"]
        assert "- **caution**: TRAIN is what wbc's models learn from" in (tmp_path / "train" / "report.md").read_text()
        # a split of the data set is not screened (the screening's thresholds were set on it): no verdicts
        import csv

        assert "screening" not in m
        assert {r["verdict"] for r in csv.DictReader((tmp_path / "train" / "predictions.csv").open(newline=""))} == {""}
        assert "caution" not in evaluate(None, tmp_path / "test", split="TEST_SIMPLE", data=FIXTURE_IMAGES, n_boot=50,
                                         progress=False)
        assert main(["evaluate", "--split", "TRAIN", "--data", str(FIXTURE_IMAGES), "--out", str(tmp_path / "cli"),
                     "--quiet"]) == 0
        assert "note: TRAIN is what wbc's models learn from" in capsys.readouterr().err

    def test_report_says_when_intervals_mean_little(self) -> None:
        """Few cells, or every file its own cell (a user's folder), are said beside the intervals."""
        from wbc.report import interval_caveat

        assert interval_caveat({"n_cells": 68, "n_files": 2487}) == ""
        assert "mean little" in interval_caveat({"n_cells": 3, "n_files": 9})
        mine = interval_caveat({"n_cells": 40, "n_files": 40})
        assert "every file is its own cell" in mine and "mean little" not in mine

    def test_with_truth_needs_one_class_per_row(self) -> None:
        """Appending the truth to a table of another length is refused, not misaligned."""
        from wbc.evaluate import with_truth

        assert with_truth("file,class\r\na.png,MONOCYTE\r\n", ["MONOCYTE"], ["MONOCYTE"]) == (
            "file,class,true_class,correct\r\na.png,MONOCYTE,MONOCYTE,yes\r\n")
        # right or wrong as the network read it, not by the class column, which the screening may leave blank
        assert with_truth("file,class\r\na.png,\r\n", ["MONOCYTE"], ["MONOCYTE"]).endswith("a.png,,MONOCYTE,yes\r\n")
        with pytest.raises(ValueError, match="1 prediction rows for 2 true classes"):
            with_truth("file,class\r\na.png,MONOCYTE\r\n", ["MONOCYTE", "EOSINOPHIL"], ["MONOCYTE"] * 2)
        with pytest.raises(ValueError, match="1 prediction rows for 1 true classes and 2 readings"):
            with_truth("file,class\r\na.png,MONOCYTE\r\n", ["MONOCYTE"], ["MONOCYTE"] * 2)

    def test_checkpoint_and_onnx_agree(self, tiny_run: Path, tmp_path: Path) -> None:
        """A training checkpoint can be evaluated directly (PyTorch path), and reads each file as its ONNX
        export does when that is read alike (one view, temperature 1, no white matching)."""
        import csv

        from wbc.export import export

        m = evaluate(tiny_run / "best.pt", tmp_path, folder=FIXTURE_IMAGES / "TEST_SIMPLE", n_boot=100, progress=False)
        assert m["n_files"] == 8 and 0 <= m["accuracy"] <= 1
        export(tiny_run / "best.pt", tmp_path / "onnx", sorted((FIXTURE_IMAGES / "TRAIN").rglob("*.jpeg"))[:4],
               extra_card={"tta_views": 1, "match_white": False})
        onnx = evaluate(tmp_path / "onnx", tmp_path / "onnx-eval", folder=FIXTURE_IMAGES / "TEST_SIMPLE", n_boot=100,
                        progress=False)

        def rows(folder: Path) -> list[dict[str, str]]:
            return list(csv.DictReader((folder / "predictions.csv").open(newline="")))

        pt, ox = rows(tmp_path), rows(tmp_path / "onnx-eval")
        assert [r["file"] for r in pt] == [r["file"] for r in ox] and len(pt) == 8
        assert [r["class"] for r in pt] == [r["class"] for r in ox] and onnx["accuracy"] == m["accuracy"]
        probs = [float(r[k]) for r in pt for k in r if k.startswith("p_")]
        assert probs == pytest.approx([float(r[k]) for r in ox for k in r if k.startswith("p_")], abs=1e-4)
        # the report says how each model read the images, so that a checkpoint's uncalibrated figures
        # are not taken for a card's
        assert "one view, temperature 1 (not calibrated), no white matching" in (tmp_path / "report.md").read_text()
        # a checkpoint has no card to screen by: its report says the screening was not applied, and its rows no verdict
        assert "The screening that `wbc predict` and the app apply" in (tmp_path / "report.md").read_text()
        assert "screening" not in m and {r["verdict"] for r in pt} == {""}
        assert m["read_as"].startswith("a training checkpoint")
        card = evaluate(None, tmp_path / "card", folder=FIXTURE_IMAGES / "TEST_SIMPLE", n_boot=100, progress=False)
        shipped = json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())
        assert (f"{shipped['tta_views']} views averaged, temperature {shipped['calibration']['temperature']:.2f}, "
                "white matched where it lies below the data set's range") in card["read_as"]
        assert card["read_as"] in (tmp_path / "card" / "report.md").read_text()
        # and what it scored: how the shipped model was trained, from its card (a checkpoint's report has no line)
        training, code = shipped["training"], shipped["code"]
        trained = (f"- **trained**: {training['config']['model']}, {training['epochs_run']} epoch(s) of "
                   f"{training['config']['epochs']}, seed {training['config']['seed']}, epoch {training['best_epoch']} "
                   f"kept (selected on {training['selected_on']}); on {shipped['data']['source']}: "
                   f"{shipped['data']['training_split']}; exported by wbc {code['wbc']}, commit {code['git_commit'][:12]}\n")
        assert trained in (tmp_path / "card" / "report.md").read_text()
        assert "**trained**" not in (tmp_path / "report.md").read_text() and "weak model" not in trained

    def test_shipped_model_on_full_test(self, full_data: Path, tmp_path: Path) -> None:
        """Recomputed on all of TEST, the shipped model gives the card's figures and beats the reference."""
        m = evaluate(None, tmp_path, split="TEST", data=full_data, n_boot=300, progress=False)
        card = json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())
        test = card["metrics"]["test"]
        assert m["accuracy"] == pytest.approx(test["accuracy"], abs=1e-9)
        assert m["cells_correct"] == test["cells_correct"] and m["macro_f1"] == pytest.approx(test["macro_f1"], abs=1e-9)
        assert m["ece"] == pytest.approx(test["ece"], abs=1e-6)  # float32 probabilities summed in another order
        assert m["n_cells"] == DATASET["distinct_cells"]["TEST"] and m["accuracy"] > DATASET["reference_test_accuracy"] and m["macro_f1"] > 0.86


def test_a_match_white_card_is_evaluated_as_it_predicts(tmp_path: Path) -> None:
    """With a card's match_white, evaluate scales each crop by its field's white gains, as `wbc
    predict` does: on dimmed copies of the fixtures it gives Predictor.analyse's probabilities, not
    those of the crops as photographed, and its CSV says which were matched and how much each was
    shrunk, as analyse does; the fixtures as photographed read the same either way. A second evaluate
    reads the gains from the cache and gives the same probabilities."""
    import shutil

    import numpy as np
    from PIL import Image

    from wbc.decode import load_image
    from wbc.predict import Predictor
    from wbc.robustness import brightness

    folder = tmp_path / "dim"
    for path in sorted((FIXTURE_IMAGES / "TEST_SIMPLE").rglob("*.jpeg")):
        (folder / path.parent.name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(brightness(0.6)(load_image(path))).save(folder / path.parent.name / f"{path.stem}.png")
    model, plain_model = tmp_path / "model", tmp_path / "plain-model"
    for m, value in ((model, True), (plain_model, False)):
        shutil.copytree(DEFAULT_MODEL_DIR, m)
        card = json.loads((m / "model.json").read_text())
        (m / "model.json").write_text(json.dumps({**card, "match_white": value}))
    on = Predictor(model)
    files = sorted(folder.rglob("*.png"))
    analysed = [on.analyse(load_image(f)) for f in files]
    want = on.predict_probs(np.stack([x for x, _ in analysed]))
    assert sum(sc.white_matched for _, sc in analysed) >= 4  # dimmed x0.6: most are matched
    got = evaluate(model, tmp_path / "on", folder=folder, n_boot=50, progress=False)
    plain = evaluate(plain_model, tmp_path / "off", folder=folder, n_boot=50, progress=False)
    lines = (tmp_path / "on" / "predictions.csv").read_text().splitlines()
    head = lines[0].split(",")
    rows = {r.split(",")[0]: r.split(",") for r in lines[1:]}
    for f, p, (_, sc) in zip(files, want, analysed):
        row = rows[str(f.relative_to(folder))]
        assert [float(v) for v in row[3:7]] == pytest.approx(p, abs=2e-6)
        assert row[head.index("white_matched")] == ("yes" if sc.white_matched else "no")
        assert float(row[head.index("shrunk_by")]) == pytest.approx(sc.reduced_by)
        # screened as `wbc predict` screens it: its row's screening and verdict are predict's
        assert row[head.index("white_balanced")] == ("yes" if sc.white_balanced else "no")
        assert row[head.index("overexposed")] == ("yes" if sc.overexposed else "no")
        assert row[head.index("verdict")] == on.verdicts(f.name, p, sc).verdict
    again = evaluate(model, tmp_path / "again", folder=folder, n_boot=50, progress=False)
    assert again["accuracy"] == got["accuracy"] and again["ece"] == got["ece"]
    assert (tmp_path / "again" / "predictions.csv").read_text() == "\n".join(lines) + "\n"
    assert got["accuracy"] != plain["accuracy"] or got["ece"] != plain["ece"]  # the matching moved something
    same = evaluate(model, tmp_path / "same", folder=FIXTURE_IMAGES / "TEST_SIMPLE", n_boot=50, progress=False)
    assert same["ece"] == evaluate(plain_model, tmp_path / "same2", folder=FIXTURE_IMAGES / "TEST_SIMPLE",
                                   n_boot=50, progress=False)["ece"]


@pytest.mark.parametrize("card, views, cmap, match, says", [
    ({"temperature": 0.6, "calibration": {"temperature": 0.6}}, 4, None, True,
     "4 views averaged, temperature 0.60, white matched where it lies below the data set's range"),
    ({"temperature": 1.0}, 1, None, False, "one view, temperature 1 (not calibrated), no white matching"),
    ({"calibration": {"temperature": 0.73}}, 8, object(), False,
     "8 views averaged, temperature 0.73, the card's confidence map, no white matching"),
    ({}, 4, None, False, "4 views averaged, the card's temperature, no white matching"),
])
def test_card_reading_says_what_each_card_does(card: dict, views: int, cmap: object, match: bool, says: str) -> None:
    """Every card shape is described by what it does: views, temperature (top-level, else the calibration's),
    confidence map, white matching."""
    import types

    from wbc.evaluate import card_reading

    pred = types.SimpleNamespace(card=card, tta_views=views, confidence_map=cmap, match_white=match)
    assert card_reading(pred) == "the model card's reading: " + says  # type: ignore[arg-type]


@pytest.mark.parametrize("calibration, reads, says", [
    ({"fitted_on": "OOF", "fitted_on_views": 8}, 4, "OOF, 8 views averaged (the model reads 4)"),
    ({"fitted_on": "OOF", "fitted_on_views": 4}, 4, "OOF, 4 views averaged"),
    ({"fitted_on": "OOF", "fitted_on_views": 1}, 1, "OOF"),
    ({"fitted_on": "OOF", "fitted_on_views": 1}, 4, "OOF (the model reads 4)"),
    ({"fitted_on": "OOF"}, 4, "OOF"),
    ({"fitted_on_views": 8}, 4, ""),
])
def test_calibration_provenance_says_the_views_it_was_fitted_on(calibration: dict, reads: int, says: str) -> None:
    """Where the card's temperature was fitted, with the views averaged there where more than one, and the views
    the model reads where they differ: why a report's calibration can fall short of the fit's."""
    from wbc.evaluate import calibration_provenance

    assert calibration_provenance({"calibration": calibration, "tta_views": reads}) == says


@pytest.mark.parametrize("commit, shown", [
    ("67a267fb456c310565b26dbc6939bf4ed6c3dcda", ", commit 67a267fb456c"),
    ("67a267fb456c310565b26dbc6939bf4ed6c3dcda+modified", ", commit 67a267fb456c+modified"),
    (None, ""),
])
def test_card_provenance_names_the_exporters_commit(commit: str | None, shown: str) -> None:
    """The report names the exporting checkout's commit by its first 12 digits, marked where it was modified."""
    from wbc.evaluate import card_provenance

    card = {"training": {"config": {"model": "wbcnet", "epochs": 30, "seed": 1}, "epochs_run": 30, "best_epoch": 27,
                         "selected_on": "val"},
            "data": {"source": "blood-cells", "training_split": "TRAIN"}, "code": {"wbc": "0.11.0", "git_commit": commit}}
    assert card_provenance(card) == ("wbcnet, 30 epoch(s) of 30, seed 1, epoch 27 kept (selected on val); "
                                     f"on blood-cells: TRAIN; exported by wbc 0.11.0{shown}")

def test_training_curves_are_kept_only_beside_their_picture(tmp_path: Path) -> None:
    """A report.md's *Training curves* section is carried into the evaluation written over it where its picture is
    there; without the picture it would name one that is not, and is dropped."""
    from wbc.evaluate import _kept_curves

    section = "\n## Training curves (cell-grouped validation)\n\n![training curves](training_curves.png)\n"
    (tmp_path / "report.md").write_text("# Evaluation\n\ntext\n" + section)
    assert _kept_curves(tmp_path) == ""
    (tmp_path / "training_curves.png").write_bytes(b"png")
    assert _kept_curves(tmp_path) == section
    (tmp_path / "report.md").write_text("# Evaluation\n\ntext\n")
    assert _kept_curves(tmp_path) == ""

def test_an_evaluation_of_train_gives_no_figures_without_the_cells_also_in_train(full_data: Path, tmp_path: Path) -> None:
    """TRAIN holds every cell TRAIN shows: its report gives no figures "without the cells also in TRAIN", which a
    TEST report gives for the two cells the data set put in both (a TRAIN of one such cell and four others here)."""
    import shutil

    from wbc.data import list_split
    from wbc.evaluate import cells_also_in_train
    from wbc.info import CLASSES

    train = list_split(full_data, "TRAIN")
    shared = set(cells_also_in_train([s.cell for s in train]))
    picked = [next(s for s in train if s.cell in shared), *(next(s for s in train if s.label == k and s.cell not in shared)
                                                            for k in range(len(CLASSES)))]
    for s in picked:
        (tmp_path / "data" / "TRAIN" / CLASSES[s.label]).mkdir(parents=True, exist_ok=True)
        shutil.copy(s.path, tmp_path / "data" / "TRAIN" / CLASSES[s.label])
    m = evaluate(None, tmp_path / "out", split="TRAIN", data=tmp_path / "data", n_boot=20, progress=False)
    assert "without_cells_in_train" not in m and "also in TRAIN" not in (tmp_path / "out" / "report.md").read_text()

def test_another_tools_metrics_json_is_not_replaced(tmp_path: Path) -> None:
    """A metrics.json that is not an evaluation's (another tool's, without its model, reading and file count) is
    refused before the work and kept, as a user's report.md is."""
    from wbc.errors import OutputError

    (tmp_path / "metrics.json").write_text(json.dumps({"accuracy": 0.9}))
    with pytest.raises(OutputError, match=f"^{tmp_path}: holds metrics.json, not of an evaluation by wbc"):
        evaluate(None, tmp_path, folder=FIXTURE_IMAGES / "TEST_SIMPLE", n_boot=20, progress=False)
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"accuracy": 0.9}


def test_a_models_folder_with_another_review_threshold_is_another_models(tmp_path: Path) -> None:
    """The same network whose card marks for review at another confidence is another model: its folder's report
    would give the review figures of a threshold its card does not hold."""
    import shutil

    from wbc.errors import OutputError
    from wbc.evaluate import _refuse_another_models_folder

    out, other = tmp_path / "out", tmp_path / "other"
    for folder in (out, other):
        shutil.copytree(DEFAULT_MODEL_DIR, folder)
    _refuse_another_models_folder(out, other, on_test=True)  # the same model: its own folder
    card = json.loads((other / "model.json").read_text())
    (other / "model.json").write_text(json.dumps({**card, "review_threshold": card["review_threshold"] / 2}))
    with pytest.raises(OutputError, match="other than the one evaluated"):
        _refuse_another_models_folder(out, other, on_test=True)

def test_report_paths_from_the_root_folder_are_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Run from /, a report named its model "tmp/run/model.onnx", which reads as relative to wherever the
    report is read; elsewhere a path under the working folder stays short."""
    from wbc.evaluate import _shown

    monkeypatch.chdir("/")
    assert _shown(tmp_path / "model.onnx") == str(tmp_path / "model.onnx")
    monkeypatch.chdir(tmp_path)
    assert _shown(tmp_path / "m" / "model.onnx") == "m/model.onnx"


def test_review_split_counts_what_the_mark_catches() -> None:
    """The review mark's figures on files with errors: the accuracy of the marked and the rest, the share
    of wrong files marked, and the cells with a wrong file, marked or not."""
    import numpy as np

    from wbc.evaluate import review_split

    probs = np.array([[.9, .1, 0, 0], [.5, .5, 0, 0], [.4, .6, 0, 0], [.95, .05, 0, 0]])
    # right, wrong (argmax 0) and marked, wrong and marked, wrong and not marked
    r = review_split(probs, np.array([0, 1, 0, 1]), 0.7, cells=["a", "b", "c", "d"])
    assert r["flagged_share"] == 0.5 and r["accuracy_flagged"] == 0.0 and r["accuracy_rest"] == 0.5
    assert r["errors_flagged_share"] == pytest.approx(2 / 3)
    assert r["cells_with_errors"] == 3 and r["cells_with_errors_marked"] == 2
    none = review_split(probs[:1], np.array([0]), 0.7)
    assert none["accuracy_flagged"] is None and none["errors_flagged_share"] is None and none["accuracy_rest"] == 1.0
    # A file read right and marked counts in neither the errors caught nor the cells with a wrong file marked
    # (counting every mark as an error caught agreed with the rest where all the marked were wrong); a cell of its own
    # or beside a wrong file.
    more = review_split(np.vstack([probs, [[.6, .4, 0, 0]] * 2]), np.array([0, 1, 0, 1, 0, 0]), 0.7,
                        cells=["a", "b", "c", "d", "e", "d"])
    assert more["accuracy_flagged"] == 0.5 and more["errors_flagged_share"] == pytest.approx(2 / 3)
    assert more["cells_with_errors"] == 3 and more["cells_with_errors_marked"] == 2
    # Marked below the threshold, as `wbc predict` marks a file *needs review*: a confidence of it is not marked
    at = review_split(np.array([[.7, .3, 0, 0], [.69, .31, 0, 0]]), np.array([0, 0]), 0.7)
    assert at["flagged_share"] == 0.5


def test_macro_f1_says_which_types_it_averages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A folder with images of some types only: the macro-F1 is over those, and the report and the command
    say so (the per-type table shows a type predicted but absent with F1 0, which is not averaged)."""
    import shutil

    from wbc.cli import main

    for c in ("EOSINOPHIL", "LYMPHOCYTE"):
        shutil.copytree(FIXTURE_IMAGES / "TEST_SIMPLE" / c, tmp_path / "two" / c)
    assert main(["evaluate", "--folder", str(tmp_path / "two"), "--out", str(tmp_path / "ev"), "--quiet"]) == 0
    said = "over the 2 type(s) with images here (EOSINOPHIL, LYMPHOCYTE), not the absent ones"
    assert said in capsys.readouterr().out and said in (tmp_path / "ev" / "report.md").read_text()
    # scikit-learn's report, in report.md too, averages the same types (over all four it gave another figure)
    report = (tmp_path / "ev" / "classification_report.txt").read_text()
    macro = json.loads((tmp_path / "ev" / "metrics.json").read_text())["macro_f1"]
    assert "macro avg" in report and f"{macro:.4f}" in next(line for line in report.splitlines() if "macro avg" in line)
    assert "MONOCYTE" not in report.split("No images of")[0] and "No images of MONOCYTE, NEUTROPHIL here" in report
    assert main(["evaluate", "--folder", str(FIXTURE_IMAGES / "TEST_SIMPLE"), "--out", str(tmp_path / "all"), "--quiet"]) == 0
    assert "type(s) with images here" not in capsys.readouterr().out
    # --folder with --split or --data: refused, not the folder scored without a word (--split TRAIN read as TRAIN's)
    for extra in (["--split", "TRAIN"], ["--data", str(FIXTURE_IMAGES)]):
        assert main(["evaluate", "--folder", str(tmp_path / "two"), *extra, "--out", str(tmp_path / "ev3"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert f"--folder scores the images in {tmp_path / 'two'}; {extra[0]} names a data set's split" in err, err
        assert not (tmp_path / "ev3").exists()


def test_ctrl_c_while_the_evaluation_moves_in_is_held_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A Ctrl-C as the files move in waits until all are in (metrics.json last), then is raised with a note;
    in an export's staging folder the note is not said (that folder goes as the export stops)."""
    import os
    import signal

    from wbc.evaluate import EVALUATION_FILES
    from wbc.staging import STAGE_PREFIX

    real, moved = os.replace, []

    def replace_then_interrupt(src: object, dst: object) -> None:
        real(src, dst)  # type: ignore[arg-type]
        if Path(str(dst)).parent.name in ("ev", f"{STAGE_PREFIX}1.x"):  # a file moving in
            moved.append(Path(str(dst)).name)
            if len(moved) == 1:
                signal.raise_signal(signal.SIGINT)  # to this thread: os.kill may reach another, later

    monkeypatch.setattr(os, "replace", replace_then_interrupt)
    for out, said in ((tmp_path / "ev", True), (tmp_path / "m" / f"{STAGE_PREFIX}1.x", False)):
        moved.clear()
        with pytest.raises(KeyboardInterrupt):
            evaluate(None, out, folder=FIXTURE_IMAGES / "TEST_SIMPLE", n_boot=20, progress=False)
        assert sorted(moved) == sorted(EVALUATION_FILES) and moved[-1] == "metrics.json"
        assert ("the evaluation was written to" in capsys.readouterr().err) == said


def test_report_gives_the_accuracy_where_scikit_learn_gives_a_micro_average() -> None:
    """Files read as a type absent here make scikit-learn print a micro average in place of the accuracy:
    the accuracy over all files is given after it."""
    import numpy as np

    from wbc.metrics import classification_report_text

    probs = np.eye(4)[[0, 2, 1, 1, 0]]
    text = classification_report_text(probs, np.array([0, 0, 1, 1, 1]))
    assert "micro avg" in text and "accuracy over all files: 0.6000" in text
    lonely = classification_report_text(np.eye(4)[[0, 0, 0]], np.array([0, 1, 1]))  # LYMPHOCYTE never predicted
    assert "nan" not in lonely and "LYMPHOCYTE          —    0.0000" in lonely  # undefined shown as a dash
    assert "No images of MONOCYTE, NEUTROPHIL here: not in the rows or averages above; 1 file(s)" in text



def _rounded(o: object) -> object:
    """`o` as JSON reads it back (tuples as lists), its floats to 9 places: figures compared across a file."""
    o = json.loads(json.dumps(o))

    def r(v: object) -> object:
        if isinstance(v, float):
            return round(v, 9)
        if isinstance(v, dict):
            return {k: r(x) for k, x in v.items()}
        return [r(x) for x in v] if isinstance(v, list) else v

    return r(o)


def test_shipped_figures_follow_from_its_predictions() -> None:
    """The shipped model's metrics.json, its card's TEST figures and report.md follow from its
    predictions.csv and the data set's table of cells alone, so a figure edited by hand, or left behind
    by a change of the metrics, fails here without the images: the files and cells right, the per-type
    figures and cells, the intervals (the same resampling), the ECE to the CSV's six decimals, and the
    figures without the two cells TRAIN shows too (the data set put views of them in both)."""
    import csv

    from wbc.data import cell_key
    from wbc.evaluate import without_cells
    from wbc.info import CLASS_INDEX, CLASSES
    from wbc.metrics import compute_metrics
    from wbc.ship import card_metrics
    from wbc.sources import field_name, read_table

    with open(DEFAULT_MODEL_DIR / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    probs = np.array([[float(r[f"p_{c.lower()}"]) for c in CLASSES] for r in rows])
    y = np.array([CLASS_INDEX[r["true_class"]] for r in rows])
    cells = [cell_key(r["true_class"], Path(r["file"]).name, "TEST") for r in rows]
    shipped = json.loads((DEFAULT_MODEL_DIR / "metrics.json").read_text())
    m = compute_metrics(probs, y, cells)
    for k in ("n_files", "n_cells", "cells_correct", "accuracy", "accuracy_ci95", "macro_f1", "macro_f1_ci95",
              "cell_accuracy", "cell_accuracy_ci95", "cell_macro_f1", "confusion", "cell_confusion"):
        assert _rounded(m[k]) == _rounded(shipped[k]), k
    assert m["ece"] == pytest.approx(shipped["ece"], abs=1e-5)
    assert _rounded(m["per_class"]) == _rounded(shipped["per_class"])
    train = {f"{t.class_name}/{field_name(t.field)}" for t in read_table() if t.split == "TRAIN" and t.field is not None}
    both = sorted(set(cells) & train)
    assert both == ["EOSINOPHIL/BloodImage_00204", "NEUTROPHIL/BloodImage_00230"]
    w = without_cells(probs, y, cells, both)
    assert _rounded(w) == _rounded(shipped["without_cells_in_train"])
    assert (w["n_cells"], w["files_dropped"]) == (66, 61)
    card = json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())
    assert card["metrics"]["test"] == card_metrics(shipped)
    report = (DEFAULT_MODEL_DIR / "report.md").read_text()
    assert f"| Accuracy over files | {100 * m['accuracy']:.2f}% " in report
    assert f"over files; {w['cells_correct']} of 66 cells" in report


def test_a_process_killed_while_its_files_move_in_is_undone_by_the_next(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """SIGKILL after 2 of 3 files moved in (no handler of ours runs) left the folder half new, half old, and
    the next run deleted the old ones kept in the staging folder: it now puts the earlier files back first."""
    import subprocess
    import sys

    from wbc.staging import clear_dead_stages

    out = tmp_path / "ev"
    out.mkdir()
    (out / "a.txt").write_text("old a")
    (out / "b.txt").write_text("old b")
    code = f"""
import os, signal, tempfile
from pathlib import Path
from wbc import staging
out = Path({str(out)!r})
stage = Path(tempfile.mkdtemp(prefix=f"{{staging.STAGE_PREFIX}}{{os.getpid()}}.", dir=out))
for f in ("a.txt", "c.txt", "b.txt"):
    (stage / f).write_text("new " + f[0])
real, moved = os.replace, []
def replace(src, dst):
    if len(moved) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
    moved.append(dst)
os.replace = replace
staging.move_in(stage, out, ["a.txt", "c.txt", "b.txt"])
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    assert {f.name: f.read_text() for f in out.glob("*.txt")} == {"a.txt": "new a", "b.txt": "old b", "c.txt": "new c"}
    stage = next(out.glob(".wbc-staging.*"))
    kept = {f.name: f.read_bytes() for f in (stage / ".before").iterdir()}
    clear_dead_stages(out)
    assert {f.name: f.read_text() for f in out.iterdir()} == {"a.txt": "old a", "b.txt": "old b"}
    assert f"{out} had been left half written by an export or evaluation that stopped while moving its files in; its " \
           "earlier files are back" in capsys.readouterr().err
    # Undone once: the same staging folder met again (two runs starting at once, or one killed after the undo)
    # deletes nothing (a.txt, put back, was deleted as if it had been new).
    (stage / ".before").mkdir(parents=True)
    for name, data in kept.items():
        (stage / ".before" / name).write_bytes(data)
    (stage / "b.txt").write_text("new b")
    (stage / ".before" / "a.txt").unlink()  # a.txt put back, as the first undo did, its list left
    assert (stage / ".before" / ".moving").read_text() == "a.txt\t1\nc.txt\t0\nb.txt\t1\n"
    clear_dead_stages(out)
    assert {f.name: f.read_text() for f in out.iterdir()} == {"a.txt": "old a", "b.txt": "old b"}


def test_an_undo_that_stopped_midway_is_finished_by_the_next_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A move that failed, whose own undo failed too (a file held open), leaves its list: the next run puts back what
    is left, and deletes no earlier file it had put back already."""
    import os

    from wbc import staging

    out = tmp_path / "ev"
    out.mkdir()
    (out / "a.txt").write_text("old a")
    (out / "b.txt").write_text("old b")
    stage = out / f"{staging.STAGE_PREFIX}999999999.x"  # a process that is gone
    stage.mkdir()
    for f in ("a.txt", "b.txt", "c.txt"):
        (stage / f).write_text("new " + f[0])
    real = os.replace

    def failing(src: object, dst: object) -> None:
        name = Path(str(dst)).name
        if Path(str(src)).name == "c.txt" or (name == "a.txt" and ".before" in str(src)):
            raise PermissionError(13, "held open", str(dst))
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(PermissionError):
        staging.move_in(stage, out, ["a.txt", "b.txt", "c.txt"])
    monkeypatch.undo()
    assert {f.name: f.read_text() for f in out.glob("*.txt")} == {"a.txt": "new a", "b.txt": "old b"}
    # The next run's undo fails too (the file still held): the staging folder and its earlier files are kept...
    monkeypatch.setattr(os, "replace", failing)
    staging.clear_dead_stages(out)
    monkeypatch.undo()
    assert "its earlier files could not all be put back" in capsys.readouterr().err and stage.is_dir()
    # ...while another process holds the undo, a run starting there leaves it alone...
    claim = next((stage / ".before").glob(".moving.*"))
    os.rename(claim, stage / ".before" / f".moving.{os.getppid()}")  # a live process's claim
    staging.clear_dead_stages(out)
    assert stage.is_dir() and (stage / ".before" / "a.txt").read_text() == "old a"
    # ...and once that process is gone, the next run takes the undo over and finishes it.
    os.rename(stage / ".before" / f".moving.{os.getppid()}", stage / ".before" / ".moving.999999998")
    staging.clear_dead_stages(out)
    assert {f.name: f.read_text() for f in out.iterdir()} == {"a.txt": "old a", "b.txt": "old b"}
    assert "its earlier files are back" in capsys.readouterr().err


def test_a_running_processs_staging_folder_is_left_alone(tmp_path: Path) -> None:
    """Of the staging folders in an output folder, those of a process that is gone are removed; one of a process
    still running (a second export or evaluation into the same folder at once) is its work in progress, and stays,
    as does anything not named as ours."""
    import os
    import subprocess
    import sys

    from wbc.staging import STAGE_PREFIX, clear_dead_stages

    out = tmp_path / "ev"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live, dead, other = (out / f"{STAGE_PREFIX}{proc.pid}.a", out / f"{STAGE_PREFIX}999999999.b",
                             out / f"{STAGE_PREFIX}x.c")
        for stage in (live, dead, other):
            stage.mkdir()
            (stage / "metrics.json").write_text("{}")
        clear_dead_stages(out)
        assert sorted(p.name for p in out.iterdir()) == sorted([live.name, other.name])
        assert (live / "metrics.json").read_text() == "{}"
        mine = out / f"{STAGE_PREFIX}{os.getpid()}.d"  # this process's own, left by a block it has left
        mine.mkdir()
        clear_dead_stages(out)
        assert not mine.exists() and live.exists()
    finally:
        proc.kill()
        proc.wait()
    clear_dead_stages(out)
    assert [p.name for p in out.iterdir()] == [other.name]


def test_a_killed_export_of_before_0_19_leaves_no_staging_folder(tmp_path: Path) -> None:
    """The staging folder an export killed before wbc 0.19 left (.wbc-export.<pid>.<random>, its process gone) is
    removed by the next export or evaluation there, as one of today's is."""
    from wbc.staging import clear_dead_stages

    out = tmp_path / "m"
    old = out / ".wbc-export.999999999.x"
    old.mkdir(parents=True)
    (old / "model.onnx").write_text("half written")
    clear_dead_stages(out)
    assert list(out.iterdir()) == []


def test_a_failed_move_takes_out_the_new_files_it_had_moved_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where moving a file in fails, a file moved in before it that the folder did not hold is taken out again, as a
    replaced one is put back: a model exported without --evaluate, then again with it, kept the new report beside the
    old model."""
    import os

    from wbc import staging

    out = tmp_path / "m"
    out.mkdir()
    (out / "model.onnx").write_text("old model")
    stage = out / f"{staging.STAGE_PREFIX}{os.getpid()}.x"
    stage.mkdir()
    for f in ("report.md", "model.onnx"):
        (stage / f).write_text("new " + f)
    real = os.replace

    def fails_at_the_model(src: object, dst: object) -> None:
        if Path(str(src)) == stage / "model.onnx":
            raise PermissionError(13, "held open", str(dst))
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", fails_at_the_model)
    with pytest.raises(PermissionError):
        staging.move_in(stage, out, ["report.md", "model.onnx"])
    assert {f.name: f.read_text() for f in out.iterdir() if f.is_file()} == {"model.onnx": "old model"}


def test_screening_note_with_none_typed_and_many_left() -> None:
    """A folder the screening gives no type at all (another laboratory's photos, all refused) is reported
    without an accuracy over none, and a long list of files given none is cut, naming how many more."""
    from wbc.report import NOT_TYPED_LISTED, SCREENING_NOTE, screening_note

    n = NOT_TYPED_LISTED + 3
    s = {"files": n, "verdicts": {"cannot judge": n}, "right_by_verdict": {"cannot judge": 2}, "typed_files": 0,
         "typed_right": 0, "accuracy_typed": None, "accuracy_typed_ci95": None, "not_typed_right": 2,
         "accuracy_not_typed": 2 / n,
         "not_typed": [{"file": f"EOSINOPHIL/{i}.png", "verdict": "cannot judge", "why": "blurred"} for i in range(n)]}
    note = screening_note({"screening": s})
    assert f"The {n} given no type are scored here all the same (the network read 2 of {n} right). Given no type:" in note
    assert "given a type, accuracy" not in note and f"{n} *cannot judge* (2 read right)" in note
    # one item for each reason, naming the first files: it was a line for each file, its reason repeated
    assert note.count("blurred") == 1
    assert f"- {n} *cannot judge*, blurred. Files: EOSINOPHIL/0.png, " in note
    assert f"EOSINOPHIL/{NOT_TYPED_LISTED - 1}.png, ..." in note and f"EOSINOPHIL/{NOT_TYPED_LISTED}.png" not in note
    assert note.endswith("- 3 not named here: predictions.csv's *verdict* column names each file read")
    assert screening_note({}) == SCREENING_NOTE  # a split of the data set, or a checkpoint: not screened


def test_files_given_no_type_are_listed_by_reason() -> None:
    """The report's list of files given no type has an item for each verdict and why, in the order first met, with
    NOT_TYPED_LISTED names in all and as many reasons at most (a reason naming a photo's size differs for each)."""
    from wbc.report import NOT_TYPED_LISTED, not_typed_list

    pale = [{"file": f"NEUTROPHIL/{i}.png", "verdict": "not a white blood cell", "why": "no nucleus"} for i in range(3)]
    gray = {"file": "EOSINOPHIL/g.png", "verdict": "cannot judge", "why": "a grayscale photo"}
    assert not_typed_list([pale[0], gray, *pale[1:]]) == [
        "- 3 *not a white blood cell*, no nucleus. Files: NEUTROPHIL/0.png, NEUTROPHIL/1.png, NEUTROPHIL/2.png",
        "- 1 *cannot judge*, a grayscale photo. File: EOSINOPHIL/g.png"]
    sizes = [{"file": f"LYMPHOCYTE/{i}.png", "verdict": "cannot judge", "why": f"only {i}x{i} px"}
             for i in range(NOT_TYPED_LISTED + 5)]
    many = not_typed_list(sizes)
    assert len(many) == NOT_TYPED_LISTED + 1
    assert many[-1] == "- 5 not named here: predictions.csv's *verdict* column names each file read"
    # a second reason once NOT_TYPED_LISTED files are named: its count and why, no names
    full = [{**pale[0], "file": f"NEUTROPHIL/{i}.png"} for i in range(NOT_TYPED_LISTED)]
    assert not_typed_list([*full, gray])[-2:] == ["- 1 *cannot judge*, a grayscale photo",
                                                  "- 1 not named here: predictions.csv's *verdict* column names each file read"]
    # predictions.csv has no row for a file left out (--skip-bad): metrics.json's list of them is said to name it
    bad = {"file": "MONOCYTE/bad.png", "verdict": "unreadable", "why": "not a readable image"}
    assert not_typed_list([*full, bad])[-1] == ("- 1 not named here: predictions.csv's *verdict* column names each file "
                                                "read, metrics.json's *skipped_files* each unreadable one")
    # The *left out* line names the first 20 alone ("... and 5 more"): the last 5 of 25 were named nowhere it pointed
    bad = [{**bad, "file": f"MONOCYTE/bad{i}.png"} for i in range(NOT_TYPED_LISTED + 5)]
    assert not_typed_list(bad)[-1].endswith("- 5 not named here: predictions.csv's *verdict* column names each file "
                                            "read, metrics.json's *skipped_files* each unreadable one")


def test_screening_summary_counts_the_typed_files_read_right() -> None:
    """Over files given a type, some read wrong: typed_right counts those read right (the fixture's folder, read
    right throughout, left it the count of files given a type)."""
    import numpy as np

    from wbc.evaluate import screening_summary
    from wbc.info import CLASSES
    from wbc.predict import Prediction

    mono = CLASSES.index("MONOCYTE")
    preds = [Prediction(file="a", label="MONOCYTE"), Prediction(file="b", label="EOSINOPHIL"),
             Prediction(file="c", label="MONOCYTE", not_wbc="no nucleus")]
    s = screening_summary(preds, np.array([mono] * 3))
    assert (s["typed_files"], s["typed_right"], s["accuracy_typed"]) == (2, 1, 0.5)
    assert (s["not_typed_right"], s["accuracy_not_typed"]) == (1, 1.0)


def test_files_left_out_with_skip_bad_are_counted_by_the_screening(tmp_path: Path) -> None:
    """A folder's evaluation with --skip-bad counts an unusable file as `wbc predict` does, *unreadable*, given no
    type and in no figure: the screening said "8 of 8 files given a type" and "Every file is given a type" of a folder
    of 9 whose ninth `wbc predict` refuses."""
    import shutil

    from wbc.report import screening_note

    folder = tmp_path / "data"
    shutil.copytree(FIXTURE_IMAGES / "TEST_SIMPLE", folder)
    (folder / "MONOCYTE" / "broken.jpeg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    m = evaluate(None, tmp_path / "eval", folder=folder, skip_bad=True, n_boot=50, progress=False)
    s = m["screening"]
    assert m["n_files"] == 8 and s["files"] == 9 and s["typed_files"] == 8 and s["verdicts"]["unreadable"] == 1
    assert s["not_typed"][-1]["file"] == "MONOCYTE/broken.jpeg" and s["not_typed"][-1]["verdict"] == "unreadable"
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "Every file is given a type" not in report
    lo, hi = s["accuracy_typed_ci95"]
    assert ("The 1 *unreadable* is in no figure (--skip-bad); over the 8 given a type, accuracy is "
            f"{100 * s['accuracy_typed']:.2f}% [{100 * lo:.2f}%, {100 * hi:.2f}%] (exact 95% limits, each file taken "
            "for a cell of its own). Given no type:") in report
    assert "- 1 *unreadable*, not a readable image: left out of the figures (--skip-bad). File: MONOCYTE/broken.jpeg" in report
    # with files read but given no type too, each count is of its own files
    blank = {"file": "EOSINOPHIL/b.png", "verdict": "not a white blood cell", "why": "no nucleus"}
    both = {**s, "files": 10, "verdicts": {**s["verdicts"], "not a white blood cell": 1}, "accuracy_not_typed": 0.0,
            "not_typed_right": 0,
            "not_typed": [blank, *s["not_typed"]]}
    assert ("The 1 read but given no type is scored here all the same (the network read 0 of 1 right); the 1 "
            "*unreadable* is in no figure (--skip-bad); over the 8 given a type") in screening_note({"screening": both})


def test_screening_summary_counts_each_verdict_with_its_reason() -> None:
    """screening_summary on predictions of each verdict: the counts in the order `wbc predict` heads them (a readable
    file's, then *unreadable*), the files read right under each, and each file given no type with the screening's
    own reason (a crop on a piece of a cell with OTHER_LARGER_WHY, which it has no reason of its own for)."""
    from wbc.evaluate import UNREADABLE_WHY, screening_summary
    from wbc.photo_checks import NOT_PURPLE, OUT_OF_FOCUS
    from wbc.predict import OTHER_LARGER_WHY, Prediction

    p = (1.0, 0.0, 0.0, 0.0)
    preds = [Prediction("a.png", "EOSINOPHIL", 0.9, p),  # confident, right
             Prediction("b.png", "NEUTROPHIL", 0.5, p, needs_review=True),  # needs review, wrong
             Prediction("c.png", "EOSINOPHIL", 0.5, p, needs_review=True),  # needs review, right
             Prediction("d.png", "EOSINOPHIL", 0.9, p, not_wbc=NOT_PURPLE),  # not a white blood cell, right
             Prediction("e.png", "MONOCYTE", 0.9, p, not_wbc=OUT_OF_FOCUS),  # cannot judge, wrong
             Prediction("f.png", "EOSINOPHIL", 0.9, p, other_larger=True)]  # cannot judge, right
    s = screening_summary(preds, np.array([0, 1, 0, 0, 0, 0]), ["g.png"])
    assert list(s["verdicts"].items()) == [("confident", 1), ("needs review", 2), ("cannot judge", 2),
                                           ("not a white blood cell", 1), ("unreadable", 1)]
    assert s["right_by_verdict"] == {"confident": 1, "needs review": 1, "cannot judge": 1, "not a white blood cell": 1}
    assert (s["files"], s["typed_files"], s["typed_right"], s["not_typed_right"]) == (7, 3, 2, 2)
    assert s["accuracy_typed"] == pytest.approx(2 / 3) and s["accuracy_not_typed"] == pytest.approx(2 / 3)
    assert s["not_typed"] == [{"file": "d.png", "verdict": "not a white blood cell", "why": NOT_PURPLE},
                              {"file": "e.png", "verdict": "cannot judge", "why": OUT_OF_FOCUS},
                              {"file": "f.png", "verdict": "cannot judge", "why": OTHER_LARGER_WHY},
                              {"file": "g.png", "verdict": "unreadable", "why": UNREADABLE_WHY}]
    none = screening_summary(preds[3:], np.array([0, 0, 0]))
    assert none["typed_files"] == 0 and none["accuracy_typed"] is None and none["accuracy_typed_ci95"] is None


def test_a_split_is_scored_unscreened_with_the_cards_review_mark(tmp_path: Path) -> None:
    """A split of the data set, read by a card's model: not screened (its report and metrics.json have no screening,
    its rows no verdict, and the screening's columns, white_balanced and overexposed, are blank, not "no"), yet each
    row is marked *needs review* where its confidence is below the card's threshold, as the report's figures count."""
    import csv
    import shutil

    from wbc.report import SCREENING_NOTE

    model = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, model)
    card = json.loads((model / "model.json").read_text())
    (model / "model.json").write_text(json.dumps({**card, "review_threshold": 0.9999}))  # every file marked
    m = evaluate(model, tmp_path / "ev", split="TEST_SIMPLE", data=FIXTURE_IMAGES, n_boot=50, progress=False)
    assert "screening" not in m and SCREENING_NOTE in (tmp_path / "ev" / "report.md").read_text()
    rows = list(csv.DictReader((tmp_path / "ev" / "predictions.csv").open(newline="")))
    assert len(rows) == 8 and m["review"]["flagged_share"] == 1.0
    for r in rows:
        assert r["needs_review"] == "yes" and r["class"] and r["verdict"] == ""
        assert r["white_balanced"] == r["overexposed"] == "" and r["white_matched"] in ("yes", "no")


def test_metrics_table_gives_each_figure_in_its_row() -> None:
    """report.md's table of the shipped model's metrics.json: each row holds its own figures (the files, the cells
    right of the cells, the review mark's threshold, the accuracy of the marked before the rest, the cells marked of
    those with a wrong file, the cells of each bin by the type called), "cell" for one cell left out, and the note on
    recall resting on few cells only where a type's files outnumber its cells; the intervals' caveat from
    MIN_CELLS_FOR_INTERVALS cells on is gone."""
    from wbc.report import MIN_CELLS_FOR_INTERVALS, interval_caveat, metrics_table

    m = json.loads((DEFAULT_MODEL_DIR / "metrics.json").read_text())
    table = metrics_table(m)

    def pct(v: float) -> str:
        return f"{100 * v:.2f}%"

    lo, hi = m["accuracy_ci95"]
    assert f"| Accuracy over files | {pct(m['accuracy'])} [{pct(lo)}, {pct(hi)}] | {m['n_files']} files |" in table
    assert f"| {m['cells_correct']} of {m['n_cells']} cells; a cell's verdict" in table
    r = m["review"]
    assert f"| Marked *needs review* | {pct(r['flagged_share'])} | confidence below {r['threshold']:.3f} |" in table
    assert f"| Accuracy of those marked / of the rest | {pct(r['accuracy_flagged'])} / {pct(r['accuracy_rest'])} |" in table
    assert f"| {r['cells_with_errors_marked']} of the {r['cells_with_errors']} cells with a wrong file have one" in table
    assert len(m["without_cells_in_train"]["cells_dropped"]) == 2 and "| Without the 2 cells also in TRAIN |" in table
    b = m["reliability_by_type"]["EOSINOPHIL"][0]
    assert f"| Eosinophil | {b['from']:.2f}-{b['to']:.2f} | {b['files']} | {b['cells']} | {pct(b['accuracy'])} |" in table
    assert "its recall rests on the cells in the column *cells read right*" in table
    assert "and its precision on the cells read as it, in the last column." in table
    # Each type's row ends in its cells read right, then of the cells read as it those that are of it
    for c, v in m["per_class"].items():
        lo, hi = (round(100 * x) for x in v["cell_precision_ci95"])
        assert (f"| {v['support']} | {v['cells_right']} of {v['cells']} (" in table
                and f"| {v['cells_right']} of {v['cells_called']} ({lo}\u2013{hi}%) |\n" in table + "\n")
    older = {**m, "per_class": {c: {k: x for k, x in v.items() if k not in ("cells_called", "cell_precision_ci95")}
                                for c, v in m["per_class"].items()}}  # a metrics.json of wbc 0.27 or before
    assert "read as it" not in metrics_table(older) and "| cells read right (95% limits) |\n" in metrics_table(older)
    w = m["without_cells_in_train"]
    one = {**m, "without_cells_in_train": {**w, "cells_dropped": w["cells_dropped"][:1]}}
    assert "| Without the 1 cell also in TRAIN |" in metrics_table(one)
    own = {**m, "per_class": {c: {**v, "support": v["cells"]} for c, v in m["per_class"].items()}}  # a file a cell
    assert "recall rests on" not in metrics_table(own)
    assert interval_caveat({"n_cells": MIN_CELLS_FOR_INTERVALS, "n_files": 100}) == ""
    assert "mean little" in interval_caveat({"n_cells": MIN_CELLS_FOR_INTERVALS - 1, "n_files": 100})


def test_an_output_inside_a_read_folder_through_a_link_is_refused(tmp_path: Path) -> None:
    """check_out_of compares real paths: an output folder reached through a link into a folder read by class folder,
    or inside a folder named by a link, is refused; a folder beside it whose name starts the same is not inside."""
    from wbc.errors import OutputError
    from wbc.evaluate import check_out_of

    folder = tmp_path / "mine"
    (folder / "MONOCYTE").mkdir(parents=True)
    (tmp_path / "link").symlink_to(folder)
    for out, read in ((tmp_path / "link" / "ev", folder), (folder / "ev", tmp_path / "link")):
        with pytest.raises(OutputError, match=f"{out}: is inside {read}, which is read by class folder"):
            check_out_of(out, [read])
    check_out_of(tmp_path / "mine-ev", [folder, tmp_path / "link"])


def test_metrics_table_gives_the_macro_f1_the_ece_and_each_calibration_bin_in_its_row() -> None:
    """report.md's table of the shipped model's metrics.json: the macro-F1 to 4 places with its interval to 3, the ECE
    with the spread of its resamples, and each bin's accuracy before its mean confidence."""
    from wbc.report import metrics_table

    m = json.loads((DEFAULT_MODEL_DIR / "metrics.json").read_text())
    table = metrics_table(m)
    lo, hi = m["macro_f1_ci95"]
    assert f"| Macro-F1 over files | {m['macro_f1']:.4f} [{lo:.3f}, {hi:.3f}] |" in table
    lo, hi = m["ece_ci95"]
    assert f"| Expected calibration error | {m['ece']:.4f} [{lo:.3f}, {hi:.3f}] |" in table
    for b in m["reliability"]:
        assert (f"| {b['from']:.2f}-{b['to']:.2f} | {b['files']} | {100 * b['accuracy']:.2f}% | "
                f"{100 * b['confidence']:.2f}% |") in table


def test_screening_note_of_one_file_says_it_in_the_singular() -> None:
    """Where the screening read one file, the note says "the 1 file gets", not "files get"."""
    from wbc.report import screening_note

    s = {"files": 1, "typed_files": 1, "verdicts": {"lymphocyte": 1}, "right_by_verdict": {"lymphocyte": 1}}
    assert "the 1 file gets: 1 *lymphocyte* (1 read right). Every file is given a type" in screening_note({"screening": s})
    assert "the 2 files get: 2 *lymphocyte*" in screening_note({"screening": {**s, "files": 2, "typed_files": 2,
                                                                               "verdicts": {"lymphocyte": 2}}})


def test_files_given_no_type_are_named_up_to_the_limit_over_all_reasons() -> None:
    """Two reasons of 15 files each: the first names its 15, the second the 5 left of NOT_TYPED_LISTED, then "...",
    and a line says how many are not named."""
    from wbc.report import NOT_TYPED_LISTED, not_typed_list

    files = [{"verdict": "not a white blood cell", "why": why, "file": f"{why}{i}.jpg"} for why in "ab" for i in range(15)]
    lines = not_typed_list(files)
    assert lines[0].endswith("a14.jpg") and lines[1].endswith("b4.jpg, ...") and NOT_TYPED_LISTED == 20
    assert lines[2].startswith("- 10 not named here")


def test_recall_note_stays_where_only_some_types_have_several_files_a_cell() -> None:
    """The note that recall rests on few cells is kept where one type has a file a cell and the others more."""
    from wbc.report import metrics_table

    m = json.loads((DEFAULT_MODEL_DIR / "metrics.json").read_text())
    first = next(iter(m["per_class"]))
    m["per_class"][first] = {**m["per_class"][first], "support": m["per_class"][first]["cells"]}
    assert "its recall rests on the cells in the column *cells read right*" in metrics_table(m)
