"""Metrics a hematologist can trust: file- and cell-level, per class, with intervals over cells."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from wbc.calibration import accuracy_at_coverage
from wbc.differential import counting_limits
from wbc.info import CLASSES, NUM_CLASSES


def pool_cells(probs: np.ndarray, y: np.ndarray, cells: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Average the probabilities (N, 4) of all views of each cell -> (C, 4), labels (C,), cell names.
    ValueError where a cell's views carry two labels: its verdict would be scored against one of them."""
    names = sorted(set(cells))
    index = {c: i for i, c in enumerate(names)}
    idx = np.array([index[c] for c in cells])
    sums = np.zeros((len(names), probs.shape[1]))
    np.add.at(sums, idx, probs)
    counts = np.bincount(idx, minlength=len(names))[:, None]
    labels = np.zeros(len(names), dtype=int)
    labels[idx] = y
    mixed = sorted({names[i] for i in idx[labels[idx] != np.asarray(y)].tolist()})
    if mixed:
        raise ValueError(f"cell(s) whose views carry two labels: {', '.join(mixed)}")
    return sums / counts, labels, names


ECE_BINS = 15


def _ece_bins(probs: np.ndarray, y: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each file's confidence bin (N,), whether it is right (N,) bool and its confidence (N,)."""
    conf = probs.max(1)
    edges = np.linspace(0, 1, bins + 1)
    return np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1), probs.argmax(1) == y, conf


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: |accuracy - confidence| averaged over equal-width confidence bins (`reliability`), weighted by size."""
    return float(sum(b["files"] / len(y) * abs(b["accuracy"] - b["confidence"]) for b in reliability(probs, y, bins)))


def reliability(probs: np.ndarray, y: np.ndarray, bins: int = ECE_BINS,
                cells: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The ECE's bins that hold files: each one's confidence range, files, accuracy and mean
    confidence (accuracy above confidence: underconfident there; below: overconfident); with the files'
    `cells`, how many cells its files are views of (errors come in whole cells: 338 files may be 6)."""
    which, correct, conf = _ece_bins(probs, y, bins)
    out = []
    for b in range(bins):
        m = which == b
        if m.any():
            out.append({"from": b / bins, "to": (b + 1) / bins, "files": int(m.sum()),
                        "accuracy": float(correct[m].mean()), "confidence": float(conf[m].mean())}
                       | ({"cells": len({cells[i] for i in np.flatnonzero(m)})} if cells is not None else {}))
    return out


def reliability_by_type(probs: np.ndarray, y: np.ndarray, bins: int = ECE_BINS,
                        cells: Sequence[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """`reliability` of the files read as each type, by its name (types read for no file left out): how often
    a call of that type was right at each confidence. Pooled bins hide where one type's errors land: on TEST,
    answers given 93-100% were right 88% of the time, neutrophil calls 70% (the monocytes read wrong)."""
    pred = probs.argmax(1)
    return {CLASSES[c]: reliability(probs[pred == c], y[pred == c], bins,
                                    None if cells is None else [cells[i] for i in np.flatnonzero(pred == c)])
            for c in range(NUM_CLASSES) if (pred == c).any()}


def scores_from_confusion(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, K, K) confusion matrices -> accuracy (B,) and macro-F1 (B,) (classes present only)."""
    tp = np.diagonal(cm, axis1=1, axis2=2).astype(float)
    support = cm.sum(2)
    predicted = cm.sum(1)
    acc = tp.sum(1) / np.maximum(cm.sum((1, 2)), 1)
    f1 = np.where(support + predicted > 0, 2 * tp / np.maximum(support + predicted, 1), 0.0)
    present = support > 0
    macro = (f1 * present).sum(1) / np.maximum(present.sum(1), 1)
    return acc, macro


def cell_resamples(n_cells: int, n: int = 2000, seed: int = 0) -> np.ndarray:
    """How often each of `n_cells` cells is drawn in each of `n` resamples with replacement:
    (n, n_cells) counts, each row summing to n_cells."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_cells, size=(n, n_cells))
    weights = np.zeros((n, n_cells))
    np.add.at(weights, (np.arange(n)[:, None].repeat(n_cells, 1), draws), 1)
    return weights


def ci95(v: np.ndarray) -> tuple[float, float]:
    return float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))


def bootstrap_over_cells(
    y: np.ndarray, pred: np.ndarray, cells: Sequence[str], n: int = 2000, seed: int = 0,
    probs: np.ndarray | None = None, weights: np.ndarray | None = None,
) -> dict[str, tuple[float, float]]:
    """95% percentile intervals for accuracy and macro-F1 over files (and, given the probabilities
    (N, 4) `pred` is the argmax of, ECE over files), resampling whole cells.

    Views of one cell are not independent, so whole cells are drawn with replacement (`weights`, from
    `cell_resamples(len(set(cells)), n, seed)` unless given (benchmarks/interval_coverage.py draws them once), the
    cells in sorted order). ECE is never
    below 0 and its bins' gaps do not cancel, so its resampled values lean high: read its interval as
    the spread that the cells leave, not as a bound around the figure.
    """
    names = sorted(set(cells))
    index = {c: i for i, c in enumerate(names)}
    idx = np.array([index[c] for c in cells])
    n_cells = len(names)
    weights = cell_resamples(n_cells, n, seed) if weights is None else weights  # (n, C)
    # Per-cell confusion contributions (C, K, K): resampled sums give each bootstrap's matrix.
    per_cell = np.zeros((n_cells, NUM_CLASSES, NUM_CLASSES))
    np.add.at(per_cell, (idx, y, pred), 1)
    acc, macro = scores_from_confusion(np.einsum("bc,cij->bij", weights, per_cell))
    out = {"accuracy": ci95(acc), "macro_f1": ci95(macro)}
    if probs is not None:
        # ECE = sum over bins of |right - confidence| summed over the bin's files, / files: per-cell
        # sums (C, bins) of both and of the files, resampled like the matrices.
        which, correct, conf = _ece_bins(probs, y, ECE_BINS)
        sums = np.zeros((3, n_cells, ECE_BINS))
        for k, v in enumerate((correct.astype(float), conf, np.ones(len(y)))):
            np.add.at(sums[k], (idx, which), v)
        right, confident, files = (weights @ s for s in sums)  # each (n, bins)
        out["ece"] = ci95(np.abs(right - confident).sum(1) / files.sum(1))
    return out


def _defined(v: float) -> float | None:
    return None if math.isnan(v) else float(v)


def per_class_figure(v: float | None, digits: int = 4) -> str:
    """A per-class precision, recall or F1 as the reports print it: a dash where it is undefined."""
    return "—" if v is None else f"{v:.{digits}f}"


def cells_read_right(v: dict[str, Any]) -> str:
    """A type's cells read right of its cells, with the exact 95% limits of that share: "3 of 4 (19-99%)",
    from a per-class entry of `compute_metrics`; "" where it has no cells (or predates the count)."""
    return _right_of(v, "cells", "cell_recall_ci95")


def calls_right(v: dict[str, Any]) -> str:
    """Of the cells read as a type, those that are of it, with the exact 95% limits of that share (a type's
    precision over cells: how far a call of it can be trusted): "11 of 14 (49-95%)", from a per-class entry of
    `compute_metrics`; "" where no cell was read as it (or the entry predates the count)."""
    return _right_of(v, "cells_called", "cell_precision_ci95")


def _right_of(v: dict[str, Any], of: str, limits: str) -> str:
    """A per-class entry's cells read right of its count `of`, with the limits under key `limits`."""
    if not v.get(of) or v.get(limits) is None:
        return ""
    lo, hi = v[limits]
    return f"{v['cells_right']} of {v[of]} ({100 * lo:.0f}\u2013{100 * hi:.0f}%)"


def macro_scope(m: dict[str, Any]) -> str:
    """What an evaluation's macro-F1 averages, said where it is not all four types: the types with images
    (a type predicted but absent shows F1 0 in the per-type table and is not averaged); "" otherwise."""
    present = [c for c, v in m["per_class"].items() if v["support"]]
    if len(present) == len(m["per_class"]):
        return ""
    return f"over the {len(present)} type(s) with images here ({', '.join(present)}), not the absent ones"


def compute_metrics(
    probs: np.ndarray, y: np.ndarray, cells: Sequence[str], n_boot: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """Every figure the report shows, from probabilities (N, 4), true labels (N,) and cell names."""
    pred = probs.argmax(1)
    labels = list(range(NUM_CLASSES))
    # A class with no files has no recall, and none predicted has no precision: None (null), not 0.
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=labels, zero_division=np.nan)
    cell_probs, cell_y, _ = pool_cells(probs, y, cells)
    cell_pred = cell_probs.argmax(1)
    boot = bootstrap_over_cells(y, pred, cells, n_boot, seed, probs=probs)
    cell_ok = (cell_pred == cell_y).astype(float)
    present = [c for c in labels if (y == c).any()]
    # Each type's figures over files rest on its cells, which are few: its cells read right, with the
    # exact binomial limits of that share (a type's recall over cells), and of the cells read as it, those
    # that are of it (its precision over cells).
    cells_of = [int((cell_y == c).sum()) for c in labels]
    right_of = [int(((cell_y == c) & (cell_pred == c)).sum()) for c in labels]
    called_of = [int((cell_pred == c).sum()) for c in labels]
    return {
        "n_files": int(len(y)),
        "n_cells": int(len(cell_y)),
        "accuracy": float(accuracy_score(y, pred)),
        "accuracy_ci95": boot["accuracy"],
        "macro_f1": float(f1_score(y, pred, labels=present, average="macro", zero_division=0)),
        "macro_f1_ci95": boot["macro_f1"],
        "cell_accuracy": float(cell_ok.mean()),
        "cells_correct": int(cell_ok.sum()),
        # Cells are independent and each is right or wrong: the exact binomial limits, as each type's. A percentile
        # bootstrap of TEST's 68 covered 95% of the time at 89% right, 86% at 94% and 75% at 97%, where these covered
        # 97.7-99% (benchmarks/interval_coverage.py).
        "cell_accuracy_ci95": counting_limits(int(cell_ok.sum()), len(cell_ok)),
        "cell_macro_f1": float(f1_score(cell_y, cell_pred, labels=present, average="macro", zero_division=0)),
        "ece": expected_calibration_error(probs, y),
        "ece_ci95": boot["ece"],
        "reliability": reliability(probs, y, cells=cells),
        "reliability_by_type": reliability_by_type(probs, y, cells=cells),
        "accuracy_at_90_coverage": accuracy_at_coverage(probs, y, 0.9),
        "per_class": {
            CLASSES[c]: {"precision": _defined(p[c]), "recall": _defined(r[c]), "f1": _defined(f[c]), "support": int(s[c]),
                         "cells": cells_of[c], "cells_right": right_of[c],
                         "cell_recall_ci95": counting_limits(right_of[c], cells_of[c]) if cells_of[c] else None,
                         "cells_called": called_of[c],
                         "cell_precision_ci95": counting_limits(right_of[c], called_of[c]) if called_of[c] else None}
            for c in labels
        },
        "confusion": confusion_matrix(y, pred, labels=labels).tolist(),
        "cell_confusion": confusion_matrix(cell_y, cell_pred, labels=labels).tolist(),
    }


def classification_report_text(probs: np.ndarray, y: np.ndarray) -> str:
    """scikit-learn's report over the types with images here, as the macro-F1 is (`macro_scope`): its
    macro average over all four gave a type predicted but absent an F1 of 0, and disagreed with the
    headline figure; a line then names the absent types and how many files were read as one of them."""
    from sklearn.metrics import classification_report

    present = sorted(set(int(c) for c in y))
    pred = probs.argmax(1)
    text = classification_report(y, pred, labels=present, target_names=[CLASSES[c] for c in present], digits=4,
                                 zero_division=np.nan)
    text = re.sub(r" nan\b", "   —", text)  # undefined, shown as the per-type table shows it (`per_class_figure`)
    absent = [c for c in range(NUM_CLASSES) if c not in present]
    if "micro avg" in text:  # scikit-learn's line where a file was read as an absent type: not the accuracy
        text += f"\naccuracy over all files: {float((pred == y).mean()):.4f}\n"
    if absent:
        read_as = int(np.isin(pred, absent).sum())
        text += (f"\nNo images of {', '.join(CLASSES[c] for c in absent)} here: not in the rows or averages above; "
                 f"{read_as} file(s) were read as one of them.\n")
    return text
