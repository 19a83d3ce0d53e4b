"""The source-field table: which original field (real cell) each data set file was made from."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import shutil
import numpy as np
import pytest
from PIL import Image, ImageFilter

from wbc.data import cell_key, list_folder, list_split
from wbc.errors import DataError
from wbc.info import DATASET
from wbc.sources import (
    TABLE,
    Match,
    field_name,
    find_originals,
    match_files,
    read_table,
    single_label_fields,
    source_field,
    summary,
    write_table,
)

# Distinct fields per class: the README's cells (TRAIN 75/27/16/159, TEST 13/6/4/48) less the
# photographs that duplicate another (BCCD holds near-identical shots of one field).
CELLS = {"TRAIN": {"EOSINOPHIL": 71, "LYMPHOCYTE": 24, "MONOCYTE": 15, "NEUTROPHIL": 151},
         "TEST": {"EOSINOPHIL": 13, "LYMPHOCYTE": 6, "MONOCYTE": 4, "NEUTROPHIL": 45}}


def _shipped() -> list[Match]:
    return read_table(TABLE)


class TestShippedTable:
    def test_counts_match_the_data_set(self) -> None:
        """The shipped table's fields per split and class, and the two fields both splits show."""
        s = summary(_shipped())
        for split, per in CELLS.items():
            assert {c: v["fields"] for c, v in s["per_split"][split].items()} == per
            assert sum(per.values()) == DATASET["distinct_cells"][split]
        assert tuple(s["fields_in_train_and_test"]) == DATASET["fields_in_train_and_test"]

    def test_every_file_matched_clearly(self) -> None:
        """All 12,515 files have a field, each with at least 60 RANSAC inliers and 3x the runner-up's."""
        m = _shipped()
        assert len(m) == 12515
        assert all(x.field is not None and x.inliers >= 60 and x.inliers >= 3 * x.runner_up for x in m)

    def test_test_simple_is_test(self) -> None:
        """The un-augmented TEST_SIMPLE files show TEST fields only."""
        m = _shipped()
        simple = {(x.class_name, x.field) for x in m if x.split == "TEST_SIMPLE"}
        test = {(x.class_name, x.field) for x in m if x.split == "TEST"}
        assert simple <= test and len(simple) >= 60

    def test_name_numbers_are_not_cells(self) -> None:
        """The `<n>` of `_<n>_<r>.jpeg` is not a cell: TEST's monocyte n=0 files show all 4 TEST monocytes."""
        fields = {x.field for x in _shipped() if x.split == "TEST" and x.class_name == "MONOCYTE"
                  and x.file_name.startswith("_0_")}
        assert len(fields - {None}) == 4


class TestLookup:
    def test_round_trip(self, tmp_path: Path) -> None:
        """What write_table writes, source_field reads back; unknown files and unmatched ones give None."""
        t = tmp_path / "t.csv.gz"
        write_table([Match("TRAIN", "MONOCYTE", "_0_1.jpeg", 12, 40, 3),
                     Match("TRAIN", "MONOCYTE", "_0_2.jpeg", None, 5, 4)], t)
        assert source_field("TRAIN", "MONOCYTE", "_0_1.jpeg", t) == 12
        assert source_field("TRAIN", "MONOCYTE", "_0_2.jpeg", t) is None
        # A split's file copied into another split's folder keeps its field (TEST merged into TRAIN: each file
        # was a cell of its own, and a split put views of one cell on both sides)
        assert source_field("TEST", "MONOCYTE", "_0_1.jpeg", t) == 12
        assert source_field("TEST", "MONOCYTE", "_0_9.jpeg", t) is None
        # In a folder not named as a split, a name is looked up in every split, where it names one field.
        write_table([Match("TRAIN", "MONOCYTE", "_0_1.jpeg", 12, 40, 3), Match("TEST", "MONOCYTE", "_0_1.jpeg", 30, 40, 3),
                     Match("TEST", "MONOCYTE", "_0_3.jpeg", 7, 40, 3)], t)
        assert [source_field(split, "MONOCYTE", "_0_3.jpeg", t) for split in ("mine", None, "TEST", "TRAIN")] == [7, 7, 7, 7]
        assert source_field("mine", "MONOCYTE", "_0_1.jpeg", t) is None and source_field("mine", "EOSINOPHIL", "_0_3.jpeg", t) is None

    def test_a_file_that_is_no_table_is_named(self, tmp_path: Path) -> None:
        """Another file where a table is read (a wrong --out to `wbc data sources --reuse`) is named, with why: not
        gzip ("Not a gzipped file", unnamed), gzip of other columns (a KeyError traceback), a field not a number."""
        import gzip

        from wbc.errors import DataError
        from wbc.sources import read_table

        cases = {"notes.csv.gz": b"garbage", "other.csv.gz": gzip.compress(b"name,comment\na,b\n"),
                 "bad.csv.gz": gzip.compress(b"split,class,file,field,inliers,runner_up\nTRAIN,MONOCYTE,a.jpeg,x,1,1\n")}
        for name, data in cases.items():
            (tmp_path / name).write_bytes(data)
            with pytest.raises(DataError, match=f"^{tmp_path / name}: not a table of source fields written by "
                                                "`wbc data sources` \\(.+\\)$"):
                read_table(tmp_path / name)

    def test_cell_key(self) -> None:
        """A data set file's cell is its original field; anything else is a cell of its own."""
        train = {(m.class_name, m.file_name): m.field for m in _shipped() if m.split == "TRAIN" and m.field}
        (cls, name), fld = next(iter(train.items()))
        assert cell_key(cls, name, "TRAIN") == f"{cls}/{field_name(fld)}"
        assert cell_key("MONOCYTE", "_12_3456.jpeg") == "MONOCYTE/_12_3456"
        assert cell_key("LYMPHOCYTE", "my photo.png", "TRAIN") == "LYMPHOCYTE/my photo"

    def test_a_renamed_copy_keeps_its_cells(self, fixture_root: Path, tmp_path: Path) -> None:
        """A copy of a split's class folders under another name groups its files into the same cells."""
        import shutil

        shutil.copytree(fixture_root / "TEST_SIMPLE", tmp_path / "my copy")
        own = {s.path.name: s.cell for s in list_split(fixture_root, "TEST_SIMPLE")}
        assert {s.path.name: s.cell for s in list_folder(tmp_path / "my copy")} == own
        assert all("/BloodImage_" in c for c in own.values())

    def test_a_name_in_two_splits_takes_the_field_of_the_copys_split(self, tmp_path: Path) -> None:
        """In a folder not named as a split, a name the data set has in TRAIN and in TEST (made from other
        fields) takes the field of the split that holds most of the folder's names; a file of the other
        split, with a name of its own, keeps its field (a folder mixing the two)."""
        fields: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        for m in _shipped():
            if m.field:
                fields[m.class_name, m.file_name][m.split] = m.field
        both = ("LYMPHOCYTE", "_0_687.jpeg")
        assert set(fields[both]) == {"TEST", "TRAIN"}
        only = {split: [n for (c, n), v in fields.items() if c == "LYMPHOCYTE" and list(v) == [split]]
                for split in ("TEST", "TRAIN")}
        for majority, minority in (("TEST", "TRAIN"), ("TRAIN", "TEST")):
            folder = tmp_path / majority / "copy" / "LYMPHOCYTE"
            folder.mkdir(parents=True)
            for n in [both[1], *only[majority][:5], only[minority][0]]:  # listed, not decoded: empty files do
                (folder / n).write_bytes(b"")
            cells = {s.path.name: s.cell for s in list_folder(folder.parent, require_all_classes=False)}
            assert cells[both[1]] == f"LYMPHOCYTE/{field_name(fields[both][majority])}"
            assert cells[only[minority][0]] == f"LYMPHOCYTE/{field_name(fields['LYMPHOCYTE', only[minority][0]][minority])}"

    def test_fixture_cells(self, fixture_root: Path) -> None:
        """The TRAIN fixture's 24 files are two views each of 12 fields."""
        by_cell: dict[str, int] = defaultdict(int)
        for s in list_split(fixture_root, "TRAIN"):
            by_cell[s.cell] += 1
        assert len(by_cell) == 12 and set(by_cell.values()) == {2}
        assert all("/BloodImage_" in c for c in by_cell)


def _texture(seed: int) -> Image.Image:
    """A 640x480 field of random blobs: corners enough for ORB, unlike any other seed's."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    return Image.fromarray(a).resize((640, 480), Image.Resampling.NEAREST).filter(ImageFilter.GaussianBlur(2))


class TestMatching:
    @staticmethod
    def _data_set(tmp_path: Path) -> tuple[Path, Path, dict[tuple[str, str], int]]:
        """Originals (dataset-master) and TRAIN views of them: (images root, originals, the field of each view)."""
        orig = tmp_path / "dataset-master"
        (orig / "JPEGImages").mkdir(parents=True)
        rows = [",Image,Category"]
        for i, cls in ((3, "MONOCYTE"), (7, "MONOCYTE"), (9, "LYMPHOCYTE"), (11, "")):
            _texture(i).save(orig / "JPEGImages" / f"{field_name(i)}.jpg", quality=95)
            rows.append(f",{i},{cls}")
        (orig / "labels.csv").write_text("\n".join(rows) + "\n")
        images = tmp_path / "images"
        want = {}
        for k, (i, cls, angle, mirror) in enumerate([(3, "MONOCYTE", 15, False), (7, "MONOCYTE", -10, True),
                                                     (3, "MONOCYTE", 0, True), (9, "LYMPHOCYTE", 5, False)]):
            v = _texture(i).resize((320, 240)).rotate(angle, translate=(12, -8), fillcolor=(0, 0, 0))
            if mirror:
                v = v.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            folder = images / "TRAIN" / (cls.lower() if cls == "LYMPHOCYTE" else cls)
            folder.mkdir(parents=True, exist_ok=True)
            v.save(folder / f"_{k}_1.jpeg", quality=90)
            want[(cls, f"_{k}_1.jpeg")] = i
        return images, orig, want

    def test_views_find_their_field(self, tmp_path: Path) -> None:
        """Rotated, mirrored and shifted views are matched to the field they were made from; a class
        folder named in lower case is read, as `wbc evaluate --folder` reads it."""
        pytest.importorskip("cv2")
        images, orig, want = self._data_set(tmp_path)
        assert find_originals(tmp_path) == orig
        assert single_label_fields(orig)["MONOCYTE"] == [3, 7]
        got = {(m.class_name, m.file_name): m.field for m in match_files(images, orig, workers=1, progress=False)}
        assert got == want

    def test_a_view_of_two_fields_is_matched_to_neither(self, tmp_path: Path) -> None:
        """A view whose halves come from two fields (3 and 7) has inliers with both, neither MARGIN times the
        other's: it is left unmatched (a cell of its own), not given the field that won by a little; the summary
        counts it unmatched."""
        pytest.importorskip("cv2")
        images, orig, want = self._data_set(tmp_path)
        a, b = (np.asarray(_texture(i).resize((320, 240))) for i in (3, 7))
        Image.fromarray(np.concatenate([a[:, :160], b[:, 160:]], 1)).save(images / "TRAIN" / "MONOCYTE" / "_9_1.jpeg",
                                                                         quality=90)
        matches = match_files(images, orig, workers=1, progress=False)
        (both,) = [m for m in matches if m.file_name == "_9_1.jpeg"]
        assert both.field is None and both.inliers >= 12 and both.runner_up >= 12, both
        assert {(m.class_name, m.file_name): m.field for m in matches if m.field is not None} == want
        assert summary(matches)["per_split"]["TRAIN"]["MONOCYTE"] == {"files": 4, "unmatched": 1, "fields": 2}

    def test_interrupted_build_keeps_its_finished_classes(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
        """Ctrl+C after a class leaves the table alone and keeps that class's matches beside it;
        `--reuse` goes on from them and the finished build removes them; without it a build reads no earlier
        table. `--workers 0` is refused."""
        pytest.importorskip("cv2")
        import wbc.sources
        from wbc.cli import main

        images, _, want = self._data_set(tmp_path)
        table = tmp_path / "fields.csv.gz"
        partial = tmp_path / "fields.csv.gz.partial"
        real = wbc.sources.match_files
        reused: list[int] = []

        def interrupted(*args: object, class_done: object, **kw: object) -> object:
            def stop(done: list[object]) -> None:
                class_done(done)  # type: ignore[operator]
                raise KeyboardInterrupt
            return real(*args, class_done=stop, **kw)  # type: ignore[arg-type]

        def recording(*args: object, reuse: list[object], **kw: object) -> object:
            reused.append(len(reuse))
            return real(*args, reuse=reuse, **kw)  # type: ignore[arg-type]

        command = ["data", "sources", "--data", str(tmp_path), "--out", str(table), "--workers", "1"]
        monkeypatch.setattr(wbc.sources, "match_files", interrupted)
        assert main(command) == 130
        assert not table.exists()
        assert [(m.class_name, m.field) for m in read_table(partial)] == [("LYMPHOCYTE", 9)]
        assert f"kept in {partial}: `wbc data sources --reuse --data {tmp_path} --out {table} --workers 1`" \
            in capsys.readouterr().err
        monkeypatch.setattr(wbc.sources, "match_files", recording)
        assert main([*command, "--reuse"]) == 0
        assert reused == [1] and not partial.exists()
        assert {(m.class_name, m.file_name): m.field for m in read_table(table)} == want
        # Without --reuse the build starts afresh: the table at --out is replaced, not read
        assert main(command) == 0
        assert reused == [1, 0]
        with pytest.raises(SystemExit):
            main([*command[:-1], "0"])
        assert "0: choose 1 or more" in capsys.readouterr().err

    def test_partial_data_set_does_not_shrink_the_shipped_table(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
        """Without --out, a data set that lacks files the shipped table covers is refused before any
        matching, naming both counts: the rebuild replaced the package's 12,515 rows with its own few,
        and every tool then took each other file for a cell of its own. With --out it is written there."""
        pytest.importorskip("cv2")
        import wbc.sources
        from wbc.cli import main

        images, _, want = self._data_set(tmp_path)
        before = TABLE.read_bytes()
        monkeypatch.setattr(wbc.sources, "match_files", lambda *a, **k: pytest.fail("matched before the check"))
        assert main(["data", "sources", "--data", str(tmp_path), "--workers", "1"]) == 2
        err = capsys.readouterr().err
        assert f"holds 0 of the 12515 files the shipped table ({TABLE}) covers" in err
        assert "would drop the other 12515" in err and "give --out FILE" in err
        assert TABLE.read_bytes() == before
        monkeypatch.undo()
        table = tmp_path / "mine.csv.gz"
        assert main(["data", "sources", "--data", str(tmp_path), "--workers", "1", "--out", str(table)]) == 0
        assert {(m.class_name, m.file_name): m.field for m in read_table(table)} == want

    def test_files_it_did_not_write_are_not_replaced(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
        """Before any matching, --out is refused where it is not named .gz (src.csv got gzip bytes), where it is the
        linked-fields file's name (written beside the table, it replaced the table), and where it, its .partial or
        the linked-fields file beside it exists and is not what this command writes (a photo became gzip data);
        a table and linked fields it wrote are replaced."""
        pytest.importorskip("cv2")
        import gzip

        import wbc.sources
        from wbc.cli import main

        self._data_set(tmp_path)
        out = tmp_path / "out"
        out.mkdir()
        photo = Path(__file__).parent / "fixtures" / "no-white-cell.jpeg"
        mine = {"photo.csv.gz": photo.read_bytes(), "other.csv.gz": gzip.compress(b"name,comment\n")}
        for name, data in mine.items():
            (out / name).write_bytes(data)
        real = wbc.sources.match_files
        monkeypatch.setattr(wbc.sources, "match_files", lambda *a, **k: pytest.fail("matched before the check"))
        run = ["data", "sources", "--data", str(tmp_path), "--workers", "1", "--out"]
        refused = {"src.csv": "the table is written gzipped, which this name does not say; name it .csv.gz, e.g. "
                              f"{out / 'src.csv.gz'}",
                   "linked_fields.csv": "is where the linked fields are written, beside the table",
                   "photo.csv.gz": "exists and is not a table of source fields",
                   "other.csv.gz": "exists and is not a table of source fields"}
        for name, why in refused.items():
            assert main([*run, str(out / name)]) == 2
            assert f"wbc: error: {out / name}: {why}" in capsys.readouterr().err
        assert not (out / "src.csv").exists() and not (out / "linked_fields.csv").exists()
        assert {n: (out / n).read_bytes() for n in mine} == mine
        (out / "t.csv.gz.partial").write_bytes(photo.read_bytes())
        assert main([*run, str(out / "t.csv.gz")]) == 2
        assert f"{out / 't.csv.gz.partial'}: exists and is not a table" in capsys.readouterr().err
        (out / "t.csv.gz.partial").unlink()
        (out / "linked_fields.csv").write_text("my notes\n")
        assert main([*run, str(out / "t.csv.gz")]) == 2
        assert f"{out / 'linked_fields.csv'}: exists and is not a list of linked fields" in capsys.readouterr().err
        assert (out / "linked_fields.csv").read_text() == "my notes\n"
        (out / "linked_fields.csv").unlink()
        monkeypatch.setattr(wbc.sources, "match_files", real)
        for _ in range(2):  # the second build replaces what the first wrote
            assert main([*run, str(out / "t.csv.gz")]) == 0
            assert len(read_table(out / "t.csv.gz")) == 4 and wbc.sources.is_linked(out / "linked_fields.csv")
        with pytest.raises(SystemExit):
            main(["data", "sources", "--help"])
        assert "name it .csv.gz" in (text := " ".join(capsys.readouterr().out.split()))
        assert "linked_fields.csv is written beside it" in text

    def test_a_label_without_its_photograph_is_no_original(self, tmp_path: Path) -> None:
        """A field labels.csv names whose photograph JPEGImages lacks (the data set's neutrophil 116) is left out of
        the originals to match: read as one, it stopped a rebuild on the data set with an OpenCV error."""
        _, orig, _ = self._data_set(tmp_path)
        with open(orig / "labels.csv", "a") as f:
            f.write(",116,NEUTROPHIL\n,13,MONOCYTE\n")
        assert single_label_fields(orig) == {"EOSINOPHIL": [], "LYMPHOCYTE": [9], "MONOCYTE": [3, 7], "NEUTROPHIL": []}

    def test_two_photographs_of_one_field_under_one_label_are_one_cell(self, tmp_path: Path) -> None:
        """A second photograph of a field under the same label (BCCD holds near-identical shots) is the same cell: a
        view of either is matched to the lower-numbered one, and the two are not linked, as one field under two
        labels is."""
        pytest.importorskip("cv2")
        from wbc.sources import linked_fields

        images, orig, want = self._data_set(tmp_path)
        shifted = _texture(3).rotate(0, translate=(24, -16))
        shifted.save(orig / "JPEGImages" / f"{field_name(13)}.jpg", quality=95)
        with open(orig / "labels.csv", "a") as f:
            f.write(",13,MONOCYTE\n")
        shifted.resize((320, 240)).rotate(-5, translate=(6, 4), fillcolor=(0, 0, 0)).save(
            images / "TRAIN" / "MONOCYTE" / "_8_1.jpeg", quality=90)
        got = {(m.class_name, m.file_name): m.field for m in match_files(images, orig, workers=1, progress=False)}
        assert got == {**want, ("MONOCYTE", "_8_1.jpeg"): 3}
        assert linked_fields(orig) == []

    def test_a_reused_match_to_a_field_not_among_the_originals_is_matched_again(self, tmp_path: Path) -> None:
        """A --reuse'd match whose field is none of this data set's originals of its class (kept from a build on
        another copy of the data set) is matched again, not a KeyError."""
        pytest.importorskip("cv2")
        images, orig, want = self._data_set(tmp_path)
        stale = Match("TRAIN", "MONOCYTE", "_0_1.jpeg", 99, 80, 0)
        got = match_files(images, orig, workers=1, progress=False, reuse=[stale])
        assert {(m.class_name, m.file_name): m.field for m in got} == want

    def test_undecodable_files_are_named(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A file OpenCV cannot decode is named on stderr, not only counted as unmatched in the summary."""
        pytest.importorskip("cv2")
        from wbc.cli import main

        images, _, _ = self._data_set(tmp_path)
        bad = images / "TRAIN" / "MONOCYTE" / "empty.jpeg"
        bad.write_bytes(b"")
        (images / "TRAIN" / "lymphocyte" / "text.jpeg").write_text("not an image")
        (images / "TRAIN" / "lymphocyte" / "._copy.jpeg").write_bytes(b"\x00\x05")  # macOS's: passed over, as elsewhere
        assert main(["data", "sources", "--data", str(tmp_path), "--workers", "1", "--out", str(tmp_path / "t.csv.gz")]) == 0
        err = capsys.readouterr().err
        assert "2 file(s) could not be decoded, so they match no field" in err
        assert str(bad) in err and str(images / "TRAIN" / "lymphocyte" / "text.jpeg") in err and "._copy" not in err
        assert "._copy.jpeg" not in {m.file_name for m in read_table(tmp_path / "t.csv.gz")}

    def test_a_field_under_two_labels_is_linked(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An original of one label that shows the field of another (BCCD's monocyte 278 is its lymphocyte
        206, shifted) is linked to the lowest-numbered of them, and the build writes the links beside its
        table; fields shown under one label only (3 and 7, two monocytes) are not linked."""
        pytest.importorskip("cv2")
        from wbc.cli import main
        from wbc.sources import linked_fields, read_linked

        images, orig, _ = self._data_set(tmp_path)
        _texture(3).rotate(0, translate=(24, -16)).save(orig / "JPEGImages" / f"{field_name(12)}.jpg", quality=95)
        with open(orig / "labels.csv", "a") as f:
            f.write(",12,LYMPHOCYTE\n")
        assert linked_fields(orig) == [("LYMPHOCYTE/BloodImage_00012", "MONOCYTE/BloodImage_00003")]
        assert main(["data", "sources", "--data", str(tmp_path), "--workers", "1", "--out", str(tmp_path / "t.csv.gz")]) == 0
        assert "wrote " + str(tmp_path / "linked_fields.csv") + " (1 field(s)" in capsys.readouterr().out
        assert read_linked(tmp_path / "linked_fields.csv") == {"LYMPHOCYTE/BloodImage_00012": "MONOCYTE/BloodImage_00003"}

    def test_classes_with_no_rows_are_named(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A class with no files, or with files that no original field is labelled with, gets no rows:
        each is named on stderr (the build said nothing, and its files then counted as cells of their own)."""
        pytest.importorskip("cv2")
        from wbc.cli import main

        images, orig, _ = self._data_set(tmp_path)
        (images / "TRAIN" / "NEUTROPHIL").mkdir()
        _texture(5).resize((320, 240)).save(images / "TRAIN" / "NEUTROPHIL" / "_0_9.jpeg")
        assert main(["data", "sources", "--data", str(tmp_path), "--workers", "1", "--out", str(tmp_path / "t.csv.gz")]) == 0
        notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("wbc: note: ")]
        assert notes == [
            f"wbc: note: EOSINOPHIL: no files in {images} (no class folder, or an empty one); the table has no rows for it",
            f"wbc: note: NEUTROPHIL: none of its 1 file(s) could be matched: the originals in {orig} hold no field "
            "labelled NEUTROPHIL alone; the table has no rows for it"]

    def test_no_originals(self, tmp_path: Path) -> None:
        """A data set without dataset-master is named in the error."""
        with pytest.raises(DataError, match="dataset-master"):
            find_originals(tmp_path)

    def test_originals_are_looked_for_within_the_data_set(self, tmp_path: Path) -> None:
        """From an images root, only the data set's own top is searched (flat or Kaggle-nested), not the
        folders above it: a stray dataset-master beside it was taken, and / was searched (/proc refused)."""
        from wbc.sources import originals_near

        stray = tmp_path / "x" / "y"
        (stray / "JPEGImages").mkdir(parents=True)
        (stray / "labels.csv").write_text("Image,Category\n")
        with pytest.raises(DataError, match="no dataset-master folder .* found near"):
            originals_near(tmp_path / "mine" / "images", tmp_path / "mine")
        for nested in (["dataset2-master"], ["dataset2-master", "dataset2-master"]):
            top = tmp_path / "top"
            images = top.joinpath(*nested, "images")
            images.mkdir(parents=True, exist_ok=True)
            with pytest.raises(DataError):
                originals_near(images)
            orig = top / "dataset-master" / "dataset-master"
            (orig / "JPEGImages").mkdir(parents=True, exist_ok=True)
            (orig / "labels.csv").write_text("Image,Category\n")
            assert originals_near(images) == orig
            shutil.rmtree(top)


@pytest.mark.slow
def test_full_data_groups(full_data: Path) -> None:
    """On the real data every file's cell is an original field: TRAIN lists 261 cells and TEST 68."""
    for split in ("TRAIN", "TEST"):
        cells = {s.cell for s in list_split(full_data, split)}
        assert len(cells) == DATASET["distinct_cells"][split]
        assert all(c.split("/")[1].startswith("BloodImage_") for c in cells)
