"""What `wbc predict` reads and writes: the files its paths name (folders searched, patterns matched), its --csv."""

from __future__ import annotations

import os
import re
from pathlib import Path

from wbc.errors import WbcError


NO_IMAGE = "no image"  # the verdict of a `wbc predict` row that names no image file to read


def predict_inputs(inputs: list[str]) -> tuple[list[Path | tuple[str, str, str]], int, list[Path], int]:
    """The image files to classify, in the order given, folders searched and patterns a shell left
    unexpanded matched here; an input that names nothing stays as (input, why, verdict), a row of its own
    ("no image", or "not followed" for a link or subfolder found in a folder given). The
    second value counts files given more than once, each classified once; the third lists the files in
    folders given that were passed over, their names not an image's; the fourth counts the rows for
    links and subfolders found in the folders that could not be followed (each named once)."""
    import glob

    from wbc.predict import iter_image_paths

    out: list[Path | tuple[str, str, str]] = []
    seen: set[Path] = set()
    repeated: set[Path] = set()  # files, not mentions: one given four times is one file given more than once
    others: dict[Path, Path] = {}  # by real path: a folder given twice passes its files over once
    unfollowed: set[Path] = set()  # by its real folder and name: a link to nothing has no real path of its own

    def add(item: str) -> None:
        if not item:  # an unset variable in a script: the row named no file, and said "cannot be read"
            out.append((item, "an empty name, not a file or folder", NO_IMAGE))
            return
        try:
            if not Path(item).exists():
                # A link (named, or a pattern's match): it is there (ls shows it), but leads nowhere, as a folder's is told
                why = ("a link to nothing (its target is gone, or it loops)" if Path(item).is_symlink()
                       else "no such file or folder; the standard input is not read: give image files or folders"
                       if item == "-" else "no such file or folder")
                out.append((item, why, NO_IMAGE))
                return
            if Path(item).is_dir():  # the folder search below skips a folder it cannot list, without a word
                os.scandir(item).close()
            held: list[Path] = []
            missed: list[tuple[Path, str]] = []
            found = iter_image_paths([item], held, missed)
        except OSError as e:  # a name too long, a folder that cannot be listed
            out.append((item, f"cannot be read ({e.strerror or e})", NO_IMAGE))
            return
        for f in held:
            others.setdefault(f.resolve(), f)
        for f, why in missed:  # rows of their own: images may be in them or behind them
            # By its real folder: a link to nothing reached again through a link up the tree is the same link
            key = _real_folder(f)
            if key not in unfollowed:
                unfollowed.add(key)
                out.append((str(f), why, "not followed"))
        if not found and not missed:
            hidden = _hidden_images(Path(item))
            out.append((item, "no image files in this folder" + (f" ({passed_over_note(held)})" if held else "")
                        + (f" ({hidden} image file(s) passed over as hidden, their names or folders starting with "
                           "'.': rename any you want read)" if hidden else ""), NO_IMAGE))
        for f in found:
            key = f.resolve()
            if key in seen:
                repeated.add(key)
            else:
                seen.add(key)
                out.append(f)

    for item in inputs:
        matches = (sorted(m for m in glob.glob(item, recursive=True) if not _through_a_loop(Path(m)))
                   if glob.has_magic(item) and not _exists(item) else None)
        if matches == []:
            out.append((item, "no image file matches this pattern", NO_IMAGE))
            continue
        for m in matches or [item]:
            add(m)
    return out, len(repeated), list(others.values()), len(unfollowed)


def _real_folder(f: Path) -> Path:
    """`f` by its folder's real path and its own name (a link to nothing has no real path of its own)."""
    try:
        return f.parent.resolve() / f.name
    except (OSError, RuntimeError):  # a folder in a loop of links
        return f.absolute()


def _through_a_loop(path: Path) -> bool:
    """Whether `path` (a pattern's match) passes through a link to a folder that holds the link: `**` follows
    such a link some 40 levels deep, naming each file there again ("80 file(s) given more than once")."""
    here = Path(path.anchor) if path.is_absolute() else Path()
    for part in path.parts[len(here.parts):-1]:
        here = here / part
        if here.is_symlink():
            try:
                target, home = here.resolve(), here.parent.resolve()
            except (OSError, RuntimeError):
                return True
            if target == home or target in home.parents:
                return True
    return False


def _hidden_images(folder: Path) -> int:
    """How many files named as images lie under `folder` in hidden places (a name starting with "."), which the
    folder search passes over: said where a folder held nothing else ("no image files" in a folder of them)."""
    from wbc.info import IMAGE_SUFFIXES

    if not folder.is_dir():
        return 0
    count = 0
    for root, _, files in os.walk(folder):
        in_hidden = any(part.startswith(".") for part in Path(root).relative_to(folder).parts)
        count += sum(Path(f).suffix.lower() in IMAGE_SUFFIXES and (in_hidden or f.startswith(".")) for f in files)
    return count


def passed_over_note(files: list[Path]) -> str:
    from wbc.info import IMAGE_SUFFIXES
    from wbc.io import passed_over

    return (f"{passed_over(files)}; images are read by their names, {' '.join(sorted(IMAGE_SUFFIXES))}; name a file "
            "to read it anyway")


def _exists(path: str) -> bool:
    try:
        return Path(path).exists()
    except OSError:
        return False


def _predictions_table(path: Path) -> bool:
    """Whether the file at `path` is a table `wbc predict` wrote, this version or an earlier one: its
    header begins with the file, class and confidence columns and ends with the verdict (an evaluation's
    predictions.csv, with the true classes after the verdict, is not: it belongs to its report)."""
    try:
        with path.open("rb") as f:  # the header alone: a file name further on may not be UTF-8 (written as it is)
            head = f.read(4096)
        header = re.split(rb"[\r\n]", head, maxsplit=1)[0].decode("utf-8", "replace")  # CR alone: Excel for Mac's
    except OSError:
        return False
    return header.startswith("file,class,confidence,") and header.endswith(",verdict")


SPREADSHEET_SUFFIXES = (".xlsx", ".xls", ".xlsm", ".ods", ".numbers")


def check_csv_target(csv_path: Path, inputs: list[Path]) -> None:
    """--csv must not overwrite a photo: refuse an image's name and any input file, then check that
    it can be written, before the work."""
    from wbc.info import IMAGE_SUFFIXES
    from wbc.io import check_writable_file

    target = os.path.realpath(csv_path)  # resolve() raises on a link that loops; check_writable_file names it
    if any(os.path.realpath(f) == target for f in inputs):
        raise WbcError(f"--csv {csv_path}: that is one of the images given; writing the table there would "
                       "overwrite it. Give a .csv file name")
    if csv_path.suffix.lower() in IMAGE_SUFFIXES:
        raise WbcError(f"--csv {csv_path}: that is an image's name, not a table's; give a .csv file name")
    if str(csv_path) == "-":  # a file named "-" was written where a Unix user meant the terminal
        raise WbcError("--csv -: the table is printed to the terminal already; give a .csv file name to keep it")
    if csv_path.suffix.lower() in SPREADSHEET_SUFFIXES:  # CSV text under a workbook's name: a spreadsheet refuses it
        raise WbcError(f"--csv {csv_path}: the table is written as CSV text, not a {csv_path.suffix} workbook; give a "
                       ".csv file name (spreadsheets open it)")
    # An earlier table of `wbc predict`'s is replaced (said after); any other file there (a model card, notes,
    # a spreadsheet of the user's) is not ours to replace.
    if csv_path.is_file() and not _predictions_table(csv_path):
        raise WbcError(f"--csv {csv_path}: a file of that name exists and is not a table `wbc predict` wrote; "
                       "writing there would replace it. Give another file name")
    check_writable_file(csv_path)


def csv_destination(csv_path: Path | None, interrupted: bool) -> tuple[Path | None, Path | None]:
    """Where --csv's table goes, and the file kept instead of replaced (or None): an interrupted run's
    table, of the files read before Ctrl+C, does not replace a table already at --csv (a whole run's, it
    was lost to a part) but goes beside it as NAME.partial.csv, unless a file not of `wbc predict` is
    there (then nowhere: None, with the kept file given as that one)."""
    if csv_path is None or not interrupted or not csv_path.is_file():
        return csv_path, None
    partial = csv_path.with_name(f"{csv_path.stem}.partial{csv_path.suffix}")
    if partial.is_file() and not _predictions_table(partial):
        return None, partial
    return partial, csv_path
