"""Compare finished training runs on their cell-grouped VALIDATION cells only (no TEST).

    python benchmarks/ablation.py runs/A runs/B ... [--robust] [--checkpoint last|best] [--data DIR] [--json out.json]

For each run: export its last epoch (last.pt; `--checkpoint best` takes best.pt, the epoch that scored
best on these same validation cells, which flatters a noisy run: the tables in BENCHMARKS.md written
before version 0.7.0 used it, and their rows say so) to a temporary folder with calibration and 8-view TTA, then report validation
accuracy over files, cell accuracy, macro-F1, NLL, ECE, with and without TTA, and optionally the
accuracy under each simulated shift of `wbc.robustness`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from wbc.errors import CheckpointError, WbcError
from wbc.io import atomic_write_text

Checkpoint = Literal["last", "best"]


def val_report(run: Path, robust: bool, checkpoint: Checkpoint = "last",
               data: str | Path | None = None) -> dict[str, Any]:
    from sklearn.metrics import f1_score

    from wbc.calibration import fit_temperature, nll, tta_probs
    from wbc.decode import load_image
    from wbc.imaging import TEST_TIME_VIEWS
    from wbc.metrics import expected_calibration_error, pool_cells
    from wbc.predict import Predictor
    from wbc.robustness import run_shifts
    from wbc.ship import checkpoint_validation_logits, export_and_report, validation_samples

    # One pass over the validation images: its logits both fit the temperature and give the figures.
    logits, y, cells = checkpoint_validation_logits(run / f"{checkpoint}.pt", data, 8)
    with tempfile.TemporaryDirectory() as tmp:
        # The export averages the first TEST_TIME_VIEWS of the 8 (the rotations) and fits its temperature on
        # those; the figures below stay on all 8 views, at their own temperature, as this table always was.
        card = export_and_report(run / f"{checkpoint}.pt", tmp, data, val_logits=(logits[:TEST_TIME_VIEWS], y))
        t = fit_temperature(logits, y)
        res = {"checkpoint": checkpoint, "temperature": t, "params": card["parameters"], "mflops": card["flops_per_image"] / 1e6,
               "train_seconds": card["training"]["wall_seconds"], "epochs": card["training"]["epochs_run"]}
        for name, probs in (("1view", tta_probs(logits[:1], t)), ("tta8", tta_probs(logits, t))):
            cp, cy, _ = pool_cells(probs, y, cells)
            res[name] = {
                "accuracy": float((probs.argmax(1) == y).mean()),
                "macro_f1": float(f1_score(y, probs.argmax(1), average="macro")),
                "cell_accuracy": float((cp.argmax(1) == cy).mean()),
                "nll": nll(probs, y),
                "ece": expected_calibration_error(probs, y),
            }
        if robust:
            pred = Predictor(tmp)
            sub = validation_samples(run, data)[::4]  # a quarter of the validation views keeps this to about a minute
            imgs = [load_image(s.path) for s in sub]
            res["shifts"] = run_shifts(pred.predict_probs, imgs, np.array([s.label for s in sub]),
                                       [s.cell for s in sub], pred.spec)
    return res


def markdown(results: dict[str, dict]) -> str:
    """Validation-only ablation table (and, where measured, the worst shift) from val_report results."""
    from wbc.crossval import run_label

    lines = ["| run | MFLOPs | train s | epochs run | T | val acc, 1 view | val acc, TTA 8 | val macro-F1, TTA | "
             "val NLL, TTA | val ECE | worst shift (acc, name) | shifted quarter: clean / mean drop / shifts "
             "over 3 points |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for run, r in results.items():
        a, b = r["1view"], r["tta8"]
        worst = drops = ""
        if "shifts" in r:
            name, v = min(r["shifts"].items(), key=lambda kv: kv[1]["accuracy"])
            worst = f"{100 * v['accuracy']:.2f}% ({name})"
            clean = r["shifts"]["clean"]["accuracy"]
            d = [clean - x["accuracy"] for k, x in r["shifts"].items() if k != "clean"]
            drops = f"{100 * clean:.2f}% / {100 * sum(d) / len(d):.2f} / {sum(x > 0.03 for x in d)} of {len(d)}"
        # Results written before the option existed scored best.pt.
        lines.append(f"| {run_label(run)} ({r.get('checkpoint', 'best')}.pt) | {r['mflops']:.0f} | {r['train_seconds']:.0f} | {r['epochs']} | "
                     f"{r['temperature']:.2f} | {100 * a['accuracy']:.2f}% | {100 * b['accuracy']:.2f}% | "
                     f"{b['macro_f1']:.4f} | {b['nll']:.3f} | {b['ece']:.3f} | {worst} | {drops} |")
    return "\n".join(lines)


def read_results(path: Path) -> dict[str, dict[str, Any]]:
    """An earlier --json file of this script, checked to render; ConfigError naming it where it is not one (a missing
    file, a folder or another JSON was a traceback)."""
    from wbc.errors import ConfigError
    from wbc.io import read_json

    if path.is_dir():
        raise ConfigError(f"{path}: a folder; name the --json file an earlier run wrote")
    try:
        results = read_json(path)
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read ({e.strerror or e})") from None
    except ValueError as e:
        raise ConfigError(f"{path}: not JSON ({e})") from None
    if not isinstance(results, dict) or not results or not all(isinstance(r, dict) for r in results.values()):
        raise ConfigError(f"{path}: not an ablation.py result (an object of run folders' figures)")
    try:
        markdown(results)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise ConfigError(f"{path}: lacks a figure the table needs ({type(e).__name__}: {e}); was it written by "
                          "ablation.py --json?") from None
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="*", type=Path)
    ap.add_argument("--robust", action="store_true", help="also the simulated shifts (slower)")
    ap.add_argument("--checkpoint", choices=get_args(Checkpoint), default="last",
                    help="which epoch of each run to score (default: last, as the cross-validation does)")
    ap.add_argument("--data", type=Path, help="data set folder (default: WBC_DATA, else ../shared/data/blood-cells)")
    ap.add_argument("--json", type=Path, help="write all figures here")
    ap.add_argument("--render", type=Path, help="only print the markdown table of an earlier --json file")
    args = ap.parse_args()
    from wbc.io import check_writable_files

    check_writable_files(args.json)  # before the work, not after it
    if args.render:
        print(markdown(read_results(args.render)))
        return 0
    if not args.runs:
        ap.error("give the run folders to compare (or --render an earlier --json file)")
    from wbc.run_folder import read_val_cells

    results: dict[str, dict[str, Any]] = {}
    try:
        for run in args.runs:  # every run is checked before the first one costs minutes
            if not (run / f"{args.checkpoint}.pt").is_file():
                raise CheckpointError(f"{run}: no {args.checkpoint}.pt (not a finished training run?)")
            if not read_val_cells(run):
                raise CheckpointError(f"{run}: holds out no validation cells (an --all-cells run) to score")
        for run in args.runs:
            r = val_report(run, args.robust, args.checkpoint, args.data)
            results[str(run)] = r
            if args.json:  # after every run: a failure further on keeps the finished ones
                atomic_write_text(args.json, json.dumps(results, indent=2))
            a, b = r["1view"], r["tta8"]
            print(f"{run}: T={r['temperature']:.2f} {r['mflops']:.0f} MFLOPs {r['train_seconds']:.0f}s | "
                  f"1 view acc {a['accuracy']:.4f} f1 {a['macro_f1']:.4f} nll {a['nll']:.3f} | "
                  f"tta8 acc {b['accuracy']:.4f} f1 {b['macro_f1']:.4f} cells {b['cell_accuracy']:.3f} "
                  f"nll {b['nll']:.3f} ece {b['ece']:.3f}")
            for k, v in r.get("shifts", {}).items():
                print(f"    {k:40s} acc {v['accuracy']:.4f}  f1 {v['macro_f1']:.4f}  cells {v['cell_accuracy']:.3f}")
    except WbcError as e:
        print(f"ablation: {e}", file=sys.stderr)
        return 1
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
