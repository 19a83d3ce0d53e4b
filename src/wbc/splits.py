"""Cell-grouped, class-stratified splits of the samples: k folds (`grouped_kfold`), or one train/validation
split (`grouped_split`); a cell the data set shows under two labels stays on one side."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import numpy as np

from wbc.data import Sample
from wbc.errors import DataError
from wbc.info import CLASSES
from wbc.sources import read_linked

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
