"""The decoded-image cache: every sample decoded and prepared as `wbc predict` prepares a photo, with what
that found of its field (its shrink, white and gains), kept on disk and keyed by the files, the spec and the
preprocessing code; and what the decoded set says of its photos (no colour, whites unlike the data set's)."""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import json
import os
import re
import signal
import sys
import time
import zipfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wbc import decode, framing, imaging, other_cell, photo_checks, pixels, screening, white_balance
from wbc.data import Sample, listed, say_once
from wbc.decode import load_image
from wbc.errors import BadImageError, DataError, OutputError
from wbc.imaging import PreprocessSpec
from wbc.io import atomic_write_bytes, write_leftovers
from wbc.pixels import DATA_WHITE


@dataclass(frozen=True)
class Prepared:
    """The kept samples as the network is given them, and what preparing each one found."""

    x: np.ndarray  # uint8 (N, h, w, 3)
    samples: list[Sample]
    reduced_by: np.ndarray  # (N,): a magnified field was shrunk by this before the crop (1: not)
    gains: np.ndarray  # (N, 3): the field's `white_balance.input_gains`, NaN where it has none
    skipped: tuple[str, ...] = ()  # the files left out as unusable (skip_bad), by path
    whites: np.ndarray | None = None  # (N, 3): the field's white (`white_balance.field_white`), R, G, B
    # (N, 2): the field's height and width (px, shrunk to the data set's magnification), whose shorter side the
    # screening of `wbc predict` calls too small under photo_checks.MIN_SIDE_PX
    sides: np.ndarray | None = None


def _decode(args: tuple[str, dict]) -> tuple[np.ndarray, float, np.ndarray, np.ndarray, tuple[int, int]] | str:
    path, spec_d = args
    try:
        x, loc, field = white_balance.prepared_as_predicted(load_image(path), PreprocessSpec.from_dict(spec_d))
    except BadImageError as e:
        return str(e)
    white = white_balance.field_white(field)
    gains = white_balance.input_gains(field, white)
    return x, loc.reduced_by, np.full(3, np.nan) if gains is None else gains, white, field.shape[:2]


CACHE_LIMIT_BYTES = 2 * 1024**3  # the least recently used decoded sets beyond this are removed


def cache_dir() -> Path:
    """WBC_CACHE (an empty value counts as unset; `~` is the home folder), else ~/.cache/wbc."""
    return Path(os.path.expanduser(os.environ.get("WBC_CACHE") or "~/.cache/wbc"))


# A write's temporary file untouched for this long is a killed run's: a live one is written in seconds (350 MB).
STALE_WRITE_SECONDS = 600


def remove_stale_writes(folder: Path) -> None:
    """Remove the hidden temporary files of a decoded set's write (`atomic_write_bytes`'s) that a killed run left in
    `folder`, once STALE_WRITE_SECONDS old: up to 350 MB each, never counted by the pruning nor removed, they filled
    the disk unseen. Only names of this cache's entries are touched."""
    for p in write_leftovers(folder, "*.npz"):
        if re.fullmatch(r"\.[0-9a-f]{20}\.npz\.[^.]+\.tmp", p.name):
            with contextlib.suppress(OSError):
                if time.time() - p.stat().st_mtime > STALE_WRITE_SECONDS:
                    p.unlink()


def prune_cache(folder: Path, keep: Path, limit: int = CACHE_LIMIT_BYTES) -> None:
    """Remove the least recently used decoded sets in `folder` until the rest fit in `limit` bytes;
    `keep` (the set just written) stays whatever its size. Entries that vanish meanwhile (another run
    pruning too) are passed over. Only this cache's entries (`_cache_key` names: 20 hex digits) are
    touched: WBC_CACHE may point at a folder that holds other .npz files too; and a killed write's
    temporary files (`remove_stale_writes`)."""
    remove_stale_writes(folder)
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
    modules = (decode, framing, imaging, pixels, screening, photo_checks, white_balance, other_cell)
    h = hashlib.sha256(b"".join(Path(m.__file__).read_bytes() for m in modules) + inspect.getsource(_decode).encode())
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
    (whether it was shrunk, its white gains), so that evaluating does not decode a file again for them
    (`evaluate --folder`'s screening does: 12 of its 18 s on TEST's 2,487 files, a profile).

    Results are cached on disk (WBC_CACHE, default ~/.cache/wbc) keyed by file identity and spec.
    A bad file stops everything with a message naming each bad file, unless `skip_bad`.
    """
    from wbc.progress import bar

    key = _cache_key(samples, spec)
    cpath = cache_dir() / f"{key}.npz"
    if use_cache and cpath.exists():
        try:
            with np.load(cpath) as z:
                x, keep, reduced_by, gains, whites, sides = (z["x"], z["keep"], z["reduced_by"], z["gains"], z["whites"],
                                                             z["sides"])
            with contextlib.suppress(OSError):
                os.utime(cpath)  # used now: the pruning keeps the sets in use
            remove_stale_writes(cpath.parent)  # a rerun after a killed write finds its set here, and writes none
            if skip_bad or keep.all():
                return _kept(samples, keep, x, reduced_by, gains, whites, sides)
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
    sides = np.array([r[4] for r in good], dtype=np.int64).reshape(-1, 2)
    if use_cache:
        buf = io.BytesIO()
        np.savez(buf, x=x, keep=keep, reduced_by=reduced_by, gains=gains, whites=whites, sides=sides)
        try:
            atomic_write_bytes(cpath, buf.getvalue())
            prune_cache(cpath.parent, keep=cpath)
        except OutputError as e:  # the cache only saves time: the decoded images are in hand
            print(f"wbc: note: the decoded images are not cached ({e}); the next run decodes them again",
                  file=sys.stderr)
    return _kept(samples, keep, x, reduced_by, gains, whites, sides)


# Share of a set's images whose white lies below the data set's range above which the set is said to be
# photographed unlike it (the public data set's own: 9 of 9,957 TRAIN files, 4 of 2,487 TEST).
UNLIKE_WHITE_SHARE = 0.05


def unlike_white_note(whites: np.ndarray) -> str:
    """Where more than UNLIKE_WHITE_SHARE of a set's fields' whites (N, 3) lie below the public data set's range:
    that the screening of `wbc predict` and the app is set for the public data set's white, so that such photos
    are read through the white matching, or refused (an own-data user test: a lab's dim camera trained, exported and
    evaluated without a word, then had all 12 of its TEST photos called too dark), else ""."""
    below, refused = white_balance.unlike_data_white(whites)
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
    within photo_checks.GRAY_SPREAD_MAX (a grayscale photo, or a gray 16-bit scan)."""
    def spread(a: np.ndarray) -> np.ndarray:  # (n, ...) -> the largest channel spread of each, (n,)
        return (a.max(-1) - a.min(-1)).reshape(len(a), -1).max(1)

    # Every 4th pixel each way tells nearly every photo's colour at a sixteenth of the work; the rest are read whole.
    maybe = np.flatnonzero(spread(x[:, ::4, ::4]) <= photo_checks.GRAY_SPREAD_MAX)
    return [samples[i].path for i in maybe if spread(x[i:i + 1])[0] <= photo_checks.GRAY_SPREAD_MAX]


def files_too_small(samples: Sequence[Sample], sides: np.ndarray) -> list[Path]:
    """The files among `samples` whose fields' sides (N, 2) px (`Prepared.sides`) fall under
    photo_checks.MIN_SIDE_PX: photos that the screening of `wbc predict` and the app calls too small to judge."""
    return [s.path for s, hw in zip(samples, sides) if min(hw) < photo_checks.MIN_SIDE_PX]


def _kept(samples: Sequence[Sample], keep: np.ndarray, x: np.ndarray, reduced_by: np.ndarray,
          gains: np.ndarray, whites: np.ndarray, sides: np.ndarray) -> Prepared:
    """The Prepared of the samples `keep` (N,) marks; the files left out are named on stderr, so that
    --skip-bad never drops one unsaid, and so are whites unlike the public data set's (`unlike_white_note`)."""
    skipped = tuple(str(s.path) for s, k in zip(samples, keep) if not k)
    if skipped:
        print(f"wbc: note: {len(skipped)} unusable file(s) left out (--skip-bad):\n  {listed(skipped)}", file=sys.stderr)
    if note := unlike_white_note(whites):
        say_once(note)
    return Prepared(x, [s for s, k in zip(samples, keep) if k], reduced_by, gains, skipped, whites, sides)
