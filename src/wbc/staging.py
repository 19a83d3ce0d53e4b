"""Output folders written whole: files made in a staging folder inside the output folder, then moved in all
at once, so that a failed or interrupted export or evaluation leaves the folder as it was, and a killed one
leaves it so once the next one there has started (`undo_killed_move`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from wbc.io import missing_folders, remove_empty

STAGE_PREFIX = ".wbc-staging."  # a staging folder inside an output folder: PREFIX<pid>.<random>
STAGE_PREFIXES = (STAGE_PREFIX, ".wbc-export.")  # the second an export's before 0.19


def clear_dead_stages(out: Path) -> None:
    """Remove the staging folders a killed export or evaluation left in `out` (named by STAGE_PREFIX and
    the process that made them, now gone); one of a running process, or anything else, stays."""
    for stage in (s for prefix in STAGE_PREFIXES for s in out.glob(prefix + "*")):
        pid = stage.name.split(".")[2]  # ".wbc-staging.<pid>.<random>": "", "wbc-staging", pid
        if not stage.is_dir() or stage.is_symlink() or not pid.isdigit():
            continue  # not a staging folder of ours
        if int(pid) != os.getpid() and _running(int(pid)):  # this process writes one folder at a time
            continue
        if undo_killed_move(stage, out):
            shutil.rmtree(stage, ignore_errors=True)


# In a staging folder's .before, while `move_in` moves files in: each name, a tab, and 1 where the output folder
# held a file of that name before (its copy in .before), else 0.
MOVING = ".moving"


def undo_killed_move(stage: Path, out: Path) -> bool:
    """Where a process stopped while `move_in` moved `stage`'s files into `out` and could not undo it (killed by
    SIGKILL or a power cut, or its undo failed), put `out` back as it was: the files moved in so far out, the
    earlier ones kept in .before back in (the folder was left half new, half old, and the next run deleted the old
    ones). Whether `stage` may go: False where an earlier file could not be put back (said, with where it is), or
    another process, still running, is undoing it."""
    before = stage / ".before"
    claimed = before / f"{MOVING}.{os.getpid()}"
    # The list is claimed by renaming it after this process: of two runs starting here at once, one undoes it, and a
    # claim whose process is gone (an undo that failed, or was killed) is taken over.
    for marker in (before / MOVING, *before.glob(f"{MOVING}.*")):
        holder = marker.name.rpartition(".")[2]
        if marker.name != MOVING and holder.isdigit() and int(holder) != os.getpid() and _running(int(holder)):
            return False
        try:
            os.replace(marker, claimed)
            break
        except OSError:
            continue
    try:
        moving = [line.split("\t") + [""] for line in claimed.read_text().splitlines()]
    except (OSError, UnicodeDecodeError):
        return True  # no move under way: not begun, done or undone
    try:
        for f, existed, *_ in reversed(moving):
            if (stage / f).exists():
                continue  # not moved in
            if (before / f).exists():
                os.replace(before / f, out / f)
            elif existed == "0":
                (out / f).unlink(missing_ok=True)
            # else: put back already, by an undo that stopped midway
    except OSError as e:
        print(f"wbc: note: {out} was left half written by an export or evaluation that stopped while moving its files "
              f"in, and its earlier files could not all be put back ({e}); they are in {before}", file=sys.stderr)
        return False
    claimed.unlink()
    print(f"wbc: note: {out} had been left half written by an export or evaluation that stopped while moving its files "
          "in; its earlier files are back", file=sys.stderr)
    return True


def _running(pid: int) -> bool:
    """Whether process `pid` may be running: False only where it is known to be gone (POSIX; elsewhere there is
    no cheap way to tell)."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True  # another user's process (alive), or no process id at all
    return True


@contextlib.contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A staging folder inside `out` (made, with its parents, where missing), named by this process, and
    removed after the block. Where the block fails, so are the folders made for it while they are
    empty (once the files moved in, `out` is not); an undo by `move_in` that failed leaves what it
    could not put back in the staging folder, and says where."""
    made = missing_folders(out)
    stage: Path | None = None
    try:
        out.mkdir(parents=True, exist_ok=True)
        clear_dead_stages(out)
        stage = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{os.getpid()}.", dir=out))
        yield stage
    except BaseException:
        kept = stage / ".before" if stage is not None else None
        if kept is not None and kept.is_dir() and any(kept.iterdir()):
            print(f"wbc: note: could not put back every file replaced in {out}; the earlier ones "
                  f"are in {kept}", file=sys.stderr)
        elif stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        remove_empty(made)
        raise
    shutil.rmtree(stage, ignore_errors=True)


def move_in(stage: Path, out: Path, names: list[str]) -> None:
    """Move `names` from `stage` into `out` in that order, all or none: where one move fails, those
    before it are undone from the copies kept of the files they replaced (hard links, else copies)."""
    before = stage / ".before"  # inside the staging folder: listed after `names` were
    before.mkdir()
    # For a process killed midway, the next run's `undo_killed_move`: what was being moved in, and what it replaced.
    (before / MOVING).write_text("".join(f"{f}\t{int((out / f).is_file())}\n" for f in names))
    done: list[str] = []
    try:
        for f in names:
            if (out / f).is_file():
                try:
                    os.link(out / f, before / f)
                except OSError:
                    shutil.copy2(out / f, before / f)
            os.replace(stage / f, out / f)
            done.append(f)
        (before / MOVING).unlink()  # done: a kill from here on leaves the new files whole
    except BaseException:
        for f in reversed(done):
            if (before / f).exists():
                os.replace(before / f, out / f)
            else:
                (out / f).unlink(missing_ok=True)
        shutil.rmtree(before)  # undone: what is left there is no longer needed
        raise


@contextlib.contextmanager
def interrupt_held(hit: list[int]) -> Iterator[None]:
    """Ctrl-C (and SIGTERM, which `wbc.cli.main` takes as one) recorded in `hit` instead of raised, for the block
    (on the main thread; elsewhere the main thread gets it): Python runs a signal's handler on the main thread
    whichever thread the signal hits."""
    try:
        old = signal.signal(signal.SIGINT, lambda signum, frame: hit.append(signum))
    except ValueError:  # not the main thread
        yield
        return
    old_term = signal.signal(signal.SIGTERM, lambda signum, frame: hit.append(signum))
    try:
        yield
    finally:
        if old is not None:  # None: a handler not set from Python, which cannot be put back from it
            signal.signal(signal.SIGINT, old)
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


def raise_held(hit: list[int], what: str, out: Path) -> None:
    """Where `interrupt_held` held a Ctrl-C back (`hit`) while `what` moved into `out`: say that it is there,
    then raise it (to the handler put back: KeyboardInterrupt by default). Not said where `out` is itself
    a staging folder (an evaluation in an export's): that folder goes as the interrupt stops the export."""
    if not hit:
        return
    moved = not out.name.startswith(STAGE_PREFIXES)
    if moved:
        print(f"wbc: note: {what} was written to {out} before the interrupt took effect", file=sys.stderr)
    try:
        signal.raise_signal(hit[0])  # the signal held (SIGTERM too): SIGINT stands ignored in a script's background job
    except KeyboardInterrupt as e:
        e.moved_in = moved  # type: ignore[attr-defined]  # for `left_as_it_was`: not said of this folder
        raise


def left_as_it_was(e: KeyboardInterrupt, out: str | Path) -> str:
    """What an export or evaluation into `out` stopped by `e` says: that `out` is as it was, where `e` came before
    the files moved in (all but a Ctrl+C held back while they moved, `raise_held`), else ""."""
    return "" if getattr(e, "moved_in", False) else f"; {out} is as it was (nothing of this run was moved in)"
