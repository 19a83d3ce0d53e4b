"""Which calibration of a recipe's 8-view predictions holds up on cells it was not fitted on?

    python benchmarks/calibration_methods.py runs/cv/e11-fields [--json out.json]

Out-of-fold view logits of each fold run's last epoch (cached as foldK/oof_logits.npz) are
calibrated leave-one-fold-out: each method is fitted on four folds' held-out files and applied to
the fifth, and the pooled results are scored (ECE, NLL, accuracy, accuracy at 90% coverage). No
training, no TEST. Methods:

- probs-T: one temperature, the views' softmax averaged (what the shipped card does);
- logits-T: the views' logits averaged, then one temperature;
- logits-T+b: the same plus one bias per class (NLL-fitted with SciPy);
- probs-T+iso: probs-T, then the top class's confidence mapped through an isotonic fit of
  correctness on confidence (`wbc.calibration.fit_confidence_map`; the other classes rescaled to
  share the rest, never so far that the decision changes). `benchmarks/cv.py` adopts it for a
  recipe where, left out fold by fold, it lowers the ECE without raising the NLL;
- probs-T+platt: the same with a logistic fit of correctness on the logit of that confidence.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from wbc.calibration import Calibrator, fit_mapped_calibrator, fit_temperature_calibrator
from wbc.crossval import finished_folds, fold_logits


def fit_logits_t(lg: np.ndarray, y: np.ndarray) -> Calibrator:
    from wbc.calibration import fit_temperature, softmax

    t = fit_temperature(lg.mean(0, keepdims=True), y)
    return lambda v: softmax(v.mean(0), t)


def fit_logits_tb(lg: np.ndarray, y: np.ndarray) -> Calibrator:
    from scipy.optimize import minimize

    from wbc.calibration import nll, softmax

    m = lg.mean(0)

    def loss(p: np.ndarray) -> float:
        return nll(softmax(m / np.exp(p[0]) + p[1:]), y)

    p = minimize(loss, np.zeros(1 + m.shape[1]), method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-4}).x
    return lambda v: softmax(v.mean(0) / np.exp(p[0]) + p[1:])


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def fit_probs_t_platt(lg: np.ndarray, y: np.ndarray) -> Calibrator:
    from sklearn.linear_model import LogisticRegression

    from wbc.calibration import remap_top

    base = fit_temperature_calibrator(lg, y)
    p = base(lg)
    lr = LogisticRegression(C=1e4).fit(_logit(p.max(1))[:, None], p.argmax(1) == y)
    return lambda v: remap_top(q := base(v), lr.predict_proba(_logit(q.max(1))[:, None])[:, 1])


METHODS: dict[str, Callable[[np.ndarray, np.ndarray], Calibrator]] = {
    "probs-T": fit_temperature_calibrator, "logits-T": fit_logits_t, "logits-T+b": fit_logits_tb,
    "probs-T+iso": fit_mapped_calibrator,
    "probs-T+platt": fit_probs_t_platt,
}


def main() -> int:
    from wbc.calibration import accuracy_at_coverage, left_out, nll, tta_probs
    from wbc.metrics import expected_calibration_error

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cv", type=Path, help="a cross-validation's folder (foldK run folders inside)")
    ap.add_argument("--data", help="data set folder (default: WBC_DATA, else ../shared/data/blood-cells)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    from wbc.io import check_writable_files

    check_writable_files(args.json)  # before the work, not after it
    if not args.cv.is_dir():  # it said "needs at least two fold runs" of a path that names none
        print(f"calibration_methods: {args.cv}: {'not a folder' if args.cv.exists() else 'no such folder'}; give a "
              "cross-validation's folder (foldK run folders inside)", file=sys.stderr)
        return 2
    runs = finished_folds(args.cv)
    if len(runs) < 2:
        print(f"calibration_methods: {args.cv}: needs at least two fold runs that ran to their end (foldK/last.pt)", file=sys.stderr)
        return 2
    folds = [fold_logits(r, args.data) for r in runs]
    ys = np.concatenate([f[1] for f in folds])
    raw = np.concatenate([tta_probs(f[0]) for f in folds])
    rows = {"uncalibrated": raw}
    bounds = np.cumsum([0] + [len(f[1]) for f in folds])
    for name, fit in METHODS.items():
        rows[name] = left_out([f[0] for f in folds], [f[1] for f in folds], fit)
    table = {name: {"ece": expected_calibration_error(p, ys), "nll": nll(p, ys),
                    "accuracy": float((p.argmax(1) == ys).mean()),
                    "accuracy_at_90_coverage": accuracy_at_coverage(p, ys, 0.9),
                    "mean_confidence": float(p.max(1).mean()),
                    "ece_per_fold": [expected_calibration_error(p[a:b], ys[a:b]) for a, b in zip(bounds, bounds[1:])]}
             for name, p in rows.items()}
    print(f"{args.cv}: {len(ys)} out-of-fold files of {len(runs)} folds, each calibrated on the other folds\n")
    print("| method | ECE | NLL | accuracy | accuracy at 90% coverage | mean confidence | ECE per fold |")
    print("|---|---|---|---|---|---|---|")
    for name, r in table.items():
        print(f"| {name} | {r['ece']:.3f} | {r['nll']:.3f} | {r['accuracy']:.2%} | {r['accuracy_at_90_coverage']:.2%} "
              f"| {r['mean_confidence']:.3f} | {' · '.join(f'{e:.3f}' for e in r['ece_per_fold'])} |")
    if args.json:
        from wbc.io import atomic_write_text

        atomic_write_text(args.json, json.dumps({"cv": str(args.cv), "files": int(len(ys)), "methods": table}, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
