"""`wbc data download | check | sources`: the data set fetched, counted and read, its files matched to fields."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from wbc.errors import OutputError, WbcError


def cmd_data_download(args: argparse.Namespace) -> int:
    from wbc.download import download

    path = download(args.out)
    print(f"data set ready at {path}\nuse it with --data {path} or WBC_DATA={path}")
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from wbc.cache import load_arrays
    from wbc.data import list_split
    from wbc.folders import find_images_root
    from wbc.imaging import PreprocessSpec
    from wbc.info import CLASSES, SPLITS

    root = find_images_root(args.data)
    print(f"images root: {root}")
    bad, unfit = 0, ""
    for split in SPLITS:
        if not (root / split).is_dir():
            print(f"{split:12s} absent")
            continue
        samples = list_split(root, split)
        per = [(sum(s.label == i for s in samples), len({s.cell for s in samples if s.label == i}))
               for i in range(len(CLASSES))]
        print(f"{split:12s} " + "  ".join(f"{c.title()} {n} files/{k} cells" for c, (n, k) in zip(CLASSES, per)))
        if split == "TRAIN" and (empty := [c for c, (n, _) in zip(CLASSES, per) if not n]):
            unfit = f"{'':12s} no images of {', '.join(empty)}: training refuses this TRAIN"
            print(unfit)
        if args.verify:  # every split is read and its bad files named, before the verdict
            try:
                load_arrays(samples, PreprocessSpec(), skip_bad=False, use_cache=False)
                print(f"{'':12s} all {len(samples)} files decoded")
            except WbcError as e:
                bad += 1
                print(f"{'':12s} {e}")
    if bad:
        print(f"wbc: {bad} split(s) hold files that cannot be read (named above)", file=sys.stderr)
    if unfit:
        print(f"wbc: {unfit.strip()}", file=sys.stderr)
    return 1 if bad or unfit else 0


def cmd_data_sources(args: argparse.Namespace) -> int:
    import json
    from collections import Counter

    from wbc.data import listed
    from wbc.folders import default_data_path, find_images_root
    from wbc.info import CLASSES
    from wbc.io import check_writable_file
    from wbc.sources import (LINKED, TABLE, data_set_files, linked_fields, match_files, originals_near, read_table, summary,
                             write_linked, write_table)

    root = find_images_root(args.data)
    # The data set's folder however it was given (--data, WBC_DATA or the shared copy): dataset-master is in it.
    originals = originals_near(root, args.data or default_data_path())
    out = args.out or TABLE
    partial = out.with_name(out.name + ".partial")
    _refuse_others_files(out, partial)
    check_writable_file(out)
    check_writable_file(out.with_name(LINKED.name))  # written beside the table once it is built: checked first
    paths = {(split, cls, f.name): f for cls, files in data_set_files(root).items() for split, f in files}
    if os.path.realpath(out) == os.path.realpath(TABLE) and TABLE.is_file():  # realpath: a link loop does not raise
        # The package's table is what every tool groups cells by: a partial copy must not shrink it.
        have = set(paths)
        known = {(m.split, m.class_name, m.file_name) for m in read_table(TABLE)}
        if known - have:
            raise WbcError(
                f"{root}: holds {len(known & have)} of the {len(known)} files the shipped table ({TABLE}) "
                f"covers; rebuilding it from them would drop the other {len(known - have)}, and each of those "
                "would then count as a cell of its own (leaky splits, intervals too narrow). Point --data at "
                "the whole data set, or give --out FILE to write a table of these files alone")
    # Each finished class is kept beside the table, which stays whole until the build is.
    reuse = [m for t in (out, partial) if args.reuse and t.is_file() for m in read_table(t)]
    kept = 0

    def keep(done: list[Any]) -> None:
        nonlocal kept
        write_table(done, partial)
        kept = len(done)

    try:
        matches = match_files(root, originals, workers=args.workers, reuse=reuse, class_done=keep)
    except BaseException:  # Ctrl+C, a worker's crash: what is done is kept, and said so
        if kept:
            again = shlex.join(["wbc", "data", "sources", "--reuse", *(a for k, v in (
                ("data", args.data), ("out", args.out), ("workers", args.workers)) if v is not None
                for a in (f"--{k}", str(v)))])
            print(f"wbc: stopped; the {kept} files of the classes finished are kept in {partial}: "
                  f"`{again}` goes on from them", file=sys.stderr)
        raise
    write_table(matches, out)
    partial.unlink(missing_ok=True)
    print(json.dumps(summary(matches), indent=1))
    print(f"wrote {out} ({len(matches)} files)")
    # Beside the table (the package's LINKED beside the package's table): the fields labelled twice.
    linked = linked_fields(originals)
    write_linked(linked, out.with_name(LINKED.name))
    print(f"wrote {out.with_name(LINKED.name)} ({len(linked)} field(s) the originals show under two labels)")
    # A class with no files, or none the originals label with it, has no rows: its files (if any) count as
    # cells of their own, and the table's reader cannot tell that from a class the data set lacks.
    found = Counter(cls for _, cls, _ in paths)
    for cls in CLASSES:
        if not any(m.class_name == cls for m in matches):
            print(f"wbc: note: {cls}: " + (f"none of its {found[cls]} file(s) could be matched: the originals in "
                                           f"{originals} hold no field labelled {cls} alone" if found[cls] else
                                           f"no files in {root} (no class folder, or an empty one)")
                  + "; the table has no rows for it", file=sys.stderr)
    if unreadable := [str(paths.get((m.split, m.class_name, m.file_name), m.file_name)) for m in matches if m.unreadable]:
        print(f"wbc: note: {len(unreadable)} file(s) could not be decoded, so they match no field (each counts as "
              f"a cell of its own):\n  {listed(unreadable)}", file=sys.stderr)
    return 0


def _refuse_others_files(out: Path, partial: Path) -> None:
    """OutputError, before the matching, where `wbc data sources` would write over what it did not write: a table
    name that is not gzip's (.csv got gzip bytes), the linked-fields file's name (the linked fields, written
    beside the table, replaced it), or a file at the table's, the .partial's or the linked fields' name that
    is not one this command wrote (a photo given as --out became gzip data)."""
    from wbc.sources import LINKED, TABLE_HEADER, is_linked, is_table

    linked = out.with_name(LINKED.name)
    if out.name == LINKED.name or os.path.realpath(out) == os.path.realpath(linked):
        raise OutputError(f"{out}: is where the linked fields are written, beside the table; give the table another "
                          f"name, e.g. {out.with_name('source_fields.csv.gz')}")
    if not out.name.endswith(".gz"):
        name = out.name + ".gz" if out.name.endswith(".csv") else f"{out.stem or out.name}.csv.gz"
        raise OutputError(f"{out}: the table is written gzipped, which this name does not say; name it .csv.gz, "
                          f"e.g. {out.with_name(name)}")
    header = ",".join(TABLE_HEADER)
    for path, ours, what in ((out, is_table, f"a table of source fields (gzip, first line {header})"),
                             (partial, is_table, "a table of source fields kept by an interrupted build"),
                             (linked, is_linked, "a list of linked fields (first line cell,same_field_as)")):
        if path.exists() and not ours(path):
            raise OutputError(f"{path}: exists and is not {what} that `wbc data sources` wrote, so it is not "
                              "replaced; move it away, or give --out another name")
