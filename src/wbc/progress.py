"""Progress bars on a terminal only: in a log or a pipe a bar's redraws are noise, line after line."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tqdm import tqdm


def bar(iterable: Iterable[Any] | None = None, *, show: bool, **kwargs: Any) -> tqdm:
    """tqdm's bar where `show` holds and its output (stderr unless `file=`) is a terminal, none otherwise
    (tqdm's disable=None). Its `write` prints either way: a run's per-epoch lines stay in the log."""
    return tqdm(iterable, disable=None if show else True, **kwargs)
