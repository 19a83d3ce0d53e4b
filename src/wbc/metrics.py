"""Metrics a hematologist can trust: file- and cell-level, per class, with intervals over cells."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from wbc.calibration import accuracy_at_coverage
from wbc.info import CLASSES, NUM_CLASSES


def pool_cells(probs: np.ndarray, y: np.ndarray, cells: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Average the probabilities (N, 4) of all views of each cell -> (C, 4), labels (C,), cell names."""
    names = sorted(set(cells))
    index = {c: i for i, c in enumerate(names)}
    idx = np.array([index[c] for c in cells])
    sums = np.zeros((len(names), probs.shape[1]))
    np.add.at(sums, idx, probs)
    counts = np.bincount(idx, minlength=len(names))[:, None]
    labels = np.zeros(len(names), dtype=int)
    labels[idx] = y
    return sums / counts, labels, names


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """ECE: |accuracy - confidence| averaged over equal-width confidence bins, weighted by size."""
    conf = probs.max(1)
    correct = probs.argmax(1) == y
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


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


def bootstrap_over_cells(
    y: np.ndarray, pred: np.ndarray, cells: Sequence[str], n: int = 2000, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """95% percentile intervals for accuracy and macro-F1 over files, resampling whole cells.

    Views of one cell are not independent, so whole cells are drawn with replacement.
    """
    names = sorted(set(cells))
    index = {c: i for i, c in enumerate(names)}
    idx = np.array([index[c] for c in cells])
    n_cells = len(names)
    # Per-cell confusion contributions (C, K, K): resampled sums give each bootstrap's matrix.
    per_cell = np.zeros((n_cells, NUM_CLASSES, NUM_CLASSES))
    np.add.at(per_cell, (idx, y, pred), 1)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_cells, size=(n, n_cells))
    weights = np.zeros((n, n_cells))
    np.add.at(weights, (np.arange(n)[:, None].repeat(n_cells, 1), draws), 1)
    cms = np.einsum("bc,cij->bij", weights, per_cell)
    acc, macro = scores_from_confusion(cms)

    def ci(v: np.ndarray) -> tuple[float, float]:
        return float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))

    return {"accuracy": ci(acc), "macro_f1": ci(macro)}


def compute_metrics(
    probs: np.ndarray, y: np.ndarray, cells: Sequence[str], n_boot: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """Every figure the report shows, from probabilities (N, 4), true labels (N,) and cell names."""
    pred = probs.argmax(1)
    labels = list(range(NUM_CLASSES))
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    cell_probs, cell_y, _ = pool_cells(probs, y, cells)
    cell_pred = cell_probs.argmax(1)
    boot = bootstrap_over_cells(y, pred, cells, n=n_boot, seed=seed)
    # Same seed and shape as bootstrap_over_cells, and cells sorted alike: the same resamples.
    rng = np.random.default_rng(seed)
    cell_ok = (cell_pred == cell_y).astype(float)
    cell_boot = cell_ok[rng.integers(0, len(cell_ok), size=(n_boot, len(cell_ok)))].mean(1)
    present = [c for c in labels if (y == c).any()]
    return {
        "n_files": int(len(y)),
        "n_cells": int(len(cell_y)),
        "accuracy": float(accuracy_score(y, pred)),
        "accuracy_ci95": boot["accuracy"],
        "macro_f1": float(f1_score(y, pred, labels=present, average="macro", zero_division=0)),
        "macro_f1_ci95": boot["macro_f1"],
        "cell_accuracy": float(cell_ok.mean()),
        "cells_correct": int(cell_ok.sum()),
        "cell_accuracy_ci95": (float(np.percentile(cell_boot, 2.5)), float(np.percentile(cell_boot, 97.5))),
        "cell_macro_f1": float(f1_score(cell_y, cell_pred, labels=present, average="macro", zero_division=0)),
        "ece": expected_calibration_error(probs, y),
        "accuracy_at_90_coverage": accuracy_at_coverage(probs, y, 0.9),
        "per_class": {
            CLASSES[c]: {"precision": float(p[c]), "recall": float(r[c]), "f1": float(f[c]), "support": int(s[c])}
            for c in labels
        },
        "confusion": confusion_matrix(y, pred, labels=labels).tolist(),
        "cell_confusion": confusion_matrix(cell_y, cell_pred, labels=labels).tolist(),
    }


def classification_report_text(probs: np.ndarray, y: np.ndarray) -> str:
    from sklearn.metrics import classification_report

    return classification_report(
        y, probs.argmax(1), labels=list(range(NUM_CLASSES)), target_names=list(CLASSES), digits=4, zero_division=0
    )
