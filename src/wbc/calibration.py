"""Temperature scaling and selective prediction (set the least confident cases aside for review)."""

from __future__ import annotations

import numpy as np

REVIEW_COVERAGE = 0.9  # the app asks for review on the least confident 10% of held-out views


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax over the last axis of logits / temperature."""
    z = logits / temperature
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def tta_probs(view_logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Logits of V views (V, N, 4) -> probabilities (N, 4): the mean of the views' softmax."""
    return softmax(view_logits, temperature).mean(0)


def nll(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the labels y (N,) under probabilities (N, 4)."""
    return float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1)).mean())


def fit_temperature(view_logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of y under `tta_probs` (V, N, 4).

    A 1-D search over a log grid, then a finer grid around the best point: no optimiser needed.
    """
    def at(t: float) -> float:
        return nll(tta_probs(view_logits, t), y)

    grid = np.exp(np.linspace(np.log(0.2), np.log(10), 80))
    best = min(grid, key=at)
    fine = np.linspace(best / 1.06, best * 1.06, 41)
    return float(min(fine, key=at))


def review_threshold(probs: np.ndarray, coverage: float = 0.9) -> float:
    """Confidence below which the least confident (1 - coverage) share of these cases fall."""
    return float(np.quantile(probs.max(1), 1 - coverage))


def accuracy_at_coverage(probs: np.ndarray, y: np.ndarray, coverage: float = 0.9) -> float:
    """Accuracy on the `coverage` share of cases the model is most confident about."""
    order = np.argsort(-probs.max(1), kind="stable")
    keep = order[: max(1, int(round(coverage * len(y))))]
    return float((probs[keep].argmax(1) == y[keep]).mean())
