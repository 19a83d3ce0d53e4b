"""Which original microscope field each augmented file was made from: the data set's real cells.

The 4-class files are named `_<n>_<random>.jpeg`, and `<n>` looks like a cell number, but it is
not: the files that share an `<n>` are views of several cells (it looks like the file's position
in the augmenter's shuffled batch, which is how Keras' `flow(save_to_dir=...)` once named files),
and one cell's views are spread over every `<n>` of its class. Grouping by `<n>` therefore leaks
every cell into both sides of a split. The real cell of a file is the single-label original field
(`dataset-master/JPEGImages/BloodImage_NNNNN.jpg`) it was augmented from; this module finds it by
feature matching (ORB keypoints and a RANSAC affine fit, mirrored too) and keeps the answers in a
small table shipped with the package, keyed by split, class and file name.

Building the table needs OpenCV (`pip install -e '.[sources]'`); reading it needs nothing.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from wbc.errors import DataError, install_command
from wbc.folders import class_folders
from wbc.info import CLASSES, IMAGE_SUFFIXES, SPLITS
from wbc.io import atomic_write_bytes

TABLE = Path(__file__).with_name("source_fields.csv.gz")
FIELD_SIZE = (320, 240)  # the originals were resized to this before augmenting (width, height)
# A match is taken when its RANSAC inliers reach MIN_INLIERS and MARGIN times the runner-up's.
MIN_INLIERS = 12
MARGIN = 3.0
_SHORTLIST = 3  # originals verified one by one after the pooled first pass
# Two originals with this many inliers between them show the same field (BCCD holds near-duplicate
# and overlapping photographs); among 61,000 pairs of different fields none reached 27.
DUPLICATE_INLIERS = 30
_POOLED_FEATURES = 300


@dataclass(frozen=True)
class Match:
    """One file's answer: its original field (None when no field matched clearly) and the evidence."""

    split: str
    class_name: str
    file_name: str
    field: int | None
    inliers: int  # RANSAC inliers of the best field
    runner_up: int  # inliers of the second-best field
    unreadable: bool = False  # OpenCV could not decode the file (not in the table: such a row reads as unmatched)


def field_name(field: int) -> str:
    return f"BloodImage_{field:05d}"


@lru_cache(maxsize=4)
def _read_table(path: Path) -> dict[tuple[str, str, str], int]:
    if not path.is_file():
        return {}
    return {(m.split, m.class_name, m.file_name): m.field for m in read_table(path) if m.field is not None}


@lru_cache(maxsize=4)
def _by_name(path: Path) -> dict[tuple[str, str], int | None]:
    """(class, file) -> field, over every split; None where two splits hold a file of that name made from
    other fields (8 names of the data set's 12,515 files)."""
    fields: dict[tuple[str, str], set[int]] = {}
    for (_, class_name, file_name), field in _read_table(path).items():
        fields.setdefault((class_name, file_name), set()).add(field)
    return {k: next(iter(v)) if len(v) == 1 else None for k, v in fields.items()}


@lru_cache(maxsize=4)
def _names_by_split(path: Path) -> dict[str, frozenset[tuple[str, str]]]:
    """split -> the (class, file name) pairs the table matched to a field there."""
    names: dict[str, set[tuple[str, str]]] = {}
    for split, class_name, file_name in _read_table(path):
        names.setdefault(split, set()).add((class_name, file_name))
    return {split: frozenset(held) for split, held in names.items()}


def likeliest_split(files: Iterable[tuple[str, str]], table: Path = TABLE) -> str | None:
    """The split whose table holds the most of these (class, file name) pairs (a copy of it under another
    folder name), or None where it holds none: 8 names are in both TRAIN and TEST, made from other fields,
    and only the split tells which."""
    files = set(files)
    found = {split: len(files & held) for split, held in _names_by_split(table).items()}
    best = max(found, key=found.__getitem__, default=None)
    return best if best is not None and found[best] else None


def source_field(split: str | None, class_name: str, file_name: str, table: Path = TABLE,
                 prefer: str | None = None) -> int | None:
    """The original field number a data set file was made from, or None when the table has none. A file
    in a folder not named as a split (None, or a copy of TEST under another name) is looked up by its
    class and name in every split, where that names one field (a renamed copy of TEST was scored as if
    each of its files were a cell of its own, with intervals too narrow); a name in two splits, made from
    other fields, takes the field of `prefer` (`likeliest_split` of its folder), where that holds it. A file in a
    split's folder that its table lacks is looked up so too: TEST's files merged into TRAIN were each a cell of
    their own, and a split put views of 64 of its 68 cells on both sides."""
    if split in SPLITS and (field := _read_table(table).get((split, class_name, file_name))) is not None:
        return field
    field = _by_name(table).get((class_name, file_name))
    if field is None and prefer in SPLITS:
        field = _read_table(table).get((prefer, class_name, file_name))
    return field


def read_table(path: Path = TABLE) -> list[Match]:
    """Every row of a table written by `write_table`; DataError naming `path` where it is not such a table (another
    file given as --out to `wbc data sources --reuse`: "Not a gzipped file", or a traceback for other columns)."""
    try:
        with gzip.open(path, "rt", newline="") as f:
            return [Match(r["split"], r["class"], r["file"], int(r["field"]) if r["field"] else None,
                          int(r["inliers"]), int(r["runner_up"])) for r in csv.DictReader(f)]
    except (OSError, EOFError, UnicodeDecodeError, csv.Error, KeyError, ValueError, TypeError) as e:
        why = f"no column {e}" if isinstance(e, KeyError) else getattr(e, "strerror", None) or str(e)
        raise DataError(f"{path}: not a table of source fields written by `wbc data sources` ({why})") from e


TABLE_HEADER = ("split", "class", "file", "field", "inliers", "runner_up")
LINKED_HEADER = ("cell", "same_field_as")


def _starts_with(path: Path, header: Sequence[str], gzipped: bool) -> bool:
    try:
        with (gzip.open(path, "rt", newline="") if gzipped else open(path, newline="")) as f:
            return f.readline().rstrip("\r\n") == ",".join(header)
    except (OSError, EOFError, UnicodeDecodeError):
        return False


def is_table(path: Path) -> bool:
    """Whether `path` is a file `write_table` wrote: gzip whose first line is the table's header. Any other
    file is someone's own, which `wbc data sources --out` must not replace (a photo became gzip data)."""
    return _starts_with(path, TABLE_HEADER, gzipped=True)


def is_linked(path: Path) -> bool:
    """Whether `path` is a file `write_linked` wrote: a CSV whose first line is its header."""
    return _starts_with(path, LINKED_HEADER, gzipped=False)


def write_table(matches: Iterable[Match], path: Path = TABLE) -> None:
    """Write the matches as a gzipped CSV, atomically (sorted, so rebuilds diff cleanly)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(TABLE_HEADER)
    for m in sorted(matches, key=lambda m: (m.split, m.class_name, m.file_name)):
        w.writerow([m.split, m.class_name, m.file_name, "" if m.field is None else m.field, m.inliers, m.runner_up])
    atomic_write_bytes(path, gzip.compress(buf.getvalue().encode(), mtime=0))
    _read_table.cache_clear()
    _by_name.cache_clear()
    _names_by_split.cache_clear()


def find_originals(top: Path) -> Path:
    """The `dataset-master` folder (JPEGImages + labels.csv) in the data set, flat or Kaggle-nested."""
    level = [top]
    for _ in range(4):
        for p in level:
            if (p / "JPEGImages").is_dir() and (p / "labels.csv").is_file():
                return p
        level = sorted(c for p in level for c in _subfolders(p))
    raise DataError(f"{top}: no dataset-master folder (JPEGImages/ and labels.csv) in it or below")


def _subfolders(p: Path) -> list[Path]:
    try:
        return [c for c in p.iterdir() if c.is_dir() and c.name != "__MACOSX"]
    except OSError:  # a folder that cannot be listed holds nothing to find
        return []


def originals_near(images_root: Path, data: Path | None = None) -> Path:
    """The `dataset-master` folder that belongs with an images root: under `data` if given, else
    beside `dataset2-master` (flat copy: images -> dataset2-master -> top; the Kaggle zip nests one
    dataset2-master more). Never above the data set: an images root not in a `dataset2-master` has
    no top of the data set to search, and /tmp or / are not one."""
    tops = [data] if data else []
    up = images_root.parent
    while up.name == "dataset2-master":
        up = up.parent
        tops.append(up)
    for top in tops:
        try:
            return find_originals(top)
        except DataError:
            continue
    raise DataError(f"no dataset-master folder (JPEGImages/ and labels.csv) found near {images_root}"
                    + (f" (searched {', '.join(map(str, dict.fromkeys(tops)))})" if tops else ""))


def single_label_fields(originals: Path) -> dict[str, list[int]]:
    """Field numbers per class for the fields labelled with exactly one of the four classes."""
    out: dict[str, list[int]] = {c: [] for c in CLASSES}
    with open(originals / "labels.csv", newline="") as f:
        for row in csv.DictReader(f):
            cat = (row.get("Category") or "").strip()
            if cat in out and (originals / "JPEGImages" / f"{field_name(int(row['Image']))}.jpg").is_file():
                out[cat].append(int(row["Image"]))
    return out


def _cv2() -> Any:
    try:
        import cv2
    except ImportError as e:
        raise DataError(f"building the source-field table needs OpenCV: {install_command('sources')}") from e
    return cv2


# Worker state: the originals of one class, their keypoints (N, 2) px and ORB descriptors.
_W: dict[str, Any] = {}


def _init_worker(originals: str, fields: Sequence[int], groups: dict[int, int] | None = None) -> None:
    cv2 = _cv2()
    cv2.setNumThreads(1)
    # Dense keypoints (low FAST threshold) for the one-by-one fits; a sparse set for the pooled votes.
    orb = cv2.ORB_create(1500, fastThreshold=5)
    sparse = cv2.ORB_create(_POOLED_FEATURES, fastThreshold=5)
    feats, pooled_desc = [], []
    for fld in fields:
        img = cv2.imread(str(Path(originals) / "JPEGImages" / f"{field_name(fld)}.jpg"), cv2.IMREAD_GRAYSCALE)
        img = cv2.resize(img, FIELD_SIZE, interpolation=cv2.INTER_AREA)
        k, d = orb.detectAndCompute(img, None)
        feats.append((np.float32([p.pt for p in k]), d))
        pooled_desc.append(sparse.detectAndCompute(img, None)[1])
    pooled = cv2.BFMatcher(cv2.NORM_HAMMING)
    pooled.add(pooled_desc)
    pooled.train()
    _W.update(cv2=cv2, orb=orb, sparse=sparse, fields=list(fields), feats=feats, pooled=pooled,
              pooled_desc=pooled_desc, pair=cv2.BFMatcher(cv2.NORM_HAMMING), group=[(groups or {}).get(f, f) for f in fields])


def _duplicate_groups(originals: Path, fields: Sequence[int]) -> dict[int, int]:
    """Each field's group: the lowest field number among the originals that show the same field."""
    _init_worker(str(originals), fields)
    parent = {f: f for f in fields}

    def root(f: int) -> int:
        while parent[f] != f:
            f = parent[f]
        return f

    for i, fld in enumerate(fields):
        pts, desc = _W["feats"][i]
        # Every nearest neighbour is the field itself; the second ones vote for its look-alikes.
        votes = np.bincount([m.imgIdx for pair in _W["pooled"].knnMatch(_W["pooled_desc"][i], k=2)
                             for m in pair if m.imgIdx != i], minlength=len(fields))
        for j in np.argsort(-votes)[:_SHORTLIST + 2].tolist():
            if j != i and _inliers(pts, desc, _W["feats"][j]) >= DUPLICATE_INLIERS:
                a, b = root(fld), root(fields[j])
                parent[max(a, b)] = min(a, b)
    return {f: root(f) for f in fields}


def _inliers(q_pts: np.ndarray, q_desc: np.ndarray, o: tuple[np.ndarray, np.ndarray]) -> int:
    """RANSAC affine inliers between a view's and one original's ratio-tested matches."""
    cv2 = _W["cv2"]
    o_pts, o_desc = o
    pairs = [x for x in _W["pair"].knnMatch(q_desc, o_desc, k=2) if len(x) == 2]
    good = [m for m, n in pairs if m.distance < 0.85 * n.distance]
    if len(good) < 4:
        return len(good)
    _, mask = cv2.estimateAffine2D(q_pts[[m.queryIdx for m in good]], o_pts[[m.trainIdx for m in good]],
                                   ransacReprojThreshold=4.0)
    return 0 if mask is None else int(mask.sum())


def _scores(gray: np.ndarray, exhaustive: bool, shortlist: int = _SHORTLIST) -> dict[int, int]:
    """Inliers per candidate field (index into the worker's fields) for one orientation of a view."""
    k, d = _W["orb"].detectAndCompute(gray, None)
    if d is None or len(k) < 4:
        return {}
    pts = np.float32([p.pt for p in k])
    if exhaustive:
        candidates: Iterable[int] = range(len(_W["fields"]))
    else:
        # Nearest-neighbour votes over all originals at once shortlist the few worth a RANSAC fit.
        sd = _W["sparse"].detectAndCompute(gray, None)[1]
        if sd is None:
            return {}
        votes = np.bincount([m.imgIdx for m in _W["pooled"].match(sd)], minlength=len(_W["fields"]))
        candidates = np.argsort(-votes)[:shortlist].tolist()
    return {i: _inliers(pts, d, _W["feats"][i]) for i in candidates}


def _match_one(job: tuple[str, str, str]) -> Match:
    path, split, cls = job
    cv2 = _W["cv2"]
    gray = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if gray is None:
        return Match(split, cls, Path(path).name, None, 0, 0, unreadable=True)
    for exhaustive in (False, True):
        best: dict[int, int] = {}
        # ORB is rotation- but not mirror-invariant; a vertical flip is a mirror plus a half turn.
        # Scores are per group: duplicates of one field must not count as each other's runner-up.
        for g in (gray, cv2.flip(gray, 1)):
            for i, n in _scores(g, exhaustive).items():
                best[_W["group"][i]] = max(best.get(_W["group"][i], 0), n)
        ranked = sorted(best.values(), reverse=True) + [0, 0]
        top = max(best, key=best.__getitem__) if best else None
        if top is not None and ranked[0] >= MIN_INLIERS and ranked[0] >= MARGIN * ranked[1]:
            return Match(split, cls, Path(path).name, top, ranked[0], ranked[1])
    return Match(split, cls, Path(path).name, None, ranked[0], ranked[1])


def data_set_files(images_root: Path) -> dict[str, list[tuple[str, Path]]]:
    """The image files a rebuild matches, by class: (split, path) each, from every split's class folders
    named in any case, hidden files passed over as `data.list_folder` passes them. Only the files in a
    class folder itself: the data set has no subfolders, and the table keys a file by its name."""
    folders = {split: class_folders(images_root / split)[0] for split in SPLITS if (images_root / split).is_dir()}
    return {cls: [(split, f) for split, by_class in folders.items() if cls in by_class
                  for f in sorted(by_class[cls].iterdir())
                  if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".") and f.is_file()]
            for cls in CLASSES}


def match_files(images_root: Path, originals: Path, workers: int = 2, progress: bool = True,
                reuse: Sequence[Match] = (), class_done: Callable[[list[Match]], None] | None = None) -> list[Match]:
    """Match every file of every split and class under `images_root` to its original field (the
    lowest-numbered of the originals that show that field). Files that `reuse` already matched keep
    their field, so an interrupted or extended build need not start over: `class_done` is given the
    matches so far after each class, for the caller to keep."""
    from wbc.progress import bar

    fields = single_label_fields(originals)
    known = {(m.split, m.class_name, m.file_name): m for m in reuse if m.field is not None}
    out: list[Match] = []
    for cls, files in data_set_files(images_root).items():
        jobs = [(str(f), split, cls) for split, f in files]
        if not jobs or not fields[cls]:
            continue
        groups = _duplicate_groups(originals, fields[cls])
        todo = []
        for job in jobs:
            m = known.get((job[1], cls, Path(job[0]).name))
            if m is not None and m.field in groups:
                out.append(replace(m, field=groups[m.field]))
            else:
                todo.append(job)
        with ProcessPoolExecutor(workers, initializer=_init_worker,
                                 initargs=(str(originals), fields[cls], groups)) as ex:
            out += list(bar(ex.map(_match_one, todo, chunksize=16), show=progress, total=len(todo), desc=cls,
                            unit="file"))
        if class_done is not None:
            class_done(list(out))
    return out


# Originals of different labels that show one field (BCCD labelled one cell a lymphocyte in one photograph
# and a monocyte in a shifted one): a cell-grouped split keeps each such set on one side.
LINKED = Path(__file__).with_name("linked_fields.csv")


def linked_fields(originals: Path, fields: dict[str, list[int]] | None = None) -> list[tuple[str, str]]:
    """(cell, first) pairs, as `wbc.data.cell_key` names cells ("CLASS/BloodImage_NNNNN"), for each
    single-label original that shows the same field as one of another label (`DUPLICATE_INLIERS`):
    `first` the lowest-numbered of the set. `fields`: per class, the originals to compare (default:
    every single-label one, about two minutes of one core for the data set's 348)."""
    fields = single_label_fields(originals) if fields is None else fields
    label = {f: c for c, fs in fields.items() for f in fs}
    groups: dict[int, list[int]] = {}
    for f, root in _duplicate_groups(originals, sorted(label)).items():
        groups.setdefault(root, []).append(f)
    out = []
    for members in groups.values():
        if len({label[f] for f in members}) > 1:
            first = min(members)
            out += [(f"{label[f]}/{field_name(f)}", f"{label[first]}/{field_name(first)}") for f in sorted(members)
                    if f != first]
    return sorted(out)


def write_linked(pairs: Iterable[tuple[str, str]], path: Path = LINKED) -> None:
    """The `linked_fields` pairs as a CSV, atomically."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(LINKED_HEADER)
    w.writerows(sorted(pairs))
    atomic_write_bytes(path, buf.getvalue().encode())
    read_linked.cache_clear()


@lru_cache(maxsize=4)
def read_linked(path: Path = LINKED) -> dict[str, str]:
    """Each linked cell -> the first cell of its field (`linked_fields`); empty where there is no such file."""
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {r["cell"]: r["same_field_as"] for r in csv.DictReader(f)}


def summary(matches: Sequence[Match]) -> dict[str, Any]:
    """Counts a person can check the table by: fields per split and class, unmatched files, overlap."""
    per: dict[str, dict[str, Any]] = {}
    split_of: dict[tuple[str, int], set[str]] = {}
    for m in matches:
        s = per.setdefault(m.split, {}).setdefault(m.class_name, {"files": 0, "unmatched": 0, "fields": set()})
        s["files"] += 1
        if m.field is None:
            s["unmatched"] += 1
        else:
            s["fields"].add(m.field)
            split_of.setdefault((m.class_name, m.field), set()).add(m.split)
    shared = sorted(f"{c}/{field_name(f)}" for (c, f), sp in split_of.items()
                    if len(sp & {"TRAIN", "TEST"}) == 2)
    inl = np.array([m.inliers for m in matches if m.field is not None])
    return {
        "per_split": {sp: {c: {"files": v["files"], "unmatched": v["unmatched"], "fields": len(v["fields"])}
                           for c, v in cs.items()} for sp, cs in per.items()},
        "fields_in_train_and_test": shared,
        "inliers_quartiles": np.percentile(inl, [25, 50, 75]).tolist() if inl.size else [],
    }

