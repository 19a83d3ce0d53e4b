"""The images of a split or a folder of class folders as samples, and the cell each one shows (`cell_key`): one
physical cell's views share a cell, so that no split puts it on both sides; and the notes said once a command."""

from __future__ import annotations

import functools
import os
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from wbc.errors import DataError
from wbc.folders import check_folder, class_folders, class_folders_hint
from wbc.info import CLASS_INDEX, CLASSES, IMAGE_SUFFIXES, SPLITS
from wbc.io import bytes_key, files_under, passed_over, printable
from wbc.sources import field_name, likeliest_split, source_field


@dataclass(frozen=True)
class Sample:
    """One image file; `cell` is the same string for every view of one physical cell."""

    path: Path
    label: int
    cell: str


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
                        + class_folders_hint(folder, others, bool(present)))
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
    folders (one image, two labels), a data set file's too: copied under a name its table does not know for that
    class (renamed, or into another class's folder), it is a file of one's own here, and was trained and scored
    under both labels; renamed in its own class folder, it joins that file's cell. A data set file's bytes are
    read only where its size is that of a file of one's own: listing the data set alone reads none."""
    stats = [_stat(s.path) for s in samples]
    own_sizes = {st.st_size for s, st in zip(samples, stats) if st is not None and not is_field_cell(s.cell)}
    fields: dict[str, Sample] = {}  # the data set's files that an own file may copy, by their bytes
    for s, st in zip(samples, stats):
        if st is not None and st.st_size in own_sizes and is_field_cell(s.cell) and (key := _key(s.path, st)):
            fields.setdefault(key, s)
    first: dict[str, Sample] = {}
    out: list[Sample] = []
    twice: list[str] = []
    for s, st in zip(samples, stats):
        if st is None or is_field_cell(s.cell) or (key := _key(s.path, st)) is None:
            out.append(s)
            continue
        seen = first.setdefault(key, s)
        if (other := fields.get(key, seen)).label != s.label:
            twice.append(f"{printable(str(other.path))} ({CLASSES[other.label]}) and {printable(str(s.path))} "
                         f"({CLASSES[s.label]})")
        # A renamed copy of a data set file in its own class folder is that file's cell: as a cell of its own it
        # fell on the other side of a cell-grouped split from its original, and was scored as two cells.
        cell = other.cell if other is not s else s.cell
        out.append(s if cell == s.cell else Sample(path=s.path, label=s.label, cell=cell))
    if twice:
        raise DataError(f"{len(twice)} image(s) are in two class folders, byte for byte (one image, two labels); "
                        f"keep each in its class's folder only:\n  {listed(twice)}")
    return out


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:  # a link to nothing, or one that loops: named when it is read
        return None


def _key(path: Path, st: os.stat_result) -> str | None:
    """`path`'s `bytes_key`; None where it cannot be read (named where it is decoded)."""
    try:
        return _file_key(path, st.st_size, st.st_mtime_ns)
    except OSError:
        return None


def test_copies_of(root: Path, train: Sequence[Sample], test: Sequence[Sample] | None = None) -> list[tuple[Path, Path]]:
    """(TEST file, TRAIN file) for each of `root`'s TEST images (or of `test`, another split's) that is a
    byte-identical copy of one of the TRAIN samples `train`, where either is a file of one's own (two of the data
    set's are told apart by their fields): a TEST file of one's own copying any TRAIN file (a data set file renamed
    into TRAIN was taken for its file's cell, and passed over), and a data set TEST file copied into TRAIN under a
    name of one's own (trained on, then scored as unseen); [] where there is no TEST to read. A file's bytes are
    read only where its size is that of a file of one's own on the other side: the data set alone reads none."""
    if test is None:
        try:
            test = list_split(root, "TEST")
        except DataError:
            return []
    if all(is_field_cell(s.cell) for s in [*test, *train]):  # the data set alone: nothing of one's own to copy
        return []
    test_stats, train_stats = [_stat(s.path) for s in test], [_stat(s.path) for s in train]

    def own_sizes(samples: Sequence[Sample], stats: list[os.stat_result | None]) -> set[int]:
        return {st.st_size for s, st in zip(samples, stats) if st is not None and not is_field_cell(s.cell)}

    own_test, own_train = own_sizes(test, test_stats), own_sizes(train, train_stats)
    test_keys = [_key(s.path, st) if st is not None and (not is_field_cell(s.cell) or st.st_size in own_train)
                 else None for s, st in zip(test, test_stats)]
    sizes = {st.st_size for st, key in zip(test_stats, test_keys) if st is not None and key is not None}
    trained: dict[str, Sample] = {}
    for s, st in zip(train, train_stats):
        if (st is not None and st.st_size in sizes and (st.st_size in own_test or not is_field_cell(s.cell))
                and (key := _key(s.path, st)) is not None):
            trained.setdefault(key, s)
    # Two of the data set's files, alike in size to files of one's own, are no copy of one's own
    return [(s.path, trained[key].path) for s, key in zip(test, test_keys)
            if key in trained and not (is_field_cell(s.cell) and is_field_cell(trained[key].cell))]


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


def listed(items: Sequence[str], shown: int = 20, sep: str = "\n  ") -> str:
    """The first `shown` of `items` joined by `sep` (default: a line each, indented), and how many more."""
    more = f"{sep}... and {len(items) - shown} more" if len(items) > shown else ""
    return sep.join(items[:shown]) + more
