"""Temperature scaling, a confidence map, and selective prediction (set the least confident cases aside
for review)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

REVIEW_COVERAGE = 0.9  # the app asks for review on the least confident 10% of held-out views
# A confidence map never says "certain": one wrong answer at confidence 1 would cost infinite NLL.
MAP_CEILING = 0.995


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


T_MIN, T_MAX = 0.2, 10.0  # the temperatures searched


def fit_temperature(view_logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of y under `tta_probs` (V, N, 4).

    A 1-D search over a log grid, then a finer grid around the best point: no optimiser needed. The
    answer stays within the grid's ends (T_MIN, T_MAX): logits that carry nothing want T without end.
    """
    def at(t: float) -> float:
        return nll(tta_probs(view_logits, t), y)

    grid = np.exp(np.linspace(np.log(T_MIN), np.log(T_MAX), 80))
    best = min(grid, key=at)
    fine = np.linspace(max(best / 1.06, T_MIN), min(best * 1.06, T_MAX), 41)
    return float(min(fine, key=at))


def review_threshold(probs: np.ndarray, coverage: float = 0.9) -> float:
    """Confidence below which the least confident (1 - coverage) share of these cases fall."""
    return float(np.quantile(probs.max(1), 1 - coverage))


def accuracy_at_coverage(probs: np.ndarray, y: np.ndarray, coverage: float = 0.9) -> float:
    """Accuracy on the `coverage` share of cases the model is most confident about."""
    order = np.argsort(-probs.max(1), kind="stable")
    keep = order[: max(1, int(round(coverage * len(y))))]
    return float((probs[keep].argmax(1) == y[keep]).mean())


def remap_top(probs: np.ndarray, new_top: np.ndarray) -> np.ndarray:
    """Probabilities (N, 4) with each top class's confidence replaced by new_top (N,) and the other
    classes rescaled to share the rest. new_top is raised where needed so that the decision stays."""
    # float64, and the rest summed rather than 1 - top: in float32 a top above 1 - 6e-8 reads as 1,
    # and the rest as 0, which pushed the new confidence to 1 past the map's ceiling.
    p = np.asarray(probs, dtype=np.float64)
    rows, k = np.arange(len(p)), p.argmax(1)
    others = p.copy()
    others[rows, k] = 0.0
    rest, second = others.sum(1), others.max(1)
    spread = rest <= 0  # nothing left to rescale: the rest is shared evenly, so the top must beat 1 / K
    tie = np.where(spread, 1 / p.shape[1], second / np.where(spread, 1.0, rest + second))
    new = np.minimum(np.maximum(new_top, tie + 1e-6), 1.0)
    share = np.where(spread[:, None], 1.0 / (p.shape[1] - 1), others / np.where(spread, 1.0, rest)[:, None])
    out = share * (1 - new)[:, None]
    out[rows, k] = new
    return out


def fit_confidence_map(probs: np.ndarray, y: np.ndarray) -> dict[str, list[float]]:
    """An isotonic (monotone, piecewise-linear) map from the top class's confidence to how often it is
    right, fitted on held-out probabilities (N, 4) and labels (N,): it straightens a confidence curve
    whose shape one temperature cannot fix (mixup's). {"x": knots, "y": values}, for `apply_confidence_map`."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=1 / probs.shape[1], y_max=MAP_CEILING, out_of_bounds="clip")
    iso.fit(probs.max(1), probs.argmax(1) == y)
    return {"x": [float(v) for v in iso.X_thresholds_], "y": [float(v) for v in iso.y_thresholds_]}


def apply_confidence_map(probs: np.ndarray, cmap: dict[str, Any] | None) -> np.ndarray:
    """Probabilities (N, 4) with the top confidence put through `fit_confidence_map`'s map (None: as they are).
    np.interp clamps at the ends, as the fitted IsotonicRegression does."""
    if not cmap:
        return probs
    return remap_top(probs, np.interp(probs.max(1), cmap["x"], cmap["y"]))


Calibrator = Callable[[np.ndarray], np.ndarray]  # view logits (V, N, 4) -> probabilities (N, 4)


def fit_temperature_calibrator(view_logits: np.ndarray, y: np.ndarray) -> Calibrator:
    """One temperature fitted on (V, N, 4) view logits and labels; the views' softmax averaged."""
    t = fit_temperature(view_logits, y)
    return lambda v: tta_probs(v, t)


def fit_mapped_calibrator(view_logits: np.ndarray, y: np.ndarray) -> Calibrator:
    """The temperature, then a confidence map fitted on the tempered probabilities."""
    base = fit_temperature_calibrator(view_logits, y)
    cmap = fit_confidence_map(base(view_logits), y)
    return lambda v: apply_confidence_map(base(v), cmap)


def left_out(fold_logits: list[np.ndarray], fold_ys: list[np.ndarray],
             fit: Callable[[np.ndarray, np.ndarray], Calibrator]) -> np.ndarray:
    """Probabilities (sum N_k, 4) of every fold's view logits (V, N_k, 4), each fold calibrated by
    `fit` on the other folds' logits and labels, pooled in fold order."""
    out = []
    for i, lg in enumerate(fold_logits):
        rest = np.concatenate([v for j, v in enumerate(fold_logits) if j != i], 1)
        out.append(fit(rest, np.concatenate([v for j, v in enumerate(fold_ys) if j != i]))(lg))
    return np.concatenate(out)
