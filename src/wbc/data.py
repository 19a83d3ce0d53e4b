"""Finding the images, naming their cells, cell-grouped splits and the decoded-image cache."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import io
import itertools
import json
import os
import re
import signal
import sys
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from wbc import decode, framing, imaging, pixels, screening
from wbc.decode import load_image
from wbc.errors import BadImageError, DataError, OutputError
from wbc.imaging import PreprocessSpec
from wbc.info import CLASS_INDEX, CLASSES, IMAGE_SUFFIXES, SPLITS
from wbc.io import atomic_write_bytes, bytes_key, files_under, passed_over, printable
from wbc.pixels import DATA_WHITE
from wbc.sources import field_name, likeliest_split, read_linked, source_field

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "blood-cells"


@dataclass(frozen=True)
class Sample:
    """One image file; `cell` is the same string for every view of one physical cell."""

    path: Path
    label: int
    cell: str


def default_data_path() -> Path | None:
    """`WBC_DATA` if set, else the shared copy beside the project, else None."""
    env = os.environ.get("WBC_DATA")
    if env:
        return Path(env)
    return SHARED_DATA if SHARED_DATA.is_dir() else None


def kept_data_folder(path: str | Path | None) -> str | None:
    """The data folder a run keeps in its config: the one given, else the default (WBC_DATA, or the shared
    copy) as it is now, made absolute, so that its export, evaluation or resume finds the same images from
    any folder and whatever WBC_DATA says then; None where there is none."""
    path = path if path is not None else default_data_path()
    return None if path is None else os.path.abspath(os.path.expanduser(path))


# Where an images root may lie below the folder given: the folder itself (or the data set's
# dataset2-master), this project's copy, and the Kaggle zip, which nests dataset2-master twice.
# Nothing deeper: a search of any depth picks unrelated folders (a test fixture under /tmp).
IMAGES_ROOT_LAYOUTS = (".", "images", "dataset2-master/images", "dataset2-master/dataset2-master/images")


def check_folder(p: Path) -> None:
    """DataError, naming `p`, unless it is a folder that can be read."""
    try:
        if p.is_dir():
            return
        exists = p.exists()
    except OSError as e:
        raise DataError(f"{p}: cannot be read ({e.strerror or e})") from e
    raise DataError(f"{p}: is a file, not a folder" if exists else f"{p}: no such folder")


def class_folders(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """The class folders under `folder` by class name, their names matched regardless of case
    (EOSINOPHIL, Eosinophil, eosinophil), and the names of the other folders there. OSError where
    `folder` cannot be listed."""
    found: dict[str, list[Path]] = {}
    unknown: list[str] = []
    for p in sorted(folder.iterdir()):
        if p.is_symlink() and not p.exists() and p.name.upper() in CLASS_INDEX:  # a whole class gone without a word
            raise DataError(f"{printable(str(p))}: a class folder that is a link to nothing (its target is gone, or "
                            "it loops); restore or remove it")
        if not p.is_dir() or p.name == "__MACOSX" or p.name.startswith("."):
            continue
        if p.name.upper() in CLASS_INDEX:
            found.setdefault(p.name.upper(), []).append(p)
        else:
            unknown.append(p.name)
    twice = [ps for ps in found.values() if len(ps) > 1]
    if twice:
        names = "; ".join(" and ".join(p.name for p in ps) for ps in twice)
        raise DataError(f"{folder}: class folders that differ only in case ({names}); merge them into one")
    return {c: ps[0] for c, ps in found.items()}, unknown


def _is_images_root(p: Path) -> bool:
    """Whether `p` holds a split folder with a class folder in it; OSError where it cannot be read."""
    return p.is_dir() and any((p / s).is_dir() and class_folders(p / s)[0] for s in SPLITS)


def find_images_root(path: str | Path | None = None) -> Path:
    """The folder holding TRAIN/TEST/TEST_SIMPLE: the folder given, or one of `IMAGES_ROOT_LAYOUTS`
    below it.

    Accepts this project's flattened copy (`blood-cells/dataset2-master/images`), the Kaggle zip's
    nested layout (`blood-cells/dataset2-master/dataset2-master/images`), a dataset2-master folder of
    either and the images folder itself.
    """
    source = ""  # a path from the environment is named as such: the user may not remember setting it
    if path is None:
        path = default_data_path()
        if path is None:
            raise DataError(
                f"no data set found: WBC_DATA is not set and {SHARED_DATA} (beside the project, not the current "
                "folder) does not exist; pass --data PATH or set WBC_DATA to the folder of the Kaggle "
                "data set paultimothymooney/blood-cells (`wbc data download` fetches it)"
            )
        source = " (from the environment variable WBC_DATA)" if os.environ.get("WBC_DATA") else ""
    base = Path(path).expanduser()
    try:
        check_folder(base)
    except DataError as e:
        raise DataError(f"{e}{source}") from e
    unreadable: list[str] = []
    for p in (base / layout for layout in IMAGES_ROOT_LAYOUTS):
        try:
            if _is_images_root(p):
                return p
        except OSError as e:  # an unreadable folder is skipped, and named if nothing is found
            unreadable.append(str(e.filename or p))
    looked = ", ".join(str(base / layout) for layout in IMAGES_ROOT_LAYOUTS)
    cannot = f"; cannot read {', '.join(unreadable)}" if unreadable else ""
    raise DataError(
        f"{base}: no folder with TRAIN, TEST or TEST_SIMPLE holding class folders ({', '.join(CLASSES)}) "
        f"was found; looked in {looked}{cannot}{source}{_layout_hint(base)}"
    )


def _layout_hint(base: Path) -> str:
    """What `base` holds that is near the layout, said so that a user's own folder can be put right: split
    folders named in lower case, class folders with no split folder above them, class names in the plural."""
    if base.name.upper() in SPLITS:
        return f". {base} is a split folder itself: give the folder that holds it, {base.parent}"
    if base.name.upper() in CLASSES and base.parent.name.upper() in SPLITS:
        return (f". {base} is a class folder of the split {base.parent.name}: give the folder that holds the "
                f"splits, {base.parent.parent}")
    try:
        names = [p.name for p in base.iterdir() if p.is_dir()]
    except OSError:
        return ""
    splits = [n for n in names if n.upper() in SPLITS and n not in SPLITS]
    if splits:
        return f". Split folders are named in capitals: rename {', '.join(splits)} to {', '.join(n.upper() for n in splits)}"
    # One's own zip unpacked into a folder of its name, as Kaggle's is: the data one level down
    inner = [n for n in names if any((base / n / split).is_dir() for split in SPLITS)]
    if len(inner) == 1:
        return f". {base / inner[0]} holds the split folders: give it as --data {base / inner[0]}"
    near = _near_class_names(names)
    if near:
        return (f". {base} holds class folders ({', '.join(sorted(near))}) itself: to evaluate them, give it as "
                f"--folder {base}; to train, put them in a TRAIN folder (and the images to test on in a TEST folder "
                f"of the same class folders), e.g. {base / 'TRAIN' / CLASSES[0]}, each named as a class in the "
                f"singular ({', '.join(CLASSES)}, in any case)")
    for split in (n for n in names if n in SPLITS):  # a split whose class folders are misnamed (in the plural)
        if plural := _plural_class_folders(base / split):
            return (f". {base / split} holds {', '.join(plural)}: name class folders in the singular "
                    f"({', '.join(CLASSES)}, in any case)")
    return ""


def _class_folders_hint(folder: Path, others: list[str], beside_classes: bool = False) -> str:
    """What the unknown folders in a folder of class folders say of it: split folders (a data folder,
    given as --folder), the data set's own folders above its images, or class names in the plural."""
    splits = [n for n in others if n.upper() in SPLITS]
    if splits:
        # In lower case, --data would refuse them next: the renaming first, in the same words
        lower = [n for n in splits if n not in SPLITS]
        rename = (f" (rename {', '.join(lower)} to {', '.join(n.upper() for n in lower)} first: split folders are "
                  "named in capitals)" if lower else "")
        return (f". {folder} holds split folders ({', '.join(splits)}): it is a data folder, whose splits hold the "
                f"class folders; give it as --data {folder}, or one split as --folder {folder / splits[0].upper()}"
                + rename)
    try:
        root = find_images_root(folder)
    except DataError:
        if not any(n.upper() not in CLASS_INDEX for n in _near_class_names(others)):
            # A fifth type (BASOPHIL) beside the four's folders: the model learns the four alone. Not where no class
            # folder is there (the data set's own dataset-master, a folder of dated photos): no cells' folders.
            return (f". The model learns these four types only: move {', '.join(others)} out of {folder} (images of "
                    "other cells cannot be learnt as one of them)") if beside_classes else ""
        # The other splits beside it, at once: fixed split by split, the next command found the next.
        also = [f"{split}: {', '.join(more)}" for split in SPLITS if split != folder.name
                if (more := _plural_class_folders(folder.parent / split))]
        return (f". Name class folders in the singular ({', '.join(CLASSES)}, in any case)"
                + (f"; so too in {'; '.join(also)}" if also else ""))
    return (f". {folder} holds a data set (its images are in {root}): give it as --data {folder}, or one split as "
            f"--folder {root / 'TEST'}")


def _near_class_names(names: list[str]) -> list[str]:
    """The folder names among `names` that are a class's, in any case or in the plural."""
    return [n for n in names if n.upper() in CLASS_INDEX or n.upper().rstrip("S") in CLASS_INDEX]


def _plural_class_folders(folder: Path) -> list[str]:
    """The folders in `folder` named as a class in the plural, sorted ([] where it cannot be listed)."""
    try:
        names = [p.name for p in folder.iterdir() if p.is_dir()]
    except OSError:
        return []
    return sorted(n for n in _near_class_names(names) if n.upper() not in CLASS_INDEX)


# A cell of the public data set, as `cell_key` names one whose original field is known.
FIELD_CELL = re.compile(r"[A-Z]+/BloodImage_\d{5}")


def is_field_cell(cell: str) -> bool:
    """Whether `cell` (a `cell_key`) is one of the data set's original fields, not a file of its own."""
    return FIELD_CELL.fullmatch(cell) is not None


def cell_key(class_name: str, file_name: str, split: str | None = None, prefer: str | None = None) -> str:
    """The cell a file shows: "CLASS/BloodImage_NNNNN" for a data set file whose original field is
    known (`wbc.sources`; `split`: the folder it is in, and `prefer`, as `source_field` takes them), else
    "CLASS/<file stem>" (one cell each; where files of one stem differ in their suffix, the listing tells
    them apart by it, `_suffixes_apart`).

    The `<n>` of the data set's `_<n>_<random>.jpeg` names is not used: it is not a cell number
    (see `wbc.sources`), and grouping by it let every cell into both sides of a split.
    """
    field = source_field(split, class_name, Path(file_name).name, prefer=prefer)
    # Elsewhere the file is its own cell: its path under the class folder, without the suffix (as runs' split.json
    # files name them).
    return f"{class_name}/{field_name(field) if field is not None else Path(file_name).with_suffix('').as_posix()}"


def list_folder(folder: str | Path, require_all_classes: bool = True) -> list[Sample]:
    """Every image under `folder/<CLASS>/`, sorted, labelled by its class folder."""
    folder = Path(folder)
    check_folder(folder)
    try:
        return _list_class_folders(folder, require_all_classes)
    except OSError as e:
        raise DataError(f"{e.filename or folder}: cannot be read ({e.strerror or e})") from e


def _list_class_folders(folder: Path, require_all_classes: bool) -> list[Sample]:
    present, others = class_folders(folder)
    missing = [c for c in CLASSES if c not in present]
    if others:
        raise DataError(f"{folder}: unknown class folder(s) {', '.join(others)}; expected {', '.join(CLASSES)}"
                        + _class_folders_hint(folder, others, bool(present)))
    if missing and (require_all_classes or len(missing) == len(CLASSES)):
        raise DataError(f"{folder}: missing class folder(s) {', '.join(missing)}")
    # Images in a class folder's subfolders (a patient's, a slide's) count too, as `wbc predict` finds them.
    files = {c: sorted(files_under(present[c], strict=True)) for c in CLASSES if c in present}
    # A link to nothing with an image's name is named where it is read; one without (a patient's folder
    # moved away, or a link that loops) would hide its images without a word.
    broken = [printable(str(f)) for fs in files.values() for f in fs
              if f.suffix.lower() not in IMAGE_SUFFIXES and f.is_symlink() and not f.exists()]
    if broken:
        raise DataError(f"{len(broken)} link(s) in the class folders lead to nothing (the target is gone, or the "
                        f"link loops), and any images behind them would be left out; restore or remove them:"
                        f"\n  {listed(broken)}")
    # A folder not named as a split: the split that holds most of its names settles a name found in two.
    prefer = None if folder.name in SPLITS else likeliest_split([(c, f.name) for c, fs in files.items() for f in fs])
    samples = [Sample(path=f, label=CLASS_INDEX[c],
                      cell=cell_key(c, str(f.relative_to(present[c])), folder.name, prefer))
               for c, fs in files.items() for f in fs if f.suffix.lower() in IMAGE_SUFFIXES]
    # Named, as `wbc predict` names them in a folder: a phone's HEIC photos in a class folder were left out unsaid
    others = [f for fs in files.values() for f in fs if f.suffix.lower() not in IMAGE_SUFFIXES
              and not f.name.startswith(".") and f.exists()]
    if others:
        say_once(f"wbc: note: {printable(str(folder))}: {passed_over(others)} in the class folders, left out; images "
                 f"are read by their names, {' '.join(sorted(IMAGE_SUFFIXES))}")
    if not samples:
        raise DataError(f"{folder}: the class folders hold no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    _refuse_files_reached_twice(samples)
    samples = _copies_as_one_cell(_suffixes_apart(samples))
    loose = [printable(p.name) for p in sorted(folder.iterdir())  # hidden ones passed over, as everywhere (macOS's ._ copies)
             if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()]
    note = (f"wbc: note: {printable(str(folder))}: {len(loose)} image file(s) beside the class folders, in none of "
            f"them, left out:\n  {listed(loose)}")
    if loose:  # a class is the folder an image is in: these have none
        say_once(note)
    return samples


def _suffixes_apart(samples: list[Sample]) -> list[Sample]:
    """The samples with files of one's own that share a stem (cell.jpg, cell.png, cell.tif: one cell, and the cell
    figures and intervals rested on it) told apart as cells by their suffix ("CLASS/cell.png"); every other cell as
    `cell_key` names it, as earlier runs' split.json files hold them. Byte-identical copies are made one after."""
    shared = Counter(s.cell for s in samples if not is_field_cell(s.cell))
    return [replace(s, cell=s.cell + s.path.suffix) if shared[s.cell] > 1 and not is_field_cell(s.cell) else s
            for s in samples]


def _refuse_files_reached_twice(samples: Sequence[Sample]) -> None:
    """DataError where links make one file two samples: a link in one class folder to another's put each
    of its images under both labels (wrong figures, without a word), and a link up the tree every image
    under every class. Links to nothing, or that loop, are left to be named where they are read."""
    first: dict[tuple[int, int], Path] = {}
    twice: list[str] = []
    for s in samples:
        try:
            st = s.path.stat()  # (device, inode): a hard link too, at a tenth of resolve()'s time
        except OSError:  # a link to nothing, or one that loops: named when it is read
            continue
        if (st.st_dev, st.st_ino) in first:
            twice.append(f"{first[st.st_dev, st.st_ino]} and {s.path}")
        else:
            first[st.st_dev, st.st_ino] = s.path
    if twice:
        raise DataError(f"{len(twice)} image file(s) reached twice through a link in a class folder (each image must "
                        f"be in its class's folder once; remove the link):\n  {listed(twice)}")


def _copies_as_one_cell(samples: list[Sample]) -> list[Sample]:
    """The samples with byte-identical copies of a file the data set's table does not know (a user's own,
    each its own cell) made one cell, the first copy's: as two cells a copy fell on both sides of a
    cell-grouped split and its reading was validated on itself. DataError where copies lie in two class
    folders (one image, two labels). The data set's own files are grouped by their fields already."""
    first: dict[str, Sample] = {}
    out: list[Sample] = []
    twice: list[str] = []
    for s, key in zip(samples, _own_file_keys(samples)):
        if key is None:
            out.append(s)
            continue
        seen = first.setdefault(key, s)
        if seen.label != s.label:
            twice.append(f"{printable(str(seen.path))} ({CLASSES[seen.label]}) and {printable(str(s.path))} "
                         f"({CLASSES[s.label]})")
        out.append(s if seen is s else Sample(path=s.path, label=s.label, cell=seen.cell))
    if twice:
        raise DataError(f"{len(twice)} image(s) are in two class folders, byte for byte (one image, two labels); "
                        f"keep each in its class's folder only:\n  {listed(twice)}")
    return out


def test_copies_of(root: Path, train: Sequence[Sample], test: Sequence[Sample] | None = None) -> list[tuple[Path, Path]]:
    """(TEST file, TRAIN file) for each of `root`'s TEST images (or of `test`, another split's) that is a
    byte-identical copy of one of the TRAIN samples `train` (a user's own files: the data set's are told apart
    by their fields); [] where there is no TEST to read. Its TEST figures would score such an image as seen."""
    if test is None:
        try:
            test = list_split(root, "TEST")
        except DataError:
            return []
    trained: dict[str, Path] = {}
    for s, key in zip(train, _own_file_keys(train)):
        if key is not None:
            trained.setdefault(key, s.path)
    return [(s.path, trained[key]) for s, key in zip(test, _own_file_keys(test)) if key in trained]


def _own_file_keys(samples: Sequence[Sample]) -> list[str | None]:
    """Each sample's `bytes_key`, for a file of one's own (None for a data set field's, told apart by its
    field, and for one that cannot be read, named where it is decoded)."""
    keys: list[str | None] = []
    for s in samples:
        try:
            st = s.path.stat()
            keys.append(None if is_field_cell(s.cell) else _file_key(s.path, st.st_size, st.st_mtime_ns))
        except OSError:
            keys.append(None)
    return keys


@functools.lru_cache(maxsize=65536)
def _file_key(path: Path, size: int, mtime_ns: int) -> str:
    """A file's `bytes_key`, read once for its size and time: training lists TRAIN, then compares TEST with it."""
    return bytes_key(path.read_bytes())


_SAID: set[str] = set()  # the notes on loose files printed so far


def say_once(note: str) -> None:
    """Print `note` to stderr unless it was said before in this command (an export lists TRAIN three
    times, a cross-validation trains five folds)."""
    if note not in _SAID:
        _SAID.add(note)
        print(note, file=sys.stderr)


def forget_notes() -> None:
    """Let the notes said once be said again (a new command in the same process)."""
    _SAID.clear()


def list_split(root: str | Path, split: str, every_class: bool = False) -> list[Sample]:
    """The samples of TRAIN, TEST or TEST_SIMPLE under an images root. `every_class`: refuse a class
    folder that holds no images, as a missing one is refused (training: a network would never see it)."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    folder = Path(root) / split
    if not folder.is_dir():
        near = [p.name for p in Path(root).iterdir() if p.is_dir() and p.name.upper() == split] if Path(root).is_dir() else []
        raise DataError(f"{root}: has no {split} folder"
                        + (f" ({near[0]} is there: split folders are named in capitals, rename it to {split})" if near else ""))
    # A test split may lack a class (a user's own, where some type was never photographed): scored as
    # `--folder` scores such a folder. TRAIN needs every class: a network would never learn the missing one.
    samples = list_folder(folder, require_all_classes=split == "TRAIN")
    if every_class and (empty := [c for c in CLASSES if not any(s.label == CLASS_INDEX[c] for s in samples)]):
        raise DataError(f"{folder}: class folder(s) with no images: {', '.join(empty)} "
                        f"(images are read by their names, {' '.join(sorted(IMAGE_SUFFIXES))})")
    return samples


# The folds error's way to fewer folds, by the folds asked: none below 2 (0.5 would hold out every other cell).
FEWER_FOLDS = {2: "", 3: " or --val-fraction 0.4 to 0.49 (2 folds)",
               4: " or a larger --val-fraction (fewer folds: 0.34 makes 3, 0.4 to 0.49 makes 2)"}


def grouped_kfold(samples: Sequence[Sample], k: int = 5, seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(train_idx, val_idx) for k folds, stratified by class, never splitting a cell."""
    from sklearn.model_selection import StratifiedGroupKFold

    y = np.array([s.label for s in samples])
    groups = np.array([s.cell for s in samples])
    counts = np.array([len({s.cell for s in samples if s.label == c}) for c in range(len(CLASSES))])
    if k < 2 or (counts[counts > 0] < k).any():
        short = ", ".join(f"{c} {n}" for c, n in zip(CLASSES, counts.tolist()) if 0 < n < k)
        raise DataError(f"cannot make {k} cell-grouped folds: cells per class are "
                        f"{', '.join(f'{c} {n}' for c, n in zip(CLASSES, counts.tolist()))}, and each class needs one "
                        f"in every fold, so at least {k} (short: {short or 'none; fewer than 2 folds asked'}); give more "
                        "cells (a larger --limit-cells, where it is set)" + FEWER_FOLDS.get(k, FEWER_FOLDS[4]))
    skf = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    fold = np.empty(len(y), dtype=int)
    for i, (_, val) in enumerate(skf.split(np.zeros(len(y)), y, groups)):
        fold[val] = i
    # A cell whose field the data set shows under another label too (`wbc.sources.linked_fields`) goes to
    # that cell's fold: apart, a fold validated the one cell on a model trained on it under the other label.
    # Moved after the split, so that every other cell stays where it was.
    _join_linked(fold, groups, y)
    for i in range(k):
        yield np.flatnonzero(fold != i), np.flatnonzero(fold == i)


def _join_linked(fold: np.ndarray, groups: np.ndarray, y: np.ndarray) -> None:
    """Put each linked cell (`read_linked`) in its first's fold, in place (`fold`, `groups`, `y`: per
    file). Where that would leave its old fold without a cell of its type, a cell of that type in the
    first's fold takes its place there: every fold keeps every type it had."""
    linked = read_linked()
    for cell, first in linked.items():
        at, to = groups == cell, groups == first
        if not at.any() or not to.any():
            continue
        old, new, label = int(fold[at][0]), int(fold[to][0]), int(y[at][0])
        if old == new:
            continue
        same_type = np.unique(groups[(fold == old) & (y == label) & ~at])
        if not len(same_type):
            # The other way round: a cell of its type in the first's fold (not the first) goes to its old fold.
            swap = [g for g in np.unique(groups[(fold == new) & (y == label) & ~to]) if g not in linked]
            if swap:
                fold[groups == swap[0]] = old
        fold[at] = new


def grouped_split(samples: Sequence[Sample], val_fraction: float = 0.2, seed: int = 0,
                  fold: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One cell-grouped, class-stratified train/validation split (indices into `samples`).

    The cells are dealt into round(1 / val_fraction) folds; `fold` picks the one held out, so the
    folds 0..k-1 under one seed are a grouped cross-validation of TRAIN."""
    if not 0.0 < val_fraction < 0.5:
        raise DataError(f"--val-fraction {val_fraction}: the share held out must be above 0 and below 0.5")
    k = round(1 / val_fraction)
    if not 0 <= fold < k:
        raise DataError(f"fold must be in 0..{k - 1} for val_fraction {val_fraction}, got {fold}")
    return next(itertools.islice(grouped_kfold(samples, k=k, seed=seed), fold, None))


# ---- decoded-image cache -------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """The kept samples as the network is given them, and what preparing each one found."""

    x: np.ndarray  # uint8 (N, h, w, 3)
    samples: list[Sample]
    reduced_by: np.ndarray  # (N,): a magnified field was shrunk by this before the crop (1: not)
    gains: np.ndarray  # (N, 3): the field's `screening.input_gains`, NaN where it has none
    skipped: tuple[str, ...] = ()  # the files left out as unusable (skip_bad), by path
    whites: np.ndarray | None = None  # (N, 3): the field's white (`screening.field_white`), R, G, B


def _decode(args: tuple[str, dict]) -> tuple[np.ndarray, float, np.ndarray, np.ndarray] | str:
    path, spec_d = args
    try:
        x, loc, field = screening.prepared_as_predicted(load_image(path), PreprocessSpec.from_dict(spec_d))
    except BadImageError as e:
        return str(e)
    white = screening.field_white(field)
    gains = screening.input_gains(field, white)
    return x, loc.reduced_by, np.full(3, np.nan) if gains is None else gains, white


CACHE_LIMIT_BYTES = 2 * 1024**3  # the least recently used decoded sets beyond this are removed


def cache_dir() -> Path:
    """WBC_CACHE (an empty value counts as unset; `~` is the home folder), else ~/.cache/wbc."""
    return Path(os.environ.get("WBC_CACHE") or Path.home() / ".cache" / "wbc").expanduser()


def prune_cache(folder: Path, keep: Path, limit: int = CACHE_LIMIT_BYTES) -> None:
    """Remove the least recently used decoded sets in `folder` until the rest fit in `limit` bytes;
    `keep` (the set just written) stays whatever its size. Entries that vanish meanwhile (another run
    pruning too) are passed over. Only this cache's entries (`_cache_key` names: 20 hex digits) are
    touched: WBC_CACHE may point at a folder that holds other .npz files too."""
    entries = []
    for p in folder.glob("*.npz"):
        if not re.fullmatch(r"[0-9a-f]{20}", p.stem):
            continue
        with contextlib.suppress(OSError):
            st = p.stat()
            entries.append((st.st_mtime, st.st_size, p))
    total = sum(size for _, size, _ in entries)
    for _, size, p in sorted(entries):  # oldest first
        if total <= limit:
            break
        if p != keep:
            with contextlib.suppress(OSError):
                p.unlink()
                total -= size


def ignore_interrupts() -> None:
    """A worker process's start: Ctrl-C and SIGTERM are its parent's to act on (`load_prepared`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _cache_key(samples: Sequence[Sample], spec: PreprocessSpec) -> str:
    # The preprocessing code is part of the key: a change to it must not reuse stale crops or gains.
    h = hashlib.sha256(b"".join(Path(m.__file__).read_bytes() for m in (decode, framing, imaging, pixels, screening))
                       + inspect.getsource(_decode).encode())
    h.update(json.dumps(spec.to_dict(), sort_keys=True).encode())
    for s in samples:
        try:
            st = s.path.stat()
        except OSError:  # a link to nothing, a file gone: keyed as such, and named when it is decoded
            h.update(f"{s.path}|missing\n".encode("utf-8", "surrogateescape"))
            continue
        # surrogateescape: a file name that is not valid UTF-8 (bytes from another system) keys by its bytes.
        h.update(f"{s.path.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:20]


def load_arrays(samples: Sequence[Sample], spec: PreprocessSpec, **options: Any) -> tuple[np.ndarray, list[Sample]]:
    """`load_prepared`'s crops uint8 (N, h, w, 3) and the samples kept, with the same options."""
    p = load_prepared(samples, spec, **options)
    return p.x, p.samples


def load_prepared(
    samples: Sequence[Sample],
    spec: PreprocessSpec,
    skip_bad: bool = False,
    workers: int | None = None,
    use_cache: bool = True,
    progress: bool = True,
) -> Prepared:
    """Decode and prepare every sample, keeping what `wbc predict` would learn of its field on the way
    (whether it was shrunk, its white gains), so that evaluating never decodes a file twice.

    Results are cached on disk (WBC_CACHE, default ~/.cache/wbc) keyed by file identity and spec.
    A bad file stops everything with a message naming each bad file, unless `skip_bad`.
    """
    from wbc.progress import bar

    key = _cache_key(samples, spec)
    cpath = cache_dir() / f"{key}.npz"
    if use_cache and cpath.exists():
        try:
            with np.load(cpath) as z:
                x, keep, reduced_by, gains, whites = z["x"], z["keep"], z["reduced_by"], z["gains"], z["whites"]
            with contextlib.suppress(OSError):
                os.utime(cpath)  # used now: the pruning keeps the sets in use
            if skip_bad or keep.all():
                return _kept(samples, keep, x, reduced_by, gains, whites)
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
            pass  # a damaged or truncated cache file is rebuilt below, and replaced
    workers = workers or min(2, os.cpu_count() or 1)
    jobs = [(str(s.path), spec.to_dict()) for s in samples]
    if workers > 1 and len(jobs) > 64:
        # A Ctrl-C reaches the parent alone, which cancels what is queued: one that reached the workers too hung a
        # run once in 11 (Python 3.11's pool, gh-107219), its workers left running.
        ex = ProcessPoolExecutor(workers, initializer=ignore_interrupts)
        try:
            results = list(bar(ex.map(_decode, jobs, chunksize=64), show=progress, total=len(jobs), desc="decode"))
        except BaseException:
            ex.shutdown(wait=False, cancel_futures=True)
            raise
        ex.shutdown()
    else:
        results = [_decode(j) for j in bar(jobs, show=progress, desc="decode")]
    bad = [r for r in results if isinstance(r, str)]
    keep = np.array([not isinstance(r, str) for r in results])
    if bad and not skip_bad:
        raise DataError(f"{len(bad)} unusable image file(s); fix or remove them (wbc train, wbc evaluate and "
                        f"wbc export can leave them out with --skip-bad):\n  {listed(bad)}")
    if not keep.any():
        raise DataError("no usable images among the files given")
    good = [r for r in results if not isinstance(r, str)]
    x = np.stack([r[0] for r in good])
    reduced_by = np.array([r[1] for r in good], dtype=np.float64)
    gains = np.stack([r[2] for r in good]).astype(np.float64)
    whites = np.stack([r[3] for r in good]).astype(np.float64)
    if use_cache:
        buf = io.BytesIO()
        np.savez(buf, x=x, keep=keep, reduced_by=reduced_by, gains=gains, whites=whites)
        try:
            atomic_write_bytes(cpath, buf.getvalue())
            prune_cache(cpath.parent, keep=cpath)
        except OutputError as e:  # the cache only saves time: the decoded images are in hand
            print(f"wbc: note: the decoded images are not cached ({e}); the next run decodes them again",
                  file=sys.stderr)
    return _kept(samples, keep, x, reduced_by, gains, whites)


# Share of a set's images whose white lies below the data set's range above which the set is said to be
# photographed unlike it (the public data set's own: 9 of 9,957 TRAIN files, 4 of 2,487 TEST).
UNLIKE_WHITE_SHARE = 0.05


def unlike_white_note(whites: np.ndarray) -> str:
    """Where more than UNLIKE_WHITE_SHARE of a set's fields' whites (N, 3) lie below the public data set's range:
    that the screening of `wbc predict` and the app is set for the public data set's white, so that such photos
    are read through the white matching, or refused (an own-data user test: a lab's dim camera trained, exported and
    evaluated without a word, then had all 12 of its TEST photos called too dark), else ""."""
    below, refused = screening.unlike_data_white(whites)
    if not len(whites) or below.mean() <= UNLIKE_WHITE_SHARE:
        return ""
    white = ", ".join(f"{c} {v:.0f}" for c, v in zip("RGB", DATA_WHITE))
    return (f"wbc: note: {int(below.sum())} of {len(whites)} images are darker or more tinted than the public data "
            f"set's (its white about {white}), for which the screening of wbc predict and the app is set: where its "
            "first look finds no white cell, it looks again with the white matched to it" + (
                f"; it calls {int(refused.sum())} of them too dark or too cast to judge" if refused.any() else "")
            + ". A model of your own images is still screened so: photograph them as bright and neutral as that, or "
            "expect such refusals (and, exported with --match-white, inputs brightened unlike its training images)")


def colourless(x: np.ndarray, samples: Sequence[Sample]) -> list[Path]:
    """The files among `samples` whose crops (N, h, w, 3) uint8 have no colour: every pixel's channels
    within screening.GRAY_SPREAD_MAX (a grayscale photo, or a gray 16-bit scan)."""
    def spread(a: np.ndarray) -> np.ndarray:  # (n, ...) -> the largest channel spread of each, (n,)
        return (a.max(-1) - a.min(-1)).reshape(len(a), -1).max(1)

    # Every 4th pixel each way tells nearly every photo's colour at a sixteenth of the work; the rest are read whole.
    maybe = np.flatnonzero(spread(x[:, ::4, ::4]) <= screening.GRAY_SPREAD_MAX)
    return [samples[i].path for i in maybe if spread(x[i:i + 1])[0] <= screening.GRAY_SPREAD_MAX]


def listed(items: Sequence[str], shown: int = 20, sep: str = "\n  ") -> str:
    """The first `shown` of `items` joined by `sep` (default: a line each, indented), and how many more."""
    more = f"{sep}... and {len(items) - shown} more" if len(items) > shown else ""
    return sep.join(items[:shown]) + more


def _kept(samples: Sequence[Sample], keep: np.ndarray, x: np.ndarray, reduced_by: np.ndarray,
          gains: np.ndarray, whites: np.ndarray) -> Prepared:
    """The Prepared of the samples `keep` (N,) marks; the files left out are named on stderr, so that
    --skip-bad never drops one unsaid, and so are whites unlike the public data set's (`unlike_white_note`)."""
    skipped = tuple(str(s.path) for s, k in zip(samples, keep) if not k)
    if skipped:
        print(f"wbc: note: {len(skipped)} unusable file(s) left out (--skip-bad):\n  {listed(skipped)}", file=sys.stderr)
    if note := unlike_white_note(whites):
        say_once(note)
    return Prepared(x, [s for s, k in zip(samples, keep) if k], reduced_by, gains, skipped, whites)
