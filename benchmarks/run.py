"""Side-by-side benchmark: the `seed` replica of the reference network against the default `wbcnet`.

    python benchmarks/run.py [--seeds 0 1 2] [--seed-epochs 6] [--work runs/bench] [--md BENCHMARKS.md]

Trains both networks on the same data and machine (resumable: finished runs are reused, an
interrupted one continues), exports each (calibrated on its validation cells; wbcnet with the
test-time views of `wbc.imaging.TEST_TIME_VIEWS`, the 4 rotations), evaluates on TEST, times inference on PyTorch and ONNX Runtime, and prints one table with
the ratios. Writes BENCHMARKS.md and a JSON of every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from wbc.imaging import TEST_TIME_VIEWS
from wbc.io import atomic_write_text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import session_pass, single_pass, time_it, time_rounds  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import onnxruntime
    import torch

    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}, "
            f"onnxruntime {onnxruntime.__version__}")


def speed(model_dir: Path, run: Path | None, threads: int) -> dict[str, Any]:
    """images/s at batch 64 on ONNX Runtime, and (given the run) ms/image at batch 1 and images/s at
    batch 64 on PyTorch, of one network pass (and, where the card asks for it, of the multi-view TTA
    prediction the tools actually make). ORT at batch 1 is timed by `batch1_interleaved`."""
    import torch

    from wbc.checkpoint import load_checkpoint, model_from_checkpoint
    from wbc.imaging import to_input
    from wbc.predict import Predictor

    torch.set_num_threads(threads)
    pred = Predictor(model_dir, threads=threads)
    h, w = pred.spec.input_hw
    rng = np.random.default_rng(0)
    x1 = rng.integers(0, 255, (1, h, w, 3), dtype=np.uint8)
    x64 = rng.integers(0, 255, (64, h, w, 3), dtype=np.uint8)
    out = {"model_dir": str(model_dir), "ort_img_s_b64": 64 / time_it(lambda: pred.predict_probs(x64, tta=False))}
    if run is not None:
        net, spec = model_from_checkpoint(load_checkpoint(run / "best.pt"))
        t1, t64 = torch.from_numpy(to_input(x1, spec)), torch.from_numpy(to_input(x64, spec))
        with torch.no_grad():
            out["torch_ms_b1"] = 1000 * time_it(lambda: net(t1))
            out["torch_img_s_b64"] = 64 / time_it(lambda: net(t64))
    if pred.tta_views > 1:
        out["ort_tta_ms_b1"] = 1000 * time_it(lambda: pred.predict_probs(x1))
        out["ort_tta_img_s_b64"] = 64 / time_it(lambda: pred.predict_probs(x64))
    return out


def _shown(p: Path) -> str:
    p = p.resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def recipe_of(model: str, seed: int, epochs: int | None, work: Path, threads: int,
              run: Path | None = None) -> tuple[Any, Path]:
    """The TrainConfig of `model`'s seed and the folder it trains in (see `one`)."""
    from wbc.crossval import fold_config
    from wbc.recipe import preset, with_epochs

    cfg = replace(preset(model), seed=seed, threads=threads)
    if model == "wbcnet":
        cfg = fold_config(replace(cfg, seed=0), seed)
    if epochs is not None:
        cfg = with_epochs(cfg, epochs)
    return cfg, run or work / f"{model}-seed{seed}"


def one(model: str, seed: int, epochs: int | None, work: Path, threads: int, run: Path | None = None) -> dict[str, Any]:
    """Train (or reuse), export, evaluate on TEST and time one network. wbcnet's seed s is the recipe's
    cross-validation run of fold s (`crossval.fold_config`: seed s, fold s of split seed 0), so
    `benchmarks/cv.py` and this benchmark can share runs (`--use`)."""
    from wbc.crossval import REUSED, train_or_reuse
    from wbc.ship import export_and_report

    cfg, run = recipe_of(model, seed, epochs, work, threads, run)
    reused = train_or_reuse(cfg, run) == REUSED  # "resumed" and "trained" are strings too: both true
    out = run / "export"
    card = export_and_report(run, out, evaluate_test=True, tta=(model == "wbcnet"))
    test = card["metrics"]["test"]
    tr = card["training"]  # epochs and seconds of the whole run (last.pt), not just to the best epoch
    return {
        "model": model, "seed": seed, "epochs_run": tr["epochs_run"], "epochs_max": cfg.epochs,
        "best_epoch": tr["best_epoch"], "train_seconds": tr["wall_seconds"],
        "params": card["parameters"], "mflops": card["flops_per_image"] / 1e6, "onnx_mb": card["onnx_bytes"] / 1e6,
        "tta_views": card["tta_views"], "temperature": card["temperature"], "reused": reused, "run": _shown(run),
        "test": test, **speed(out, run, threads),
    }


def shipped(model_dir: Path, threads: int) -> dict[str, Any]:
    """The shipped model as it is: TEST evaluated again here, timed on ONNX Runtime (its training
    run need not be on this machine, so no PyTorch rows)."""
    from wbc.card import read_card, resolve_model
    from wbc.evaluate import evaluate
    from wbc.ship import card_metrics

    card = read_card(resolve_model(model_dir)[1])
    with tempfile.TemporaryDirectory() as tmp:
        test = card_metrics(evaluate(model_dir, tmp, split="TEST", progress=False))
    tr = card["training"]
    return {
        "model": card["name"], "seed": tr["config"]["seed"], "epochs_run": tr["epochs_run"],
        "epochs_max": tr["config"]["epochs"], "best_epoch": tr["best_epoch"], "train_seconds": tr["wall_seconds"],
        "params": card["parameters"], "mflops": card["flops_per_image"] / 1e6, "onnx_mb": card["onnx_bytes"] / 1e6,
        "tta_views": card["tta_views"], "temperature": card["temperature"],
        "teachers": tr["config"].get("teachers") or [], "test": test, **speed(model_dir, None, threads),
        "calibrated_on": card.get("calibration", {}).get("fitted_on", "(not recorded)"),
    }


def batch1_interleaved(results: list[dict[str, Any]], threads: int) -> None:
    """Set each result's ORT ms/image at batch 1 (one pass, no TTA) through `Predictor.predict_probs`
    and straight into its session (the network alone), every model timed in alternation in one loop,
    so that the ratios do not depend on how busy the machine was when each one ran."""
    from wbc.predict import Predictor

    fns = {}
    for i, r in enumerate(results):
        pred = Predictor(r["model_dir"], threads=threads)
        fns[f"ort_ms_b1 {i}"], fns[f"ort_session_ms_b1 {i}"] = single_pass(pred), session_pass(pred)
    for name, secs in time_rounds(fns).items():
        key, i = name.split()
        results[int(i)][key] = 1000 * statistics.median(secs)
        results[int(i)][f"{key}_rounds"] = [1000 * s for s in secs]


def round_ratios(seed: dict[str, Any], ours: list[dict[str, Any]], key: str) -> list[float]:
    """The replica's time over wbcnet's mean time, round by round of `batch1_interleaved`: how much
    the batch-1 ratio moves with the machine's load within one run."""
    a = seed[f"{key}_rounds"]
    b = [statistics.mean(r[f"{key}_rounds"][i] for r in ours) for i in range(len(a))]
    return [x / y for x, y in zip(a, b)]


def ratio_spread(seed: dict[str, Any], ours: list[dict[str, Any]], key: str) -> str:
    """'8.7-9.4x (median 9.0x) over 15 rounds' for `round_ratios`."""
    r = round_ratios(seed, ours, key)
    return f"{min(r):.1f}-{max(r):.1f}x (median {statistics.median(r):.1f}x) over {len(r)} rounds"


ROWS: list[tuple[str, str, str]] = [
    # label, key (dotted into the result), format
    ("TEST accuracy over files", "test.accuracy", "pct"),
    ("  95% interval over cells", "test.accuracy_ci95", "ci"),
    ("TEST cells right (of 68 fields)", "test.cells_correct", "int"),
    ("TEST macro-F1", "test.macro_f1", "f3"),
    ("  95% interval over cells", "test.macro_f1_ci95", "ci3"),
    ("Eosinophil precision / recall", "test.per_class.EOSINOPHIL", "pr"),
    ("Lymphocyte precision / recall", "test.per_class.LYMPHOCYTE", "pr"),
    ("Monocyte precision / recall", "test.per_class.MONOCYTE", "pr"),
    ("Neutrophil precision / recall", "test.per_class.NEUTROPHIL", "pr"),
    ("ECE (TEST, calibrated)", "test.ece", "f3"),
    ("Accuracy at 90% coverage", "test.accuracy_at_90_coverage", "pct"),
    ("Training wall time (s)", "train_seconds", "f0"),
    ("Epochs run / max", "epochs", "str"),
    ("Parameters", "params", "int"),
    ("FLOPs per image (M)", "mflops", "f0"),
    ("ONNX file (MB)", "onnx_mb", "f2"),
    ("ORT ms/image, batch 1 (session.run alone: the network)", "ort_session_ms_b1", "f3"),
    ("ORT ms/image, batch 1 (through Predictor, as `wbc predict --single-view`)", "ort_ms_b1", "f3"),
    ("ORT images/s, batch 64", "ort_img_s_b64", "f0"),
    ("PyTorch ms/image, batch 1", "torch_ms_b1", "f3"),
    ("PyTorch images/s, batch 64", "torch_img_s_b64", "f0"),
    (f"ORT ms/image with {TEST_TIME_VIEWS}-view TTA, batch 1", "ort_tta_ms_b1", "f3"),
    (f"ORT images/s with {TEST_TIME_VIEWS}-view TTA, batch 64", "ort_tta_img_s_b64", "f0"),
]


def get(r: dict[str, Any], key: str) -> Any:
    if key == "epochs":
        return f"{r['epochs_run']} / {r['epochs_max']}"
    for part in key.split("."):
        if not isinstance(r, dict) or part not in r:
            return None
        r = r[part]
    return r


def fmt(v: Any, kind: str) -> str:
    if v is None:
        return "—"
    if kind == "pct":
        return f"{100 * v:.2f}%"
    if kind == "ci":
        return f"[{100 * v[0]:.1f}, {100 * v[1]:.1f}]"
    if kind == "ci3":
        return f"[{v[0]:.3f}, {v[1]:.3f}]"
    if kind == "pr":
        from wbc.metrics import per_class_figure

        return f"{per_class_figure(v['precision'], 3)} / {per_class_figure(v['recall'], 3)}"
    if kind == "int":
        return f"{v:,}"
    if kind.startswith("f"):
        return f"{v:.{int(kind[1:])}f}"
    return str(v)


def summarise(runs: list[dict[str, Any]], key: str, kind: str) -> str:
    """One cell for several seeds: mean ± sd for numbers, each value for the rest."""
    vals = [get(r, key) for r in runs]
    if len(runs) == 1 or kind in ("ci", "ci3", "pr", "str"):
        return " · ".join(fmt(v, kind) for v in vals) if len(runs) > 1 else fmt(vals[0], kind)
    if any(v is None for v in vals):
        return "—"
    mean, sd = statistics.mean(vals), statistics.stdev(vals)
    if kind == "pct":
        return f"{100 * mean:.2f}% ± {100 * sd:.2f}"
    if kind == "int":
        return f"{mean:,.1f} ± {sd:.1f}" if sd else f"{mean:,.0f}"
    return f"{fmt(mean, kind)} ± {fmt(sd, kind)}"


RATIO_KEYS = {"train_seconds": "time", "params": "size", "mflops": "size", "onnx_mb": "size",
              "ort_ms_b1": "time", "ort_session_ms_b1": "time", "torch_ms_b1": "time", "ort_img_s_b64": "rate", "torch_img_s_b64": "rate"}


def ratio(seed: dict[str, Any], ours: list[dict[str, Any]], key: str) -> str:
    if key not in RATIO_KEYS:
        return ""
    a, b = get(seed, key), statistics.mean(get(r, key) for r in ours)
    if RATIO_KEYS[key] == "rate":
        return f"{b / a:.1f}x faster"
    word = "faster" if RATIO_KEYS[key] == "time" else "smaller"
    return f"{a / b:.1f}x {word}"


def table(seed: dict[str, Any], ours: list[dict[str, Any]], ship: dict[str, Any] | None = None) -> str:
    head = (f"| | seed replica (seed {seed['seed']}) | wbcnet, {len(ours)} seeds "
            f"({', '.join(str(r['seed']) for r in ours)}): mean ± sd | wbcnet vs seed |")
    rule = "|---|---|---|---|"
    if ship is not None:
        head += " shipped model | shipped vs seed |"
        rule += "---|---|"
    lines = [head, rule]
    for label, key, kind in ROWS:
        line = (f"| {label} | {fmt(get(seed, key), kind) if kind != 'str' else get(seed, key)} | "
                f"{summarise(ours, key, kind)} | {ratio(seed, ours, key)} |")
        if ship is not None:
            line += f" {summarise([ship], key, kind)} | {ratio(seed, [ship], key) if get(ship, key) else ''} |"
        lines.append(line)
    return "\n".join(lines)


START, END = "<!-- side-by-side: written by benchmarks/run.py -->", "<!-- end of side-by-side -->"


def write_section(path: Path, body: str) -> None:
    """Replace the side-by-side section of `path`, keeping whatever else the file holds."""
    section = f"{START}\n{body}\n{END}"
    old = path.read_text() if path.exists() else ""
    if START in old and END in old:
        new = old[: old.index(START)] + section + old[old.index(END) + len(END):]
    else:
        new = section + "\n" + old
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, new)


def main() -> int:
    from wbc.cli import whole_number

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=whole_number(0), nargs="+", default=[0, 1, 2], help="wbcnet seeds (default: 0 1 2)")
    ap.add_argument("--seed-epochs", type=whole_number(1, 50, "the replica's recipe allows 50"), default=6,
                    help="epochs for the seed replica (its recipe allows 50; default 6 to fit a session)")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "bench", help="run folders (default: runs/bench)")
    ap.add_argument("--use", action="append", default=[], metavar="S=RUN",
                    help="a finished run of the recipe as wbcnet seed S (e.g. a cross-validation fold run)")
    ap.add_argument("--threads", type=whole_number(1), default=2, help="CPU threads for training and timing (default: 2)")
    ap.add_argument("--shipped", type=Path, default=ROOT / "models" / "default",
                    help="also evaluate and time this shipped model (default: models/default; 'none' to skip)")
    ap.add_argument("--md", type=Path, default=ROOT / "BENCHMARKS.md", help="where to write the table")
    args = ap.parse_args()

    started = time.time()
    try:
        use = {int(k): Path(v) for k, v in (u.split("=", 1) for u in args.use)}
    except ValueError:
        ap.error("--use takes S=RUN, e.g. 0=runs/cv/e10/fold0")
    from wbc.crossval import check_reusable
    from wbc.errors import WbcError

    try:
        from wbc.io import check_writable_file, check_writable_folder

        check_writable_file(args.md)  # before the minutes of training, not after them
        check_writable_folder(args.work)  # a file there was a NotADirectoryError traceback
        if str(args.shipped) != "none":  # a folder without model.json failed after the training
            from wbc.card import read_card, resolve_model

            read_card(resolve_model(args.shipped)[1])
        # Runs of another recipe are refused before anything trains (the replica takes minutes).
        for model, s, epochs in [("seed", 0, args.seed_epochs), *(("wbcnet", s, None) for s in args.seeds)]:
            check_reusable(*recipe_of(model, s, epochs, args.work, args.threads, use.get(s) if model == "wbcnet" else None))
        seed = one("seed", 0, args.seed_epochs, args.work, args.threads)
        ours = [one("wbcnet", s, None, args.work, args.threads, use.get(s)) for s in args.seeds]
        ship = shipped(args.shipped, args.threads) if str(args.shipped) != "none" else None
    except WbcError as e:
        print(f"run: {e}", file=sys.stderr)
        return 1
    batch1_interleaved([seed, *ours, *([ship] if ship else [])], args.threads)
    result = {"machine": machine(), "command": " ".join(["python", "benchmarks/run.py", *sys.argv[1:]]),
              "seed": seed, "wbcnet": ours, "shipped": ship, "benchmark_seconds": time.time() - started}
    atomic_write_text(args.work / "results.json", json.dumps(result, indent=2))
    t = table(seed, ours, ship)
    reused = [f"{'seed replica' if r['model'] == 'seed' else r['model']} seed {r['seed']} (`{r['run']}`)"
              for r in [seed, *ours] if r["reused"]]
    print(t)
    net_spread, pred_spread = ratio_spread(seed, ours, "ort_session_ms_b1"), ratio_spread(seed, ours, "ort_ms_b1")
    print(f"batch-1 ORT ratio per round: network {net_spread}, through Predictor {pred_spread}")
    md = [
        "## Side by side: the seed replica and wbcnet", "",
        f"Command: `{result['command']}`  ",
        f"Machine: {result['machine']}  ",
        f"Date: {time.strftime('%Y-%m-%d')}; the whole run took {result['benchmark_seconds'] / 60:.0f} minutes.", "",
        "Both networks are trained on TRAIN with a validation fifth of its cells (original fields, "
        "`wbc.sources`) held out, selected on it, calibrated on it (temperature), and evaluated once on "
        "TEST (2,487 files of 68 fields). wbcnet's seed s holds out fold s (seed s, fold s of split seed 0: "
        "the recipe's cross-validation runs). Intervals: 95% bootstrap over cells. The seed replica "
        f"predicts from one view, as the reference did; wbcnet averages its {TEST_TIME_VIEWS} test-time "
        "views, the rotations (its single-pass timings are the network's, the TTA rows what `wbc predict` does). "
        "ORT batch-1 times: every model of the table in alternation, 15 rounds in one loop at the end; "
        "once straight into the ONNX Runtime session (the network's inference), once through "
        "`Predictor.predict_probs` (plus the Python around it and, for the shipped model, its confidence map).",
        "", t, "",
        "Batch-1 ratio on ONNX Runtime round by round (replica over the wbcnet seeds' mean): network "
        f"{net_spread}; through Predictor {pred_spread}.", "",
    ]
    if reused:
        md += [f"Reused finished runs "
               f"(trained earlier with the same code and recipe; their training times are those runs'): "
               f"{', '.join(reused)}. Everything else, and every TEST figure and timing, is from this run.", ""]
    if ship is not None:
        teach = (f" It was distilled from {len(ship['teachers'])} teacher runs (their training time is not in its row)."
                 if ship["teachers"] else "")
        md += [f"Shipped model: `{_shown(args.shipped)}`, "
               f"evaluated again and timed in this run.{teach} Its calibration was fitted on "
               f"{ship['calibrated_on']}.", ""]
    write_section(args.md, "\n".join(md))
    print(f"wrote {args.md} and {args.work / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
