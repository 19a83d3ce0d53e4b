"""Files: atomic writes (a crash or kill never leaves a half-written result behind), output checks before
the work, walking folders, an image's identity by its bytes, and file names as a spreadsheet and a terminal
should show them."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from wbc.errors import OutputError

_UMASK = os.umask(0)
os.umask(_UMASK)


def _refuse_no_file(path: Path) -> None:
    """OutputError where `path` (links followed) exists and is no regular file: the rename that makes a
    write atomic would put a file in place of a device, a pipe or a socket (`--csv /dev/null` as root
    replaced the device); and where it is a link that loops, which the rename would replace."""
    try:
        mode = path.stat().st_mode
    except OSError as e:
        if e.errno == errno.ELOOP:  # written through, it would be replaced by a file: say so instead
            raise OutputError(f"{path}: is a link that loops (or through one), not a file; give a file name") from e
        return
    if not stat.S_ISREG(mode):
        kind = ("a folder" if stat.S_ISDIR(mode) else "a pipe" if stat.S_ISFIFO(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "no regular file")
        raise OutputError(f"{path}: is {kind}, not a file; the output is written to a file: give a file name")


_WRITE_SUFFIX = ".tmp"  # `atomic_write_bytes`'s temporary file beside NAME: .NAME.<random>.tmp


def write_leftovers(folder: Path, name: str) -> Iterator[Path]:
    """The temporary files `atomic_write_bytes` makes in `folder` for files named `name` (a glob pattern): a write
    killed before its rename leaves one behind, for the writer's owner to remove when none is live."""
    return folder.glob(f".{name}.*{_WRITE_SUFFIX}")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path` (a link's target), fsync it, then rename it over
    `path`. A link is written through: the file it names is replaced and the link kept. Where `path` is
    no regular file (a device, a pipe), OutputError: a rename would replace it with a file."""
    path = Path(path)
    _refuse_no_file(path)
    target = Path(os.path.realpath(path))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=_WRITE_SUFFIX)
    except (FileExistsError, NotADirectoryError) as e:
        raise OutputError(f"{path}: cannot write it (a folder on its path is a file)") from e
    except OSError as e:
        raise OutputError(f"{path}: cannot write it ({e.strerror or e})") from e
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file normal permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as e:  # named by the file meant, not the hidden temporary one (a full disk names none)
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write it ({e.strerror or e})") from e
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    # surrogateescape: a file name that is not valid UTF-8 (os.listdir's surrogates) is written back as its bytes.
    atomic_write_bytes(path, text.encode("utf-8", "surrogateescape"))


def read_json(path: str | Path) -> Any:
    """The JSON value in `path`. OSError where it cannot be read (a folder, no such file); ValueError where it
    is not JSON, or not UTF-8, or nested deeper than the parser goes (which raises RecursionError, a reader's
    `except ValueError` let through: a run's split.json of 100,000 brackets ended `wbc train --resume` in a
    traceback)."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply to read") from None


def json_with_keys(path: str | Path, keys: Iterable[str]) -> bool:
    """Whether `path` holds a JSON object with every one of `keys`: a file of wbc's, which a rerun may replace,
    told from a user's file of the same name; False where it cannot be read (a list of those names was taken for
    one of ours)."""
    try:
        value = read_json(path)
    except (OSError, ValueError):
        return False
    return isinstance(value, dict) and set(keys) <= set(value)


def _folder_problem(path: Path) -> str:
    """Why output cannot go into the folder `path` ("" where it can), found without creating anything:
    a probe file in the nearest folder that exists (permission bits alone do not tell: root, read-only
    mounts, /proc)."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():  # exists() reads a link to nothing (or a loop) as absent, mkdir as present
            where = "is" if existing == path else f"cannot be made: {existing} is"
            return f"{where} a link to nothing (its target is gone, or it loops)"
        existing = existing.parent
    if not existing.is_dir():
        kind = "a file" if existing.is_file() else "a pipe, socket or device"
        return f"is {kind}, not a folder" if existing == path else f"cannot be made: {existing} is {kind}"
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".wbc-write-check.")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        # A folder that exists and says a new file in it does not (/proc) takes no files of any kind.
        why = "it takes no new files" if e.errno == errno.ENOENT else e.strerror or str(e)
        return f"is not writable ({why})" if existing == path else f"cannot be made in {existing} ({why})"
    return ""


def check_writable_folder(path: str | Path) -> None:
    """Fail before the work, not after it, where the output folder `path` cannot be made or written
    (OutputError naming it and why)."""
    problem = _folder_problem(Path(path))
    if problem:
        raise OutputError(f"{path}: {problem}; give another output folder")


def check_writable_files(*paths: str | Path | None) -> None:
    """`check_writable_file` for each output asked for (None: one not asked for), before the work that fills them:
    a path that cannot be written failed only at the end of a benchmark's minutes."""
    for path in paths:
        if path:
            check_writable_file(path)


def missing_folders(path: str | Path) -> list[Path]:
    """The folders on `path` (itself and its parents, ".." resolved) that do not exist yet, innermost
    first: what making it will make, to be removed by `remove_empty` where the work fails."""
    folder, missing = Path(os.path.abspath(path)), []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def remove_empty(folders: list[Path]) -> None:
    """Remove `folders` in order (innermost first, as `missing_folders` lists them) while they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def check_writable_file(path: str | Path) -> None:
    """Fail before the work where the output file `path` cannot be written (OutputError naming it and
    why): a folder of that name, or a folder it cannot be written into."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name for the output, e.g. {path / 'predictions.csv'}")
    _refuse_no_file(path)
    # A link is written through (`atomic_write_bytes`): its target's folder is the one to check.
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    problem = _folder_problem(target.parent)
    if problem:
        via = f" (the link's target, {target})" if target != path else ""
        raise OutputError(f"{path}: cannot write it{via}: folder {target.parent} {problem}")


def files_under(folder: Path, strict: bool = False, problems: list[tuple[Path, str]] | None = None) -> Iterator[Path]:
    """Every file under `folder`, following linked folders (a smear's class folders linked in), each
    real folder once: a link back up the tree does not loop. Hidden files and folders (a name starting
    with ".": macOS's ._ copies, .ipynb_checkpoints) are passed over. `strict`: a folder that cannot be
    listed (or entered) raises its OSError, and a link to nothing is yielded (to be named when read), instead
    of both being passed over. `problems` (not strict): where given, those folders and links are added to
    it, each with why, so that a caller can name them rather than lose them without a word; so are a folder
    that can be listed but not entered, a file that cannot be looked at (its path too long), a link whose target
    cannot be reached (it lies in a folder locked to us) and what is no file of data (a named pipe, a socket)."""
    seen: set[Path] = set()

    def refuse(e: OSError) -> None:
        raise e

    def note(e: OSError) -> None:
        if problems is not None:
            problems.append((Path(e.filename or folder), f"a folder that cannot be listed ({e.strerror or e})"))

    for root, dirs, files in os.walk(folder, followlinks=True, onerror=refuse if strict else note):
        real = Path(root).resolve()
        if real in seen:
            dirs.clear()
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for p in (Path(root) / f for f in files if not f.startswith(".")):
            try:
                is_file = p.is_file()  # Python 3.11 raises where it cannot look (EACCES, ENAMETOOLONG)
            except OSError as e:
                if e.errno == errno.EACCES and not _can_look_at(p):
                    # Listed but not entered (read permission without execute): no file or folder in it can be
                    # reached, and it is the folder to name (one row, not one a file), not its first file.
                    if strict:
                        raise PermissionError(e.errno, f"{e.strerror}: it can be listed but not entered", root) from e
                    if problems is not None:
                        problems.append((Path(root), f"a folder whose files cannot be reached ({e.strerror or e})"))
                    dirs.clear()
                    break
                if strict:
                    raise
                if problems is not None:  # its path too long, or a link whose target lies in a folder locked to us
                    problems.append((p, f"cannot be looked at ({e.strerror or e})" if e.errno != errno.EACCES
                                     else f"a link whose target cannot be reached ({e.strerror or e})"))
                continue
            if is_file or strict and p.is_symlink():
                yield p
            elif problems is not None and p.is_symlink():
                problems.append((p, "a link to nothing (its target is gone, or it loops)"))
            elif problems is not None and p.exists():  # a named pipe called x.jpg was passed over without a word
                problems.append((p, "not a file of data (a pipe, a socket or a device)"))


def _can_look_at(p: Path) -> bool:
    """Whether `p` itself can be looked at (os.lstat): where it can, an EACCES from following it is its link's
    target's (in a folder locked to us), not its folder's, whose other files are then still read."""
    try:
        os.lstat(p)
    except OSError:
        return False
    return True


# What a spreadsheet takes a cell to start a formula with (OWASP's list: tab and carriage return too): a file
# named "=HYPERLINK(...)" ran as a live link in a CSV opened in LibreOffice.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Quoted with ' in a CSV; a text starting with ' itself too, so that `unquoted` gives every text back.
QUOTED_STARTS = (*FORMULA_STARTS, "'")


def spreadsheet_text(v: str) -> str:
    """`v` as a CSV cell a spreadsheet shows as text: quoted with ' where it starts with QUOTED_STARTS."""
    return "'" + v if v[:1] in QUOTED_STARTS else v


def unquoted(v: str) -> str:
    """`spreadsheet_text` undone."""
    return v[1:] if v[:1] == "'" and v[1:2] in QUOTED_STARTS else v


def printable(name: str) -> str:
    """A file name as one line of a terminal's output: a newline, tab or other control character in it is
    shown escaped (a name may hold any of them), the rest as it is."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)


def passed_over(files: Sequence[Path]) -> str:
    """What files that are no image by their names were: "3 other file(s) passed over: .heic, .txt", with what to
    do about a phone's HEIC photos (said alike where `wbc predict` searches a folder and where a data set is read)."""
    kinds = sorted({printable(f.suffix.lower()) or "no extension" for f in files})
    heic = " (HEIC photos, as phones save them, are not read: export them as JPEG)" if {".heic", ".heif"} & set(kinds) else ""
    return f"{len(files)} other file(s) passed over: {', '.join(kinds[:6])}{', ...' if len(kinds) > 6 else ''}{heic}"


def lines_shown(message: str) -> str:
    """A message's lines each `printable`: a file name it quotes cannot send the terminal escape codes
    (a name holding ESC [31m turned the rest of the output red)."""
    return "\n".join(map(printable, message.split("\n")))


def bytes_key(data: bytes) -> str:
    """An image's identity, whatever its name: its bytes' sha256 (hex). The app and `wbc predict` count
    one image given twice (or under two names) once."""
    return hashlib.sha256(data).hexdigest()


def first_copies(keys: Sequence[str | None]) -> dict[int, int]:
    """For each item whose key an earlier item had: its index -> the index of the first with that key.
    A None key (an item with no bytes read) repeats nothing and is repeated by nothing."""
    first: dict[str, int] = {}
    copies: dict[int, int] = {}
    for i, key in enumerate(keys):
        if key is None:
            continue
        if key in first:
            copies[i] = first[key]
        else:
            first[key] = i
    return copies
