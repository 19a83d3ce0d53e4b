from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from wbc.cli import main
from wbc.cli.parser import _usable_cpus
from wbc.predict import NOT_READ

from conftest import FIXTURE_IMAGES, FIXTURES, shut_folder

EOS_FILE = FIXTURE_IMAGES / "TEST_SIMPLE" / "EOSINOPHIL" / "_7_2284.jpeg"
ROOT = Path(__file__).resolve().parents[1]  # the checkout, where pyproject.toml is


class TestHelp:
    def test_version(self, capsys: pytest.CaptureFixture[str]) -> None:
        """`wbc --version` names the package's version (it asked for a command)."""
        import wbc

        with pytest.raises(SystemExit) as e:
            main(["--version"])
        assert e.value.code == 0 and capsys.readouterr().out == f"wbc {wbc.__version__}\n"

    @pytest.mark.parametrize("verb", [[], ["train"], ["evaluate"], ["export"], ["predict"], ["app"], ["data", "download"],
                                      ["data", "check"], ["data", "sources"]])
    def test_help(self, verb: list[str], capsys: pytest.CaptureFixture[str]) -> None:
        """Every verb answers --help with its usage and, as the README says, its exit statuses."""
        with pytest.raises(SystemExit) as e:
            main([*verb, "--help"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert "usage: wbc" in out
        assert not verb or "exit status: 0 " in " ".join(out.split())

    def test_a_file_named_like_an_option_is_said_to_be_one(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
        """`wbc predict -a.jpeg` was refused with "the following arguments are required: paths" alone: the error
        says the file was read as an option and how to give it; an option that is no file is refused as before."""
        import shutil

        monkeypatch.chdir(tmp_path)
        shutil.copy(EOS_FILE, tmp_path / "-a.jpeg")
        for argv, said in ((["predict", "-a.jpeg"], "the following arguments are required: paths"),
                           (["predict", str(EOS_FILE), "-a.jpeg"], "unrecognized arguments: -a.jpeg")):
            with pytest.raises(SystemExit) as e:
                main(argv)
            err = " ".join(capsys.readouterr().err.split())
            assert e.value.code == 2 and f"{said} (-a.jpeg is a file, read as an option since its name begins with " \
                "'-': write ./-a.jpeg, or put -- before the file names)" in err, err
        with pytest.raises(SystemExit):
            main(["predict", "-b.jpeg"])
        assert "is a file" not in capsys.readouterr().err
        # An option's value: "--" would not help there, the option's own form does
        with pytest.raises(SystemExit):
            main(["predict", str(EOS_FILE), "--csv", "-a.jpeg"])
        assert ("(-a.jpeg is a file, read as an option since its name begins with '-': write ./-a.jpeg, or "
                "--csv=-a.jpeg)") in " ".join(capsys.readouterr().err.split())
        assert main(["predict", "--quiet", "--", "-a.jpeg"]) == 0 and "-a.jpeg" in capsys.readouterr().out
        # After --, the name was read as a file: another error is not told to put -- before it
        with pytest.raises(SystemExit) as e:
            main(["predict", "--threads", "0", "--", "-a.jpeg"])
        err = capsys.readouterr().err
        assert e.value.code == 2 and "--threads" in err and "is a file" not in err, err

    def test_predict_help_gives_the_exit_statuses(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A script needs to know what 1 means against 2: the help names each status, and the cases it
        names give it."""
        import shutil

        with pytest.raises(SystemExit):
            main(["predict", "--help"])
        text = " ".join(capsys.readouterr().out.split())
        for status in ("exit status: 0 every file was read", "; 1 some file could not be used, a path names no image",
                       "; 2 a usage error, no path naming an image at all, a bad model or a CSV that cannot be written",
                       "; 130 interrupted", "; 141 the reader"):
            assert status in text, status
        # What the table's verdicts mean, by the names the table gives them, and when the count is placed.
        from wbc.differential import MIN_CELLS_FOR_RANGES
        from wbc.predict import CANNOT_JUDGE_VERDICT, NEEDS_REVIEW_VERDICT, NOT_A_WBC_VERDICT, Prediction

        confident = Prediction(file="x", label="NEUTROPHIL", confidence=0.99, probs=(0.0, 0.0, 0.01, 0.99)).verdict
        for verdict in (confident, NEEDS_REVIEW_VERDICT, f"{NOT_A_WBC_VERDICT}, {CANNOT_JUDGE_VERDICT}"):
            assert f"; {verdict}: " in text or f"verdicts (the table's last column): {verdict}: " in text, verdict
        assert f"adult range from {MIN_CELLS_FOR_RANGES} images on" in text and "95% limits" in text
        missing = str(tmp_path / "missing.jpeg")
        (tmp_path / "broken.png").write_bytes(b"not a png")
        assert main(["predict", str(EOS_FILE), "--quiet"]) == 0
        assert main(["predict", str(EOS_FILE), missing, "--quiet"]) == 1
        assert main(["predict", str(EOS_FILE), str(tmp_path / "broken.png"), "--quiet"]) == 1
        assert main(["predict", missing, "--quiet"]) == 2
        assert main(["predict", str(EOS_FILE), "--model", str(tmp_path), "--quiet"]) == 2
        shutil.copy(EOS_FILE, tmp_path / "eos.jpeg")  # an input image named as the CSV: refused, kept
        assert main(["predict", str(tmp_path / "eos.jpeg"), "--csv", str(tmp_path / "eos.jpeg"), "--quiet"]) == 2
        assert (tmp_path / "eos.jpeg").read_bytes() == EOS_FILE.read_bytes()

    def test_csv_dash_and_workbook_names_are_refused(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
        """`--csv -` (a Unix user's "the terminal") wrote a file named "-", and `--csv x.xlsx` CSV text under a
        workbook's name, which a spreadsheet refuses: both refused before the work, naming what to give."""
        monkeypatch.chdir(tmp_path)
        assert main(["predict", str(EOS_FILE), "--csv", "-", "--quiet"]) == 2
        assert "--csv -: the table is printed to the terminal already" in capsys.readouterr().err
        for name in ("x.xlsx", "x.ODS", "x.xls"):
            assert main(["predict", str(EOS_FILE), "--csv", name, "--quiet"]) == 2
            assert "the table is written as CSV text, not a" in capsys.readouterr().err
        assert not list(tmp_path.iterdir())

    def test_no_verb(self, capsys: pytest.CaptureFixture[str]) -> None:
        """No verb is a usage error, not a traceback."""
        with pytest.raises(SystemExit) as e:
            main([])
        assert e.value.code == 2


class TestPredictCli:
    def test_table_and_csv(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """Predicting a folder prints a row per file and writes the CSV."""
        out = tmp_path / "p.csv"
        assert main(["predict", str(FIXTURE_IMAGES / "TEST_SIMPLE"), "--csv", str(out), "--quiet"]) == 0
        text = capsys.readouterr().out
        assert text.count(".jpeg") == 8
        assert len(list(csv.DictReader(out.open()))) == 8
        files = [str(f) for f in (FIXTURE_IMAGES / "TEST_SIMPLE").rglob("*.jpeg")]
        for row in text.splitlines()[1:9]:
            shown = row.split("  ")[0]
            # a path cut to the column's width keeps its end and says that its start is missing
            assert shown in files or (shown.startswith("...") and any(f.endswith(shown[3:]) for f in files)), row
            assert len(shown) <= 60 and (len(shown) == 60 or not shown.startswith("...")), row

    def test_csv_quotes_names_a_spreadsheet_would_run(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A file named as a formula is written with a ' in front, in its own row and where a repeat names it,
        so that a spreadsheet shows the name instead of running it; wbc.io.unquoted gives the names back."""
        import shutil

        from wbc.io import unquoted

        names = ["=HYPERLINK(\"http:x\",\"y\").jpeg", "+1.jpeg", "-a.jpeg", "@b.jpeg", "'c.jpeg", "plain.jpeg"]
        for n in names:
            shutil.copy(EOS_FILE, tmp_path / n)
        monkeypatch.chdir(tmp_path)
        assert main(["predict", "--csv", "p.csv", "--quiet", "--", *names]) == 0
        rows = list(csv.DictReader(open("p.csv", newline="")))
        assert [r["file"] for r in rows] == [*("'" + n for n in names[:5]), "plain.jpeg"]
        assert [unquoted(r["file"]) for r in rows] == names
        assert [r["same_image_as"] for r in rows] == ["", *["'" + names[0]] * 5]

    def test_images_read_from_pipes_are_not_repeats(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """Images given as pipes (a shell's <(...)) are compared by the bytes read for the prediction: two
        different ones are two cells, where reading them again for the comparison read nothing and called the
        second a repeat of the first; the same bytes twice are still one."""
        import threading

        others = sorted((FIXTURE_IMAGES / "TEST_SIMPLE" / "LYMPHOCYTE").glob("*.jpeg"))
        sources = [EOS_FILE, others[0], EOS_FILE]
        pipes = [tmp_path / f"pipe{i}" for i in range(3)]
        for pipe in pipes:
            os.mkfifo(pipe)
        writers = [threading.Thread(target=lambda p=p, f=f: p.write_bytes(f.read_bytes()), daemon=True)
                   for p, f in zip(pipes, sources)]
        for w in writers:
            w.start()
        assert main(["predict", *map(str, pipes), "--csv", str(tmp_path / "p.csv"), "--quiet"]) == 0
        rows = list(csv.DictReader((tmp_path / "p.csv").open(newline="")))
        assert [r["same_image_as"] for r in rows] == ["", "", str(pipes[0])]
        assert "left out: 1 repeat(s)" in capsys.readouterr().out

    def test_an_error_shows_control_characters_escaped(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A name with a terminal escape code in an error is shown escaped: it cannot colour or move what follows."""
        assert main(["predict", str(tmp_path / "x\x1b[31mred.jpeg"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "\x1b" not in err and "x\\x1b[31mred.jpeg: " in err

    def test_a_csv_that_cannot_be_written_keeps_the_table(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
        """A disk found full only at the CSV costs the file, not the run: the table and the count are printed,
        then the error, and the exit status is 2."""
        import wbc.io

        def full(src: object, dst: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(wbc.io.os, "replace", full)
        assert main(["predict", str(FIXTURE_IMAGES / "TEST_SIMPLE"), "--csv", str(tmp_path / "p.csv"), "--quiet"]) == 2
        out, err = capsys.readouterr()
        assert out.count(".jpeg") == 8 and "Differential of the 8 image(s)" in out and "wrote" not in out
        assert f"{tmp_path / 'p.csv'}: cannot write it (No space left on device); the table above is all" in err
        assert not (tmp_path / "p.csv").exists()

    def test_wide_names_keep_the_columns_level(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A name in Chinese or Japanese (two columns a character in a terminal) or with a combining accent
        (none) keeps the class column level with the other rows', and a long one is cut to the column's
        width, not its character count."""
        import shutil

        from wbc.cli.predict import columns

        names = ["血液細胞.jpeg", "e\u0301t\u00e9.jpeg", "plain.jpeg", "白血球" * 12 + ".jpeg"]
        for n in names:
            shutil.copy(EOS_FILE, tmp_path / n)
        assert main(["predict", *(str(tmp_path / n) for n in names), "--quiet"]) == 0
        rows = capsys.readouterr().out.split("\n\n")[0].splitlines()
        assert len(rows) == 5
        # Where each row's class starts, in columns: the header's "class" and every type line up.
        starts = {columns(r[:r.index(word)]) for r, word in zip(rows, ["class", *["EOSINOPHIL"] * 4])}
        assert len(starts) == 1, rows
        long = next(r for r in rows if "白血球" in r and r.startswith("..."))
        assert columns(long.split("  EOS")[0]) == 60  # cut to the column, "..." and all

    def test_columns_count_as_a_terminal_shows_them(self) -> None:
        """Widths known independently of the code: a Thai vowel sign, a decomposed Hangul syllable's vowel
        and final consonant and a zero-width space take no column, a wide character two; a cut name does
        not start with a mark that would join the dots."""
        import unicodedata

        from wbc.cli.predict import columns, fit

        assert columns("กั" * 5) == 5 and columns(unicodedata.normalize("NFD", "한.jpg")) == 6
        assert columns("a\u200bb") == 2 and columns("血液") == 4 and columns("e\u0301") == 1
        cut = fit("e\u0301" * 70, 20)
        assert cut.startswith("...e") and columns(cut) == 20

    def test_a_short_wide_name_is_shown_whole(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
        """The file column is as wide as its widest name in terminal columns, not in characters: a short name in
        Chinese or in full-width letters (two columns each) is shown whole, not cut to "..."."""
        from wbc.cli.predict import columns

        assert columns("ＡＢ") == 4  # full-width letters, as wide as Chinese
        names = ["血液細胞.jpeg", "ＡＢＣ.jpeg"]
        for n in names:
            shutil.copy(EOS_FILE, tmp_path / n)
        monkeypatch.chdir(tmp_path)
        assert main(["predict", *names, "--quiet"]) == 0
        rows = capsys.readouterr().out.split("\n\n")[0].splitlines()
        assert [r.split()[0] for r in rows[1:]] == names and "..." not in rows[1] + rows[2], rows
        assert columns(rows[0].split("class")[0]) == max(map(columns, names)) + 2  # the column and its gap

    def test_names_narrower_than_the_heading_keep_the_columns_level(self, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
        """Files named shorter than the "file" heading (given by name, without a suffix) keep each row's class
        under the heading's: the column is as wide as its heading at least."""
        for name in ("1", "22"):
            shutil.copy(EOS_FILE, tmp_path / name)
        monkeypatch.chdir(tmp_path)
        assert main(["predict", "1", "22", "--quiet"]) == 0
        rows = capsys.readouterr().out.split("\n\n")[0].splitlines()
        assert {r.index(word) for r, word in zip(rows, ["class", "EOSINOPHIL", "EOSINOPHIL"])} == {len("file  ")}, rows

    def test_a_confidence_by_the_review_threshold_shows_on_its_side(self, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
        """Confidences just below and just above the card's review threshold are shown with the digits that tell them
        apart, as the app shows them (both read 0.666, one "needs review", the other "confident"); others keep 3."""
        import wbc.predict
        from wbc.card import DEFAULT_MODEL_DIR
        from wbc.predict import Prediction

        t = json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())["review_threshold"]
        confidences = {"below.png": t - 0.0002, "above.png": t + 0.0002, "sure.png": 0.9}
        for name in confidences:
            shutil.copy(EOS_FILE, tmp_path / name)

        def read(self: wbc.predict.Predictor, paths: list[Path], progress: bool = False, tta: bool = True) -> object:
            return (Prediction(file=str(p), label="EOSINOPHIL", confidence=confidences[p.name], sha256=p.name,
                               probs=(confidences[p.name], 1 - confidences[p.name], 0.0, 0.0),
                               needs_review=confidences[p.name] < t) for p in paths)

        monkeypatch.setattr(wbc.predict.Predictor, "iter_files", read)
        assert main(["predict", *(str(tmp_path / n) for n in confidences), "--quiet"]) == 0
        table = capsys.readouterr().out.split("\n\n")[0]
        shown = {Path(line.split()[0]).name: (float(line.split()[2]), line.split()[3]) for line in table.splitlines()[1:]}
        assert shown["below.png"][0] < round(t, 4) <= shown["above.png"][0], (t, shown)
        assert shown["below.png"][1] == "needs" and shown["above.png"][1] == "confident"
        assert "0.900  confident" in table

    def test_rows_say_which_colour_step_and_how_much_was_clipped(self, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
        """A row says whether its photo was found only with its white matched or read so, and what share of it is
        clipped white; the differential's heading counts the counted photos with a second white cell, not one
        whose crop may be a piece beside it."""
        import wbc.predict
        from wbc.predict import Prediction

        kinds = {"found.png": {"white_balanced": True}, "read.png": {"white_matched": True}, "bright.png": {"clipped": 0.5},
                 "two.png": {"other_cell": (30, 40), "cell": (1, 2)},
                 "piece.png": {"other_cell": (30, 40), "cell": (1, 2), "other_larger": True}}
        for name in kinds:
            shutil.copy(EOS_FILE, tmp_path / name)

        def read(self: wbc.predict.Predictor, paths: list[Path], progress: bool = False, tta: bool = True) -> object:
            return (Prediction(file=str(p), label="EOSINOPHIL", confidence=0.9, probs=(0.9, 0.05, 0.03, 0.02),
                               sha256=p.name, **kinds[p.name]) for p in paths)

        monkeypatch.setattr(wbc.predict.Predictor, "iter_files", read)
        assert main(["predict", *(str(tmp_path / n) for n in kinds), "--quiet"]) == 0
        table, counts = capsys.readouterr().out.split("\n\n")[:2]
        rows = {Path(line.split()[0]).name: line for line in table.splitlines()[1:]}
        assert rows["found.png"].endswith("[white balance or exposure unlike the training images': found only with "
                                          "its colours matched to theirs]")
        assert rows["read.png"].endswith("[white balance or exposure unlike the training images': read with its "
                                         "colours matched to theirs]")
        assert "[overexposed: 50% of the lit pixels white (clipped)" in rows["bright.png"]
        assert counts.splitlines()[0].endswith("; 1 of the 4 shows a second white cell that is not in the count "
                                               "(marked in its row):")

    def test_a_weak_models_note_and_single_view(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A model that reads its held-out images near chance is said to be before its rows; --single-view reads
        each photo once, as the Predictor does without its test-time views, and without it they are all read."""
        from wbc.card import DEFAULT_MODEL_DIR
        from wbc.predict import Predictor

        shutil.copy(DEFAULT_MODEL_DIR / "model.onnx", tmp_path / "model.onnx")
        card = json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())
        assert card["tta_views"] > 1  # the case this test is about
        (tmp_path / "model.json").write_text(json.dumps({**card, "calibration": {**card["calibration"],
                                                                                  "val_accuracy": 0.3}}))
        assert main(["predict", str(EOS_FILE), "--model", str(tmp_path), "--quiet"]) == 0
        assert "wbc: note: this model reads only 30.0% of its held-out images right" in capsys.readouterr().err
        confidence = {}
        for option in ([], ["--single-view"]):
            assert main(["predict", str(EOS_FILE), "--quiet", "--csv", str(tmp_path / "p.csv"), *option]) == 0
            confidence[bool(option)] = float(next(csv.DictReader((tmp_path / "p.csv").open()))["confidence"])
        for single, got in confidence.items():
            expected = Predictor().predict_files([EOS_FILE], tta=not single)[0].confidence
            assert got == pytest.approx(expected, abs=1e-4), single
        assert confidence[True] != pytest.approx(confidence[False], abs=1e-4)

    def test_interrupt_keeps_what_was_read(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
        """Ctrl+C in the second batch: the first batch's rows, their differential and the CSV are kept,
        the files not reached are rows that say so, and the exit status is 130."""
        import wbc.predict

        monkeypatch.setattr(wbc.predict, "BATCH", 3)
        real = wbc.predict.Predictor.predict_sources
        calls = []

        def second_batch_interrupted(self: wbc.predict.Predictor, *a: object, **k: object) -> object:
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt
            return real(self, *a, **k)

        monkeypatch.setattr(wbc.predict.Predictor, "predict_sources", second_batch_interrupted)
        out = tmp_path / "p.csv"
        assert main(["predict", str(FIXTURE_IMAGES / "TEST_SIMPLE"), "--csv", str(out), "--quiet"]) == 130
        rows = list(csv.DictReader(out.open()))
        assert len(rows) == 8
        assert [bool(r["class"]) for r in rows] == [True] * 3 + [False] * 5
        assert all(r["error"] == NOT_READ and r["verdict"] == "not read" for r in rows[3:])
        captured = capsys.readouterr()
        assert "Differential of the 3 image(s) read as white cells (left out: 5 not read before the interruption)" \
            in captured.out
        unread = captured.out.split("\n\n")[0].splitlines()[4:]  # the table's rows after the 3 read
        assert len(unread) == 5 and all(r.endswith(f"  -  {NOT_READ}") for r in unread), unread  # the verdict once
        assert "interrupted after 3 of 8 file(s)" in captured.err
        assert "5 of 8 file(s) not read" in captured.err and "could not be used" not in captured.err
        # Run whole, then interrupted again: the whole table stays, the part goes beside it (and replaces a part).
        calls.append(1)
        assert main(["predict", str(FIXTURE_IMAGES / "TEST_SIMPLE"), "--csv", str(out), "--quiet"]) == 0
        whole = out.read_text()
        for _ in range(2):
            calls.clear()
            assert main(["predict", str(FIXTURE_IMAGES / "TEST_SIMPLE"), "--csv", str(out), "--quiet"]) == 130
            assert out.read_text() == whole
            assert [r["verdict"] for r in csv.DictReader((tmp_path / "p.partial.csv").open())][3:] == ["not read"] * 5
            assert f"wrote {tmp_path / 'p.partial.csv'} (interrupted, so the table at {out} was kept)" \
                in capsys.readouterr().out
        # A file of another kind under the part's name is not replaced either: no table, a word why, and the exit
        # status of a CSV not written (2, as the README gives it; it was 130)
        (tmp_path / "p.partial.csv").write_text("my notes")
        calls.clear()
        assert main(["predict", str(FIXTURE_IMAGES / "TEST_SIMPLE"), "--csv", str(out), "--quiet"]) == 2
        assert out.read_text() == whole and (tmp_path / "p.partial.csv").read_text() == "my notes"
        assert "no table written" in capsys.readouterr().err

    def test_differential_lines_place_each_share(self) -> None:
        """From 100 cells on each row ends with its place in the range, in full, as the CSV gives it (of 200:
        eosinophils 10% high, monocytes 0 low, lymphocytes 10% low and neutrophils 80% high, both maybe by chance); limits
        and ranges with a hyphen, which any terminal shows; the rows in a laboratory report's order, neutrophils first."""
        from wbc.differential import differential_lines

        lines = differential_lines(["EOSINOPHIL"] * 20 + ["LYMPHOCYTE"] * 20 + ["NEUTROPHIL"] * 160)
        assert [" ".join(x.split()) for x in lines[:4]] == [
            "Neutrophil 160 80.0% (95% limits 73.8-85.3) adult range 40-75% (high, may be chance)",
            "Lymphocyte 20 10.0% (95% limits 6.2-15.0) adult range 12-44% (low, may be chance)",
            "Monocyte 0 0.0% (95% limits 0.0-1.8) adult range 4-9% (low)",
            "Eosinophil 20 10.0% (95% limits 6.2-15.0) adult range 0-5.5% (high)"]
        # No basophil or other rows: the model knows none, and no reviewer corrects the CLI's readings
        assert len([x for x in lines if "adult range" in x]) == 4 and "app's review table" in " ".join(lines)
        assert all(x.isascii() for x in lines[:4])

    def test_the_count_note_gives_the_models_figures(self, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
        """Over as many images as a differential is read over (here lowered to 8), the note gives the model's
        own misread figures, from the card of the model that read them."""
        import json

        from wbc import differential
        from wbc.card import DEFAULT_MODEL_DIR

        monkeypatch.setattr(differential, "MIN_CELLS_FOR_RANGES", 8)
        assert main(["predict", str(FIXTURE_IMAGES / "TEST_SIMPLE"), "--quiet"]) == 0
        said = differential.misread_figures(json.loads((DEFAULT_MODEL_DIR / "model.json").read_text()))
        assert said and said in " ".join(capsys.readouterr().out.split())

    def test_several_images_end_with_a_differential(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """After the table, a differential of the images read as white cells: the counts are the table's
        labels; a photo with no white cell and an unreadable file are left out and said to be; one
        image alone gets no differential, and none read as a white cell says so without a heading of 0 images."""
        import shutil

        from conftest import FIXTURES

        folder = tmp_path / "smear"
        shutil.copytree(FIXTURE_IMAGES / "TEST_SIMPLE", folder)
        shutil.copy(FIXTURES / "no-white-cell.jpeg", folder / "no-white-cell.jpeg")
        (folder / "broken.png").write_bytes(b"not a png")
        (folder / "notes.txt").write_text("smear 12, slide 3")
        # A file that cannot be used exits 1 (a script sees it), though the others are classified.
        assert main(["predict", str(folder), "--quiet"]) == 1
        out, err = capsys.readouterr()
        assert "1 of 10 file(s) could not be used" in err
        assert "note: in the folders given, 1 other file(s) passed over: .txt; images are read by their names" in err
        assert main(["predict", str(folder), str(folder), "--quiet"]) == 1  # one folder twice: its files once
        assert "1 other file(s) passed over" in capsys.readouterr().err
        table, summary = out.split("\n\n")
        labels = [line.split()[1] for line in table.splitlines()[1:] if line.split()[1] != "-"]  # typed rows
        assert len(labels) == 8
        assert summary.startswith("Differential of the 8 image(s) read as white cells (left out: 1 not a white cell, "
                                  "1 unreadable)")
        assert "8 image(s), each taken as one cell, counted. A differential is normally read over at least 100" in summary
        # The rows right under the heading, then the note wrapped for a terminal (one ~1,100-character line).
        lines = summary.splitlines()
        assert [x.split()[0] for x in lines[1:5]] == ["Neutrophil", "Lymphocyte", "Monocyte", "Eosinophil"]
        assert "95% limits 3.2-65.1" in lines[1] and max(map(len, lines[1:])) <= 100 and len(lines) > 6
        assert all(x.endswith("%") for x in lines[1:5])  # too few to place in the ranges: no status after them
        for name in ("Eosinophil", "Lymphocyte", "Monocyte", "Neutrophil"):
            line = next(x for x in summary.splitlines() if x.split()[:1] == [name])
            k = labels.count(name.upper())
            assert line.split()[1:3] == [str(k), f"{100 * k / 8:.1f}%"]
        assert main(["predict", str(folder / "no-white-cell.jpeg"), "--quiet"]) == 0
        assert "Differential" not in capsys.readouterr().out
        (folder / "broken2.png").write_bytes(b"not a png either")
        assert main(["predict", str(folder / "broken.png"), str(folder / "broken2.png"), "--quiet"]) == 1
        out = capsys.readouterr().out  # no heading of a differential of 0 images over the line saying there is none
        assert out.rstrip().endswith("\n\nNo image was read as a white cell (left out: 2 unreadable): no differential.")
        assert "Differential" not in out

    def test_magnified_photo_is_named_as_shrunk(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A photo at 4x the data set's magnification is shrunk first, and its row says so; the
        original's row does not."""
        from PIL import Image

        src = next((FIXTURE_IMAGES / "TEST_SIMPLE" / "MONOCYTE").iterdir())
        img = Image.open(src)
        img.resize((img.width * 4, img.height * 4), Image.BILINEAR).save(tmp_path / "big.png")
        Image.open(src).save(tmp_path / "small.png")
        assert main(["predict", str(tmp_path / "big.png"), str(tmp_path / "small.png"), "--quiet"]) == 0
        table = capsys.readouterr().out.split("\n\n")[0].splitlines()[1:]  # the differential follows a blank line
        rows = {line.split()[0].rsplit("/", 1)[-1]: line for line in table}
        assert "x towards the training magnification]" in rows["big.png"]
        assert "shrunk" not in rows["small.png"]

    @pytest.mark.parametrize("gain, note", [
        # passes only on the screening's second look, and the shipped card matches it for the network
        (0.6, "[white balance or exposure unlike the training images': found only and read with its colours "
              "matched to theirs]"),
        (1.4, "% of the lit pixels white (clipped); such photos are read poorly]"),  # overexposed
    ])
    def test_dim_or_overexposed_photo_is_named(self, gain: float, note: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
        """A dim photo found as a white cell only on the screening's second look (and, with the shipped
        card's match_white, read with its white matched), and an overexposed one (verdict needs
        review), say so on their rows; the photo as taken says neither."""
        import numpy as np
        from PIL import Image

        from wbc.robustness import brightness

        src = FIXTURE_IMAGES / "TEST_SIMPLE" / "EOSINOPHIL" / "_9_2814.jpeg"
        Image.fromarray(brightness(gain)(np.asarray(Image.open(src).convert("RGB")))).save(tmp_path / "shot.png")
        Image.open(src).save(tmp_path / "plain.png")
        assert main(["predict", str(tmp_path / "shot.png"), str(tmp_path / "plain.png"), "--quiet",
                     "--csv", str(tmp_path / "p.csv")]) == 0
        table = capsys.readouterr().out.split("\n\n")[0].splitlines()[1:]  # the differential follows a blank line
        rows = {line.split()[0].rsplit("/", 1)[-1]: line for line in table}
        assert note in rows["shot.png"] and "not a white" not in rows["shot.png"]
        assert gain < 1 or "needs review" in rows["shot.png"]
        if gain > 1:  # the runner-up to check it against, to the confidence column's 3 decimals, as the CSV has it
            import csv

            from wbc.info import CLASSES

            shot = next(r for r in csv.DictReader((tmp_path / "p.csv").open()) if r["file"].endswith("shot.png"))
            second = sorted((float(shot[f"p_{c.lower()}"]), c) for c in CLASSES)[-2]
            assert f"(or {second[1].lower()} {second[0]:.3f})" in rows["shot.png"]
        assert "[" not in rows["plain.png"] and rows["plain.png"].endswith("confident")

    def test_missing_path(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A path that does not exist: exit 2 and one line naming it."""
        assert main(["predict", str(tmp_path / "nope.jpg")]) == 2
        err = capsys.readouterr().err
        assert "nope.jpg: no such file or folder" in err and "Traceback" not in err
        assert main(["predict", str(tmp_path / "nope.jpg"), str(tmp_path / "gone.png")]) == 2  # each named
        err = capsys.readouterr().err
        assert "nope.jpg: no such file or folder" in err and "gone.png: no such file or folder" in err

    def test_missing_path_among_good_ones_gets_its_row(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A path that names nothing, given with real images, is a row of its own; the rest are
        classified and counted, in the order given, and the exit status is 1 (a typo is the user's to
        fix). A pattern's broken link, an empty folder and a name too long for the file system are
        rows too."""
        good = sorted((FIXTURE_IMAGES / "TEST_SIMPLE").rglob("*.jpeg"))[:2]
        assert main(["predict", str(good[0]), str(tmp_path / "typo.jpg"), str(good[1]), "--quiet"]) == 1
        out, err = capsys.readouterr()
        table, summary = out.split("\n\n")[0].splitlines()[1:], out.split("\n\n")[1]
        assert len(table) == 3 and "typo.jpg" in table[1] and table[1].split()[1:4] == ["-", "-", "no"]
        assert table[1].endswith("  no image: no such file or folder")
        assert "no image" not in table[0] + table[2]
        assert "(left out: 1 naming no image)" in summary and "1 row(s) name no image file" in err
        (tmp_path / "empty").mkdir()
        (tmp_path / "broken.jpeg").symlink_to(tmp_path / "nowhere.jpeg")
        (tmp_path / "a.jpeg").write_bytes(good[0].read_bytes())
        assert main(["predict", str(tmp_path / "*.jpeg"), str(tmp_path / "empty"), "x" * 300, "--quiet"]) == 1
        rows = {r.split()[0].rsplit("/", 1)[-1]: r for r in capsys.readouterr().out.split("\n\n")[0].splitlines()[1:]}
        assert "no image" not in rows["a.jpeg"]
        assert rows["broken.jpeg"].endswith("  no image: a link to nothing (its target is gone, or it loops)")
        # Named as it is, a link that loops is told so too, not that there is no such file (ls shows it)
        (tmp_path / "loop.jpg").symlink_to(tmp_path / "loop.jpg")
        assert main(["predict", str(tmp_path / "loop.jpg"), str(good[0]), "--quiet"]) == 1
        first = capsys.readouterr().out.split("\n\n")[0].splitlines()[1]
        assert "loop.jpg" in first and first.endswith("  no image: a link to nothing (its target is gone, or it loops)")
        assert rows["empty"].endswith("  no image: no image files in this folder")
        assert "  no image: cannot be read (File name too long)" in rows["..." + "x" * 57]
        # A named pipe called as an image, in a folder given: a row of its own, not passed over without a word
        piped = tmp_path / "piped"
        piped.mkdir()
        os.mkfifo(piped / "x.jpg")
        (piped / "a.jpeg").write_bytes(good[0].read_bytes())
        assert main(["predict", str(piped), "--quiet"]) == 1
        rows = {r.split()[0].rsplit("/", 1)[-1]: r for r in capsys.readouterr().out.split("\n\n")[0].splitlines()[1:]}
        assert rows["x.jpg"].endswith("not followed: not a file of data (a pipe, a socket or a device)"), rows
        assert "no image" not in rows["a.jpeg"] and "not followed" not in rows["a.jpeg"]
        # A folder of hidden images alone (macOS's ._ copies, a .thumbnails folder): said, not "no image files" bare
        hidden = tmp_path / "hidden"
        (hidden / ".thumbs").mkdir(parents=True)
        for f in ("._a.jpeg", ".thumbs/b.png", ".thumbs/C.JPG", ".thumbs/notes.txt"):  # a camera's names in capitals
            (hidden / f).write_bytes(good[0].read_bytes())
        assert main(["predict", str(hidden), "--quiet"]) == 2  # nothing else given: an error, in one line
        err = capsys.readouterr().err
        assert err.rstrip().endswith("no image files in this folder (3 image file(s) passed over as hidden, their names "
                                     "or folders starting with '.': rename any you want read)"), err

    def test_the_same_image_under_two_names_is_counted_once(self, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
        """A photo copied into two folders (the same bytes under another name) keeps both rows, and the
        differential counts it once and names the repeat, as the app does (it counted 2 lymphocytes)."""
        import shutil

        lym = sorted((FIXTURE_IMAGES / "TEST_SIMPLE" / "LYMPHOCYTE").glob("*.jpeg"))[0]
        eos = sorted((FIXTURE_IMAGES / "TEST_SIMPLE" / "EOSINOPHIL").glob("*.jpeg"))[0]
        for folder, name, src in (("mon", "a.jpeg", lym), ("mon", "b.jpeg", eos), ("tue", "a_copy.jpeg", lym)):
            (tmp_path / folder).mkdir(exist_ok=True)
            shutil.copy(src, tmp_path / folder / name)
        table_csv = tmp_path / "out.csv"
        assert main(["predict", str(tmp_path), "--quiet", "--csv", str(table_csv)]) == 0
        out = capsys.readouterr().out
        table, summary = out.split("\n\n")
        assert len(table.splitlines()) == 4  # the header and every file's row
        assert summary.startswith("Differential of the 2 image(s) read as white cells (left out: 1 repeat(s) of an "
                                  "image given before)")
        assert re.search(r"Lymphocyte +1 +50\.0%", summary), summary
        copy, first = tmp_path / "tue" / "a_copy.jpeg", tmp_path / "mon" / "a.jpeg"
        assert table.splitlines()[3].endswith(f"[the same image as {first}: counted once]")
        # The CSV names it too: a spreadsheet's total would count the row again.
        rows = {r["file"]: r for r in csv.DictReader(table_csv.open())}
        assert rows[str(copy)]["same_image_as"] == str(first) and rows[str(first)]["same_image_as"] == ""
        assert list(rows[str(copy)])[-2:] == ["same_image_as", "verdict"]
        # A photo that is no white cell, given twice, is left out once as such and once as a repeat.
        from PIL import Image

        blank = tmp_path / "tue" / "blank.png"
        Image.new("RGB", (320, 240), (230, 225, 228)).save(blank)
        shutil.copy(blank, tmp_path / "tue" / "blank2.png")
        assert main(["predict", str(tmp_path), "--quiet"]) == 0
        assert "(left out: 1 not a white cell, 2 repeat(s) of an image given before)" in capsys.readouterr().out
        blank.unlink()
        (tmp_path / "tue" / "blank2.png").unlink()
        # The images to review are the counted ones: a repeat is not checked twice (a card whose threshold sends
        # every image to review: the two images, not the three rows).
        from wbc.card import DEFAULT_MODEL_DIR

        model = tmp_path / "model"
        model.mkdir()
        shutil.copy(DEFAULT_MODEL_DIR / "model.onnx", model / "model.onnx")
        card = json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())
        (model / "model.json").write_text(json.dumps({**card, "review_threshold": 1.0}))
        assert main(["predict", str(tmp_path / "mon"), str(tmp_path / "tue"), "--model", str(model), "--quiet"]) == 0
        summary = capsys.readouterr().out.split("\n\n")[1]
        assert summary.startswith("Differential of the 2 image(s) read as white cells (left out: 1 repeat(s) of an "
                                  "image given before); 2 need review: check them by eye"), summary
        # Two copies of one image are one image read: no differential, as for one file given twice.
        (tmp_path / "mon" / "b.jpeg").unlink()
        assert main(["predict", str(tmp_path), "--quiet"]) == 0
        assert "Differential" not in capsys.readouterr().out

    def test_rows_naming_no_image_say_so_and_one_image_has_no_differential(self, tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
        """One image with an empty folder and a typo: the two rows' verdict in the CSV is "no image", not
        "unreadable" (nothing was there to read), and a count of the one image is no differential."""
        one = sorted((FIXTURE_IMAGES / "TEST_SIMPLE").rglob("*.jpeg"))[0]
        (tmp_path / "empty").mkdir()
        args = ["predict", str(one), str(tmp_path / "empty"), str(tmp_path / "typo.jpg"), "--csv", str(tmp_path / "o.csv")]
        assert main([*args, "--quiet"]) == 1
        out = capsys.readouterr().out
        assert "Differential" not in out and out.splitlines()[4:] == [f"wrote {tmp_path / 'o.csv'}"], out
        verdicts = {Path(r["file"]).name: r["verdict"] for r in csv.DictReader((tmp_path / "o.csv").open())}
        assert verdicts == {one.name: "confident", "empty": "no image", "typo.jpg": "no image"}, verdicts

    def test_control_characters_in_a_name_keep_the_row_on_one_line(self, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
        """A newline, tab or escape in a file name is shown escaped, so each file is one line of the
        table (a newline split the row in two); the CSV keeps the name as it is."""
        src = sorted((FIXTURE_IMAGES / "TEST_SIMPLE").rglob("*.jpeg"))[:2]
        odd = [tmp_path / "two\nlines.jpeg", tmp_path / "tab\tand\x1b[31mred.jpeg"]
        for s, d in zip(src, odd):
            d.write_bytes(s.read_bytes())
        assert main(["predict", *map(str, odd), "--csv", str(tmp_path / "o.csv"), "--quiet"]) == 0
        table = capsys.readouterr().out.split("\n\n")[0].splitlines()
        assert len(table) == 3, table
        assert "two\\nlines.jpeg" in table[1] and "tab\\tand\\x1b[31mred.jpeg" in table[2], table
        assert [r["file"] for r in csv.DictReader((tmp_path / "o.csv").open(newline=""))] == list(map(str, odd))

    def test_unreadable_folder_is_named_as_such(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
        """A folder that cannot be listed is a row saying so, not "no image files" (the folder search
        skips such a folder silently; tests run as root, so listing it is made to fail)."""
        import shutil

        locked = tmp_path / "locked"
        locked.mkdir()
        shutil.copy(sorted((FIXTURE_IMAGES / "TEST_SIMPLE").rglob("*.jpeg"))[0], locked / "a.jpeg")
        real = os.scandir

        def scandir(path: object = ".") -> object:
            if Path(str(path)) == locked:
                raise PermissionError(13, "Permission denied", str(path))
            return real(path)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "scandir", scandir)
        assert main(["predict", str(locked)]) == 2
        assert capsys.readouterr().err == f"wbc: error: {locked}: cannot be read (Permission denied)\n"

    def test_unexpanded_pattern_and_repeats(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A pattern the shell left unexpanded (quoted, or a shell without globbing) is matched here; a
        file given twice is classified and counted once, and the user is told; a pattern matching
        nothing is named."""
        folder = FIXTURE_IMAGES / "TEST_SIMPLE"
        one = sorted(folder.rglob("*.jpeg"))[0]
        assert main(["predict", str(folder / "*" / "*.jpeg"), str(one), "--quiet"]) == 0
        out, err = capsys.readouterr()
        assert "8 image(s), each taken as one cell, counted" in out
        assert "1 file(s) given more than once, each classified and counted once" in err
        assert main(["predict", str(folder / "*" / "*.webp")]) == 2
        assert capsys.readouterr().err == f"wbc: error: {folder / '*' / '*.webp'}: no image file matches this pattern\n"
        assert main(["predict", str(folder / "*" / "*.webp"), str(one), "--quiet"]) == 1
        rows = capsys.readouterr().out.split("\n\n")[0].splitlines()[1:]
        assert len(rows) == 2 and rows[0].endswith("  no image: no image file matches this pattern")

    def test_repeats_count_files_not_mentions(self, capsys: pytest.CaptureFixture[str]) -> None:
        """One file given four times (three times by name, once in its folder) is one file given more than once,
        not "3 file(s)"."""
        one = sorted((FIXTURE_IMAGES / "TEST_SIMPLE").rglob("*.jpeg"))[0]
        assert main(["predict", str(one), str(one), str(one), str(one.parent), "--quiet"]) == 0
        assert "wbc: note: 1 file(s) given more than once, each classified and counted once" in capsys.readouterr().err

    def test_csv_never_overwrites_an_image_and_is_checked_first(self, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
        """--csv naming an input image, or any image name, is refused and the photo kept; a --csv that
        cannot be written is refused before the images are read, in one line naming it."""
        import shutil

        photo = tmp_path / "cell.jpeg"
        shutil.copy(sorted((FIXTURE_IMAGES / "TEST_SIMPLE").rglob("*.jpeg"))[0], photo)
        (tmp_path / "link").symlink_to(tmp_path, target_is_directory=True)  # the photo under another name
        before = photo.read_bytes()
        for target, message in ((photo, "that is one of the images given"), (tmp_path / "other.png", "an image's name"),
                                (tmp_path / "link" / photo.name, "that is one of the images given"),
                                (tmp_path / "other.PNG", "an image's name"), (tmp_path, "is a folder; give a file name"),
                                (photo / "table.csv", f"folder {photo} is a file, not a folder")):
            assert main(["predict", str(photo), "--csv", str(target), "--quiet"]) == 2, target
            out, err = capsys.readouterr()
            assert message in err and "Traceback" not in err, err
            assert "confidence" not in out  # refused before any image was classified
        assert photo.read_bytes() == before
        assert not (tmp_path / "other.png").exists() and not (tmp_path / "other.PNG").exists()
        # Another file of the user's (the model card in use, a spreadsheet) is refused; an earlier table of
        # `wbc predict`'s is replaced, and that is said.
        from wbc.card import DEFAULT_MODEL_DIR

        evaluation = (DEFAULT_MODEL_DIR / "predictions.csv").read_text()[:2000]  # its report's table
        for name, text in (("model.json", "{}"), ("mine.csv", "patient,count\n1,2\n"), ("predictions.csv", evaluation)):
            (tmp_path / name).write_text(text)
            assert main(["predict", str(photo), "--csv", str(tmp_path / name), "--quiet"]) == 2
            assert "a file of that name exists and is not a table `wbc predict` wrote" in capsys.readouterr().err
            assert (tmp_path / name).read_text() == text
        table = tmp_path / "Results.CSV"
        table.write_text("file,class,confidence,p_eosinophil,verdict\nold.jpeg,EOSINOPHIL,0.9,0.9,confident\n")
        assert main(["predict", str(photo), "--csv", str(table), "--quiet"]) == 0  # an earlier version's table
        capsys.readouterr()
        assert main(["predict", str(photo), "--csv", str(table), "--quiet"]) == 0
        assert f"wrote {table} (it replaced the table there)" in capsys.readouterr().out
        assert table.read_text().startswith("file,class,confidence,")
        # A table whose rows hold a file name that is not UTF-8 (a Linux file system's bytes) is still one of ours:
        # it was refused as "not a table" on the second run, its header read as text with the rows after it.
        for lines in (b"file,class,confidence,p_eosinophil,verdict\nbad\xff\xfe.jpeg,EOSINOPHIL,0.9,0.9,confident\n",
                      b"file,class,confidence,p_eosinophil,verdict\rold.jpeg,EOSINOPHIL,0.9,0.9,confident\r"):  # Mac CR
            table.write_bytes(lines)
            assert main(["predict", str(photo), "--csv", str(table), "--quiet"]) == 0
            assert f"wrote {table} (it replaced the table there)" in capsys.readouterr().out
        assert main(["predict", str(photo), "--csv", str(tmp_path / "new.txt"), "--quiet"]) == 0  # a new name: any
        assert capsys.readouterr().out.rstrip().endswith(f"wrote {tmp_path / 'new.txt'}")

    @pytest.mark.parametrize("argv, message", [
        (["predict", "x.jpeg", "--threads", "0"], "--threads: 0: choose 1 to"),
        (["predict", "x.jpeg", "--threads", "100000"], "--threads: 100000: choose 1 to"),
        (["train", "--threads", "-1"], "--threads: -1: choose 1 to"),
        (["app", "--port", "99999"], "--port: 99999: choose 1 to 65535 (a TCP port)"),
        (["app", "--port", "65536"], "--port: 65536: choose 1 to 65535"),  # the bounds are exact
        (["predict", "x.jpeg", "--threads", str(_usable_cpus() + 1)],
         f"--threads: {_usable_cpus() + 1}: choose 1 to {_usable_cpus()} (the CPUs this process may use)"),
    ])
    def test_counts_out_of_range_are_usage_errors(self, argv: list[str], message: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
        """Thread counts beyond the machine (ONNX Runtime allocates for every one) and impossible ports
        are refused by the parser, naming the option."""
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2 and message in capsys.readouterr().err

    @pytest.mark.parametrize("argv", [["evaluate", "--out", ""], ["evaluate", "--folder", ""],
                                      ["predict", "x.jpeg", "--csv", ""], ["predict", "x.jpeg", "--model", ""],
                                      ["export", ""], ["train", "--data", ""]])
    def test_an_empty_path_is_a_usage_error(self, argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
        """An empty path (an unset variable in a script) is refused by the parser, naming the option: as the current
        folder, `wbc evaluate --out ""` wrote its report and plots there."""
        monkeypatch.chdir(tmp_path)
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2 and ": an empty name: give " in capsys.readouterr().err
        assert list(tmp_path.iterdir()) == []

    def test_an_empty_name_to_predict_is_a_row_saying_so(self, capsys: pytest.CaptureFixture[str]) -> None:
        """`wbc predict ""` names an empty name in its row (it said "cannot be read (No such file or directory)")."""
        one = sorted((FIXTURE_IMAGES / "TEST_SIMPLE").rglob("*.jpeg"))[0]
        assert main(["predict", "", str(one), "--quiet"]) == 1
        assert "  no image: an empty name, not a file or folder" in capsys.readouterr().out
        # "-", as many tools take the standard input: said not to be read here (it said "no such file or folder")
        assert main(["predict", "-", str(one), "--quiet"]) == 1
        assert "no such file or folder; the standard input is not read: give image files" in capsys.readouterr().out

    def test_app_address_not_of_this_machine(self, capsys: pytest.CaptureFixture[str]) -> None:
        """An address the machine cannot listen on is one line naming --address, before Streamlit starts
        (which met it with a traceback)."""
        pytest.importorskip("streamlit")
        assert main(["app", "--address", "10.255.255.1"]) == 2
        err = capsys.readouterr().err
        assert "--address 10.255.255.1: not an address of this machine" in err and "Traceback" not in err

    def test_app_refuses_a_unix_socket_and_brackets_an_ipv6_address(self, capsys: pytest.CaptureFixture[str],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
        """A unix:// address was printed as the app's, then Streamlit stopped with a traceback (its server takes no
        socket): refused in one line. An IPv6 address is printed in brackets, as a browser opens it (http://::1:8501
        is no URL)."""
        pytest.importorskip("streamlit")
        assert main(["app", "--address", "unix:///tmp/wbc.sock"]) == 2
        said = capsys.readouterr()
        assert said.out == "" and "--address unix:///tmp/wbc.sock: the app's server cannot listen on a Unix socket" in said.err
        import socket

        if not socket.has_ipv6:
            pytest.skip("no IPv6 on this machine")
        try:
            with socket.socket(socket.AF_INET6) as s:
                s.bind(("::1", 0))
                port = s.getsockname()[1]
        except OSError as e:
            pytest.skip(f"cannot listen on ::1 here ({e})")
        class Exec(Exception):  # where the process would become Streamlit's
            pass

        def execve(exe: str, cmd: list[str], env: dict[str, str]) -> None:
            raise Exec(cmd)

        monkeypatch.setattr(os, "execve", execve)
        monkeypatch.setattr(os, "name", "posix")
        with pytest.raises(Exec) as ran:
            main(["app", "--address", "::1", "--port", str(port)])
        cmd = ran.value.args[0]
        assert capsys.readouterr().out.startswith(f"wbc app: http://[::1]:{port} ")
        assert cmd[cmd.index("--server.address") + 1] == "::1"

    def test_app_on_a_busy_port_says_so_before_printing_its_address(self, capsys: pytest.CaptureFixture[str],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
        """A port another server holds is named, with --port, before wbc says where the app is (it printed
        the address, then Streamlit's refusal)."""
        pytest.importorskip("streamlit")
        import os
        import subprocess

        def no_server(*args: object, **kwargs: object) -> int:
            raise AssertionError("the server was started on a busy port")

        monkeypatch.setattr(os, "execve", no_server)  # a check that let it through would replace pytest
        monkeypatch.setattr(subprocess, "call", no_server)
        with socket.socket() as held:
            held.bind(("127.0.0.1", 0))
            held.listen()
            port = held.getsockname()[1]
            for address in ("127.0.0.1", "localhost", "0.0.0.0"):
                assert main(["app", "--address", address, "--port", str(port)]) == 2
                out, err = capsys.readouterr()
                assert out == "" and f"port {port} on {address} is in use" in err, err
                assert f"--port {port + 1}" in err

    def test_app_on_a_port_this_user_may_not_take_says_so(self, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
        """A port below 1024 refused to a user who is not root is named with what to do (above 1023), before the
        server starts (as root the port is bound, so the refusal is made here)."""
        import errno

        from wbc.cli.app import _check_address
        from wbc.errors import WbcError

        real = socket.socket.bind

        def bind(self: socket.socket, address: tuple[object, ...]) -> None:
            if address[1] == 80:
                raise PermissionError(errno.EACCES, "Permission denied")
            real(self, address)

        monkeypatch.setattr(socket.socket, "bind", bind)
        with pytest.raises(WbcError, match="port 80: this user may not listen on it .* choose one above 1023"):
            _check_address("127.0.0.1", 80)

    @pytest.mark.parametrize("option, message", [
        (["--epochs", "0"], "epochs 0: choose 1 or more"), (["--epochs", "-3"], "epochs -3: choose 1 or more"),
        (["--limit-cells", "0"], "limit cells 0: choose 1 or more"), (["--patience", "0"], "patience 0: choose 1"),
    ])
    def test_train_refuses_empty_runs(self, option: list[str], message: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
        """Settings that would train nothing (and once reported a run written with no checkpoint) or
        everything (--limit-cells 0 meant no limit) are refused before any data is read."""
        assert main(["train", "--out", str(tmp_path / "run"), *option, "--quiet"]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "run" / "config.json").exists()

    @pytest.mark.parametrize("option, message", [
        (["--seed", "-1"], "seed -1: choose a whole number from 0 to 4294967295"),
        (["--seed", "4294967296"], "seed 4294967296: choose a whole number from 0"),
        (["--split-seed", "-2"], "split seed -2: choose a whole number"),
        (["--distill", "2"], "--distill weighs the teachers' soft targets: give the teachers' runs with --teacher"),
        (["--teacher", "elsewhere", "--distill", "2"], "distillation weight 2.0: choose a value in [0, 1]"),
        (["--teacher", "elsewhere", "--distill", "-1"], "distillation weight -1.0: choose a value in [0, 1]"),
        (["--epochs", "0"], "epochs 0: choose 1 or more"),
        (["--limit-cells", "0"], "limit cells 0: choose 1 or more"),
        (["--low-res", "64", "10", "--epochs", "3"], "choose 1 to 2 epochs, fewer than the run's 3"),
        (["--low-res", "64", "1", "--epochs", "1"], "progressive resizing needs a run of 2 or more epochs"),
    ])
    @pytest.mark.parametrize("dry", [True, False])
    def test_train_refuses_bad_settings_in_a_line(self, option: list[str], message: str, dry: bool, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
        """A seed numpy cannot take (a traceback), --distill without teachers (ignored unsaid), and settings a real
        run refuses are refused in one line, with --dry-run too (it said "the set-up trains" for --epochs 0)."""
        argv = ["train", "--out", str(tmp_path / "run"), *option, "--quiet", *(["--dry-run"] if dry else [])]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and err.count("\n") == 1, err
        assert not (tmp_path / "run" / "config.json").exists()

    def test_settings_all_cells_leaves_idle_are_said(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--split-seed, --val-fraction and --patience with --all-cells act on no held-out cells: a note says so
        (they were taken without a word); without them, no note."""
        data = ["--data", str(FIXTURE_IMAGES), "--quiet", "--dry-run", "--all-cells"]
        assert main(["train", *data, "--patience", "5", "--split-seed", "3"]) == 0
        assert ("--all-cells holds out no cells, so --split-seed, --patience (which set or watch the held-out cells) "
                "change nothing") in capsys.readouterr().err
        assert main(["train", *data]) == 0
        assert "holds out no cells" not in capsys.readouterr().err

    def test_outputs_checked_before_the_work(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """evaluate's, export's and train's output folders that cannot be made are refused at once, in
        one line; export names a run folder that does not exist as such."""
        blocker = tmp_path / "a-file"
        blocker.write_text("")
        for argv in (["evaluate", "--out", str(blocker)], ["export", str(tmp_path), "--out", str(blocker / "m")],
                     ["train", "--out", str(blocker / "run"), "--quiet"]):
            assert main(argv) == 2, argv
            err = capsys.readouterr().err
            assert f"{blocker}" in err and "is a file" in err, err
            assert "Traceback" not in err and err.count("\n") == 1
        # The check creates nothing: a run refused for another reason leaves no empty output folder.
        assert main(["evaluate", "--model", str(tmp_path / "no-model"), "--data", str(FIXTURE_IMAGES.parent),
                     "--split", "TEST_SIMPLE", "--out", str(tmp_path / "ev" / "deep")]) == 2
        assert "model file not found" in capsys.readouterr().err and not (tmp_path / "ev").exists()
        assert main(["export", str(tmp_path / "nope")]) == 2
        assert f"{tmp_path / 'nope'}: no such run folder or checkpoint" in capsys.readouterr().err

    def test_interrupt_and_file_system_errors(self, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
        """Ctrl+C outside a training's epochs is one line (a training's own says whether it can resume:
        test_interrupted_training_says_whether_it_can_resume); a file system refusal met during the work
        is one line naming the file, not a traceback."""
        from wbc.cli import parser  # build_parser takes each verb's function from here

        def interrupted(args: object) -> int:
            raise KeyboardInterrupt

        def refused(args: object) -> int:
            raise PermissionError(13, "Permission denied", "/somewhere/out.csv")

        monkeypatch.setattr(parser, "cmd_predict", interrupted)
        assert main(["predict", "x.jpeg"]) == 130
        assert capsys.readouterr().err == "wbc: interrupted\n"
        monkeypatch.setattr(parser, "cmd_train", interrupted)
        assert main(["train"]) == 130
        assert capsys.readouterr().err == "wbc: interrupted\n"
        monkeypatch.setattr(parser, "cmd_predict", refused)
        assert main(["predict", "x.jpeg"]) == 2
        assert capsys.readouterr().err == "wbc: error: /somewhere/out.csv: Permission denied\n"

    def test_an_interrupted_evaluation_or_export_says_its_folder_is_as_it_was(
            self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
            tiny_run: Path) -> None:
        """Ctrl+C during `wbc evaluate --out DIR` or `wbc export --out DIR` says that DIR is as it was (it said only
        "interrupted", though an earlier evaluation or model there is kept); not where the files had moved in
        before the Ctrl+C held back took effect, which a note says."""
        import signal

        import wbc.evaluate
        import wbc.ship
        from wbc.staging import raise_held

        def stopped(*a: object, **k: object) -> None:
            raise KeyboardInterrupt

        def stopped_after_the_move(model: object, out: Path, **k: object) -> None:
            raise_held([signal.SIGINT], "the evaluation", Path(out))

        out = tmp_path / "ev"
        args = ["evaluate", "--folder", str(FIXTURE_IMAGES / "TEST_SIMPLE"), "--out", str(out), "--quiet"]
        monkeypatch.setattr(wbc.evaluate, "evaluate", stopped)
        assert main(args) == 130
        assert capsys.readouterr().err == f"wbc: interrupted; {out} is as it was (nothing of this run was moved in)\n"
        monkeypatch.setattr(wbc.evaluate, "evaluate", stopped_after_the_move)
        assert main(args) == 130
        assert capsys.readouterr().err == (f"wbc: note: the evaluation was written to {out} before the interrupt took "
                                           "effect\nwbc: interrupted\n")
        monkeypatch.setattr(wbc.ship, "export_and_report", stopped)
        assert main(["export", str(tiny_run), "--out", str(tmp_path / "m"), "--quiet"]) == 130
        assert capsys.readouterr().err.endswith(f"wbc: interrupted; {tmp_path / 'm'} is as it was (nothing of this "
                                                "run was moved in)\n")
        # Held back while the export's evaluation moved into the export's staging folder: the export's --out is as
        # it was all the same (that folder goes with the export)
        from wbc.staging import STAGE_PREFIX

        def stopped_in_its_stage(*a: object, **k: object) -> None:
            raise_held([signal.SIGINT], "the evaluation", tmp_path / "m" / f"{STAGE_PREFIX}1.x")

        monkeypatch.setattr(wbc.ship, "export_and_report", stopped_in_its_stage)
        assert main(["export", str(tiny_run), "--out", str(tmp_path / "m"), "--quiet"]) == 130
        err = capsys.readouterr().err
        assert err.endswith(f"wbc: interrupted; {tmp_path / 'm'} is as it was (nothing of this run was moved in)\n")
        assert "before the interrupt took effect" not in err

    def test_sigterm_is_taken_as_ctrl_c(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
        """SIGTERM (`timeout`, a batch scheduler, `kill`) stops a command as Ctrl+C does, keeping what was read: a
        predict's table of the files read and its CSV, not an exit with nothing said and nothing written. The
        handler before is put back after."""
        import signal

        from wbc.predict import Predictor

        real = Predictor.iter_files
        files = sorted(FIXTURE_IMAGES.rglob("*.jpeg"))[:4]

        def terminated_after_two(self: Predictor, paths: list[Path], **kw: object):  # noqa: ANN202
            for i, r in enumerate(real(self, paths, **kw)):
                if i == 2:
                    signal.raise_signal(signal.SIGTERM)  # to this thread: os.kill may reach another, later
                yield r

        # A handler of the test's own first: were main to leave SIGTERM as it is, the signal ends here, failing this
        # test, not the whole test run
        missed: list[int] = []
        before = signal.signal(signal.SIGTERM, lambda signum, frame: missed.append(signum))
        monkeypatch.setattr(Predictor, "iter_files", terminated_after_two)
        try:
            code = main(["predict", *map(str, files), "--csv", str(tmp_path / "t.csv"), "--quiet"])
            assert not missed and code == 130
            assert signal.getsignal(signal.SIGTERM) is not signal.default_int_handler  # the test's own put back
        finally:
            signal.signal(signal.SIGTERM, before)
        err = capsys.readouterr().err
        assert "interrupted after 2 of 4 file(s); reporting those" in err
        rows = (tmp_path / "t.csv").read_text().splitlines()[1:]
        assert len(rows) == 4 and sum(",not read" in r or "not read" in r for r in rows) == 2, rows

    def test_a_sigterm_held_while_files_move_in_is_raised_as_itself(self, tmp_path: Path) -> None:
        """A SIGTERM held back while an export's or evaluation's files move in is raised again as SIGTERM, not as
        SIGINT, which a script's background job ignores (the command went on, exit 0)."""
        import signal

        from wbc.cli import terminate_as_interrupt
        from wbc.staging import interrupt_held, raise_held

        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            with terminate_as_interrupt():
                hit: list[int] = []
                with interrupt_held(hit):
                    signal.raise_signal(signal.SIGTERM)  # to this thread: os.kill may reach another, later
                assert hit == [signal.SIGTERM]
                with pytest.raises(KeyboardInterrupt):
                    raise_held(hit, "the model", tmp_path)
        finally:
            signal.signal(signal.SIGINT, old)

    def test_webp_and_gif_in_a_folder(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A folder's WebP, GIF and .jfif (a JPEG by Windows' name) photos are found and read like its
        JPEGs (they were read when named, and silently skipped in a folder); a folder of other files says
        what it held and which names are read."""
        import shutil

        from PIL import Image

        src_path = sorted((FIXTURE_IMAGES / "TEST_SIMPLE" / "EOSINOPHIL").glob("*.jpeg"))[0]
        src = Image.open(src_path)
        src.save(tmp_path / "cell.webp", quality=95)
        src.convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "cell.gif")
        shutil.copy(src_path, tmp_path / "cell.jfif")
        assert main(["predict", str(tmp_path), "--quiet"]) == 0
        rows = capsys.readouterr().out.split("\n\n")[0].splitlines()[1:]
        assert sorted(r.split()[0].rsplit("/", 1)[-1] for r in rows) == ["cell.gif", "cell.jfif", "cell.webp"]
        other = tmp_path / "other"
        other.mkdir()
        (other / "scan.heic").write_bytes(b"x")
        assert main(["predict", str(other)]) == 2
        assert "no image files in this folder (1 other file(s) passed over: .heic (HEIC photos, as phones save them, are " \
            "not read: export them as JPEG); images are read by their names, .bmp .gif .jfif" in capsys.readouterr().err
        assert not any(w in r for r in rows for w in ("unreadable", "no image")), rows  # each read

    def test_grayscale_and_tiny_photos_say_what_is_wrong(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A grayscale photo (8- or 16-bit) and one of a few pixels are called not a white cell for what
        they are, not for "no stained nucleus found", and so is a crop too tight to judge (56 px around the
        cell, or 72; 96 px is read); a photo too dark for the white matching is told to take more light; a
        colour photo of the same cell is read. What is rejected gets no type in the table or the CSV."""
        import numpy as np
        from PIL import Image

        src = Image.open(sorted((FIXTURE_IMAGES / "TEST_SIMPLE" / "EOSINOPHIL").glob("*.jpeg"))[0])
        src.convert("L").save(tmp_path / "gray.jpg", quality=90)
        Image.fromarray(np.asarray(src.convert("L")).astype(np.uint16) * 256).save(tmp_path / "gray16.png")
        # a grayscale photo whose channels differ by JPEG's noise (up to GRAY_SPREAD_MAX, 2 levels) is one still
        noise = np.random.default_rng(0).integers(0, 3, (*src.size[::-1], 3))
        Image.fromarray((np.asarray(src.convert("L"))[..., None] + noise).clip(0, 255).astype(np.uint8)).save(
            tmp_path / "gray-noisy.png")
        src.resize((8, 6)).save(tmp_path / "tiny.png")
        src.save(tmp_path / "colour.png")
        from wbc.imaging import locate_cell

        loc = locate_cell(np.asarray(src.convert("RGB")))
        for side in (56, 72, 96):
            top, left = int(np.clip(loc.cy - side // 2, 0, 240 - side)), int(np.clip(loc.cx - side // 2, 0, 320 - side))
            src.crop((left, top, left + side, top + side)).save(tmp_path / f"crop{side}.png")
        for name, level in (("white.png", 255), ("black.png", 0)):  # blank: no colour either, but not grayscale
            Image.new("RGB", (320, 240), (level,) * 3).save(tmp_path / name)
        src.convert("1").save(tmp_path / "bilevel.png")  # black and white dots: a picture without colour
        # a blank white field rotated, its corners black fill, and one in a black frame: blank, not a picture
        Image.new("RGB", (320, 240), (255,) * 3).rotate(20).save(tmp_path / "white-rotated.png")
        framed = np.zeros((240, 320, 3), np.uint8)
        framed[4:-4, 4:-4] = 255
        Image.fromarray(framed).save(tmp_path / "white-framed.png")
        Image.fromarray((np.asarray(src, dtype=np.float64) * 0.5).round().astype(np.uint8)).save(tmp_path / "dark.png")
        table = tmp_path.parent / f"{tmp_path.name}.csv"
        assert main(["predict", str(tmp_path), "--quiet", "--csv", str(table)]) == 0
        out = capsys.readouterr().out
        rows = {r.split()[0].rsplit("/", 1)[-1]: r for r in out.split("\n\n")[0].splitlines()[1:]}
        # The count's left-out note tells a photo at fault from no white cell, as the verdicts do.
        verdicts = [r["verdict"] for r in csv.DictReader(table.open())]
        judged = verdicts.count("cannot judge")
        assert judged and f"{judged} that cannot be judged" in out.split("\n\n")[1], out
        # what the screening rejects gets no type or confidence, in the table or the CSV (as in the app);
        # the CSV keeps the network's four probabilities
        by_name = {Path(r["file"]).name: r for r in csv.DictReader(table.open())}
        for name in ("gray.jpg", "tiny.png", "crop56.png", "crop72.png", "white.png", "dark.png"):
            assert rows[name].split()[1:3] == ["-", "-"], rows[name]
            r = by_name[name]
            assert r["class"] == r["confidence"] == "" and r["not_white_cell"] and r["p_eosinophil"], r
        assert by_name["colour.png"]["class"] == "EOSINOPHIL"
        for name in ("gray.jpg", "gray16.png", "gray-noisy.png"):
            assert "cannot judge: a grayscale photo: the stain's colours" in rows[name]
        assert "cannot judge: a black-and-white picture: the stain's colours" in rows["bilevel.png"]
        assert "overexposed" not in rows["bilevel.png"] and by_name["bilevel.png"]["overexposed"] == "no"  # white paper, not light
        assert "cannot judge: only 8x6 px: too small or too tight a crop to judge a cell" in rows["tiny.png"]
        for side in (56, 72):
            assert f"only {side}x{side} px: too small or too tight a crop" in rows[f"crop{side}.png"]
        for name in ("colour.png", "crop96.png"):
            assert rows[name].split()[1] == "EOSINOPHIL" and "not a white" not in rows[name], rows[name]
        for name in ("white.png", "white-rotated.png", "white-framed.png"):
            # A white page is all overexposed: "cannot judge", as the app heads it, for no stained nucleus.
            assert "cannot judge: no stained nucleus found" in rows[name] and "[overexposed" in rows[name], rows[name]
        # black: too dark to judge, and the reason says the light first
        assert "cannot judge: the photo is much darker than the training images (its white at 0% of " \
            "theirs): take it with more light; as photographed, no stained nucleus found" in rows["black.png"]
        # half the light: beyond what the white matching undoes, and the reason says so
        assert "the photo is much darker than the training images (its white at 49% of theirs): take it with more " \
            "light" in rows["dark.png"]
        assert "darker" not in rows["white.png"]

    def test_second_white_cell_is_named_and_not_counted(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A photo of two white cells: its row gives one type and where the other cell is, the CSV its
        place, and the differential says how many photos hold a cell it did not count."""
        import shutil

        from conftest import FIXTURES

        shutil.copy(FIXTURES / "two-white-cells.jpeg", tmp_path / "two.jpeg")
        shutil.copy(EOS_FILE, tmp_path / "eos.jpeg")
        table = tmp_path.parent / f"{tmp_path.name}.csv"
        assert main(["predict", str(tmp_path), "--quiet", "--csv", str(table)]) == 0
        out = capsys.readouterr().out
        rows = {line.split()[0].rsplit("/", 1)[-1]: line for line in out.split("\n\n")[0].splitlines()[1:]}
        by_name = {Path(r["file"]).name: r for r in csv.DictReader(table.open())}
        x, y = by_name["two.jpeg"]["other_cell_x"], by_name["two.jpeg"]["other_cell_y"]
        assert 119 <= int(x) <= 255 and 126 <= int(y) <= 235  # in the box BCCD draws round the second cell
        cx, cy = by_name["two.jpeg"]["cell_x"], by_name["two.jpeg"]["cell_y"]
        assert 11 <= int(cx) <= 102 and 114 <= int(cy) <= 210  # the typed one in the first box
        assert (f"[typed the cell at x={cx}, y={cy} px; another white cell (at least one) at x={x}, y={y} px, not "
                "typed: crop each cell into a photo of its own]") in rows["two.jpeg"]
        assert by_name["eos.jpeg"]["other_cell_x"] == by_name["eos.jpeg"]["other_cell_y"] == ""
        assert by_name["eos.jpeg"]["cell_x"] and by_name["eos.jpeg"]["cell_y"]
        assert "another" not in rows["eos.jpeg"]
        assert out.split("\n\n")[1].splitlines()[0].endswith(
            "; 1 of the 2 shows a second white cell that is not in the count (marked in its row):")
        # A small dark mass typed beside a much larger nucleus: needs review, left out of the count
        import numpy as np
        from PIL import Image

        rgb = np.full((240, 320, 3), (225, 205, 215), np.uint8)
        ys, xs = np.mgrid[:240, :320]
        rgb[np.hypot(ys - 200, xs - 20) <= 14] = (60, 0, 230)
        rgb[np.hypot(ys - 110, xs - 190) <= 30] = (120, 70, 180)
        Image.fromarray(rgb).save(tmp_path / "piece.png")
        assert main(["predict", str(tmp_path), "--quiet", "--csv", str(table)]) == 0
        out = capsys.readouterr().out
        rows = {line.split()[0].rsplit("/", 1)[-1]: line for line in out.split("\n\n")[0].splitlines()[1:]}
        assert "[typed the stained mass at x=" in rows["piece.png"] and "(or " not in rows["piece.png"]
        assert rows["piece.png"].split()[1:5] == ["-", "-", "cannot", "judge"]  # no type, no confidence; as the app heads it
        assert "so it cannot be judged and is left out of the count" in rows["piece.png"]
        assert out.split("\n\n")[1].startswith(
            "Differential of the 2 image(s) read as white cells (left out: 1 typed on what may be a piece of a cell)")
        piece = {Path(r["file"]).name: r for r in csv.DictReader(table.open())}["piece.png"]
        assert piece["other_cell_larger"] == "yes" and piece["cell_x"] and piece["p_lymphocyte"]  # places, reading kept
        assert piece["class"] == piece["confidence"] == piece["needs_review"] == "" and piece["verdict"] == "cannot judge"

    def test_linked_folders_are_searched_once(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A folder of links to class folders is searched through them (it said "no image files"); a
        link back up the tree neither loops nor counts a file twice."""
        smear = tmp_path / "smear"
        smear.mkdir()
        (smear / "eos").symlink_to(FIXTURE_IMAGES / "TEST_SIMPLE" / "EOSINOPHIL", target_is_directory=True)
        (smear / "again").symlink_to(smear, target_is_directory=True)
        assert main(["predict", str(smear), "--quiet"]) == 0
        out, err = capsys.readouterr()
        rows = out.split("\n\n")[0].splitlines()[1:]
        assert "more than once" not in err  # the folder search itself found each file once
        assert len(rows) == len(list((FIXTURE_IMAGES / "TEST_SIMPLE" / "EOSINOPHIL").glob("*.jpeg"))) == 2, rows
        # A link to nothing in it is one row, not one through the link up the tree too; a pattern with ** does not
        # follow that link some 40 levels down (41 rows of it, "80 file(s) given more than once")
        (smear / "gone.jpg").symlink_to(tmp_path / "nothing.jpg")
        assert main(["predict", str(smear), "--quiet"]) == 1
        out, err = capsys.readouterr()
        assert sum("gone.jpg" in r for r in out.split("\n\n")[0].splitlines()) == 1, out
        assert "1 link(s) or folder(s) in the folders given could not be followed" in err
        assert main(["predict", f"{smear}/**/*.jp*g", "--quiet"]) == 1
        out, err = capsys.readouterr()
        rows = out.split("\n\n")[0].splitlines()[1:]
        assert len(rows) == 3 and sum("gone.jpg" in r for r in rows) == 1 and "more than once" not in err, (rows, err)

    def test_unreadable_files_alike_are_each_unreadable_not_repeats(self, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
        """Two unreadable files of the same bytes are each left out as unreadable, not one of them also as a repeat
        of the other: a row with no image read repeats nothing."""
        for name in ("x.png", "y.png"):
            (tmp_path / name).write_bytes(b"not a png")
        others = sorted((FIXTURE_IMAGES / "TEST_SIMPLE").rglob("*.jpeg"))[:2]
        assert main(["predict", *map(str, others), str(tmp_path / "x.png"), str(tmp_path / "y.png"), "--quiet"]) == 1
        counts = capsys.readouterr().out.split("\n\n")[1]
        assert counts.startswith("Differential of the 2 image(s) read as white cells (left out: 2 unreadable):"), counts

    def test_a_folder_and_a_photo_given_again_through_links_are_read_once(self, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
        """A folder given again through a link to it passes its other files over once, and a photo given again
        through a link to it is one file given more than once, not a row of its own."""
        smear = tmp_path / "smear"
        smear.mkdir()
        shutil.copy(EOS_FILE, smear / "a.jpeg")
        (smear / "notes.txt").write_text("slide 3")
        (tmp_path / "same").symlink_to(smear, target_is_directory=True)
        (tmp_path / "photo.jpeg").symlink_to(smear / "a.jpeg")
        assert main(["predict", str(smear), str(tmp_path / "same"), str(tmp_path / "photo.jpeg"), "--quiet"]) == 0
        out, err = capsys.readouterr()
        assert len(out.split("\n\n")[0].splitlines()) == 2, out  # the header and the photo's row
        assert "in the folders given, 1 other file(s) passed over" in err and "1 file(s) given more than once" in err

    def test_a_folder_holding_only_a_broken_link_is_that_links_row(self, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
        """A folder holding nothing but a link to nothing is that link's row alone, not also "no image files in
        this folder"; once, though the folder is given again through a link to it."""
        smear = tmp_path / "smear"
        smear.mkdir()
        (smear / "gone.jpg").symlink_to(tmp_path / "nothing.jpg")
        (tmp_path / "same").symlink_to(smear, target_is_directory=True)
        assert main(["predict", str(EOS_FILE), str(smear), str(tmp_path / "same"), "--quiet"]) == 1
        out, err = capsys.readouterr()
        rows = out.split("\n\n")[0].splitlines()[1:]
        assert len(rows) == 2 and "gone.jpg" in rows[1] and "no image files" not in out, rows
        assert "1 link(s) or folder(s) in the folders given could not be followed" in err

    def test_patterns_match_in_name_order_and_a_bracketed_name_is_its_file(self, tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str],
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
        """A pattern's matches are read in the order of their names, whatever the folder's own order, and `**` does
        not follow a link to a folder further up; a file that exists with a pattern's characters in its name
        ("cell[1].jpeg") is that file, not a pattern matching "cell1.jpeg"."""
        smear = tmp_path / "smear"
        (smear / "sub").mkdir(parents=True)
        names = [f"{c}.jpeg" for c in "qwertyuiopasdfgh"]  # neither in order nor in reverse: a folder's order
        for n in names:
            shutil.copy(EOS_FILE, smear / n)
        (smear / "sub" / "up").symlink_to(smear, target_is_directory=True)
        assert main(["predict", f"{smear}/**/*.jpeg", "--quiet"]) == 0
        out, err = capsys.readouterr()
        assert [Path(r.split()[0]).name for r in out.split("\n\n")[0].splitlines()[1:]] == sorted(names)
        assert "more than once" not in err
        shutil.copy(EOS_FILE, tmp_path / "cell[1].jpeg")
        monkeypatch.chdir(tmp_path)  # named as given, whole: a long temporary path is cut at 60 columns
        assert main(["predict", "cell[1].jpeg", "--quiet"]) == 0
        assert capsys.readouterr().out.splitlines()[1].split()[:2] == ["cell[1].jpeg", "EOSINOPHIL"]

    def test_broken_links_and_unlistable_subfolders_are_named(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
        """In a folder, a link to nothing with an image's name or none (a linked-in class folder that was
        moved) and a subfolder that cannot be listed are rows of their own, each once though the folder
        is given twice, and counted apart (exit 1): images may be behind them, and a count must not lose
        them without a word. A link to nothing with another name is passed over like any such file."""
        import shutil

        smear = tmp_path / "smear"
        shutil.copytree(FIXTURE_IMAGES / "TEST_SIMPLE" / "EOSINOPHIL", smear)
        (smear / "gone.jpg").symlink_to(tmp_path / "nothing.jpg")
        (smear / "gone.txt").symlink_to(tmp_path / "nothing.txt")
        (smear / "NEUTROPHIL").symlink_to(tmp_path / "moved_away", target_is_directory=True)
        locked = smear / "locked"
        locked.mkdir()
        real_scandir = os.scandir

        def scandir(path: object = ".") -> object:  # chmod 000 does not stop root, who runs CI
            if Path(os.fsdecode(path)) == locked:
                raise PermissionError(13, "Permission denied", os.fsdecode(path))
            return real_scandir(path)

        monkeypatch.setattr(os, "scandir", scandir)
        assert main(["predict", str(smear), str(smear), "--quiet"]) == 1
        out, err = capsys.readouterr()
        lines = out.split("\n\n")[0].splitlines()[1:]
        rows = {r.split()[0].rsplit("/", 1)[-1]: r for r in lines}
        for name in ("gone.jpg", "NEUTROPHIL"):
            assert "  not followed: a link to nothing (its target is gone, or it loops)" in rows[name], rows
        assert "  not followed: a folder that cannot be listed (Permission denied)" in rows["locked"]
        assert "gone.txt" not in rows and len(rows) == len(lines) == 5, lines
        assert "(left out: 3 link(s) or folder(s) not followed)" in out
        assert "3 link(s) or folder(s) in the folders given could not be followed" in err
        assert "name no image file" not in err and "other file(s) passed over: .txt" in err
        main(["predict", str(smear), "--quiet", "--csv", str(tmp_path / "o.csv")])
        verdicts = {Path(r["file"]).name: r["verdict"] for r in csv.DictReader((tmp_path / "o.csv").open())}
        assert [verdicts[k] for k in ("gone.jpg", "NEUTROPHIL", "locked")] == ["not followed"] * 3, verdicts

    def test_a_subfolder_listed_but_not_entered_or_too_deep_is_a_row(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
        """A subfolder that can be listed but not entered (chmod 644: its files cannot be looked at, as root's
        override hides, so that is made to fail) and one whose path is longer than the system takes are each a
        "not followed" row, and the folder's other images are classified (exit 1): either failed the whole
        folder ("cannot be read"), its readable images unread."""
        smear = tmp_path / "smear"
        shutil.copytree(FIXTURE_IMAGES / "TEST_SIMPLE" / "EOSINOPHIL", smear)
        shut = smear / "shut"
        shut.mkdir()
        shutil.copy(EOS_FILE, shut / "a.jpeg")
        fd = os.open(smear, os.O_RDONLY)
        for _ in range(os.pathconf(smear, "PC_PATH_MAX") // 250 + 1):  # made a level at a time: each path is short
            os.mkdir("d" * 250, dir_fd=fd)
            fd, above = os.open("d" * 250, os.O_RDONLY, dir_fd=fd), fd
            os.close(above)
        os.close(os.open("deep.jpeg", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
        os.close(fd)
        shut_folder(monkeypatch, shut)
        assert main(["predict", str(smear), "--quiet", "--csv", str(tmp_path / "o.csv")]) == 1
        assert "cannot be read" not in capsys.readouterr().err
        rows = {Path(r["file"]).name: r for r in csv.DictReader((tmp_path / "o.csv").open())}
        assert rows["shut"]["verdict"] == "not followed"
        assert rows["shut"]["error"] == "a folder whose files cannot be reached (Permission denied)"
        (deep,) = [r for n, r in rows.items() if n.startswith("ddd")]
        assert deep["verdict"] == "not followed" and "(File name too long)" in deep["error"]
        typed = [n for n, r in rows.items() if r["class"]]
        assert len(rows) == 2 + len(typed) and sorted(typed) == sorted(f.name for f in EOS_FILE.parent.iterdir())

    def test_model_from_the_environment_is_named(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
        """A wrong WBC_MODEL is named in the error: the user may not remember setting it."""
        monkeypatch.setenv("WBC_MODEL", str(tmp_path / "gone"))
        one = sorted((FIXTURE_IMAGES / "TEST_SIMPLE").rglob("*.jpeg"))[0]
        assert main(["predict", str(one)]) == 2
        assert ("(from the environment variable WBC_MODEL): model file not found (point WBC_MODEL at a model folder"
                in capsys.readouterr().err)

    def test_only_bad_files(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A corrupt file is reported in the table, its name once (the row's, not again in the message);
        all files bad means exit 1."""
        f = tmp_path / "x.png"
        f.write_bytes(b"not a png")
        assert main(["predict", str(f)]) == 1
        row = capsys.readouterr().out.splitlines()[1]
        assert row.startswith(str(f)) and row.count("x.png") == 1 and "  unreadable: not a readable image" in row, row

    def test_bad_model(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A model folder without a model is a clear error."""
        img = next((FIXTURE_IMAGES / "TEST_SIMPLE" / "MONOCYTE").iterdir())
        assert main(["predict", str(img), "--model", str(tmp_path)]) == 2
        assert "model file not found" in capsys.readouterr().err

    def test_an_unknown_users_home_is_a_path_not_found(self, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
        """`~nouser/...` in a model or data path, or in WBC_CACHE, gave Python's RuntimeError "Could not determine home
        directory": it is read as written, and named as not found."""
        img = next((FIXTURE_IMAGES / "TEST_SIMPLE" / "MONOCYTE").iterdir())
        nobody = "~wbc-no-such-user-34"
        assert main(["predict", str(img), "--model", f"{nobody}/m"]) == 2
        assert f"{nobody}/m: model file not found" in capsys.readouterr().err
        assert main(["evaluate", "--data", nobody, "--out", str(tmp_path / "o"), "--quiet"]) == 2
        assert f"{nobody}: no such folder" in capsys.readouterr().err
        monkeypatch.setenv("WBC_CACHE", f"{nobody}/cache")
        from wbc.cache import cache_dir

        assert cache_dir() == Path(f"{nobody}/cache")


class TestOtherVerbs:
    def test_evaluate_bad_data(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """Evaluating with a data folder that is not the data set names it."""
        assert main(["evaluate", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--quiet"]) == 2
        assert "no folder with TRAIN" in capsys.readouterr().err

    def test_train_dry_run(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """`wbc train --dry-run` trains briefly on a few cells (one epoch at each size) and writes a run."""
        pytest.importorskip("torch")
        out = tmp_path / "run"
        rc = main(["train", "--data", str(FIXTURE_IMAGES), "--out", str(out), "--dry-run", "--val-fraction", "0.34",
                   "--batch-size", "8", "--threads", "1", "--quiet"])
        assert rc == 0 and (out / "best.pt").exists()
        # Resuming the finished run does nothing, and does not claim to write it.
        before = {f.name: f.stat().st_mtime_ns for f in out.iterdir()}
        capsys.readouterr()
        assert main(["train", "--out", str(out), "--resume", "--quiet"]) == 0
        said = capsys.readouterr().out
        assert f"{out}: this run already finished at epoch 2; nothing to do (a dry run: 2 epoch(s) on 3 cells" in said
        assert "run written" not in said
        assert {f.name: f.stat().st_mtime_ns for f in out.iterdir()} == before
        # Kept with --out it is marked: a real run in the folder is told so (it was sent to --resume, which then
        # said the run had finished), and its export warns
        assert (out / "DRY_RUN").read_text().startswith("a dry run of wbc train: 2 epoch(s) on 3 cells a class")
        assert main(["train", "--data", str(FIXTURE_IMAGES), "--out", str(out), "--val-fraction", "0.34", "--quiet"]) == 2
        assert f"{out}: holds a dry run (--dry-run --out), not a run to continue" in capsys.readouterr().err
        from wbc.ship import export_warnings

        assert any("is a dry run" in w for w in export_warnings(out / "best.pt", {}))

    def test_a_students_teachers_are_kept_as_absolute_paths(self, tiny_run: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
        """--teacher given relative is kept as an absolute path, as --data is: the resume command the tool prints
        works from another folder (it said "no such run folder"), and the teacher given absolute there is the same."""
        pytest.importorskip("torch")
        out = tmp_path / "student"
        monkeypatch.chdir(tiny_run.parent)
        assert main(["train", "--data", str(FIXTURE_IMAGES.parent), "--teacher", tiny_run.name, "--epochs", "2",
                     "--low-res", "0", "0", "--batch-size", "8", "--val-fraction", "0.34", "--threads", "1",
                     "--out", str(out), "--quiet"]) == 0
        assert json.loads((out / "config.json").read_text())["train"]["teachers"] == [str(tiny_run.resolve())]
        monkeypatch.chdir(tmp_path)
        capsys.readouterr()
        for given in ([], ["--teacher", str(tiny_run)]):
            assert main(["train", "--out", str(out), "--resume", "--quiet", *given]) == 0, capsys.readouterr().err
            assert "this run already finished at epoch 2" in capsys.readouterr().out

    def test_a_run_keeps_its_data_folder_for_export_and_evaluate(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
        """A run trained on --data given relative keeps the folder as an absolute path: its export and the
        evaluation of its checkpoint, from another folder and without --data, use it and say so (export
        took the public data set, or none, and failed or calibrated on other files without a word)."""
        pytest.importorskip("torch")
        from wbc.checkpoint import load_checkpoint

        monkeypatch.chdir(FIXTURE_IMAGES.parent)
        monkeypatch.delenv("WBC_DATA", raising=False)
        out = tmp_path / "run"
        assert main(["train", "--data", FIXTURE_IMAGES.name, "--out", str(out), "--dry-run", "--val-fraction", "0.34",
                     "--batch-size", "8", "--threads", "1", "--quiet"]) == 0
        assert load_checkpoint(out / "best.pt")["train_config"]["data"] == str(FIXTURE_IMAGES)
        # From WBC_DATA alike, as it is at training: a later WBC_DATA does not change what the run was.
        monkeypatch.setenv("WBC_DATA", FIXTURE_IMAGES.name)
        assert main(["train", "--out", str(tmp_path / "env"), "--dry-run", "--val-fraction", "0.34",
                     "--batch-size", "8", "--threads", "1", "--quiet"]) == 0
        assert load_checkpoint(tmp_path / "env" / "best.pt")["train_config"]["data"] == str(FIXTURE_IMAGES)
        monkeypatch.delenv("WBC_DATA")
        (tmp_path / "elsewhere").mkdir()
        monkeypatch.chdir(tmp_path / "elsewhere")
        capsys.readouterr()
        assert main(["export", str(out), "--out", str(tmp_path / "model"), "--quiet"]) == 0
        note = f"wbc: note: data: {FIXTURE_IMAGES}, the folder the model was trained on (--data gives another)"
        err = capsys.readouterr().err
        assert note in err
        # Without --match-white the card reads a dim photo as it is, unlike the shipped one: said (a user's export
        # read such photos worse without a word).
        assert "wbc: note: this card reads a dimmer or tinted photo as it is; the shipped model's matches" in err
        assert main(["evaluate", "--model", str(out / "best.pt"), "--split", "TEST_SIMPLE", "--out",
                     str(tmp_path / "ev"), "--quiet"]) == 0
        assert note in capsys.readouterr().err
        # The exported model: made from its maker's own images, it is scored on them too (it scored the public
        # TEST without a word); a model of the public data set scores the default data set, as the shipped one.
        card_path = tmp_path / "model" / "model.json"
        card = json.loads(card_path.read_text())
        card_path.write_text(json.dumps({**card, "data": {**card["data"], "source": "own images (not the public data set)"}}))
        assert main(["evaluate", "--model", str(tmp_path / "model"), "--split", "TEST_SIMPLE", "--out",
                     str(tmp_path / "ev2"), "--quiet"]) == 0
        assert note in capsys.readouterr().err
        # A card whose folder is no text (damaged by hand) is scored on the default data set, not a traceback.
        own = {**card, "data": {**card["data"], "source": "own images (not the public data set)"}}
        card_path.write_text(json.dumps({**own, "training": {**card["training"], "config": {"data": 5}}}))
        monkeypatch.setenv("WBC_DATA", str(FIXTURE_IMAGES))
        assert main(["evaluate", "--model", str(tmp_path / "model"), "--split", "TEST_SIMPLE", "--out",
                     str(tmp_path / "ev4"), "--quiet"]) == 0
        assert "wbc: note: data:" not in capsys.readouterr().err
        card_path.write_text(json.dumps(card))
        assert main(["evaluate", "--model", str(tmp_path / "model"), "--split", "TEST_SIMPLE", "--out",
                     str(tmp_path / "ev3"), "--quiet"]) == 0
        assert "wbc: note: data:" not in capsys.readouterr().err

    def test_resuming_a_run_whose_data_folder_is_gone_names_it_before_training(
            self, tmp_path: Path, tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """--resume without --data on a run whose data folder is gone names that folder as the run's and --data as
        the way out, before any epoch (as export and evaluate do)."""
        pytest.importorskip("torch")
        from wbc.checkpoint import load_checkpoint, save_checkpoint

        run = tmp_path / "run"
        shutil.copytree(tiny_run, run)
        state = load_checkpoint(run / "last.pt")
        state["stopped"] = False  # epochs to go
        state["train_config"]["data"] = str(tmp_path / "gone")
        save_checkpoint(run / "last.pt", state)
        before = (run / "last.pt").read_bytes()
        assert main(["train", "--out", str(run), "--resume", "--quiet"]) == 2
        assert (f"{tmp_path / 'gone'}: the data folder {run} was trained on (kept in it) is not found from here; "
                "give --data") in capsys.readouterr().err
        assert (run / "last.pt").read_bytes() == before

    def test_export_follows_the_run_on_its_data(self, tmp_path: Path, tiny_run: Path, data_copy: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
        """A run trained with --skip-bad is exported with the unreadable file still in TRAIN (it stopped at
        it); one trained without it names the file and --skip-bad; a run's data folder that is gone is
        named as the run's, with --data for the way out."""
        import shutil

        from wbc.checkpoint import load_checkpoint, save_checkpoint

        run = tmp_path / "run"
        shutil.copytree(tiny_run, run)
        (data_copy / "TRAIN" / "EOSINOPHIL" / "broken.jpeg").write_bytes(b"\xff\xd8\xff not a jpeg")

        def stored(**config: object) -> None:
            state = load_checkpoint(run / "best.pt")
            state["train_config"].update(config)
            save_checkpoint(run / "best.pt", state)

        stored(data=str(data_copy), skip_bad=False)
        assert main(["export", str(run), "--out", str(tmp_path / "m1"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "broken.jpeg: not a readable image" in err and "wbc export can leave unreadable images out with --skip-bad" in err
        assert main(["export", str(run), "--out", str(tmp_path / "m1"), "--quiet", "--skip-bad"]) == 0
        stored(skip_bad=True)
        assert main(["export", str(run), "--out", str(tmp_path / "m2"), "--quiet"]) == 0
        stored(data=str(tmp_path / "gone"))
        assert main(["export", str(run), "--out", str(tmp_path / "m3"), "--quiet"]) == 2
        assert (f"{tmp_path / 'gone'}: the data folder {run} was trained on (kept in it) is not found from here; "
                "give --data") in capsys.readouterr().err
        stored(data="C")  # as runs before this version kept it: relative to where the training started
        assert main(["export", str(run), "--out", str(tmp_path / "m3"), "--quiet"]) == 2
        assert "C: the data folder" in capsys.readouterr().err
        assert main(["export", str(run), "--out", str(tmp_path / "m3"), "--quiet", "--data", str(data_copy)]) == 0
        # A resume from elsewhere of a run whose folder is gone says so, before any work.
        state = load_checkpoint(run / "last.pt")
        state["train_config"]["data"], state["stopped"] = "C", False
        save_checkpoint(run / "last.pt", state)
        capsys.readouterr()
        assert main(["train", "--out", str(run), "--resume", "--quiet"]) == 2
        assert "C: the data folder" in capsys.readouterr().err
        state["train_config"]["data"], state["train_config"]["epochs"] = str(data_copy), state["epoch"] + 2
        save_checkpoint(run / "last.pt", state)  # one epoch to go, on the folder it keeps: said so
        assert main(["train", "--out", str(run), "--resume", "--quiet", "--threads", "1", "--skip-bad"]) == 0
        assert f"wbc: note: resuming on data: {data_copy}, the folder the run was trained on" in capsys.readouterr().err

    def test_train_refuses_an_out_inside_the_data_set(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
        """A run folder inside a split is refused before any training: its curves.png became an image of
        the class whose folder held it (TEST_SIMPLE's monocytes went from 2 files to 3). Beside the splits
        it is allowed."""
        pytest.importorskip("torch")
        import shutil

        import wbc.train

        data = tmp_path / "images"
        shutil.copytree(FIXTURE_IMAGES, data)  # a copy: a failing guard must not write into the fixtures
        trained: list[Path] = []
        monkeypatch.setattr(wbc.train, "fit", lambda cfg, run, **k: trained.append(Path(run)) or Path(run))
        out = data / "TEST_SIMPLE" / "MONOCYTE" / "run"
        assert main(["train", "--data", str(data), "--out", str(out), "--dry-run", "--quiet"]) == 2
        assert f"{out}: is inside {data / 'TEST_SIMPLE'}, which is read by class folder" in capsys.readouterr().err
        assert not out.exists() and not trained
        assert main(["train", "--data", str(data), "--out", str(data / "runs" / "r"), "--dry-run", "--quiet"]) == 0
        assert trained == [data / "runs" / "r"]

    def test_dry_run_without_out_keeps_nothing(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
        """Without --out the dry run trains in a temporary folder and removes it: the default run folder
        stays free for the real run (it used to hold a finished two-epoch run there)."""
        pytest.importorskip("torch")
        monkeypatch.chdir(tmp_path)
        rc = main(["train", "--data", str(FIXTURE_IMAGES), "--dry-run", "--val-fraction", "0.34",
                   "--batch-size", "8", "--threads", "1", "--quiet"])
        assert rc == 0 and "nothing kept" in capsys.readouterr().out
        assert not (tmp_path / "runs").exists()

    def test_interrupted_training_says_whether_it_can_resume(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str], tiny_run: Path) -> None:
        """Ctrl-C before the first epoch ends says that there is nothing to resume; after one, what last.pt keeps
        and how to resume."""
        pytest.importorskip("torch")
        import wbc.train

        out = tmp_path / "r"

        def stopped(cfg: object, run: Path, **k: object) -> Path:
            raise KeyboardInterrupt

        monkeypatch.setattr(wbc.train, "fit", stopped)
        args = ["train", "--data", str(FIXTURE_IMAGES), "--out", str(out), "--val-fraction", "0.34", "--quiet"]
        assert main(args) == 130
        assert "nothing saved to resume; start it again" in capsys.readouterr().err
        out.mkdir()
        (out / "last.pt").write_bytes(b"")
        assert main(args) == 130
        assert f"continue the run with: wbc train --out {out} --resume" in capsys.readouterr().err
        # And what was kept, from the last.pt of the epoch done.
        from wbc.checkpoint import load_checkpoint, save_checkpoint

        state = load_checkpoint(tiny_run / "last.pt")
        save_checkpoint(out / "last.pt", {**state, "epoch": 0, "stopped": False})
        assert main(args) == 130
        assert (f"wbc: interrupted; {out / 'last.pt'} keeps epoch 1 of 2 (the epoch in progress is lost); continue "
                f"the run with: wbc train --out {out} --resume") in capsys.readouterr().err
        # Interrupted once its last epoch was saved: nothing to continue, its model to export (it said both)
        save_checkpoint(out / "last.pt", {**state, "epoch": 1, "stopped": True})
        assert main(args) == 130
        err = capsys.readouterr().err
        assert (f"wbc: interrupted; the run had finished (epoch 2): its best.pt is the model to export, `wbc export {out}`\n"
                in err)
        assert "--resume" not in err

    @pytest.mark.parametrize("extra,cells", [([], 5), (["--val-fraction", "0.34"], 3), (["--val-fraction", "0.1"], 10),
                                             (["--all-cells"], 3), (["--limit-cells", "7"], 7)])
    def test_dry_run_takes_a_cell_per_fold(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           extra: list[str], cells: int) -> None:
        """The dry run takes as many cells per class as there are cell-grouped folds (5 with the default
        --val-fraction; it took 3 and failed on the real data set), 3 where none is held out."""
        pytest.importorskip("torch")
        import wbc.train

        seen = []
        monkeypatch.setattr(wbc.train, "fit", lambda cfg, out, **k: seen.append(cfg) or out)
        assert main(["train", "--out", str(tmp_path / "r"), "--dry-run", "--quiet", *extra]) == 0
        assert seen[0].limit_cells == cells

    def test_train_on_a_gpu_it_does_not_have_says_so(self, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
        """`wbc train --device cuda` where torch sees no GPU is one line naming the way out, no run folder."""
        torch = pytest.importorskip("torch")
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        assert main(["train", "--data", str(FIXTURE_IMAGES), "--out", str(tmp_path / "r"), "--dry-run",
                     "--val-fraction", "0.34", "--device", "cuda", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "device 'cuda': no CUDA GPU is visible to this torch" in err and "--device cpu" in err
        assert "Traceback" not in err and not (tmp_path / "r").exists()

    def test_too_few_cells_for_the_folds_says_what_to_do(self, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
        """The fixtures' 3 cells per class cannot fill 5 folds: the error says how many cells, and the options."""
        pytest.importorskip("torch")
        assert main(["train", "--data", str(FIXTURE_IMAGES), "--out", str(tmp_path / "r"), "--dry-run", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert ("cells per class are EOSINOPHIL 3, LYMPHOCYTE 3, MONOCYTE 3, NEUTROPHIL 3, and each class needs one "
                "in every fold, so at least 5 (short: EOSINOPHIL 3, LYMPHOCYTE 3, MONOCYTE 3, NEUTROPHIL 3)") in " ".join(err.split())
        assert "--val-fraction" in err

    def test_train_dry_run_with_low_res(self, tmp_path: Path) -> None:
        """`--dry-run --low-res` checks both sizes: one epoch at PX, then one at full size."""
        pytest.importorskip("torch")
        out = tmp_path / "run"
        rc = main(["train", "--data", str(FIXTURE_IMAGES), "--out", str(out), "--dry-run", "--val-fraction", "0.34",
                   "--batch-size", "8", "--threads", "1", "--quiet", "--low-res", "48", "60"])
        assert rc == 0
        rows = (out / "summary.csv").read_text().splitlines()
        col = rows[0].split(",").index("input_px")
        assert [r.split(",")[col] for r in rows[1:]] == ["48", "96"]

    def test_train_default_low_res_follows_epochs(self, tmp_path: Path) -> None:
        """wbcnet's recipe trains its first 4/5 of epochs at 64 px: `--epochs 2` gives one at 64 px and
        one at full size, and `--low-res 0 0` turns it off."""
        pytest.importorskip("torch")
        base = ["train", "--data", str(FIXTURE_IMAGES), "--epochs", "2", "--limit-cells", "3", "--val-fraction",
                "0.34", "--batch-size", "8", "--threads", "1", "--quiet"]
        for extra, want in (([], ["64", "96"]), (["--low-res", "0", "0"], ["96", "96"])):
            out = tmp_path / ("off" if extra else "default")
            assert main([*base, "--out", str(out), *extra]) == 0
            rows = (out / "summary.csv").read_text().splitlines()
            col = rows[0].split(",").index("input_px")
            assert [r.split(",")[col] for r in rows[1:]] == want
            saved = json.loads((out / "config.json").read_text())["train"]
            assert (saved["low_res_epochs"], saved["augment"]) == (1 if not extra else 0, "robust-erase")

    def test_train_window(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """--window, --input-size and --widths set the crop the run's network sees, its size and the
        network's stage widths (saved in its config); nonsense is refused by name."""
        torch = pytest.importorskip("torch")
        base = ["train", "--data", str(FIXTURE_IMAGES), "--dry-run", "--val-fraction", "0.34", "--batch-size", "8",
                "--threads", "1", "--quiet"]
        assert main([*base, "--out", str(tmp_path / "w"), "--window", "128"]) == 0
        assert json.loads((tmp_path / "w" / "config.json").read_text())["model"]["preprocess"]["window"] == 128
        assert main([*base, "--out", str(tmp_path / "x"), "--window", "5"]) == 2
        assert "network: crop window 5 px" in capsys.readouterr().err
        assert main([*base, "--out", str(tmp_path / "s"), "--model", "seed", "--window", "128"]) == 2
        assert "whole field" in capsys.readouterr().err
        # --input-size: the network's input; the run's checkpoint rebuilds a network of that size.
        assert main([*base, "--out", str(tmp_path / "i"), "--input-size", "80"]) == 0
        from wbc.checkpoint import load_checkpoint, model_from_checkpoint
        net, spec = model_from_checkpoint(load_checkpoint(tmp_path / "i" / "best.pt"))
        assert (spec.size, spec.window) == (80, 160)
        assert net(torch.zeros(2, 3, 80, 80)).shape == (2, 4)
        assert main([*base, "--out", str(tmp_path / "j"), "--input-size", "8"]) == 2
        assert "input size 8 px" in capsys.readouterr().err
        # --widths: wbcnet's channels per stage; the seed replica's are fixed.
        assert main([*base, "--out", str(tmp_path / "n"), "--widths", "16", "32", "64"]) == 0
        net, _ = model_from_checkpoint(load_checkpoint(tmp_path / "n" / "best.pt"))
        assert net.fc.in_features == 64
        assert main([*base, "--out", str(tmp_path / "m"), "--model", "seed", "--widths", "16"]) == 2
        assert "stage widths apply to wbcnet" in capsys.readouterr().err

    def test_train_weight_decay(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """--weight-decay reaches the run's config and its optimizer; settings out of range are refused by name."""
        torch = pytest.importorskip("torch")
        base = ["train", "--data", str(FIXTURE_IMAGES), "--dry-run", "--val-fraction", "0.34", "--batch-size", "8",
                "--threads", "1", "--quiet"]
        assert main([*base, "--out", str(tmp_path / "wd"), "--weight-decay", "0.05"]) == 0
        assert json.loads((tmp_path / "wd" / "config.json").read_text())["train"]["weight_decay"] == 0.05
        state = torch.load(tmp_path / "wd" / "last.pt", weights_only=False)
        assert {g["weight_decay"] for g in state["optimizer"]["param_groups"]} == {0.05}
        # Settings out of range are one line naming the setting, before any work, not a traceback.
        for flag, value, says in [("--weight-decay", "-1", "weight decay -1.0"), ("--ema", "1", "ema decay 1.0"),
                                  ("--mixup", "-0.5", "mixup alpha -0.5"),
                                  ("--label-smoothing", "1.5", "label smoothing 1.5"),
                                  ("--pair-smoothing", "0.45", "pair smoothing 0.45"),
                                  ("--lr", "-1", "learning rate -1.0"), ("--lr", "0", "learning rate 0.0"),
                                  ("--batch-size", "1", "batch size 1")]:
            assert main([*base, "--out", str(tmp_path / "bad"), flag, value]) == 2, flag
            assert says in capsys.readouterr().err
            assert not (tmp_path / "bad").exists()

    def test_train_augment_optimizer_and_pair_smoothing(self, tmp_path: Path) -> None:
        """--augment and --optimizer offer every choice the trainer has (cutout, SGD) and, with
        --pair-smoothing, reach the run's config and its optimizer state."""
        pytest.importorskip("torch")
        import torch

        from wbc.cli.parser import build_parser
        from wbc.recipe import AUGMENT, OPTIMIZERS

        train = build_parser()._subparsers._group_actions[0].choices["train"]
        (augment,) = [a for a in train._actions if "--augment" in a.option_strings]
        (optimizer,) = [a for a in train._actions if "--optimizer" in a.option_strings]
        assert sorted(augment.choices) == sorted([*AUGMENT, "none"])
        assert sorted(optimizer.choices) == sorted(OPTIMIZERS)
        assert main(["train", "--data", str(FIXTURE_IMAGES), "--dry-run", "--val-fraction", "0.34", "--batch-size", "8",
                     "--threads", "1", "--quiet", "--out", str(tmp_path / "r"), "--augment", "robust-erase",
                     "--pair-smoothing", "0.1", "--optimizer", "sgd", "--lr", "0.05"]) == 0
        saved = json.loads((tmp_path / "r" / "config.json").read_text())["train"]
        assert (saved["augment"], saved["pair_smoothing"], saved["optimizer"]) == ("robust-erase", 0.1, "sgd")
        group = torch.load(tmp_path / "r" / "last.pt", weights_only=False)["optimizer"]["param_groups"][0]
        assert (group["momentum"], group["nesterov"]) == (0.9, True)

    def test_train_resume_without_run(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """--resume where there is no run is a clear error naming the folder (it said "last.pt: no such checkpoint",
        a file the user never made), and no folder is made for it; where a run there has not ended its first epoch,
        that another `wbc train` is writing it."""
        pytest.importorskip("torch")
        for out, held in ((tmp_path, "no run in it: it holds no last.pt, which each epoch writes"),
                          (tmp_path / "none", "no such folder")):
            assert main(["train", "--data", str(FIXTURE_IMAGES), "--out", str(out), "--resume", "--quiet"]) == 2
            assert f"{out}: --resume: {held}; give the --out of the run to continue" in capsys.readouterr().err
        assert not (tmp_path / "none").exists()
        # A run still in its first epoch, held by its `wbc train`, is named as such, not as no run.
        import fcntl

        fd = os.open(tmp_path, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            assert main(["train", "--data", str(FIXTURE_IMAGES), "--out", str(tmp_path), "--resume", "--quiet"]) == 2
        finally:
            os.close(fd)
        assert (f"{tmp_path}: --resume: another `wbc train` is writing to this run now, before its first epoch ended; "
                "wait for it to end") in capsys.readouterr().err

    @pytest.mark.parametrize("given, folder", [([], "wbcnet-seed0"), (["--fold", "2"], "wbcnet-seed0-fold2"),
                                               (["--all-cells", "--seed", "3"], "wbcnet-seed3-all"),
                                               (["--model", "seed"], "seed-seed0")])
    def test_a_run_without_out_goes_to_its_own_folder(self, given: list[str], folder: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
        """Without --out a run's folder under runs/ names its network, seed and held-out cells, so that another
        fold or an --all-cells run does not continue (or stand in the way of) fold 0's."""
        pytest.importorskip("torch")
        monkeypatch.chdir(tmp_path)
        assert main(["train", "--data", str(FIXTURE_IMAGES), "--resume", "--quiet", *given]) == 2
        assert f"{Path('runs') / folder}: --resume: no such folder" in capsys.readouterr().err

    def test_train_resume_of_a_damaged_last_pt_says_how_to_go_on(self, tiny_run: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
        """`wbc train --resume` of a run whose last.pt is cut short says, as `fit` does, that it cannot be resumed
        and what to do (the command's own check of the run read it first, and named the file alone)."""
        pytest.importorskip("torch")
        import shutil

        run = tmp_path / "run"
        shutil.copytree(tiny_run, run)
        (run / "last.pt").write_bytes((tiny_run / "last.pt").read_bytes()[:1000])
        assert main(["train", "--data", str(FIXTURE_IMAGES), "--out", str(run), "--resume", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert f"{run / 'last.pt'}: not a readable checkpoint, damaged or cut short" in err
        assert ("; it cannot be resumed from: start the run again in another --out, or remove the folder first (its "
                "best.pt may still be exported)") in err

    def test_train_all_cells_and_fold(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """--all-cells holds out no fold, so naming a fold as well is a clear error; alone it trains
        on every cell."""
        pytest.importorskip("torch")
        base = ["train", "--data", str(FIXTURE_IMAGES), "--dry-run", "--batch-size", "8", "--threads", "1", "--quiet"]
        assert main([*base, "--out", str(tmp_path / "a"), "--all-cells", "--fold", "1"]) == 2
        assert "exclude each other" in capsys.readouterr().err
        assert main([*base, "--out", str(tmp_path / "b"), "--all-cells"]) == 0
        assert "0 validation files" in capsys.readouterr().out
        # --resume continues a run as it was made: asking it to be another kind of run is refused.
        resume = ["train", "--data", str(FIXTURE_IMAGES), "--batch-size", "8", "--quiet", "--out", str(tmp_path / "b"),
                  "--resume"]
        assert main([*resume, "--fold", "0"]) == 2
        assert "--fold (the run: none (--all-cells); asked: holds out fold 0)" in capsys.readouterr().err
        # So is every other option that differs from the stored run, each named.
        assert main([*resume, "--epochs", "7", "--mixup", "0", "--widths", "8", "16", "32", "--model", "seed"]) == 2
        err = capsys.readouterr().err
        # A dry run is two epochs: one at 64 px, one at 96.
        assert "--epochs (the run: 2; asked: 7)" in err and "--mixup (the run: 0.4; asked: 0.0)" in err
        assert "--widths (the run: 24 48 96; asked: 8 16 32)" in err and "--model (the run: wbcnet; asked: seed)" in err
        assert "--batch-size" not in err and "--data" not in err
        assert main([*resume, "--dry-run"]) == 2
        assert "cannot --resume" in capsys.readouterr().err
        # Options equal to the run's (whatever their spelling) resume; where and how fast it runs may change.
        assert main([*resume, "--all-cells", "--widths", "24", "48", "96", "--mixup", "0.4", "--threads", "2"]) == 0
        # A run holding out a fold asked for --all-cells: the fold named as one ("the run: 0" read as none)
        assert main([*base, "--out", str(tmp_path / "c"), "--val-fraction", "0.4"]) == 0
        capsys.readouterr()
        assert main([*resume[:-2], str(tmp_path / "c"), "--resume", "--all-cells"]) == 2
        assert "--all-cells (the run: holds out fold 0; asked: none (--all-cells))" in capsys.readouterr().err

    def test_resume_check_reads_an_older_checkpoint_with_defaults(self, tmp_path: Path) -> None:
        """A checkpoint written before a setting existed resumes with that setting's default, as fit
        fills it: asking for the default is not a difference, asking for another value is."""
        torch = pytest.importorskip("torch")
        from dataclasses import asdict

        from wbc.cli.train import _check_resume
        from wbc.errors import WbcError
        from wbc.model import config_to_dict, default_config
        from wbc.info import CLASSES
        from wbc.checkpoint import CHECKPOINT_VERSION
        from wbc.recipe import TrainConfig

        train = asdict(TrainConfig(data="somewhere"))
        for key in ("ema", "fold", "optimizer"):
            del train[key]
        net = config_to_dict(default_config("wbcnet"))
        del net["preprocess"]["window"]
        torch.save({"version": CHECKPOINT_VERSION, "model_name": "wbcnet", "classes": CLASSES,
                    "train_config": train, "model_config": net, "state_dict": {}, "epoch": 0, "history": []},
                   tmp_path / "last.pt")
        (tmp_path / "split.json").write_text('{"train_cells": [], "val_cells": []}')  # a run's, read by --resume
        cfg, finished = _check_resume(tmp_path, {"ema": 0.0, "fold": 0, "optimizer": "adamw", "threads": 1}, {"window": 160},
                                      False)
        assert (cfg.ema, cfg.fold, cfg.threads, cfg.data, finished) == (0.0, 0, 1, "somewhere", None)
        with pytest.raises(WbcError, match=r"--ema \(the run: 0.0; asked: 0.9\)"):
            _check_resume(tmp_path, {"ema": 0.9}, {}, False)
        # The network's input and crop too: the weights fit a network of any input size, so a run resumed at another
        # would go on training at it without a word.
        assert _check_resume(tmp_path, {}, {"size": 96, "window": 160, "widths": [24, 48, 96]}, False)[1] is None
        with pytest.raises(WbcError, match=r"--input-size \(the run: 96; asked: 80\)"):
            _check_resume(tmp_path, {}, {"size": 80}, False)
        with pytest.raises(WbcError, match=r"--window \(the run: 160; asked: 200\)"):
            _check_resume(tmp_path, {}, {"window": 200}, False)
        # A student's teachers are averaged: given in another order they are the same teachers, resumed.
        teachers = torch.load(tmp_path / "last.pt", weights_only=False)
        teachers["train_config"]["teachers"] = [str(tmp_path / "t1"), str(tmp_path / "t2")]
        torch.save(teachers, tmp_path / "last.pt")
        assert _check_resume(tmp_path, {"teachers": (str(tmp_path / "t2"), str(tmp_path / "t1"))}, {}, False)[1] is None
        with pytest.raises(WbcError, match=r"--teacher \(the run: "):
            _check_resume(tmp_path, {"teachers": (str(tmp_path / "t3"), str(tmp_path / "t1"))}, {}, False)
        # A setting this version does not know (a later version's run): named, not a TypeError's traceback
        saved = torch.load(tmp_path / "last.pt", weights_only=False)
        saved["train_config"]["later_setting"] = 1
        torch.save(saved, tmp_path / "last.pt")
        with pytest.raises(WbcError, match="last.pt: its settings are not this version's .*later_setting.*resume it "
                                           "with the version that started it"):
            _check_resume(tmp_path, {}, {}, False)

    def test_data_check(self, capsys: pytest.CaptureFixture[str]) -> None:
        """`wbc data check` counts files and cells per split."""
        assert main(["data", "check", "--data", str(FIXTURE_IMAGES)]) == 0
        out = capsys.readouterr().out
        # The fixtures: TRAIN 3 cells a class of 2 views each, TEST_SIMPLE 2 files a class, each its own cell.
        assert out.splitlines()[1:] == [
            "TRAIN        " + "  ".join(f"{c} 6 files/3 cells" for c in ("Eosinophil", "Lymphocyte", "Monocyte", "Neutrophil")),
            "TEST         absent",
            "TEST_SIMPLE  " + "  ".join(f"{c} 2 files/2 cells" for c in ("Eosinophil", "Lymphocyte", "Monocyte", "Neutrophil"))]

    def test_data_check_verify_names_bad_files_in_every_split(self, data_copy: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
        """--verify reads every split and names each one's bad files (an empty file, a link to nothing)
        before failing; hidden files and folders (macOS's ._ copies, .ipynb_checkpoints) are passed over."""
        pytest.importorskip("sklearn")
        (data_copy / "TRAIN" / "EOSINOPHIL" / "empty.jpeg").write_bytes(b"")
        (data_copy / "TEST_SIMPLE" / "MONOCYTE" / "gone.jpeg").symlink_to(data_copy / "nowhere.jpeg")
        (data_copy / "TEST_SIMPLE" / "MONOCYTE" / "._x.jpeg").write_bytes(b"\0" * 10)
        (data_copy / "TEST_SIMPLE" / ".ipynb_checkpoints").mkdir()
        assert main(["data", "check", "--data", str(data_copy), "--verify"]) == 1
        captured = capsys.readouterr()
        assert "empty.jpeg" in captured.out and "gone.jpeg" in captured.out and "._x.jpeg" not in captured.out
        assert "2 split(s) hold files that cannot be read" in captured.err  # TRAIN's and TEST_SIMPLE's, both named
        # data check has no --skip-bad: the hint names the commands that have it
        assert "wbc train, wbc evaluate and wbc export can leave them out with --skip-bad" in captured.out

    def test_odd_environment_values(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
        """A stale WBC_DATA is named as coming from the environment; `~` is the home folder in WBC_MODEL
        and WBC_CACHE; an empty WBC_CACHE is unset, not the working folder."""
        from wbc.cache import cache_dir
        from wbc.card import DEFAULT_MODEL_DIR, resolve_model

        monkeypatch.setenv("WBC_DATA", str(tmp_path / "old"))
        assert main(["evaluate", "--out", str(tmp_path / "e"), "--quiet"]) == 2
        assert "old: no such folder (from the environment variable WBC_DATA)" in capsys.readouterr().err
        monkeypatch.setenv("HOME", str(DEFAULT_MODEL_DIR.parents[1]))
        monkeypatch.setenv("WBC_MODEL", "~/models/default")
        assert resolve_model()[0] == DEFAULT_MODEL_DIR / "model.onnx"
        monkeypatch.setenv("WBC_CACHE", "")
        assert cache_dir() == DEFAULT_MODEL_DIR.parents[1] / ".cache" / "wbc"
        monkeypatch.setenv("WBC_CACHE", "~/c")
        assert cache_dir() == DEFAULT_MODEL_DIR.parents[1] / "c"

    def test_shipped_model_missing_from_an_installation(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Installed without the checkout (pip install . copies no models/), no --model names where the
        shipped model lives instead of suggesting a training."""
        import wbc.card
        from wbc.errors import ModelFileError

        monkeypatch.delenv("WBC_MODEL", raising=False)
        monkeypatch.setattr(wbc.card, "DEFAULT_MODEL_DIR", tmp_path / "site" / "models" / "default")
        with pytest.raises(ModelFileError, match="is not beside this installation: it lives in the source checkout"):
            wbc.card.resolve_model()

    def test_names_that_are_not_utf8(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A file name that is not valid UTF-8 is classified, shown escaped and written to the CSV as its bytes."""
        import os
        import shutil

        folder = tmp_path / "odd"
        folder.mkdir()
        src = sorted((FIXTURE_IMAGES / "TEST_SIMPLE").rglob("*.jpeg"))[0]
        shutil.copy(src, os.path.join(os.fsencode(folder), b"bad\xff.jpeg"))
        assert main(["predict", str(folder), "--csv", str(tmp_path / "o.csv"), "--quiet"]) == 0
        assert b"bad\xff.jpeg" in (tmp_path / "o.csv").read_bytes()

    def test_missing_extras_name_the_smallest_install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Evaluating without scikit-learn asks for the eval extras (no PyTorch); without torch, for training's."""
        import importlib

        from wbc.cli.train import training_extra
        from wbc.errors import WbcError

        for missing, extra in (("sklearn.metrics", "[eval]' (or the train extras, which hold them)"),
                               ("torch", "[train]'; where pip reads PyPI, first ")):
            def fail(module: str, name: str = missing) -> None:
                raise ImportError(f"No module named {name!r}", name=name)

            monkeypatch.setattr(importlib, "import_module", fail)
            with pytest.raises(WbcError, match=re.escape(f"{sys.executable} -m pip install -e '{ROOT}{extra}")):
                training_extra("wbc.evaluate", "evaluate")

    def test_missing_extras_install_into_this_python_from_the_checkout(self) -> None:
        """The install named for a missing extra is this Python's pip (a bare `pip` may be another Python's, or
        refused outside a virtual environment) on the checkout by its path (`-e '.[eval]'` works only from the
        project's folder): pasted from any folder, it installs where wbc runs."""
        from wbc.errors import install_command

        words = shlex.split(install_command("eval"))
        assert words == [sys.executable, "-m", "pip", "install", "-e", f"{ROOT}[eval]"]
        assert (Path(words[-1].removesuffix("[eval]")) / "pyproject.toml").is_file()

    def test_checkpoint_without_torch_is_one_line(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
        """With the eval extras alone (no PyTorch), evaluating a .pt says what it needs, not a traceback."""
        monkeypatch.setitem(sys.modules, "wbc.checkpoint", None)  # import fails as if torch were missing
        monkeypatch.setitem(sys.modules, "wbc.train", None)
        ckpt = tmp_path / "best.pt"
        ckpt.write_bytes(b"")
        assert main(["evaluate", "--model", str(ckpt), "--folder", str(FIXTURE_IMAGES / "TEST_SIMPLE"),
                     "--out", str(tmp_path / "ev"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "best.pt: a training checkpoint, which needs PyTorch" in err and "Traceback" not in err

    def test_csv_is_written_before_a_reader_goes_away(self, tmp_path: Path) -> None:
        """`wbc predict ... --csv F | head -2`: the table's reader leaves, and the CSV is there all the same."""
        out = tmp_path / "o.csv"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # the first line of the table meets the closed pipe
        read, write = os.pipe()
        os.close(read)
        try:
            proc = subprocess.run([sys.executable, "-m", "wbc.cli", "predict", str(FIXTURE_IMAGES / "TEST_SIMPLE"),
                                   "--csv", str(out), "--quiet"], stdout=write, stderr=subprocess.PIPE, text=True,
                                  timeout=120, env=env)
        finally:
            os.close(write)
        assert proc.returncode == 141 and "Traceback" not in proc.stderr, proc.stderr
        assert len(out.read_text().splitlines()) == 9

    def test_download_stops_at_network(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        """`wbc data download` calls kagglehub; a network failure is a clear message."""
        import sys
        import types

        fake = types.SimpleNamespace(dataset_download=lambda handle: (_ for _ in ()).throw(ConnectionError("offline")))
        monkeypatch.setitem(sys.modules, "kagglehub", fake)
        assert main(["data", "download"]) == 2
        err = capsys.readouterr().err
        assert "paultimothymooney/blood-cells failed: ConnectionError: offline" in err

    def test_download_out_checked_before_the_download(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
        """An --out that is not empty, or cannot be made, is refused before kagglehub is called."""
        import sys
        import types

        calls = []
        monkeypatch.setitem(sys.modules, "kagglehub", types.SimpleNamespace(dataset_download=calls.append))
        (tmp_path / "full").mkdir()
        (tmp_path / "full" / "x").write_text("")
        (tmp_path / "a-file").write_text("")
        for out, message in ((tmp_path / "full", "exists and is not empty"), (tmp_path / "a-file" / "d", "is a file")):
            assert main(["data", "download", "--out", str(out)]) == 2
            assert message in capsys.readouterr().err
        assert calls == []

    def test_download_uses_kagglehub_path(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
        """The downloaded folder (Kaggle's nested layout) is checked and reported."""
        import shutil
        import sys
        import types

        dl = tmp_path / "kaggle" / "dataset2-master" / "dataset2-master" / "images"
        shutil.copytree(FIXTURE_IMAGES, dl)
        seen = []
        fake = types.SimpleNamespace(dataset_download=lambda handle: seen.append(handle) or str(tmp_path / "kaggle"))
        monkeypatch.setitem(sys.modules, "kagglehub", fake)
        assert main(["data", "download"]) == 0
        assert seen == ["paultimothymooney/blood-cells"]
        assert str(tmp_path / "kaggle") in capsys.readouterr().out
        # --out: copied whole; a copy that fails (a full disk) says why in a line and leaves nothing there
        assert main(["data", "download", "--out", str(tmp_path / "copy")]) == 0
        assert sorted(p.name for p in (tmp_path / "copy").rglob("*.jpeg")) == sorted(p.name for p in dl.rglob("*.jpeg"))
        real = shutil.copy2
        copied = []

        def disk_full(src: str, dst: str, **kw: object) -> object:
            if len(copied) >= 3:
                raise OSError(28, "No space left on device", dst)
            copied.append(src)
            return real(src, dst, **kw)

        monkeypatch.setattr(shutil, "copy2", disk_full)
        capsys.readouterr()
        assert main(["data", "download", "--out", str(tmp_path / "full")]) == 2
        err = capsys.readouterr().err
        assert "copying the download to" in err and "No space left on device" in err and err.count("\n") == 1, err
        assert f"The download itself is at {tmp_path / 'kaggle'}" in err
        assert not (tmp_path / "full").exists() and not list(tmp_path.glob(".full*"))
        monkeypatch.setattr(shutil, "copy2", real)
        assert main(["data", "download", "--out", str(tmp_path / "full")]) == 0  # the rerun: not "not empty"


def test_export_evaluate_without_a_data_set_is_refused_before_the_export(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """`wbc export --evaluate` on a folder holding no data set says why before the export's work, not after it."""
    pytest.importorskip("torch")
    import wbc.ship

    def exported(*a: object, **k: object) -> dict:
        raise AssertionError("exported before the data set was checked")

    monkeypatch.setattr(wbc.ship, "export_and_report", exported)
    monkeypatch.setattr(wbc.ship, "run_checkpoint", lambda run, instead="": run)
    (tmp_path / "empty").mkdir()
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "o"), "--evaluate", "--quiet",
                 "--data", str(tmp_path / "empty")]) == 2
    assert str(tmp_path / "empty") in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_export_match_white_reaches_the_card_writer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """`wbc export --match-white` asks export_and_report for a match_white card; without it, for none;
    `--quiet` asks for no progress bars."""
    pytest.importorskip("torch")
    import wbc.ship

    seen: list[bool] = []
    quiet: list[bool] = []

    from wbc.card import DEFAULT_MODEL_DIR

    shipped = json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())

    def fake(run: Path, out: Path, **kw: object) -> dict:
        seen.append(bool(kw["match_white"]))
        quiet.append(not kw["progress"])
        card = {"onnx_bytes": 1, "parity": {"max_abs_diff": 0.0, "images": 1}, "tta_views": 4}
        return {**card, "metrics": shipped["metrics"]} if kw["evaluate_test"] else card

    monkeypatch.setattr(wbc.ship, "export_and_report", fake)
    monkeypatch.setattr(wbc.ship, "run_checkpoint", lambda run, instead="": run)
    monkeypatch.setattr(wbc.ship, "export_warnings", lambda ckpt, card: [])
    # Inside a split of the data set, refused before the work with or without --evaluate (a model folder there
    # is an unknown class folder to every later listing).
    for evaluate in ([], ["--evaluate"]):
        out = FIXTURE_IMAGES / "TRAIN" / "model"
        assert main(["export", str(tmp_path), "--out", str(out), "--data", str(FIXTURE_IMAGES), *evaluate]) == 2
        assert "which is read by class folder" in capsys.readouterr().err and not out.exists() and not seen
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "o"), "--match-white"]) == 0
    said = capsys.readouterr()
    assert "TEST" not in said.out and "reads a dimmer or tinted photo as it is" not in said.err
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "o"), "--evaluate", "--quiet",
                 "--data", str(FIXTURE_IMAGES)]) == 0  # a data set to keep --out out of (CI has none of its own)
    assert seen == [True, False] and quiet == [False, True]
    # --evaluate prints the TEST figures it added, and where the report is; without --match-white, a note
    said = capsys.readouterr()
    out = said.out
    assert "wbc: note: this card reads a dimmer or tinted photo as it is" in said.err
    assert ("TEST, as the card reads it:\naccuracy over files 0.8959 [0.7657, 0.9815]  cells 62/68 (0.9118 [0.8178, 0.9669])"
            in out)
    # each type's line: its cells read right, then of the cells read as it those that are of it, exact limits
    for c, v in shipped["metrics"]["test"]["per_class"].items():
        lo, hi = (round(100 * x) for x in v["cell_precision_ci95"])
        assert re.search(rf"^  {c} +precision .* files={v['support']}  cells read right {v['cells_right']} of "
                         rf"{v['cells']} \(\d+-\d+%\)  right of the cells read as it {v['cells_right']} of "
                         rf"{v['cells_called']} \({lo}-{hi}%\)$", out, re.M), c
    assert f"report written to {tmp_path / 'o' / 'report.md'}" in out


def _predict_into(stdout: int, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`wbc predict` on the fixtures in a child process, its stdout the descriptor given."""
    return subprocess.run([sys.executable, "-m", "wbc.cli", "predict", str(FIXTURE_IMAGES / "TEST_SIMPLE"), "--quiet"],
                          stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120, env=env)


def test_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`wbc predict ... | head`: when the reader closes the pipe, wbc stops with 141 and no traceback."""
    # Unbuffered, the first print meets the closed pipe; buffered, only the flush at the end does.
    for unbuffered in ("1", ""):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
        if unbuffered:
            env["PYTHONUNBUFFERED"] = unbuffered
        read, write = os.pipe()
        os.close(read)  # the reader is gone before wbc writes a line
        try:
            done = _predict_into(write, env)
        finally:
            os.close(write)
        assert done.returncode == 141, (unbuffered, done.stderr)
        assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, (unbuffered, done.stderr)


def test_closed_stdout_or_stderr_is_no_traceback_and_no_mixing() -> None:
    """Started with stdout closed (`>&-`), wbc flushed a None stdout (a traceback, exit 1); with stderr closed, its
    messages went into stdout, among the table's rows. Either now goes nowhere."""
    img = next((FIXTURE_IMAGES / "TEST_SIMPLE" / "MONOCYTE").iterdir())
    cmd = shlex.join([sys.executable, "-m", "wbc.cli", "predict", str(img), "/no/such/image.jpg", "--quiet"])
    out = subprocess.run(["bash", "-c", f"{cmd} >&-"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr and "name no image file" in out.stderr, out.stderr
    err = subprocess.run(["bash", "-c", f"{cmd} 2>&-"], capture_output=True, text=True, timeout=120)
    assert err.returncode == 1 and "wbc:" not in err.stdout and "no image: no such file" in err.stdout, err.stdout


def test_closed_socket_ends_quietly() -> None:
    """The same when stdout is a socket whose other end has gone (inetd, socat): a hang-up, not an error."""
    ours, theirs = socket.socketpair()
    theirs.close()
    try:
        done = _predict_into(ours.fileno())
    finally:
        ours.close()
    assert done.returncode == 141, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def test_a_broken_pipe_elsewhere_is_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a closed stdout ends quietly: a broken pipe or socket of the command's own is raised."""
    import wbc.cli.parser

    def broken(args: object) -> int:
        raise BrokenPipeError("the download's socket")

    monkeypatch.setattr(wbc.cli.parser, "cmd_data_check", broken)
    with pytest.raises(BrokenPipeError, match="socket"):
        main(["data", "check", "--data", str(FIXTURE_IMAGES)])


def test_app_stops_on_sigterm() -> None:
    """`wbc app` stopped the way a service manager or container stops it (SIGTERM to the process it
    started) leaves no server behind on its port."""
    import shutil
    import signal
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "wbc.cli", "app", "--port", str(port), "--address", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    health = f"http://127.0.0.1:{port}/_stcore/health"

    def answers() -> bool:
        try:
            with urllib.request.urlopen(health, timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        deadline = time.time() + 60
        while not answers():
            assert time.time() < deadline and proc.poll() is None, "the app did not start"
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        deadline = time.time() + 20
        while answers():
            assert time.time() < deadline, f"a server still answers on port {port} after SIGTERM to wbc app"
            time.sleep(0.5)
    finally:
        proc.kill()
        proc.wait()
        # What the fixed app must not leave: a server started for this port (stopped here if it was).
        if shutil.which("pkill"):
            subprocess.run(["pkill", "-f", "--", f"--server.port {port} "], check=False)


def test_evaluate_takes_a_run_folder_as_its_checkpoint(tiny_run: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """`wbc evaluate --model RUN` evaluates the run's best.pt as it is, and says so (it was refused)."""
    assert main(["evaluate", "--model", str(tiny_run), "--folder", str(FIXTURE_IMAGES / "TEST_SIMPLE"),
                 "--out", str(tmp_path / "ev"), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert f"{tiny_run} is a training run: evaluating its best.pt as it is" in err
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["read_as"].startswith("a training checkpoint")
    # A run stopped before its first best.pt (its epochs so far at a lower resolution) is refused as
    # `wbc export` refuses it, with what to do; it was told "model.onnx: model file not found".
    import shutil

    import torch

    stopped = tmp_path / "stopped"
    stopped.mkdir()
    state = torch.load(tiny_run / "last.pt", map_location="cpu", weights_only=False)
    torch.save({**state, "stopped": False}, stopped / "last.pt")  # stopped by a Ctrl-C, its epochs to come
    assert main(["evaluate", "--model", str(stopped), "--out", str(tmp_path / "ev2"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{stopped}: has no best.pt yet, only last.pt" in err and "--resume" in err and "model.onnx" not in err
    assert f"or evaluate it as it is with --model {stopped / 'last.pt'}" in err
    # A finished run whose best.pt is gone is not sent to --resume, which says there is nothing to do.
    finished = tmp_path / "finished"
    finished.mkdir()
    shutil.copyfile(tiny_run / "last.pt", finished / "last.pt")  # the fixture's run finished
    for argv in (["evaluate", "--model", str(finished), "--out", str(tmp_path / "ev3"), "--quiet"],
                 ["export", str(finished), "--out", str(tmp_path / "m3")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"{finished}: its best.pt is gone, though the run finished (deleted or moved?): put it back" in err
        assert "--resume" not in err and f"{finished / 'last.pt'}" in err


def test_evaluate_takes_from_wbc_model_what_model_takes(tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """WBC_MODEL, which --model defaults to, takes a run folder or its checkpoint as --model does (it was refused as
    "not an exported model")."""
    for given in (tiny_run, tiny_run / "best.pt"):
        monkeypatch.setenv("WBC_MODEL", str(given))
        out = tmp_path / given.name
        assert main(["evaluate", "--folder", str(FIXTURE_IMAGES / "TEST_SIMPLE"), "--out", str(out), "--quiet"]) == 0
        m = json.loads((out / "metrics.json").read_text())
        assert m["read_as"].startswith("a training checkpoint")
        lo, hi = m["macro_f1_ci95"]  # printed with its interval, as the report gives it
        assert f"macro-F1 {m['macro_f1']:.4f} [{lo:.4f}, {hi:.4f}]" in capsys.readouterr().out
    # A WBC_MODEL that names nothing is said to come from there, as `wbc predict` says it (it was taken for --model,
    # and told to "leave --model out", which it was)
    monkeypatch.setenv("WBC_MODEL", str(tmp_path / "nope"))
    assert main(["evaluate", "--folder", str(FIXTURE_IMAGES / "TEST_SIMPLE"), "--out", str(tmp_path / "n"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "(from the environment variable WBC_MODEL)" in err and "leave --model out" not in err, err


def test_a_card_nested_too_deep_is_one_line_for_every_verb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A model.json of brackets nested 100,000 deep: `wbc evaluate --model` read it before the card reader and
    ended in a RecursionError traceback; it and `wbc predict` now name the card in one line."""
    from wbc.card import DEFAULT_MODEL_DIR

    model = tmp_path / "m"
    model.mkdir()
    shutil.copy(DEFAULT_MODEL_DIR / "model.onnx", model / "model.onnx")
    (model / "model.json").write_text("[" * 100_000 + "]" * 100_000)
    for verb in (["evaluate", "--folder", str(FIXTURE_IMAGES / "TEST_SIMPLE"), "--out", str(tmp_path / "e"), "--quiet"],
                 ["predict", str(EOS_FILE)]):
        assert main([*verb, "--model", str(model)]) == 2, verb
        assert "not a readable model card (nested too deeply to read)" in capsys.readouterr().err, verb
    # An evaluation's metrics.json as deep in --out: not taken for one of ours, and not replaced
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "metrics.json").write_text("[" * 100_000 + "]" * 100_000)
    assert main(["evaluate", "--folder", str(FIXTURE_IMAGES / "TEST_SIMPLE"), "--out", str(tmp_path / "e"), "--quiet"]) == 2
    assert "metrics.json" in capsys.readouterr().err and (tmp_path / "e" / "metrics.json").read_text().startswith("[[[")


def test_export_of_an_exported_model_says_what_it_was_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`wbc export models/default` said "best.pt: no such checkpoint", and its model.onnx "invalid load key": both
    say it is an exported model, and what export reads instead."""
    from wbc.card import DEFAULT_MODEL_DIR

    for given in (DEFAULT_MODEL_DIR, DEFAULT_MODEL_DIR / "model.onnx"):
        assert main(["export", str(given), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert f"{given}: an exported model (model.onnx), not a training run" in err and "wbc train" in err, err
    assert not (tmp_path / "o").exists()
    run = tmp_path / "run"  # a run exported into its own folder, stopped before its best.pt: a run still
    run.mkdir()
    shutil.copy(DEFAULT_MODEL_DIR / "model.onnx", run / "model.onnx")
    (run / "last.pt").write_bytes(b"not yet")
    assert main(["export", str(run), "--out", str(tmp_path / "o")]) == 2
    assert "an exported model" not in capsys.readouterr().err


def test_export_over_the_shipped_model_needs_replace_shipped(tiny_run: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """`wbc export RUN --out models/default` replaced the shipped model and deleted its TEST report with a warning
    at most: it is refused, named, unless --replace-shipped; the shipped folder is untouched. With the flag the
    export goes ahead (here into a stand-in for the shipped folder)."""
    import shutil

    import wbc.card
    from wbc.card import DEFAULT_MODEL_DIR
    from wbc.cli import main

    # A stand-in for the shipped folder: were the guard to fail, the real one would not be overwritten
    stand_in = tmp_path / "shipped"
    shutil.copytree(DEFAULT_MODEL_DIR, stand_in)
    before = {p.name: p.read_bytes() for p in stand_in.iterdir() if p.is_file()}
    monkeypatch.setattr(wbc.card, "DEFAULT_MODEL_DIR", stand_in)
    assert main(["export", str(tiny_run), "--out", str(stand_in), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"--out {stand_in}: that is the shipped model" in err and "--replace-shipped" in err
    assert {p.name: p.read_bytes() for p in stand_in.iterdir() if p.is_file()} == before
    assert main(["export", str(tiny_run), "--out", str(stand_in), "--replace-shipped", "--quiet", "--no-calibrate"]) == 0
    assert (stand_in / "model.onnx").is_file()


def test_evaluate_of_own_images_says_on_the_terminal_that_each_file_is_its_own_cell(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Files named unlike the data set's cannot be matched to their cells: the terminal says the intervals
    may be too narrow, as report.md does (it printed "cells 17/20" with no word of it)."""
    import shutil

    for i, src in enumerate(sorted((FIXTURE_IMAGES / "TEST_SIMPLE").rglob("*.jpeg"))[:6]):
        (tmp_path / "mine" / src.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, tmp_path / "mine" / src.parent.name / f"slide-{i}.jpeg")
    assert main(["evaluate", "--folder", str(tmp_path / "mine"), "--out", str(tmp_path / "ev"), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "cells " in out and "wbc: note:  " not in err
    assert "wbc: note: Here every file is its own cell" in err and "the intervals are too narrow" in err
    assert "With 6 cell(s), below 10, the intervals mean little." in err


def test_python_dash_m_wbc_is_the_wbc_command() -> None:
    """`python -m wbc` runs the command (it said "'wbc' is a package and cannot be directly executed")."""
    from wbc import __version__

    proc = subprocess.run([sys.executable, "-m", "wbc", "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == f"wbc {__version__}", proc


def test_predict_and_app_leave_the_training_extras_unloaded() -> None:
    """`wbc predict` and `wbc app` (up to the server's start: its port is taken) import no PyTorch, scikit-learn
    or matplotlib: the CLI loads those only for the commands that need them."""
    script = """
import socket, sys
from wbc.cli import main
assert main(["predict", sys.argv[1], "--quiet"]) == 0
with socket.socket() as taken:
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    assert main(["app", "--port", str(taken.getsockname()[1]), "--address", "127.0.0.1"]) == 2
print(sorted({m.split(".")[0] for m in sys.modules} & {"torch", "sklearn", "matplotlib"}))
"""
    proc = subprocess.run([sys.executable, "-c", script, str(FIXTURE_IMAGES / "TEST_SIMPLE")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.splitlines()[-1] == "[]", proc


def test_the_counts_heading_does_not_say_checking_the_flagged_ones_is_enough(tmp_path: Path,
                                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """"8 need review, so check those before using the count" read as if the rest could be trusted: in a 110-image
    smear half the errors were confident. The heading asks for them and any share out of its range to be checked."""
    import shutil

    from wbc.card import DEFAULT_MODEL_DIR

    model = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, model)
    card = json.loads((model / "model.json").read_text())
    (model / "model.json").write_text(json.dumps({**card, "review_threshold": 0.9999}))  # every one needs review
    assert main(["predict", str(FIXTURE_IMAGES / "TEST_SIMPLE"), "--model", str(model), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert ("Differential of the 8 image(s) read as white cells; 8 need review: check them by eye, and any share out "
            "of its range, before using the count:") in out


def test_evaluate_of_a_folder_prints_what_the_screening_gives(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`wbc evaluate --folder` with the shipped model prints, beside the figures, how many files `wbc predict`
    would give a type and the accuracy over those, from metrics.json's screening."""
    folder = tmp_path / "mine"
    shutil.copytree(FIXTURE_IMAGES / "TEST_SIMPLE", folder)
    shutil.copy(FIXTURES / "no-white-cell.jpeg", folder / "LYMPHOCYTE" / "blank.jpeg")
    assert main(["evaluate", "--folder", str(folder), "--out", str(tmp_path / "ev"), "--quiet"]) == 0
    s = json.loads((tmp_path / "ev" / "metrics.json").read_text())["screening"]
    verdicts = ", ".join(f"{n} {v}" for v, n in s["verdicts"].items())
    assert "1 not a white blood cell" in verdicts
    lo, hi = s["accuracy_typed_ci95"]
    assert (f"with the screening of wbc predict and the app: 8 of 9 files given a type, accuracy "
            f"{s['accuracy_typed']:.4f} [{lo:.4f}, {hi:.4f}] over those ({verdicts}; predictions.csv's verdict column names each file read)"
            in capsys.readouterr().out)
    # and its --help says so
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    assert "with an exported model, each photo is also screened as wbc predict screens it" in " ".join(
        capsys.readouterr().out.split())


def test_evaluate_of_one_file_says_file_not_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A folder of one photo: the printed line and the report say "1 of 1 file" and "the 1 file gets", not "1 of 1
    files" and "the 1 files get"."""
    folder = tmp_path / "mine" / "EOSINOPHIL"
    folder.mkdir(parents=True)
    shutil.copy(EOS_FILE, folder)
    assert main(["evaluate", "--folder", str(folder.parent), "--out", str(tmp_path / "ev"), "--quiet"]) == 0
    assert "with the screening of wbc predict and the app: 1 of 1 file given a type" in capsys.readouterr().out
    assert "with the screening, the 1 file gets: 1 *" in (tmp_path / "ev" / "report.md").read_text()


def test_evaluate_of_a_folder_given_no_type_at_all(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A folder whose every photo the screening gives no type (another laboratory's, all refused): the printed line
    says 0 of them given a type, with no accuracy over none (it is None); and predictions.csv's *correct* follows the
    network's reading, its largest p_ column, though the class column is blank: one folder holds the photo read as its
    type, whose row reads right, as the figures score it."""
    from wbc.info import CLASSES

    folder = tmp_path / "mine"
    for i, c in enumerate(CLASSES):
        (folder / c).mkdir(parents=True)
        # bytes past the JPEG's end, which no decoder reads: one photo, not one file in two class folders
        (folder / c / "blank.jpeg").write_bytes((FIXTURES / "no-white-cell.jpeg").read_bytes() + b"\0" * i)
    assert main(["evaluate", "--folder", str(folder), "--out", str(tmp_path / "ev"), "--quiet"]) == 0
    assert ("with the screening of wbc predict and the app: 0 of 4 files given a type (4 not a white blood cell; "
            "predictions.csv's verdict column names each file read)") in capsys.readouterr().out
    rows = list(csv.DictReader((tmp_path / "ev" / "predictions.csv").open(newline="")))
    read = {max(CLASSES, key=lambda c: float(r[f"p_{c.lower()}"])) for r in rows}
    assert len(read) == 1 and {r["class"] for r in rows} == {""}  # one photo four times: read alike, given no type
    assert [r["true_class"] for r in rows if r["correct"] == "yes"] == list(read)
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["accuracy"] == 0.25
