from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wbc.cache import load_arrays, load_prepared
from wbc.data import list_folder, list_split
from wbc.errors import DataError
from wbc.folders import find_images_root
from wbc.imaging import PreprocessSpec
from wbc.info import CLASSES, DATASET
from wbc.splits import grouped_kfold, grouped_split

from conftest import shut_folder


def lock(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Make `folder` act as one this user may not read (tests run as root, where chmod does not):
    is_dir and iterdir on it or below it raise PermissionError, as /proc/1/cwd does."""
    real_is_dir, real_iterdir = Path.is_dir, Path.iterdir

    def check(p: Path) -> None:
        if p == folder or folder in p.parents:
            raise PermissionError(errno.EACCES, "Permission denied", str(p))

    def is_dir(self: Path) -> bool:
        check(self)
        return real_is_dir(self)

    def iterdir(self: Path):  # type: ignore[no-untyped-def]
        check(self)
        return real_iterdir(self)

    monkeypatch.setattr(Path, "is_dir", is_dir)
    monkeypatch.setattr(Path, "iterdir", iterdir)


class TestFindRoot:
    def test_flattened_layout(self, tmp_path: Path, fixture_root: Path) -> None:
        """This project's copy: blood-cells/dataset2-master/images."""
        dst = tmp_path / "blood-cells" / "dataset2-master" / "images"
        shutil.copytree(fixture_root, dst)
        assert find_images_root(tmp_path / "blood-cells") == dst

    def test_kaggle_nested_layout(self, tmp_path: Path, fixture_root: Path) -> None:
        """The Kaggle zip nests one folder deeper: dataset2-master/dataset2-master/images."""
        dst = tmp_path / "dl" / "dataset2-master" / "dataset2-master" / "images"
        shutil.copytree(fixture_root, dst)
        assert find_images_root(tmp_path / "dl") == dst

    def test_images_root_itself(self, fixture_root: Path) -> None:
        """Pointing straight at the images folder works too."""
        assert find_images_root(fixture_root) == fixture_root

    @pytest.mark.parametrize("given, below", [
        ("blood-cells", "images"),  # an images folder inside the folder given
        ("dataset2-master", "images"),  # the flat copy's dataset2-master
        ("dataset2-master", "dataset2-master/images"),  # the Kaggle zip's outer dataset2-master
    ])
    def test_dataset_folder_itself(self, tmp_path: Path, fixture_root: Path, given: str, below: str) -> None:
        """A dataset2-master folder of either layout, or a folder holding `images`, is found too."""
        dst = tmp_path / given / below
        shutil.copytree(fixture_root, dst)
        assert find_images_root(tmp_path / given) == dst

    def test_no_data_here(self, tmp_path: Path) -> None:
        """A folder without the layout is a clear error naming it."""
        with pytest.raises(DataError, match="no folder with TRAIN"):
            find_images_root(tmp_path)

    def test_nothing_given_names_where_it_looked(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """No --data, no WBC_DATA and no shared copy: the error names the default folder, beside the project."""
        import wbc.folders

        monkeypatch.delenv("WBC_DATA", raising=False)
        monkeypatch.setattr(wbc.folders, "SHARED_DATA", tmp_path / "shared" / "data" / "blood-cells")
        with pytest.raises(DataError, match=f"WBC_DATA is not set and {tmp_path}/shared/data/blood-cells .beside the project"):
            find_images_root(None)

    def test_an_empty_wbc_data_is_taken_as_not_set(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """WBC_DATA set to nothing (`WBC_DATA= wbc train`, a script's empty variable) is not set, not the current
        folder."""
        import wbc.folders

        monkeypatch.setenv("WBC_DATA", "")
        monkeypatch.setattr(wbc.folders, "SHARED_DATA", tmp_path / "shared")
        monkeypatch.chdir(tmp_path)
        with pytest.raises(DataError, match="^no data set found: WBC_DATA is not set"):
            find_images_root(None)

    def test_the_shared_copy_is_not_said_to_come_from_wbc_data(self, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
        """Without WBC_DATA, the error of a shared copy without the layout names the copy, and not WBC_DATA as where
        the folder came from."""
        import wbc.folders

        monkeypatch.delenv("WBC_DATA", raising=False)
        monkeypatch.setattr(wbc.folders, "SHARED_DATA", tmp_path / "shared")
        (tmp_path / "shared").mkdir()
        with pytest.raises(DataError, match=f"^{tmp_path / 'shared'}: no folder with TRAIN") as e:
            find_images_root(None)
        assert "WBC_DATA" not in str(e.value)

    def test_deep_folders_are_not_taken(self, tmp_path: Path, fixture_root: Path) -> None:
        """An images root four levels down in an unrelated tree (a test fixture under /tmp) is not
        taken for the data set; the error names the folder and the places looked in."""
        shutil.copytree(fixture_root, tmp_path / "pytest-of-root" / "pytest-23" / "test_bad_file0" / "images")
        with pytest.raises(DataError) as e:
            find_images_root(tmp_path)
        msg = str(e.value)
        assert msg.startswith(f"{tmp_path}: no folder with TRAIN") and "\n" not in msg
        for layout in ("images", "dataset2-master/images", "dataset2-master/dataset2-master/images"):
            assert str(tmp_path / layout) in msg

    def test_unreadable_folders_are_skipped(self, tmp_path: Path, fixture_root: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
        """A folder that cannot be read (as /proc/1/cwd under /), met by the search before the data set's
        (`images` is looked in before `dataset2-master/images`), does not stop it."""
        dst = tmp_path / "dataset2-master" / "images"
        shutil.copytree(fixture_root, dst)
        (tmp_path / "images").mkdir()
        lock(monkeypatch, tmp_path / "images")
        assert find_images_root(tmp_path) == dst

    def test_unreadable_layout_is_named(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Where nothing is found and a layout's folder cannot be read, the one-line error names it."""
        (tmp_path / "dataset2-master").mkdir()
        lock(monkeypatch, tmp_path / "dataset2-master")
        with pytest.raises(DataError, match=f"no folder with TRAIN.*cannot read {tmp_path}/dataset2-master"):
            find_images_root(tmp_path)

    def test_file_system_root(self) -> None:
        """`--data /` is a clear error, not a PermissionError from a folder of /proc."""
        with pytest.raises(DataError, match="^/: no folder with TRAIN"):
            find_images_root("/")

    def test_a_file_is_not_a_folder(self, fixture_root: Path) -> None:
        """An existing file given as the data folder is called a file, not missing."""
        image = next((fixture_root / "TRAIN" / "EOSINOPHIL").iterdir())
        with pytest.raises(DataError, match="is a file, not a folder"):
            find_images_root(image)
        with pytest.raises(DataError, match="is a file, not a folder"):
            list_folder(image)

    def test_missing_folder(self, tmp_path: Path) -> None:
        """A path that does not exist is named."""
        with pytest.raises(DataError, match="no such folder"):
            find_images_root(tmp_path / "nowhere")


def test_a_layout_near_the_data_sets_is_said_how_to_fix(tmp_path: Path) -> None:
    """A user's folder with split folders in lower case, or class folders (some in the plural) with no
    split folder above them, is told what to rename or where to put them."""
    from wbc.folders import find_images_root

    (tmp_path / "a" / "train" / "eosinophil").mkdir(parents=True)
    with pytest.raises(DataError, match="Split folders are named in capitals: rename train to TRAIN$"):
        find_images_root(tmp_path / "a")
    for name in ("eosinophils", "Lymphocyte"):
        (tmp_path / "b" / name).mkdir(parents=True)
    with pytest.raises(DataError, match=r"holds class folders \(Lymphocyte, eosinophils\) itself: to evaluate them, "
                                        f"give it as --folder {tmp_path / 'b'}; to train, put them in a "
                                        r"TRAIN folder .* in the singular"):
        find_images_root(tmp_path / "b")
    for name in ("EOSINOPHILS", "Monocytes"):  # a split of class folders in the plural
        (tmp_path / "e" / "TEST" / name).mkdir(parents=True)
    with pytest.raises(DataError, match=r"e/TEST holds EOSINOPHILS, Monocytes: name class folders in the singular"):
        find_images_root(tmp_path / "e")
    (tmp_path / "f" / "TEST" / "EOSINOPHIL").mkdir(parents=True)  # a data folder given as a folder of classes
    (tmp_path / "f" / "TRAIN").mkdir()
    with pytest.raises(DataError, match=r"unknown class folder\(s\) TEST, TRAIN; .* holds split folders \(TEST, TRAIN\): "
                                        f"it is a data folder, .*--data {tmp_path / 'f'}, or one split as "
                                        f"--folder {tmp_path / 'f' / 'TEST'}$"):
        list_folder(tmp_path / "f")
    (tmp_path / "g" / "test" / "EOSINOPHIL").mkdir(parents=True)  # the same in lower case: rename them first
    with pytest.raises(DataError, match=f"or one split as --folder {tmp_path / 'g' / 'TEST'} \\(rename test to TEST "
                                        "first: split folders are named in capitals\\)$"):
        list_folder(tmp_path / "g")
    (tmp_path / "h" / "h" / "TRAIN" / "EOSINOPHIL").mkdir(parents=True)  # one's own zip nested as Kaggle's
    with pytest.raises(DataError, match=f"{tmp_path / 'h' / 'h'} holds the split folders: give it as --data "
                                        f"{tmp_path / 'h' / 'h'}$"):
        find_images_root(tmp_path / "h")
    (tmp_path / "d" / "TRAIN" / "EOSINOPHIL").mkdir(parents=True)  # TRAIN right, test beside it in lower case
    (tmp_path / "d" / "test").mkdir()
    with pytest.raises(DataError, match=r"d: has no TEST folder \(test is there: split folders are named in "
                                        r"capitals, rename it to TEST\)$"):
        list_split(tmp_path / "d", "TEST")
    (tmp_path / "c" / "TRAIN" / "x").mkdir(parents=True)  # a split folder given for the data set's
    with pytest.raises(DataError, match=f"c/TRAIN is a split folder itself: give the folder that holds it, {tmp_path / 'c'}$"):
        find_images_root(tmp_path / "c" / "TRAIN")
    # ... and a class folder of a split (it was told the layouts looked in, alone)
    (tmp_path / "c" / "TRAIN" / "EOSINOPHIL").mkdir()
    with pytest.raises(DataError, match=f"c/TRAIN/EOSINOPHIL is a class folder of the split TRAIN: give the folder "
                                        f"that holds the splits, {tmp_path / 'c'}$"):
        find_images_root(tmp_path / "c" / "TRAIN" / "EOSINOPHIL")


class TestListing:
    def test_lists_all_classes(self, fixture_root: Path) -> None:
        """TRAIN fixture: 4 classes x 3 cells (original fields) x 2 views, labelled by folder."""
        s = list_split(fixture_root, "TRAIN")
        assert len(s) == 24
        assert sorted({x.label for x in s}) == [0, 1, 2, 3]
        assert all(CLASSES[x.label] == x.path.parent.name for x in s)
        assert len({x.cell for x in s}) == 12

    def test_missing_class_folder(self, data_copy: Path) -> None:
        """A missing class folder is named."""
        shutil.rmtree(data_copy / "TRAIN" / "MONOCYTE")
        with pytest.raises(DataError, match="missing class folder.*MONOCYTE"):
            list_split(data_copy, "TRAIN")

    def test_a_macos_zips_metadata_folder_is_no_class(self, data_copy: Path) -> None:
        """A split unpacked from a zip made on a Mac holds __MACOSX (its resource forks, named as the images): passed
        over, not refused as a fifth, unknown class folder, and its copies not listed."""
        for split in ("TRAIN", "TEST_SIMPLE"):
            (data_copy / split / "__MACOSX" / "EOSINOPHIL").mkdir(parents=True)
            (data_copy / split / "__MACOSX" / "EOSINOPHIL" / "x.jpeg").write_bytes(b"\0\5\26\7")
        assert len(list_split(data_copy, "TEST_SIMPLE")) == 8 and len(list_split(data_copy, "TRAIN")) == 24
        assert len(list_folder(data_copy / "TEST_SIMPLE", require_all_classes=False)) == 8

    def test_empty_class_folder(self, data_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A TRAIN class folder holding no images (emptied, or only other files) stops a training as a
        missing one does (a network that never saw the class was written without a word), and `wbc data
        check` says so with exit 1. Other listings read the classes present (`wbc evaluate --folder`)."""
        from wbc.cli import main
        from wbc.data import list_folder

        for f in (data_copy / "TRAIN" / "MONOCYTE").iterdir():
            f.unlink()
        (data_copy / "TRAIN" / "MONOCYTE" / "notes.txt").write_text("moved to a slide folder")
        with pytest.raises(DataError, match=r"TRAIN: class folder\(s\) with no images: MONOCYTE \(images are read"):
            list_split(data_copy, "TRAIN", every_class=True)
        assert main(["train", "--data", str(data_copy), "--dry-run", "--quiet"]) == 2
        assert "class folder(s) with no images: MONOCYTE" in capsys.readouterr().err
        assert main(["data", "check", "--data", str(data_copy)]) == 1
        out, err = capsys.readouterr()
        assert "Monocyte 0 files/0 cells" in out and "no images of MONOCYTE: training refuses this TRAIN" in err
        assert {CLASSES[s.label] for s in list_folder(data_copy / "TRAIN", require_all_classes=False)} == \
            set(CLASSES) - {"MONOCYTE"}

    def test_files_that_are_no_image_are_named(self, data_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A phone's HEIC photo in a class folder is left out with a note saying so and what to do (it was left out
        unsaid, the class's count one short); hidden files (.DS_Store) are not named."""
        from wbc.data import forget_notes

        forget_notes()
        (data_copy / "TRAIN" / "MONOCYTE" / "IMG_0042.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic")
        (data_copy / "TRAIN" / "MONOCYTE" / ".DS_Store").write_bytes(b"x")
        before = len(list_split(data_copy, "TRAIN"))
        err = capsys.readouterr().err
        assert "TRAIN: 1 other file(s) passed over: .heic (HEIC photos, as phones save them, are not read: export " \
               "them as JPEG) in the class folders, left out" in err and "DS_Store" not in err
        (data_copy / "TRAIN" / "MONOCYTE" / "IMG_0042.HEIC").unlink()
        assert len(list_split(data_copy, "TRAIN")) == before

    def test_unknown_class_folder(self, data_copy: Path) -> None:
        """A stray class folder (e.g. BASOPHIL) is named rather than silently ignored."""
        (data_copy / "TRAIN" / "BASOPHIL").mkdir()
        with pytest.raises(DataError, match="unknown class folder.*BASOPHIL.*; expected .*. The model learns these "
                                            "four types only: move BASOPHIL out of .*TRAIN"):
            list_split(data_copy, "TRAIN")
        # Not said where no class folder is there: the data set's own dataset-master, a folder of dated photos
        for name in ("Annotations", "JPEGImages"):
            (data_copy / "master" / name).mkdir(parents=True)
        with pytest.raises(DataError, match=r"unknown class folder\(s\) Annotations, JPEGImages; expected [A-Z, ]+$"):
            list_folder(data_copy / "master")

    @pytest.mark.parametrize("name", [str.lower, str.title])
    def test_class_folders_in_any_case(self, data_copy: Path, name) -> None:  # type: ignore[no-untyped-def]
        """Class folders named eosinophil or Eosinophil read as EOSINOPHIL: same labels, same cells."""
        want = [(s.path.relative_to(data_copy).parts[-1], s.label, s.cell) for s in list_split(data_copy, "TEST_SIMPLE")]
        for c in CLASSES:
            (data_copy / "TEST_SIMPLE" / c).rename(data_copy / "TEST_SIMPLE" / name(c))
        got = list_folder(data_copy / "TEST_SIMPLE", require_all_classes=False)
        assert [(s.path.name, s.label, s.cell) for s in got] == want
        assert all(s.path.parent.name == name(CLASSES[s.label]) for s in got)
        for c in CLASSES:
            (data_copy / "TRAIN" / c).rename(data_copy / "TRAIN" / name(c))
        assert find_images_root(data_copy) == data_copy
        assert len(list_split(data_copy, "TRAIN")) == 24

    def test_class_folders_differing_only_in_case(self, data_copy: Path) -> None:
        """EOSINOPHIL and eosinophil side by side is an error naming both, not a silent pick."""
        (data_copy / "TRAIN" / "eosinophil").mkdir()
        with pytest.raises(DataError, match="differ only in case.*EOSINOPHIL and eosinophil"):
            list_split(data_copy, "TRAIN")

    def test_unreadable_class_folder(self, data_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A class folder that cannot be read is named in one line, not a PermissionError."""
        lock(monkeypatch, data_copy / "TEST_SIMPLE" / "MONOCYTE")
        with pytest.raises(DataError, match="MONOCYTE: cannot be read"):
            list_folder(data_copy / "TEST_SIMPLE", require_all_classes=False)

    def test_class_subfolder_listed_but_not_entered(self, data_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A subfolder of a class folder that can be listed but not entered (chmod 644; made to fail here, as root
        is let in) is named as the folder, not as its first file, which no chmod of the file would let in."""
        shut = data_copy / "TEST_SIMPLE" / "MONOCYTE" / "shut"
        shut.mkdir()
        (shut / "a.jpeg").write_bytes(b"")
        shut_folder(monkeypatch, shut)
        with pytest.raises(DataError, match=f"^{re.escape(str(shut))}: cannot be read \\(Permission denied: it can be "
                                            "listed but not entered\\)$"):
            list_folder(data_copy / "TEST_SIMPLE", require_all_classes=False)

    def test_a_link_into_a_locked_folder_is_named_alone(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A link whose target lies in a folder locked to us fails as a folder listed but not entered does (EACCES),
        but the link itself can be looked at: it alone is named, and its folder's other files are still read (the
        whole folder was dropped, and named as unreachable)."""
        from wbc.io import files_under

        folder = tmp_path / "smear"
        (folder / "sub").mkdir(parents=True)
        for f in ("a.jpeg", "z.jpeg", "sub/b.jpeg"):
            (folder / f).write_bytes(b"x")
        link = folder / "link.jpeg"
        link.symlink_to(tmp_path / "locked" / "x.jpeg")
        real_is_file = Path.is_file

        def is_file(self: Path) -> bool:
            if self == link:
                raise PermissionError(errno.EACCES, "Permission denied", str(self))
            return real_is_file(self)

        monkeypatch.setattr(Path, "is_file", is_file)
        problems: list[tuple[Path, str]] = []
        assert sorted(p.name for p in files_under(folder, problems=problems)) == ["a.jpeg", "b.jpeg", "z.jpeg"]
        assert problems == [(link, "a link whose target cannot be reached (Permission denied)")]
        with pytest.raises(PermissionError) as e:
            list(files_under(folder, strict=True))
        assert e.value.filename == str(link)

    def test_empty_split(self, data_copy: Path) -> None:
        """Class folders without images are an error, not an empty training run."""
        for c in CLASSES:
            for f in (data_copy / "TRAIN" / c).iterdir():
                f.unlink()
        with pytest.raises(DataError, match="hold no images"):
            list_split(data_copy, "TRAIN")

    def test_missing_split(self, data_copy: Path) -> None:
        """Asking for a split that is not there says so."""
        with pytest.raises(DataError, match="has no TEST folder"):
            list_split(data_copy, "TEST")

    def test_evaluation_folder_may_lack_classes(self, data_copy: Path) -> None:
        """A user's evaluation folder needs only some of the classes."""
        shutil.rmtree(data_copy / "TEST_SIMPLE" / "MONOCYTE")
        s = list_folder(data_copy / "TEST_SIMPLE", require_all_classes=False)
        assert {x.label for x in s} == {0, 1, 3}


class TestSplits:
    def test_no_cell_on_both_sides(self, fixture_root: Path) -> None:
        """Every view of a cell lands on one side of the split."""
        s = list_split(fixture_root, "TRAIN")
        tr, va = grouped_split(s, val_fraction=0.34, seed=1)
        assert len(va) > 0 and len(tr) > 0
        assert not {s[i].cell for i in tr} & {s[i].cell for i in va}
        assert {s[i].label for i in va} == {0, 1, 2, 3}

    def test_kfold_partitions_cells(self, fixture_root: Path) -> None:
        """Grouped k-fold: validation folds are disjoint and together cover every file once, and no cell has
        files on both sides of a fold."""
        s = list_split(fixture_root, "TRAIN")
        folds = list(grouped_kfold(s, k=3, seed=0))
        seen = np.concatenate([va for _, va in folds])
        assert sorted(seen.tolist()) == list(range(len(s)))
        for tr, va in folds:
            assert not {s[i].cell for i in tr} & {s[i].cell for i in va}
            assert sorted([*tr, *va]) == list(range(len(s)))

    def test_split_folds_cross_validate(self, fixture_root: Path) -> None:
        """grouped_split's folds under one seed hold out disjoint cells that together are all of TRAIN;
        fold 0 is the split every run used before folds existed, and a fold past k is refused."""
        s = list_split(fixture_root, "TRAIN")
        held = [{s[i].cell for i in grouped_split(s, 0.34, seed=2, fold=f)[1]} for f in range(3)]
        assert set.union(*held) == {x.cell for x in s} and sum(map(len, held)) == len({x.cell for x in s})
        assert (grouped_split(s, 0.34, seed=2, fold=0)[1] == next(grouped_kfold(s, k=3, seed=2))[1]).all()
        with pytest.raises(DataError, match="fold must be in 0..2"):
            grouped_split(s, 0.34, seed=2, fold=3)

    def test_the_seed_deals_the_cells_and_the_share_is_below_a_half(self, fixture_root: Path) -> None:
        """Another seed deals the cells into other folds (a seed ignored gave every run one split), the same seed
        the same ones; a share held out of 0 or from 0.5 is refused (0.5 held out as much as was trained on)."""
        s = list_split(fixture_root, "TRAIN")
        held = {seed: tuple(grouped_split(s, 0.34, seed=seed)[1]) for seed in range(4)}
        assert len(set(held.values())) > 1 and tuple(grouped_split(s, 0.34, seed=3)[1]) == held[3]
        for share in (0.0, 0.5, 0.6):
            with pytest.raises(DataError, match=f"--val-fraction {share}: .* above 0 and below 0.5"):
                grouped_split(s, share)

    def test_one_field_under_two_labels_stays_on_one_side(self, fixture_root: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
        """A cell the data set shows under another label too (BCCD's field 278, a monocyte, is field 206, a
        lymphocyte, shifted) goes to the fold of its first. Here it is the only cell of its type in its fold
        (3 folds of 3 cells a type), so a cell of its type in the first's fold takes its place: every fold
        keeps every type, and every other cell stays where the split put it."""
        import wbc.splits

        s = list_split(fixture_root, "TRAIN")
        before = [va for _, va in grouped_kfold(s, k=3, seed=0)]
        fold_of = {s[i].cell: f for f, va in enumerate(before) for i in va}
        a = next(iter(fold_of))
        b = next(c for c in fold_of if fold_of[c] != fold_of[a] and c.split("/")[0] != a.split("/")[0])
        monkeypatch.setattr(wbc.splits, "read_linked", lambda: {b: a, "MONOCYTE/BloodImage_99999": a})
        folds = list(grouped_kfold(s, k=3, seed=0))
        moved = {s[i].cell: f for f, (_, va) in enumerate(folds) for i in va}
        assert moved[b] == moved[a] == fold_of[a]
        changed = {c for c in fold_of if moved[c] != fold_of[c]}
        swapped = changed - {b}
        assert len(swapped) == 1 and (c := swapped.pop()).split("/")[0] == b.split("/")[0] and moved[c] == fold_of[b]
        for tr, va in folds:
            assert {s[i].label for i in va} == {0, 1, 2, 3}
            assert sorted([*tr, *va]) == list(range(len(s))) and not {s[i].cell for i in tr} & {s[i].cell for i in va}

    def test_too_few_cells(self, fixture_root: Path) -> None:
        """Asking for more folds than a class has cells is refused with the counts."""
        with pytest.raises(DataError, match="cells per class"):
            next(grouped_kfold(list_split(fixture_root, "TRAIN"), k=5))

    def test_the_folds_error_names_the_classes_short_of_cells(self, fixture_root: Path) -> None:
        """More folds than a class has cells are refused naming only the classes short of them (a class with no
        cells at all is dealt nowhere, and is none of them), with a larger --val-fraction offered past 4 folds;
        fewer than 2 folds are refused as such."""
        from wbc.splits import FEWER_FOLDS

        s = list_split(fixture_root, "TRAIN")  # 3 cells a class
        with pytest.raises(DataError) as five:
            next(grouped_kfold(s, k=5))
        assert "(short: EOSINOPHIL 3, LYMPHOCYTE 3, MONOCYTE 3, NEUTROPHIL 3)" in str(five.value)
        assert str(five.value).endswith(FEWER_FOLDS[4])
        no_eosinophils = [x for x in s if x.label != 0]
        folds = list(grouped_kfold(no_eosinophils, k=3))
        assert len(folds) == 3 and all({no_eosinophils[i].label for i in va} == {1, 2, 3} for _, va in folds)
        with pytest.raises(DataError, match=r"\(short: LYMPHOCYTE 3, MONOCYTE 3, NEUTROPHIL 3\)"):
            next(grouped_kfold(no_eosinophils, k=4))
        with pytest.raises(DataError, match="short: none; fewer than 2 folds asked"):
            next(grouped_kfold(s, k=1))

    def test_full_data_split(self, full_data: Path) -> None:
        """On the real TRAIN: 261 cells (original fields), and the grouped split shares none of them."""
        s = list_split(full_data, "TRAIN")
        assert len(s) == 9957
        assert len({x.cell for x in s}) == DATASET["distinct_cells"]["TRAIN"]
        assert len({x.cell for x in list_split(full_data, "TEST")}) == DATASET["distinct_cells"]["TEST"]
        tr, va = grouped_split(s, 0.2, seed=0)
        assert not {s[i].cell for i in tr} & {s[i].cell for i in va}
        assert 0.15 < len(va) / len(s) < 0.25
        # The one field the data set labels twice (a lymphocyte in one photograph, a monocyte in another)
        # is held out whole in every fold of the cross-validation.
        from wbc.sources import read_linked

        assert read_linked() == {"MONOCYTE/BloodImage_00278": "LYMPHOCYTE/BloodImage_00206"}
        assert {"MONOCYTE/BloodImage_00278", "LYMPHOCYTE/BloodImage_00206"} <= {x.cell for x in s}
        # With 9 folds or more a monocyte fold once lost its only monocyte to the move (15 monocyte cells).
        for k, seed in ((5, 0), (9, 0), (10, 0), (12, 1), (15, 2)):
            for _, va in grouped_kfold(s, k=k, seed=seed):
                held = {s[i].cell for i in va}
                assert ("MONOCYTE/BloodImage_00278" in held) == ("LYMPHOCYTE/BloodImage_00206" in held)
                assert {s[i].label for i in va} == {0, 1, 2, 3}, (k, seed)


class TestArrays:
    def test_decodes_and_caches(self, fixture_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """All fixture images decode to the spec's size; the second call reads the cache."""
        import wbc.cache

        monkeypatch.setenv("WBC_CACHE", str(tmp_path))
        s = list_split(fixture_root, "TEST_SIMPLE")
        spec = PreprocessSpec()
        x, kept = load_arrays(s, spec, progress=False)
        assert x.shape == (8, 96, 96, 3) and kept == s
        assert len(list(tmp_path.glob("*.npz"))) == 1
        (cached,) = tmp_path.glob("*.npz")
        os.utime(cached, (1, 1))
        monkeypatch.setattr(wbc.cache, "load_image", lambda path: pytest.fail(f"decoded {path} again"))
        x2, _ = load_arrays(s, spec, progress=False)
        assert (x == x2).all()
        assert cached.stat().st_mtime > 1  # read now: the pruning, least recently used first, keeps it

    def test_without_the_cache_every_file_is_decoded(self, fixture_root: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
        """use_cache=False (`wbc data --verify`) decodes every file even where a decoded set is cached, and
        writes none: a verify that read the cache would pass files it never read."""
        import wbc.cache

        monkeypatch.setenv("WBC_CACHE", str(tmp_path))
        s = list_split(fixture_root, "TEST_SIMPLE")
        load_arrays(s, PreprocessSpec(), use_cache=False, progress=False)
        assert not list(tmp_path.glob("*.npz"))
        cached, _ = load_arrays(s, PreprocessSpec(), progress=False)
        decoded: list[str] = []
        real = wbc.cache.load_image
        monkeypatch.setattr(wbc.cache, "load_image", lambda path: decoded.append(path) or real(path))
        x, _ = load_arrays(s, PreprocessSpec(), use_cache=False, progress=False)
        assert decoded == [str(smp.path) for smp in s] and np.array_equal(x, cached)

    def test_prepared_keeps_what_predict_learns(self, fixture_root: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
        """load_prepared keeps each file's crop, shrink factor and white gains as Predictor.analyse finds
        them (NaN where input_gains has none), built and read back from the cache alike: also for a magnified
        photo cast magenta, whose magnification both judge in matched colours (the cache did not: 2x photos cast
        green x0.8 were shrunk 1.41x for training and evaluation, and not for `wbc predict`)."""
        from wbc.cache import load_prepared
        from wbc.data import Sample
        from wbc.decode import load_image
        from wbc.imaging import scale_channels
        from wbc.predict import Predictor

        monkeypatch.setenv("WBC_CACHE", str(tmp_path / "cache"))  # the second pass builds the cache, the third reads it
        s = list_split(fixture_root, "TEST_SIMPLE")
        for i, smp in enumerate(s[:4]):
            big = Image.fromarray(scale_channels(load_image(smp.path), (1.0, 0.8, 1.0))).resize((640, 480))
            big.save(tmp_path / f"cast{i}.png")
            s.append(Sample(tmp_path / f"cast{i}.png", smp.label, f"cast{i}"))
        predictor = Predictor(match_white=True)
        for use_cache in (False, True, True):
            p = load_prepared(s, PreprocessSpec(), use_cache=use_cache, progress=False)
            assert p.reduced_by.shape == (12,) and p.gains.shape == (12, 3) and p.samples == s
            for smp, x, r, g in zip(s, p.x, p.reduced_by, p.gains):
                want_x, sc = predictor.analyse(load_image(smp.path))  # the crop, with the field's gains
                got_x, _ = predictor.with_gains(x, None if np.isnan(g).all() else g)
                assert np.array_equal(got_x, want_x) and r == sc.reduced_by, smp.path

    def test_a_written_set_is_pruned_and_keeps_each_fields_sides(self, fixture_root: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
        """Each decoded set written is followed by the pruning, keeping it (without, the cache grew past its limit
        unseen), and records each field's sides, not its crop's: the data set's 320 x 240 photos, 96 px crops."""
        import wbc.cache

        monkeypatch.setenv("WBC_CACHE", str(tmp_path))
        pruned: list[tuple[Path, Path]] = []
        monkeypatch.setattr(wbc.cache, "prune_cache", lambda folder, keep: pruned.append((folder, keep)))
        s = list_split(fixture_root, "TEST_SIMPLE")
        p = load_prepared(s, PreprocessSpec(), progress=False)
        assert pruned == [(tmp_path, next(tmp_path.glob("*.npz")))]
        assert p.x.shape[1:3] == (96, 96) and p.sides.tolist() == [[240, 320]] * len(s)

    @pytest.mark.parametrize("damage", ["truncated", "empty", "flipped"])
    def test_damaged_cache_file_is_rebuilt(self, fixture_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           damage: str) -> None:
        """A truncated, empty or corrupted cache file reads as a miss: the images are decoded again and
        the file replaced (it raised BadZipFile or EOFError in every later run)."""
        from wbc.cache import load_prepared

        monkeypatch.setenv("WBC_CACHE", str(tmp_path))
        s = list_split(fixture_root, "TEST_SIMPLE")
        first = load_prepared(s, PreprocessSpec(), progress=False)
        (cached,) = tmp_path.glob("*.npz")
        data = bytearray(cached.read_bytes())
        if damage == "flipped":
            data[len(data) // 2] ^= 0xFF
        cached.write_bytes({"truncated": bytes(data[: len(data) // 2]), "empty": b""}.get(damage, bytes(data)))
        again = load_prepared(s, PreprocessSpec(), progress=False)
        assert np.array_equal(again.x, first.x)
        assert cached.read_bytes() != b"" and np.load(cached)["x"].shape == first.x.shape  # replaced, readable

    def test_cache_keeps_the_sets_in_use_within_its_limit(self, tmp_path: Path) -> None:
        """Pruning removes the least recently used sets until the rest fit, never the one just written."""
        import os

        from wbc.cache import prune_cache

        sets = []
        mine = tmp_path / "my_results.npz"  # not a cache entry: never touched, however old
        mine.write_bytes(b"y" * 5000)
        os.utime(mine, (1, 1))
        for i, size in enumerate((400, 300, 200, 100)):  # written in this order, 1 s apart: oldest first
            p = tmp_path / f"{i:020x}.npz"
            p.write_bytes(b"x" * size)
            os.utime(p, (1000 + i, 1000 + i))
            sets.append(p)
        prune_cache(tmp_path, keep=sets[0], limit=650)  # the oldest is the one just written: it stays
        # 1000 bytes: s1 (300) goes, 700 still over; s2 (200) goes, 500 fits; the newest, s3, stays.
        assert [p.exists() for p in sets] == [True, False, False, True]
        prune_cache(tmp_path, keep=sets[3], limit=500)  # exactly the limit: it fits
        assert [p.exists() for p in sets] == [True, False, False, True]
        prune_cache(tmp_path, keep=sets[3], limit=10_000)
        assert sets[0].exists() and sets[3].exists()  # within the limit nothing goes
        assert mine.exists()

    def test_pruning_removes_a_killed_writes_temporary_file(self, tmp_path: Path) -> None:
        """A run killed while it wrote a decoded set left its hidden temporary file (350 MB for the data set),
        never removed: pruning removes one ten minutes old, not one being written now nor a file of the user's."""
        import os

        from wbc.cache import prune_cache

        entry = tmp_path / f"{1:020x}.npz"
        entry.write_bytes(b"x")
        killed, writing = tmp_path / f".{2:020x}.npz.ab12cd.tmp", tmp_path / f".{3:020x}.npz.ef34gh.tmp"
        mine = tmp_path / ".notes.npz.old.tmp"
        for p in (killed, writing, mine):
            p.write_bytes(b"y" * 100)
        for p in (killed, mine):
            os.utime(p, (1, 1))
        prune_cache(tmp_path, keep=entry)
        assert [p.exists() for p in (entry, killed, writing, mine)] == [True, False, True, True]
        # Ten minutes untouched: a write paused five (a slow disk) is live; one last written eleven ago is not, though
        # read a moment ago (a backup's reading sets its access time, not its modification time).
        import time

        paused, left = tmp_path / f".{4:020x}.npz.ij56kl.tmp", tmp_path / f".{5:020x}.npz.mn78op.tmp"
        now = time.time()
        for p, minutes in ((paused, 5), (left, 11)):
            p.write_bytes(b"y" * 100)
            os.utime(p, (now, now - 60 * minutes))
        prune_cache(tmp_path, keep=entry)
        assert [p.exists() for p in (paused, left)] == [True, False]
        stuck = tmp_path / f".{6:020x}.npz.qr90st.tmp"  # one that cannot be removed (a folder here) is passed over
        stuck.mkdir()
        (stuck / "x").write_bytes(b"")
        os.utime(stuck, (1, 1))
        prune_cache(tmp_path, keep=entry)
        assert stuck.is_dir() and entry.exists()

    def test_a_cache_hit_removes_a_killed_writes_temporary_file(self, fixture_root: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
        """The rerun after a killed write decodes and writes the set, then finds it: its temporary file goes then."""
        import os

        monkeypatch.setenv("WBC_CACHE", str(tmp_path))
        s = list_split(fixture_root, "TEST_SIMPLE")
        load_prepared(s, PreprocessSpec(), progress=False)
        (entry,) = tmp_path.glob("*.npz")
        killed = tmp_path / f".{entry.name}.ab12cd.tmp"
        killed.write_bytes(b"y" * 100)
        os.utime(killed, (1, 1))
        load_prepared(s, PreprocessSpec(), progress=False)
        assert not killed.exists() and entry.exists()

    def test_bad_file_stops_with_its_name(self, data_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """One corrupt file stops loading before training and is named; --skip-bad leaves it out, and says
        so by name, from a fresh decode and from the cache alike."""
        bad = data_copy / "TRAIN" / "MONOCYTE" / "_9_1.jpeg"
        bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
        s = list_split(data_copy, "TRAIN")
        with pytest.raises(DataError, match=r"(?s)1 unusable image.*--skip-bad.*_9_1\.jpeg"):
            load_arrays(s, PreprocessSpec(), progress=False)
        capsys.readouterr()
        for _ in range(2):  # the second from the cache the first wrote
            p = load_prepared(s, PreprocessSpec(), skip_bad=True, progress=False)
            assert len(p.samples) == len(s) - 1 and bad not in [k.path for k in p.samples] and len(p.x) == len(p.samples)
            assert p.skipped == (str(bad),)
            assert f"1 unusable file(s) left out (--skip-bad):\n  {bad}" in capsys.readouterr().err
        # The cache that left it out is no answer without --skip-bad: the file still stops the run.
        with pytest.raises(DataError, match=r"(?s)1 unusable image.*_9_1\.jpeg"):
            load_arrays(s, PreprocessSpec(), progress=False)


@pytest.mark.parametrize("module", ["decode", "framing", "imaging", "pixels", "screening", "photo_checks",
                                    "white_balance", "other_cell"])
def test_cache_key_follows_preprocessing_code(fixture_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              module: str) -> None:
    """Changing the preprocessing code changes the cache key, so stale crops are never reused: each module that
    decodes, frames, finds or screens the cell (imaging.py alone was tried when it held them all)."""
    import importlib

    from wbc import cache

    m = importlib.import_module(f"wbc.{module}")
    s = list_split(fixture_root, "TEST_SIMPLE")
    before = cache._cache_key(s, PreprocessSpec())
    edited = tmp_path / f"{module}.py"
    edited.write_bytes(Path(m.__file__).read_bytes() + b"\n# changed\n")
    monkeypatch.setattr(m, "__file__", str(edited))
    assert cache._cache_key(s, PreprocessSpec()) != before


def test_cache_is_not_reused_for_another_spec_or_a_rewritten_file(fixture_root: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The decode cache is keyed by the preprocessing and by each file's size and time: another window of the
    same output size, or a file rewritten in place, is decoded anew, never served stale crops."""
    from wbc import cache

    monkeypatch.setenv("WBC_CACHE", str(tmp_path / "cache"))
    shutil.copytree(fixture_root / "TEST_SIMPLE", tmp_path / "TEST")
    s = list_split(tmp_path, "TEST")
    assert cache._cache_key(s, PreprocessSpec(window=128)) != cache._cache_key(s, PreprocessSpec())
    # A file rewritten in place at its own size shows only in its time: that alone is a new key.
    key, st = cache._cache_key(s, PreprocessSpec()), s[2].path.stat()
    os.utime(s[2].path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert cache._cache_key(s, PreprocessSpec()) != key
    # So is a change to how a file is decoded and measured (`_decode`, in cache.py, no preprocessing module).
    key = cache._cache_key(s, PreprocessSpec())
    with monkeypatch.context() as m:
        m.setattr(cache, "_decode", lambda args: cache.white_balance.field_white(cache.load_image(args[0])))
        assert cache._cache_key(s, PreprocessSpec()) != key
    first = cache.load_arrays(s, PreprocessSpec(), progress=False)[0]
    other = s[1].path.read_bytes()
    st = s[0].path.stat()
    s[0].path.write_bytes(other)  # another image under the first one's name
    os.utime(s[0].path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    again = cache.load_arrays(s, PreprocessSpec(), progress=False)[0]
    assert not np.array_equal(again[0], first[0]) and np.array_equal(again[0], first[1])
    assert np.array_equal(again[1:], first[1:])


def test_cache_that_cannot_be_written_is_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str], fixture_root: Path) -> None:
    """A decode cache whose folder cannot be written costs the next run its decoding, not this run:
    the images come back and a note says why they were not cached."""
    from wbc.cache import load_prepared
    from wbc.data import list_split
    from wbc.imaging import PreprocessSpec

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("WBC_CACHE", str(blocker / "cache"))
    samples = list_split(fixture_root, "TEST_SIMPLE")
    got = load_prepared(samples, PreprocessSpec(), progress=False)
    assert len(got.x) == len(samples)
    err = capsys.readouterr().err
    assert "the decoded images are not cached" in err and "a folder on its path is a file" in err, err


def test_atomic_write_names_the_file_meant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed write names the file asked for, not the hidden temporary one beside it, and why."""
    import os

    from wbc.errors import OutputError
    from wbc.io import atomic_write_bytes

    (tmp_path / "a-file").write_text("")
    with pytest.raises(OutputError, match=f"^{tmp_path}/a-file/x.csv: cannot write it \\(a folder on its path is a file\\)$"):
        atomic_write_bytes(tmp_path / "a-file" / "x.csv", b"x")

    def full(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OutputError, match=f"^{tmp_path}/t.csv: cannot write it \\(No space left on device\\)$"):
        atomic_write_bytes(tmp_path / "t.csv", b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["a-file"]  # no temporary file left behind


@pytest.mark.parametrize("link,target", [("EOSINOPHIL/more", "../NEUTROPHIL"), ("LYMPHOCYTE/up", "../..")])
def test_an_image_reached_from_two_class_folders_is_refused(data_copy: Path, link: str, target: str) -> None:
    """A link in a class folder to another class's folder, or up the tree, would give its images two labels
    (evaluate's figures changed without a word): refused, naming both paths of an image."""
    (data_copy / "TEST_SIMPLE" / link).symlink_to(target)
    with pytest.raises(DataError, match=r"reached twice through a link") as e:
        list_split(data_copy, "TEST_SIMPLE")
    assert str(data_copy / "TEST_SIMPLE" / link) in str(e.value)
    (data_copy / "TEST_SIMPLE" / link).unlink()
    assert len(list_split(data_copy, "TEST_SIMPLE")) == 8
    # A link to nothing, or one that loops, is no file reached twice: listed, to be named where it is read.
    (data_copy / "TEST_SIMPLE" / "EOSINOPHIL" / "gone.jpeg").symlink_to("nowhere.jpeg")
    (data_copy / "TEST_SIMPLE" / "EOSINOPHIL" / "loop.jpeg").symlink_to("loop.jpeg")
    assert len(list_split(data_copy, "TEST_SIMPLE")) == 10


def test_atomic_write_keeps_links_and_refuses_what_is_no_file(tmp_path: Path) -> None:
    """A link is written through (the file it names replaced, the link kept); a pipe or a folder is refused
    by name and left as it was (a rename put a file in place of /dev/full)."""
    from wbc.errors import OutputError
    from wbc.io import atomic_write_bytes, check_writable_file

    (tmp_path / "real.csv").write_text("old")
    (tmp_path / "link.csv").symlink_to("real.csv")
    atomic_write_bytes(tmp_path / "link.csv", b"new")
    assert (tmp_path / "link.csv").is_symlink() and (tmp_path / "real.csv").read_text() == "new"
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "pipe-link").symlink_to("pipe")
    for name, kind in (("pipe", "a pipe"), ("pipe-link", "a pipe"), ("folder", "a folder")):
        (tmp_path / "folder").mkdir(exist_ok=True)
        for write in (lambda p: atomic_write_bytes(p, b"x"), check_writable_file):
            with pytest.raises(OutputError, match=f"^{tmp_path}/{name}: is {kind}"):
                write(tmp_path / name)
    assert (tmp_path / "pipe").is_fifo() and (tmp_path / "folder").is_dir()
    # The check before the work looks where the write goes: a link's target's folder.
    (tmp_path / "a-file").write_text("")
    (tmp_path / "bad.csv").symlink_to(tmp_path / "a-file" / "x.csv")
    with pytest.raises(OutputError, match=f"bad.csv: cannot write it \\(the link's target, {tmp_path}/a-file/x.csv\\): "
                                          f"folder {tmp_path}/a-file is a file, not a folder$"):
        check_writable_file(tmp_path / "bad.csv")
    (tmp_path / "bad.csv").unlink()
    (tmp_path / "a-file").unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "link.csv", "pipe", "pipe-link", "real.csv"]


def test_atomic_write_gives_a_file_the_usual_permissions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file written atomically has the permissions any new file gets under the umask (0644 under 022, as the
    process's umask was when wbc.io was imported), not the temporary file's 0600: a table or report written for
    others to read was readable by its writer alone."""
    import wbc.io
    from wbc.io import atomic_write_bytes

    for umask, mode in ((0o022, 0o644), (0o002, 0o664)):
        monkeypatch.setattr(wbc.io, "_UMASK", umask)
        atomic_write_bytes(tmp_path / "shared.csv", b"x")
        assert (tmp_path / "shared.csv").stat().st_mode & 0o777 == mode


def test_atomic_write_syncs_a_hidden_file_beside_the_target_before_the_rename(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The bytes go to a hidden temporary file beside the file meant (a rename within one file system, and one that
    `write_leftovers` finds), flushed and fsynced before the rename puts it in place: a crash leaves the old file or
    the new one, never part of one; an interrupt leaves the old file and no temporary one."""
    import os

    from wbc.io import atomic_write_bytes, write_leftovers

    events: list[tuple[object, ...]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        (tmp,) = write_leftovers(tmp_path, "out.csv")
        events.append(("fsync", tmp.read_bytes()))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        events.append(("replace", Path(src).parent, Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    (tmp_path / "out.csv").write_bytes(b"old")
    atomic_write_bytes(tmp_path / "out.csv", b"new rows")
    assert events == [("fsync", b"new rows"), ("replace", tmp_path, tmp_path / "out.csv")]
    assert (tmp_path / "out.csv").read_bytes() == b"new rows"

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(tmp_path / "out.csv", b"newer rows")
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"] and (tmp_path / "out.csv").read_bytes() == b"new rows"


def test_a_text_naming_a_file_whose_name_is_not_utf8_is_written_with_its_bytes(tmp_path: Path) -> None:
    """A report naming a file whose name is not valid UTF-8 (bytes from another system, which os.listdir gives as
    surrogates) is written with that name's bytes, as the file system has them, not refused with a traceback."""
    from wbc.io import atomic_write_text

    name = os.fsdecode(b"cell\xff.jpeg")
    atomic_write_text(tmp_path / "report.md", f"wrong: {name}\n")
    assert (tmp_path / "report.md").read_bytes() == b"wrong: cell\xff.jpeg\n"


def test_folders_made_for_an_output_are_removed_innermost_first_while_empty(tmp_path: Path) -> None:
    """`missing_folders` lists the folders an output's path will make, innermost first, and `remove_empty` removes
    them so where the work fails, up to the first that holds a file: a failed run leaves no empty folders behind."""
    from wbc.io import missing_folders, remove_empty

    out = tmp_path / "a" / "b" / "c"
    made = missing_folders(out)
    assert made == [out, tmp_path / "a" / "b", tmp_path / "a"]
    out.mkdir(parents=True)
    (tmp_path / "a" / "kept.txt").write_text("")
    remove_empty(made)
    assert not (tmp_path / "a" / "b").exists() and (tmp_path / "a" / "kept.txt").exists()


def test_only_a_data_set_field_is_a_field_cell() -> None:
    """A cell is one of the data set's fields only as `cell_key` names one, the whole name: a file of one's own named
    after a BCCD field ("BloodImage_00012_a", "BloodImage_123") is its own cell, told apart from its copies as such."""
    from wbc.data import cell_key, is_field_cell

    assert is_field_cell("NEUTROPHIL/BloodImage_00012")
    for own in ("BloodImage_00012_a", "BloodImage_00012 copy", "BloodImage_123", "BloodImage_000123"):
        assert not is_field_cell(cell_key("NEUTROPHIL", f"{own}.jpeg")), own


def test_files_of_one_name_in_two_subfolders_are_two_cells(data_copy: Path) -> None:
    """Two patients' subfolders of a class folder may hold files of one name: each file is a cell named by its path
    under the class folder ("NEUTROPHIL/p1/001"), as runs' split.json files name them; by its name alone, two cells
    were taken for one."""
    folder = data_copy / "TEST_SIMPLE" / "NEUTROPHIL"
    first, second = sorted(folder.iterdir())
    for patient, image in (("p1", first), ("p2", second)):
        (folder / patient).mkdir()
        image.rename(folder / patient / "001.jpeg")
    cells = {s.cell for s in list_split(data_copy, "TEST_SIMPLE") if s.label == CLASSES.index("NEUTROPHIL")}
    assert cells == {"NEUTROPHIL/p1/001", "NEUTROPHIL/p2/001"}


def test_the_files_passed_over_show_six_kinds_and_say_there_are_more() -> None:
    """What files that are no image were shows at most six kinds, with ", ..." only where there are more."""
    from wbc.io import passed_over

    six = [Path(f"x.{ext}") for ext in ("a", "b", "c", "d", "e", "f")]
    assert passed_over(six) == "6 other file(s) passed over: .a, .b, .c, .d, .e, .f"
    assert passed_over([*six, Path("x.g")]) == "7 other file(s) passed over: .a, .b, .c, .d, .e, .f, ..."


def test_a_folder_given_as_the_output_file_is_told_a_file_name_to_give(tmp_path: Path) -> None:
    """A folder given where an output file is asked for is refused before the work with a file name in it to give."""
    from wbc.errors import OutputError
    from wbc.io import check_writable_file

    with pytest.raises(OutputError, match=f"^{tmp_path}: is a folder; give a file name for the output, "
                                          f"e.g. {tmp_path / 'predictions.csv'}$"):
        check_writable_file(tmp_path)


def test_first_copies_points_each_repeat_at_the_first() -> None:
    """Each key seen before points at its first item, however often it comes again; items with no key
    (None: no bytes read) neither repeat nor are repeated."""
    from wbc.io import first_copies

    assert first_copies(["a", None, "b", "a", None, "a", "b"]) == {3: 0, 5: 0, 6: 2}
    assert first_copies([]) == {} and first_copies([None, None]) == {}


def test_every_formula_start_is_quoted_for_a_spreadsheet() -> None:
    """A cell starting with any character a spreadsheet starts a formula with (OWASP's list: =, +, -, @, tab and
    carriage return) gets a ' in front, as does one starting with ' itself; others are left as they are."""
    from wbc.io import spreadsheet_text

    for start in ("=", "+", "-", "@", "\t", "\r", "'"):
        assert spreadsheet_text(f"{start}1+1.jpeg") == f"'{start}1+1.jpeg", repr(start)
    for plain in ("cell.jpeg", " =x.jpeg", "x=1.jpeg", "", "\u00e9.png"):
        assert spreadsheet_text(plain) == plain


def test_unquoted_takes_off_only_the_quote_spreadsheet_text_added() -> None:
    """`unquoted` gives back every text `spreadsheet_text` quoted, and leaves a ' it did not add: a name typed into
    the table as 'cell.jpeg (no formula start after the ') keeps it, as the file's name has it."""
    from wbc.io import spreadsheet_text, unquoted

    for text in ("=x.jpeg", "+1", "-a", "@b", "\tc", "\rd", "'e", "''f", "plain.jpeg", "", "'"):
        assert unquoted(spreadsheet_text(text)) == text, repr(text)
    for text in ("'cell.jpeg", "'", "'a'=b", "' =x"):
        assert unquoted(text) == text, repr(text)


def test_a_folder_that_takes_no_files_is_said_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder that exists but answers a new file with "no such file" (/proc) is named as taking no new
    files, not with the system's "No such file or directory" about a folder that is there."""
    import errno
    import tempfile

    from wbc.errors import OutputError
    from wbc.io import check_writable_file, check_writable_folder

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOENT, "No such file or directory")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(OutputError, match=f"^{tmp_path}/x.csv: cannot write it: folder {tmp_path} is not writable "
                                          r"\(it takes no new files\)$"):
        check_writable_file(tmp_path / "x.csv")
    with pytest.raises(OutputError, match=rf"^{tmp_path}/a/b: cannot be made in {tmp_path} \(it takes no new files\); "):
        check_writable_folder(tmp_path / "a" / "b")


def test_a_test_split_may_lack_a_class_but_train_may_not(tmp_path: Path, data_copy: Path) -> None:
    """A user's own TEST without one type is listed (and scored, as --folder scores such a folder); a
    TRAIN without one is refused by name, since the network would never learn it."""
    root = data_copy
    shutil.rmtree(root / "TEST_SIMPLE" / "EOSINOPHIL")
    assert {s.label for s in list_split(root, "TEST_SIMPLE")} == {1, 2, 3}
    shutil.rmtree(root / "TRAIN" / "EOSINOPHIL")
    with pytest.raises(DataError, match=r"TRAIN: missing class folder\(s\) EOSINOPHIL"):
        list_split(root, "TRAIN")


def test_the_folds_error_offers_only_fewer_folds(fixture_root: Path) -> None:
    """At 2 folds no larger --val-fraction helps (0.5 is refused), and at 3 only 2 folds are fewer."""
    samples = list_split(fixture_root, "TRAIN")  # 3 cells a class
    with pytest.raises(DataError) as two:
        list(grouped_kfold([s for s in samples if s.cell == samples[0].cell], k=2))
    assert "--val-fraction" not in str(two.value)
    with pytest.raises(DataError, match=r"or --val-fraction 0\.4 to 0\.49 \(2 folds\)$"):
        list(grouped_kfold([s for s in samples if s.cell != samples[0].cell], k=3))


def test_the_loose_files_note_shows_control_characters_escaped(data_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An image beside the class folders whose name holds a terminal escape code is named escaped."""
    from wbc.data import forget_notes

    forget_notes()
    (data_copy / "TEST_SIMPLE" / "a\x1b[31mred.jpeg").write_bytes(b"x")
    list_split(data_copy, "TEST_SIMPLE")
    err = capsys.readouterr().err
    assert "a\\x1b[31mred.jpeg" in err and "\x1b" not in err


def test_a_link_to_nothing_in_a_class_folder_is_refused(data_copy: Path) -> None:
    """A link without an image's name that leads to nothing (a patient's folder moved away, or a loop) is
    refused by name: the images behind it would be left out without a word."""
    (data_copy / "TEST_SIMPLE" / "EOSINOPHIL" / "patient1").symlink_to("/nowhere/at/all")
    with pytest.raises(DataError, match=r"(?s)1 link\(s\) in the class folders lead to nothing .*EOSINOPHIL/patient1$"):
        list_split(data_copy, "TEST_SIMPLE")


def test_a_write_through_a_link_that_loops_is_refused(tmp_path: Path) -> None:
    """An output path that is a link looping on itself is named, not a traceback or a link replaced."""
    from wbc.errors import OutputError
    from wbc.io import atomic_write_bytes, check_writable_file

    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    for write in (lambda p: atomic_write_bytes(p, b"x"), check_writable_file):
        with pytest.raises(OutputError, match=f"^{tmp_path}/a: is a link that loops"):
            write(tmp_path / "a")
    assert (tmp_path / "a").is_symlink()


def test_folder_hints_for_a_data_set_root_and_plural_classes(tmp_path: Path, fixture_root: Path) -> None:
    """--folder given the data set's own top folder is told --data; plural class folders, the singular."""
    import shutil

    shutil.copytree(fixture_root, tmp_path / "top" / "dataset2-master" / "images")
    with pytest.raises(DataError, match=f"holds a data set .*give it as --data {tmp_path / 'top'}"):
        list_folder(tmp_path / "top")
    for name in ("EOSINOPHILS", "LYMPHOCYTE"):
        (tmp_path / "pl" / name).mkdir(parents=True)
    with pytest.raises(DataError, match=r"unknown class folder\(s\) EOSINOPHILS; .*Name class folders in the singular"):
        list_folder(tmp_path / "pl")
    for split, name in (("TRAIN", "EOSINOPHILS"), ("TRAIN", "LYMPHOCYTE"), ("TEST", "MONOCYTES")):
        (tmp_path / "both" / split / name).mkdir(parents=True)  # one message names the plurals of every split
    with pytest.raises(DataError, match=r"TRAIN: unknown class folder\(s\) EOSINOPHILS; .*so too in TEST: MONOCYTES$"):
        list_split(tmp_path / "both", "TRAIN")


def test_the_plural_hint_names_no_split_whose_class_folders_are_right(tmp_path: Path) -> None:
    """A split of class folders in the plural beside one whose class folders are named right is told to rename its
    own, and the other split is not named as needing it too."""
    for split, name in (("TRAIN", "EOSINOPHILS"), ("TRAIN", "LYMPHOCYTE"), ("TEST", "EOSINOPHIL"), ("TEST", "LYMPHOCYTE")):
        (tmp_path / "d" / split / name).mkdir(parents=True)
    with pytest.raises(DataError, match=r"TRAIN: unknown class folder\(s\) EOSINOPHILS; .*Name class folders in the "
                                        r"singular \([A-Z, ]+, in any case\)$"):
        list_split(tmp_path / "d", "TRAIN")


def test_a_class_folder_named_with_a_trailing_space_is_told_so(tmp_path: Path) -> None:
    """A class folder named "Eosinophil " (a blank after the name) is told to be renamed, not to be moved out as a
    fifth type."""
    for name in ("Eosinophil ", "LYMPHOCYTE", "Monocyte", "neutrophil"):
        (tmp_path / "own" / name).mkdir(parents=True)
    with pytest.raises(DataError) as e:
        list_folder(tmp_path / "own")
    assert str(e.value).endswith("unknown class folder(s) Eosinophil ; expected EOSINOPHIL, LYMPHOCYTE, MONOCYTE, "
                                 "NEUTROPHIL. 'Eosinophil ' has a space or another blank before or after its name: "
                                 "rename it Eosinophil")
    assert "move" not in str(e.value)
    (tmp_path / "own" / "Eosinophil ").rename(tmp_path / "own" / "Eosinophils\t")  # in the plural too: the singular
    with pytest.raises(DataError, match=r"'Eosinophils\\t' has a space or another blank before or after its name: "
                                        r"rename it Eosinophil$"):
        list_folder(tmp_path / "own")


def test_a_class_folder_linked_to_nothing_is_refused(data_copy: Path) -> None:
    """A class folder that is a link to nothing is named: a test split may lack a class, so it vanished."""
    shutil.rmtree(data_copy / "TEST_SIMPLE" / "MONOCYTE")
    (data_copy / "TEST_SIMPLE" / "MONOCYTE").symlink_to("/nowhere")
    with pytest.raises(DataError, match="MONOCYTE: a class folder that is a link to nothing"):
        list_split(data_copy, "TEST_SIMPLE")


def test_a_class_folder_that_is_a_link_to_a_folder_is_read(data_copy: Path, tmp_path: Path) -> None:
    """A class folder that is a link to a folder elsewhere (images kept on another disk) is read as the folder it
    leads to: only a link to nothing is refused."""
    elsewhere = tmp_path / "elsewhere"
    shutil.move(data_copy / "TEST_SIMPLE" / "MONOCYTE", elsewhere)
    (data_copy / "TEST_SIMPLE" / "MONOCYTE").symlink_to(elsewhere)
    monocytes = [s.path.name for s in list_split(data_copy, "TEST_SIMPLE") if CLASSES[s.label] == "MONOCYTE"]
    assert sorted(monocytes) == sorted(p.name for p in elsewhere.iterdir()) != []


def test_a_run_keeps_a_data_folder_given_from_home_with_home_expanded(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A data folder given as ~/cells (quoted, or as --data=~/cells, which the shell leaves alone) is kept as the
    folder in the home folder, not as a folder named ~ in the current one, where the run's export would look."""
    from wbc.folders import kept_data_folder

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert kept_data_folder("~/cells") == str(tmp_path / "home" / "cells")


def test_colourless_reads_the_whole_crop_where_the_grid_sees_no_colour() -> None:
    """A gray crop with colour only between the pixels the quick look reads is not colourless."""
    from wbc.cache import colourless
    from wbc.data import Sample

    x = np.full((3, 16, 16, 3), 128, np.uint8)
    x[1, 5, 7] = (200, 100, 150)  # off the every-4th-pixel grid
    x[2, 4, 8] = (200, 100, 150)  # on it
    samples = [Sample(Path(f"{i}.png"), 0, str(i)) for i in range(3)]
    assert colourless(x, samples) == [Path("0.png")]
    # JPEG's noise in a gray photo: a spread of GRAY_SPREAD_MAX is no colour, as the screening reads it; one more is.
    from wbc.photo_checks import GRAY_SPREAD_MAX

    x = np.full((2, 16, 16, 3), 128, np.uint8)
    x[:, 5, 7, 2] = [128 + GRAY_SPREAD_MAX, 128 + GRAY_SPREAD_MAX + 1]
    assert colourless(x, samples[:2]) == [Path("0.png")]
    x[:, 4, 8, 2] = x[:, 5, 7, 2]  # the same on the quick look's grid too
    assert colourless(x, samples[:2]) == [Path("0.png")]


def test_files_too_small_are_those_with_a_side_under_the_screenings_least() -> None:
    """A field is too small where either side falls under photo_checks.MIN_SIDE_PX (a strip too), as the screening
    of `wbc predict` calls it; one of that side exactly is not."""
    from wbc.cache import files_too_small
    from wbc.data import Sample
    from wbc.photo_checks import MIN_SIDE_PX

    sides = np.array([[240, 320], [MIN_SIDE_PX - 1, 320], [320, MIN_SIDE_PX - 1], [MIN_SIDE_PX, MIN_SIDE_PX]])
    samples = [Sample(Path(f"{i}.png"), 0, str(i)) for i in range(4)]
    assert files_too_small(samples, sides) == [Path("1.png"), Path("2.png")]



def test_copies_of_ones_own_image_are_one_cell(data_copy: Path) -> None:
    """Byte-identical copies of a file the data set's table does not know are one cell (as two, a copy fell
    on both sides of the cell-grouped split); copies in two class folders are refused (two labels)."""
    source = next((data_copy / "TEST_SIMPLE" / "EOSINOPHIL").glob("*.jpeg")).read_bytes()
    for name in ("mine.jpeg", "patient2/mine copy.jpeg"):
        (data_copy / "TEST_SIMPLE" / "EOSINOPHIL" / name).parent.mkdir(exist_ok=True)
        (data_copy / "TEST_SIMPLE" / "EOSINOPHIL" / name).write_bytes(b"own" + source)
    cells = {s.path.name: s.cell for s in list_split(data_copy, "TEST_SIMPLE")}
    assert cells["mine.jpeg"] == cells["mine copy.jpeg"] == "EOSINOPHIL/mine"
    # Different files of one stem, told apart by their suffix alone, are as many cells (they were one); a copy of
    # one of them joins its cell
    others = sorted((data_copy / "TEST_SIMPLE").glob("*/*.jpeg"))[:3]
    for src, ext in zip(others, ("jpg", "png", "tif")):
        (data_copy / "TEST_SIMPLE" / "NEUTROPHIL" / f"cell.{ext}").write_bytes(b"mine" + src.read_bytes())
    (data_copy / "TEST_SIMPLE" / "NEUTROPHIL" / "cell copy.jpeg").write_bytes(b"mine" + others[1].read_bytes())
    cells = {s.path.name: s.cell for s in list_split(data_copy, "TEST_SIMPLE")}
    assert cells["cell.jpg"] == "NEUTROPHIL/cell.jpg" and cells["cell.tif"] == "NEUTROPHIL/cell.tif"
    assert cells["cell copy.jpeg"] == cells["cell.png"] and len({cells[f"cell.{e}"] for e in ("jpg", "png", "tif")}) == 3
    assert cells["mine.jpeg"] == "EOSINOPHIL/mine"  # a stem of its own keeps the name earlier runs' splits hold
    (data_copy / "TEST_SIMPLE" / "LYMPHOCYTE" / "same.jpeg").write_bytes(b"own" + source)
    with pytest.raises(DataError, match=r"(?s)1 image\(s\) are in two class folders, byte for byte.*same.jpeg \(LYMPHOCYTE\)"):
        list_split(data_copy, "TEST_SIMPLE")


def test_a_data_set_file_copied_into_another_class_folder_is_refused(data_copy: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A data set file copied into another class's folder, under its name or another (a file of one's own there,
    the table not knowing it for that class), is refused as a user's own copy is, by `wbc train`, `wbc evaluate
    --folder` and `wbc data check` alike (all list it): it was trained and scored under two labels. A renamed copy
    in its own class is let be, and listing the data set alone reads no file's bytes."""
    import wbc.data
    from wbc.cli import main

    real_key, read = wbc.data._file_key, []

    def counting(path: Path, size: int, mtime_ns: int) -> str:
        read.append(path)
        return real_key(path, size, mtime_ns)

    monkeypatch.setattr(wbc.data, "_file_key", counting)
    assert len(list_split(data_copy, "TRAIN")) == 24 and read == []
    eos = sorted((data_copy / "TRAIN" / "EOSINOPHIL").glob("_*.jpeg"))[0]
    for name in (eos.name, "renamed.jpeg"):
        copy = data_copy / "TRAIN" / "NEUTROPHIL" / name
        shutil.copy(eos, copy)
        want = f"1 image(s) are in two class folders, byte for byte (one image, two labels); keep each in its class's " \
               f"folder only:\n  {eos} (EOSINOPHIL) and {copy} (NEUTROPHIL)"
        with pytest.raises(DataError) as e:
            list_split(data_copy, "TRAIN")
        assert str(e.value) == want
        with pytest.raises(DataError, match=re.escape(want)):
            list_folder(data_copy / "TRAIN")
        assert main(["data", "check", "--data", str(data_copy)]) == 2
        assert f"wbc: error: {want}" in capsys.readouterr().err
        copy.unlink()
    shutil.copy(eos, data_copy / "TRAIN" / "EOSINOPHIL" / "renamed.jpeg")
    assert len(list_split(data_copy, "TRAIN")) == 25


def test_a_renamed_copy_of_a_data_set_file_is_its_cell(data_copy: Path) -> None:
    """A data set file copied under another name into its own class folder shows the same cell, not one of its
    own (which a cell-grouped split could put on the other side from its original, and evaluate scored twice)."""
    eos = sorted((data_copy / "TRAIN" / "EOSINOPHIL").glob("_*.jpeg"))[0]
    shutil.copy(eos, data_copy / "TRAIN" / "EOSINOPHIL" / "Copy of it.jpeg")  # before the original in the listing
    shutil.copy(eos, data_copy / "TRAIN" / "EOSINOPHIL" / "renamed.jpeg")
    cells = {s.path.name: s.cell for s in list_split(data_copy, "TRAIN")}
    assert cells["Copy of it.jpeg"] == cells["renamed.jpeg"] == cells[eos.name] != "EOSINOPHIL/renamed"


def test_test_copies_of_training_images_are_found(data_copy: Path) -> None:
    """A TEST image that is a copy of a TRAIN one (a user's own files) is found, with the file it copies."""
    from wbc.data import test_copies_of

    shutil.copytree(data_copy / "TEST_SIMPLE", data_copy / "TEST")
    own = data_copy / "TRAIN" / "MONOCYTE" / "own.jpeg"
    own.write_bytes(b"own" + next((data_copy / "TRAIN" / "MONOCYTE").glob("_*.jpeg")).read_bytes())
    (data_copy / "TEST" / "MONOCYTE" / "again.jpeg").write_bytes(own.read_bytes())
    assert test_copies_of(data_copy, list_split(data_copy, "TRAIN")) == [(data_copy / "TEST" / "MONOCYTE" / "again.jpeg", own)]
    assert test_copies_of(data_copy / "TRAIN", list_split(data_copy, "TRAIN")) == []  # no TEST there
    # A data set TEST image copied into TRAIN under a name of one's own: trained on, then scored as unseen (it was
    # not found: only TEST files of one's own were compared)
    public = sorted((data_copy / "TEST" / "EOSINOPHIL").glob("_*.jpeg"))[0]
    (data_copy / "TRAIN" / "EOSINOPHIL" / "mine.jpeg").write_bytes(public.read_bytes())
    assert sorted(test_copies_of(data_copy, list_split(data_copy, "TRAIN"))) == sorted([
        (data_copy / "TEST" / "MONOCYTE" / "again.jpeg", own), (public, data_copy / "TRAIN" / "EOSINOPHIL" / "mine.jpeg")])


def test_images_photographed_unlike_the_public_data_set_are_said(data_copy: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A set of one's own photographed dimmer than the public data set (a lab's camera at x0.45) is told, when read,
    that the screening of wbc predict and the app is set for the public data set's white and calls such photos too
    dark (an own-data user test: trained, exported and evaluated without a word, then every TEST photo refused).
    The fixtures as they are (the data set's own) are told nothing; the whites are kept, in the cache too."""
    from wbc.data import forget_notes
    from wbc.robustness import brightness
    from wbc.white_balance import field_white

    monkeypatch.setenv("WBC_CACHE", str(tmp_path / "cache"))
    samples = list_split(data_copy, "TRAIN")
    forget_notes()
    plain = load_prepared(samples, PreprocessSpec(), progress=False)
    assert "darker or more tinted" not in capsys.readouterr().err
    first = np.asarray(Image.open(samples[0].path).convert("RGB"))
    assert plain.whites is not None and np.array_equal(plain.whites[0], field_white(first))
    for s in samples:
        Image.fromarray(brightness(0.45)(np.asarray(Image.open(s.path).convert("RGB")))).save(s.path, quality=95)
    for cached in (False, True):
        forget_notes()
        dim = load_prepared(samples, PreprocessSpec(), progress=False)
        err = capsys.readouterr().err
        assert f"wbc: note: {len(samples)} of {len(samples)} images are darker or more tinted than the public data " \
               "set's (its white about R 224, G 224, B 231), for which the screening of wbc predict and the app is " \
               "set: where its first look finds no white cell, it looks again with the white matched to it; it calls " \
               f"{len(samples)} of them too dark" in err, \
            (cached, err)
        assert dim.whites is not None and (dim.whites < 150).all()


def test_the_unlike_white_note_counts_a_cast_and_speaks_past_one_in_twenty() -> None:
    """A field whose white lies below the public data set's range in one channel alone (a cool camera's blue short)
    counts as unlike it, as the screening reads it; the note speaks where more than UNLIKE_WHITE_SHARE (one in
    20) of a set is unlike it, and counts those it would refuse (too dark to match)."""
    from wbc.cache import UNLIKE_WHITE_SHARE, unlike_white_note

    assert UNLIKE_WHITE_SHARE == 0.05
    like, blue_short, too_dark = (224.0, 224.0, 231.0), (224.0, 224.0, 190.0), (100.0, 100.0, 100.0)
    assert unlike_white_note(np.array([like] * 20)) == ""
    assert unlike_white_note(np.array([like] * 19 + [blue_short])) == ""  # 5%: not past it
    note = unlike_white_note(np.array([like] * 18 + [blue_short] * 2))
    assert note.startswith("wbc: note: 2 of 20 images are darker or more tinted") and "too dark" not in note
    assert "it calls 1 of them too dark or too cast to judge" in unlike_white_note(np.array([like] * 18 + [blue_short,
                                                                                                           too_dark]))
