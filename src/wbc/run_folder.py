"""A run folder's guards: one `wbc train` at a time, no one else's files replaced, a resume on the run's own cells."""

from __future__ import annotations

import contextlib
import csv
import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from wbc.errors import CheckpointError, CheckpointNotPermitted, DataError, OutputError
from wbc.io import json_with_keys, missing_folders, read_json, remove_empty, write_leftovers
from wbc.sources import read_linked


RESTART = "start the run again in another --out, or remove the folder first"  # a resume's dead end: what to do


def run_split(run: Path, then: str = f"it cannot be resumed safely: {RESTART}") -> tuple[dict[str, Any], set[str],
                                                                                         set[str]]:
    """A run's split.json, its training cells and its validation cells; CheckpointError where it is missing or
    damaged, saying `then` what it means for the work."""
    try:
        split = read_json(run / "split.json")
        return split, set(split["train_cells"]), set(split["val_cells"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{run}: split.json, the cells the run trained on, is missing or damaged; {then}") from e


def split_before_links(then_tr: set[str], then_va: set[str], cells: list[str], tr_idx: np.ndarray,
                       va_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The run's own split (`then_tr`, `then_va`: its split.json's cells) where the split made now differs from
    it only in where the linked cells went (`wbc.sources.read_linked`: a run started before wbc 0.21 kept a
    field labelled twice apart, and goes on as it started); the split made now otherwise, for `check_same_split`."""
    now_tr, now_va = {cells[i] for i in tr_idx}, {cells[i] for i in va_idx}
    moved = (then_tr & now_va) | (then_va & now_tr)
    linked = {c for pair in read_linked().items() for c in pair}
    if not moved or then_tr | then_va != now_tr | now_va or not moved <= linked:
        return tr_idx, va_idx
    return (np.array([i for i, c in enumerate(cells) if c in then_tr], dtype=int),
            np.array([i for i, c in enumerate(cells) if c in then_va], dtype=int))


def resumed_on_other_cells(run: Path, cells: set[str], root: Path | str, error: DataError) -> None:
    """DataError naming the data as the cause where the cells a resumed run reads (at `root`) are not those its
    split.json holds, and the split made of them failed with `error`."""
    _, then_tr, then_va = run_split(run)
    if cells != then_tr | then_va:
        raise DataError(f"{run}: --resume: the data at {root} gives {len(cells)} cells, other than the "
                        f"{len(then_tr | then_va)} the run started on (split.json), and no split of them can be made "
                        f"({error}): --data points at other data, or files were added, removed or left out as unusable "
                        "(--skip-bad, named above) since; point --data at the data it started on, or start a new "
                        "run") from error


def check_same_split(run: Path, split: tuple[dict[str, Any], set[str], set[str]], cells: list[str],
                     tr_idx: np.ndarray, va_idx: np.ndarray, root: Path | str) -> None:
    """DataError unless the data a resumed run reads (`root`) gives the cells, and files, the run
    started on (its `split`, `run_split`; the file counts only where it has them): --data may move, not change
    what is trained on."""
    split_json, then = split[0], (split[1], split[2])
    now = ({cells[i] for i in tr_idx}, {cells[i] for i in va_idx})
    if now != then:
        gone, new = sorted((then[0] | then[1]) - (now[0] | now[1])), sorted((now[0] | now[1]) - (then[0] | then[1]))
        moved = sorted((then[0] & now[1]) | (then[1] & now[0]))  # on the other side of the split now
        which = "; ".join(f"{len(c)} {what}: {', '.join(c[:3])}{' ...' if len(c) > 3 else ''}"
                          for what, c in (("missing", gone), ("new", new), ("moved between training and validation",
                                                                               moved)) if c)
        raise DataError(
            f"{run}: --resume: the data at {root} gives {len(now[0])} training and {len(now[1])} validation cells, "
            f"other than the {len(then[0])} and {len(then[1])} the run started on (split.json; {which}): --data points at "
            "other data, or files were added, removed or left out as unusable (--skip-bad, named above) since; "
            "point --data at the data it started on, restore the files, or start a new run")
    counts = (split_json.get("train_files"), split_json.get("val_files"))  # absent from runs before version 0.15
    if any(c is not None and c != n for c, n in zip(counts, (len(tr_idx), len(va_idx)))):
        raise DataError(
            f"{run}: --resume: the data at {root} gives {len(tr_idx)} training and {len(va_idx)} validation files of "
            f"the run's cells, but it started on {counts[0]} and {counts[1]} (split.json): files were added, removed "
            "or left out as unusable (--skip-bad, named above) since; restore them as they were, or start a new run")


def read_val_cells(run: Path) -> set[str]:
    """The cells a run held out for validation, from the split.json that `fit` wrote."""
    if not Path(run).is_dir():
        raise CheckpointError(f"{run}: no such run folder")
    if not (run / "split.json").exists():  # a photo folder given as --teacher read "split.json ... damaged"
        raise CheckpointError(f"{run}: not a training run: it holds no split.json, the cells `wbc train` split "
                              "(written in its --out folder)")
    try:
        return set(read_json(run / "split.json")["val_cells"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        # Nothing else holds which cells the run held out: the export's calibration and held-out figures need them.
        raise CheckpointError(f"{run}: split.json with the validation cells is missing or damaged: put "
                              "back the run's own (a copy of the run folder), or train the run again") from e


@contextlib.contextmanager
def only_writer(run: Path) -> Iterator[None]:
    """Hold the run folder for one `wbc train` at a time (an advisory lock on the folder, released
    when the process ends however it ends); the folders made here (`runs/` too) and left empty are
    removed. Where no lock can be had (not POSIX; a file system without locks) training goes on without one."""
    made = missing_folders(run)
    run.mkdir(parents=True, exist_ok=True)
    fd: int | None = None
    held = False
    try:
        try:
            import fcntl

            fd = os.open(run, os.O_RDONLY)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            remove_dead_writes(run)  # held alone: no live write is among them
        except BlockingIOError:
            raise CheckpointError(f"{run}: another `wbc train` is writing to this run now; wait for it to "
                                  "end, or choose another --out") from None
        except ImportError:
            pass  # not POSIX: train without a lock
        except OSError as e:
            if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS):
                raise CheckpointError(f"{run}: cannot be held for this run ({e.strerror or e})") from None
            # a file system without locks: train without one
        held = True
        yield
    finally:
        if fd is not None:
            os.close(fd)
        # Only the holder tidies: a refused start must not remove the folder the holder is about to fill.
        if held:
            remove_empty(made)


def being_written(run: Path) -> bool:
    """Whether another `wbc train` holds the folder `run` now (`only_writer`'s lock); False where that cannot be
    told (not POSIX, no such folder, a file system without locks)."""
    try:
        import fcntl

        fd = os.open(run, os.O_RDONLY)
    except (ImportError, OSError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released by the close below
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


RUN_FILES = ("config.json", "split.json", "summary.csv", "best.pt", "curves.png")  # and last.pt, which `fit` refuses


def remove_dead_writes(run: Path) -> None:
    """Remove the hidden temporary files (`wbc.io.atomic_write_bytes`'s) of a run's files that a killed `wbc train`
    left half-written in `run`, once `only_writer` holds its lock: no live write is among them then.
    Each kill while a checkpoint was written left one (2 MB for wbcnet), never removed."""
    for name in (*RUN_FILES, "last.pt"):
        for p in write_leftovers(run, name):
            with contextlib.suppress(OSError):
                p.unlink()


def refuse_others_files(run: Path) -> None:
    """OutputError, before the work, where a new run's folder holds files of a run's names that are not a wbc
    run's (its config.json has no recipe): a user's config.json and curves.png are not ours to replace. A run
    stopped before its first epoch ended (config.json and split.json, no last.pt) is started again there."""
    theirs = [f for f in RUN_FILES if (run / f).exists()]
    if not theirs:
        return
    if not json_with_keys(run / "config.json", ("train", "model")):
        raise OutputError(f"{run}: holds {', '.join(theirs)}, not of a run by wbc; training there would replace them. "
                          "Give another --out folder, or move them")


def stopped_saving_first_epoch(run: Path) -> bool:
    """Whether a run folder without last.pt holds no more than its first epoch wrote before last.pt, which marks
    an epoch done (best.pt, a summary.csv of one row): a run stopped (Ctrl+C, a kill) while that epoch was saved,
    with nothing --resume can use, which a new start there may replace. A finished run of one epoch (its best.pt
    marked stopped) and one of more rows are not; nor is one whose files cannot be read."""
    try:
        with (run / "summary.csv").open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        rows = []
    except (OSError, ValueError, csv.Error):
        return False
    if len(rows) > 1:
        return False
    if not (run / "best.pt").exists():  # a first epoch at low resolution is never best
        return True
    from wbc.checkpoint import load_checkpoint  # torch: only where a run folder has a best.pt to read

    try:
        state = load_checkpoint(run / "best.pt")
    except CheckpointError:
        return False
    return state["epoch"] == 0 and not state.get("stopped")


def resumable_state(run: Path) -> dict[str, Any]:
    """The last.pt that --resume goes on from (`wbc.checkpoint.load_checkpoint`), whose run's split.json is read too
    where the run has epochs to go, before any image is decoded; CheckpointError where either is damaged, saying what can be done (a damaged one
    named the file, but not that a new start there is refused, and split.json's after every image was decoded)."""
    from wbc.checkpoint import load_checkpoint  # torch: only where a run is resumed

    try:
        state = load_checkpoint(run / "last.pt")
    except CheckpointNotPermitted:  # a whole run: not to remove
        raise
    except CheckpointError as e:
        best = " (its best.pt may still be exported)" if (run / "best.pt").is_file() else ""
        raise CheckpointError(f"{e}; it cannot be resumed from: {RESTART}{best}") from e
    if not state.get("stopped"):  # a finished run trains no more: its cells are not read again
        run_split(run)
    return state
