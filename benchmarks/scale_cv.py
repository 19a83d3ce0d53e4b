"""Would more network or more training help? Cell-grouped cross-validation of scaled recipes on a
GPU, from a pack of TRAIN's crops (no TEST).

    python benchmarks/scale_cv.py pack --out runs/scale/pack.npz [--data PATH] [--quality 95]
    python benchmarks/scale_cv.py run --pack runs/scale/pack.npz --work DIR [--device cuda] [--workers 8]
                                  [--recipes base wide long wide-long] [--folds 0 1 2] [--budget-s 420]
    python benchmarks/scale_cv.py render DIR[/scale.json]

Every recipe change tried on two CPU cores (benchmarks/cv.py) is held to the 20-minute training
target, so none asked whether a network 3.5x the work, or 3x the epochs, reads more cells right out
of fold. A GPU lent for minutes can. `pack` stores TRAIN's crops as the training cache holds them
(window 160 px to 96 px, each as a JPEG of quality 95: 35.5 MB instead of 275), their labels, cells
and folds. `run` trains each recipe on each fold with `wbc.train.fit` on those crops, several runs at
once on the device, predicts each fold's held-out crops in the 8 rotations and mirrors, and pools them
as `wbc.crossval` does (`pooled_figures`, one temperature; no confidence-map check, so the table's
shown ECE is "—"). Unlike `benchmarks/cv.py`, the held-out views are read by torch from the
re-encoded crops, not by ONNX Runtime from the files, and every fold runs all its epochs. The e36
recipe (`base`) runs beside the others on the same crops, folds, seeds and device: the comparison is
within the run; a GPU run is not bit for bit a CPU run, and the crops went through one more JPEG
encoding.

Results are written after each finished run (`scale.json`, `scale.npz` with the view logits, and the
table `scale.md`), and a later run with the same options, pack (by its bytes) and device adds to
them, each recipe pooled over the folds it has finished; one of others is refused. With `--budget-s`, no run
starts after that many seconds, so that a run cut off by the device's time limit still returns what
finished. Recipes are started in the order given.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import time
import zipfile
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from wbc.errors import ConfigError, WbcError


class Recipe(NamedTuple):
    changes: dict[str, Any]  # TrainConfig fields set after the fold's seeds
    widths: tuple[int, ...] | None  # wbcnet's stages (None: the recipe's 24/48/96)
    epochs: int | None  # None: the recipe's 80 (the first 4/5 at 64 px, kept at 4/5)
    about: str


RECIPES = {
    "base": Recipe({}, None, None, "e36, the default recipe: stages 24/48/96 (31 MFLOPs), 80 epochs"),
    "wide": Recipe({}, (48, 96, 192), None, "stages 48/96/192: 3.5x the FLOPs, 3.9x the parameters"),
    "long": Recipe({}, None, 240, "240 epochs, the first 192 at 64 px"),
    "wide-long": Recipe({}, (48, 96, 192), 240, "both"),
    "base-s1": Recipe({"seed": 100}, None, None, "base from other initial weights and draws, on the same folds"),
    "base-s2": Recipe({"seed": 200}, None, None, "base with seed 200: a third set of initial weights and draws, on the same folds"),
}
DEFAULT_RECIPES = ["base", "wide", "long", "wide-long"]


def pack(data: str | None, out: Path, quality: int) -> None:
    """TRAIN's crops for the default network (as `fit` caches them), JPEG-encoded, with labels, cells
    and the fold each cell is dealt to here."""
    from PIL import Image

    from wbc.cache import load_arrays
    from wbc.data import list_split
    from wbc.folders import find_images_root
    from wbc.io import atomic_write_bytes, check_writable_file
    from wbc.model import default_config
    from wbc.splits import grouped_kfold

    check_writable_file(out)  # before the minute of decoding
    spec = default_config("wbcnet").preprocess
    root = find_images_root(data)
    x, samples = load_arrays(list_split(root, "TRAIN"), spec)
    folds = np.zeros(len(samples), int)
    for k, (_, va) in enumerate(grouped_kfold(samples, k=5, seed=0)):  # as benchmarks/cv.py deals them
        folds[va] = k
    blobs = []
    for crop in x:
        b = io.BytesIO()
        Image.fromarray(crop).save(b, "JPEG", quality=quality)
        blobs.append(np.frombuffer(b.getvalue(), np.uint8))
    buf = io.BytesIO()
    np.savez(buf, jpeg=np.concatenate(blobs), ends=np.cumsum([len(b) for b in blobs]),
             labels=np.array([s.label for s in samples]), cells=np.array([s.cell for s in samples]),
             paths=np.array([str(s.path.relative_to(root)) for s in samples]),
             folds=folds, spec=json.dumps(spec.to_dict()), quality=quality)
    atomic_write_bytes(out, buf.getvalue())
    print(f"{out}: {len(samples)} crops of {len({s.cell for s in samples})} cells, {out.stat().st_size / 1e6:.1f} MB")


def unpack(path: Path) -> tuple[np.ndarray, list[Any], np.ndarray]:
    """The pack's crops uint8 (N, 96, 96, 3), their samples (paths relative to the images root) and
    the fold (N,) each was dealt to where the pack was made; DataError naming the file otherwise."""
    from PIL import Image, UnidentifiedImageError

    from wbc.data import Sample
    from wbc.errors import DataError

    if not path.is_file():
        raise DataError(f"{path}: no such file; make a pack with `scale_cv.py pack --out {path}`")
    try:
        with np.load(path) as z:
            jpeg, ends, labels, cells, paths, folds = (z[k] for k in ("jpeg", "ends", "labels", "cells", "paths", "folds"))
        starts = np.concatenate([[0], ends[:-1]])
        x = np.stack([np.asarray(Image.open(io.BytesIO(jpeg[a:b].tobytes())).convert("RGB"))
                      for a, b in zip(starts, ends)])
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, UnidentifiedImageError) as e:
        raise DataError(f"{path}: not a pack that `scale_cv.py pack` wrote ({type(e).__name__}: {e})") from None
    return x, [Sample(Path(p), int(y), str(c)) for p, y, c in zip(paths, labels, cells)], folds


def recipe_run(name: str, fold: int, device: str, threads: int, epochs: int | None,
               limit_cells: int | None) -> tuple[Any, Any]:
    """(TrainConfig, network config) of recipe `name` on `fold`; `epochs` and `limit_cells` shrink
    every recipe alike (quick checks)."""
    from wbc.crossval import fold_config
    from wbc.model import default_config
    from wbc.recipe import preset, with_epochs

    r = RECIPES[name]
    cfg = replace(preset("wbcnet"), threads=threads, device=device, limit_cells=limit_cells)
    if epochs is not None or r.epochs is not None:
        cfg = with_epochs(cfg, epochs if epochs is not None else r.epochs)
    # Every fold runs all its epochs (the last is scored); the recipe's changes come after the fold's
    # seeds, so that a seed change keeps the folds.
    return replace(fold_config(replace(cfg, patience=cfg.epochs), fold), **r.changes), default_config("wbcnet", widths=r.widths)


_CROPS: tuple[np.ndarray, list[Any], np.ndarray] | None = None


def _job(pack_path: str, work: str, name: str, fold: int, device: str, threads: int,
         epochs: int | None, limit_cells: int | None) -> dict[str, Any]:
    """Train `name` on `fold` (or reuse its finished run) and return its held-out view logits
    (8, N, 4), labels, cells, epochs and seconds of training."""
    import contextlib
    import csv

    from wbc.checkpoint import load_checkpoint, model_from_checkpoint
    from wbc.crossval import check_reusable
    from wbc.train import fit, view_logits

    global _CROPS
    if _CROPS is None:  # once per worker process
        _CROPS = unpack(Path(pack_path))
    x, samples, packed_folds = _CROPS
    cfg, model_cfg = recipe_run(name, fold, device, threads, epochs, limit_cells)
    run = Path(work) / name / f"fold{fold}"
    finished, resume = check_reusable(cfg, run, model_cfg)
    if not finished:
        run.mkdir(parents=True, exist_ok=True)
        with open(run / "train.log", "a") as log, contextlib.redirect_stdout(log):
            fit(cfg, run, resume=resume, progress=False, model_cfg=model_cfg, crops=(x, samples))
    state = load_checkpoint(run / "last.pt")  # as benchmarks/cv.py: the last epoch
    net, spec = model_from_checkpoint(state)
    va_cells = set(json.loads((run / "split.json").read_text())["val_cells"])
    va = np.array([i for i, s in enumerate(samples) if s.cell in va_cells])
    logits = view_logits(net.to(device), x[va], spec)
    with open(run / "summary.csv") as f:  # the epochs' own times: a reused run's too
        seconds = sum(float(row["seconds"]) for row in csv.DictReader(f))
    # sklearn's StratifiedGroupKFold of another version may deal the folds otherwise: say so.
    same = va_cells == {samples[i].cell for i in np.flatnonzero(packed_folds == fold)}
    return {"name": name, "fold": fold, "seconds": seconds, "epochs": int(state["epoch"]) + 1, "folds_as_packed": same,
            "logits": logits, "y": np.array([samples[i].label for i in va]), "cells": [samples[i].cell for i in va]}


def pooled(done: dict[tuple[str, int], dict[str, Any]], folds: list[int]) -> dict[str, dict[str, Any]]:
    """Per recipe, `benchmarks/cv.py`'s figures of its view logits pooled over the folds of `folds` it
    has finished (the table's "folds" column says which)."""
    from wbc.calibration import fit_temperature, tta_probs
    from wbc.crossval import folds_of, pooled_figures, tempered_left_out
    from wbc.recipe import preset

    out = {}
    for name in dict.fromkeys(n for n, _ in done):
        runs = [done[(name, f)] for f in folds if (name, f) in done]
        if not runs:
            continue
        lg = np.concatenate([r["logits"] for r in runs], axis=1)
        y = np.concatenate([r["y"] for r in runs])
        cells = [c for r in runs for c in r["cells"]]
        t = fit_temperature(lg, y)
        out[name] = {"temperature": t, "folds_total": folds_of(preset("wbcnet")),
                     **pooled_figures(lg, y, cells, t, tempered_left_out([r["logits"] for r in runs],
                                                                         [r["y"] for r in runs])),
                     "folds": {str(r["fold"]): {"accuracy": float((tta_probs(r["logits"]).argmax(1) == r["y"]).mean()),
                                                "seconds": r["seconds"], "epochs_run": r["epochs"]} for r in runs}}
    return out


def table(result: dict[str, Any]) -> str:
    """scale.md: what was run, then cv.py's table of the recipes that finished every fold."""
    from cv import markdown

    runs, results = result["runs"], result["results"]
    epochs = {n: sorted({r["epochs"] for k, r in runs.items() if k.split("/")[0] == n}) for n in results}
    lines = [
        f"Device {result['device']}" + (f" ({result['gpu']})" if result.get("gpu") else "")
        + f", {result['workers']} runs at once; epochs: "
        + ", ".join(f"{n} {'/'.join(map(str, e))}" for n, e in epochs.items())
        + (f"; the first {result['options']['limit_cells']} cells of each class only"
           if result.get("options", {}).get("limit_cells") else "; every cell")
        + "; folds as the pack dealt them: " + ("yes" if all(r["folds_as_packed"] for r in runs.values()) else "NO")
        + ". Figures with the pooled temperature T; the per-fold accuracies without it.",
        "",
        markdown(results) if results else "No run has finished.",
    ]
    if len({tuple(r["folds"]) for r in results.values()}) > 1:
        lines += ["", "The rows are pooled over different folds (the folds column): compare only rows with the same folds."]
    return "\n".join(lines) + "\n"


def save(out: Path, done: dict[tuple[str, int], dict[str, Any]], folds: list[int], meta: dict[str, Any]) -> None:
    from wbc.io import atomic_write_bytes, atomic_write_text

    runs = {f"{n}/fold{f}": {k: r[k] for k in ("seconds", "epochs", "folds_as_packed")} for (n, f), r in done.items()}
    result = {**meta, "runs": runs, "results": pooled(done, folds)}
    buf = io.BytesIO()
    np.savez_compressed(buf, **{npz_key(n, f, k): np.asarray(r[k]) for (n, f), r in done.items()
                                for k in ("logits", "y", "cells")})
    atomic_write_bytes(out / "scale.npz", buf.getvalue())
    atomic_write_text(out / "scale.json", json.dumps(result, indent=1))
    atomic_write_text(out / "scale.md", table(result))


def npz_key(name: str, fold: int | str, what: str) -> str:
    """Where scale.npz keeps one of a run's arrays: `what` is logits, y or cells."""
    return f"{name}_fold{fold}_{what}"


def stored_run(z: Any, name: str, fold: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A run's view logits (8, N, 4), labels (N,) and cells from an open scale.npz; KeyError where absent."""
    return (z[npz_key(name, fold, "logits")], z[npz_key(name, fold, "y")],
            [str(c) for c in z[npz_key(name, fold, "cells")]])


def stored_folds(z: Any, name: str) -> list[int]:
    """The folds of recipe `name` an open scale.npz holds logits of."""
    start, end = npz_key(name, "#", "logits").split("#")  # the key around its fold number
    return sorted(int(k[len(start):-len(end)]) for k in z.files
                  if k.startswith(start) and k.endswith(end) and k[len(start):-len(end)].isdigit())


def earlier(out: Path, options: dict[str, Any]) -> tuple[dict[tuple[str, int], dict[str, Any]], list[int]]:
    """The finished runs an earlier `run` with the same options wrote to `out`, and its folds;
    ConfigError if it used other options (its results would be mixed with these, or lost)."""
    from wbc.errors import ConfigError

    if not (out / "scale.json").is_file():
        return {}, []
    try:
        saved = json.loads((out / "scale.json").read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{out}: its scale.json is damaged ({type(e).__name__}: {e}); choose another --results, "
                          "or move it away") from None
    if saved.get("options") != options:
        was = saved.get("options", "not recorded: written by an earlier version of this script")
        raise ConfigError(f"{out}: holds results of other options ({was}; asked {options}); they are kept: "
                          "choose another --results (or --work)")
    try:
        with np.load(out / "scale.npz") as z:
            return {(n, int(f)): {**r, "name": n, "fold": int(f),
                                  **dict(zip(("logits", "y", "cells"), stored_run(z, n, int(f))))}
                    for n, f, r in ((*k.split("/fold"), r) for k, r in saved["runs"].items())}, saved["folds"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise ConfigError(f"{out}: its scale.npz is damaged or does not match its scale.json ({type(e).__name__}: "
                          f"{e}); choose another --results, or move them away") from None


def not_reusable(e: WbcError) -> ConfigError:
    """What to do with a fold run left in WORK that is not the run asked for: another --work, or its folder
    removed; not where its last.pt may not be read (CheckpointNotPermitted), whose permissions are in the way."""
    from wbc.errors import CheckpointNotPermitted, ConfigError

    if isinstance(e, CheckpointNotPermitted):
        return ConfigError(str(e))
    why = "; it was made with other --epochs or --limit-cells, or by another recipe" if "not the run asked for" in str(e) else ""
    return ConfigError(f"{e}{why}; choose another --work, or remove that folder")


def run(args: argparse.Namespace) -> int:
    import multiprocessing

    from wbc.calibration import tta_probs
    from wbc.crossval import check_reusable, folds_of
    from wbc.errors import CheckpointError, ConfigError
    from wbc.io import atomic_write_text
    from wbc.recipe import check_device, preset

    dev = check_device(args.device)
    k = folds_of(preset("wbcnet"))
    if not set(args.folds) <= set(range(k)):
        raise ConfigError(f"--folds {' '.join(map(str, args.folds))}: the folds are 0 to {k - 1}")
    for flag, value, least in (("--epochs", args.epochs, 1), ("--limit-cells", args.limit_cells, 5),
                               ("--workers", args.workers, 1), ("--budget-s", args.budget_s, 0)):
        if value is not None and value < least:
            raise ConfigError(f"{flag} {value}: choose {least} or more")
    folds = sorted(set(args.folds))
    unpack(args.pack)  # a missing or damaged pack is named once, here, not by every run
    results = args.results or args.work
    # The pack by its bytes (a pack rewritten in place is another; a moved one is the same), and the
    # device: runs of other options, crops or devices are not pooled or compared in one table.
    sha = hashlib.sha256(args.pack.read_bytes()).hexdigest()[:16]
    options = {"epochs": args.epochs, "limit_cells": args.limit_cells, "pack_sha256": sha, "device": args.device}
    marker = args.work / "pack.sha256"
    if marker.is_file() and marker.read_text().strip() != sha:
        raise ConfigError(f"{args.work}: its runs were trained on another pack (sha256 {marker.read_text().strip()}, "
                          f"this one {sha}); choose another --work")
    threads = max(1, (os.cpu_count() or 2) // args.workers)
    jobs = [(n, f) for n in args.recipes for f in folds]
    # Every fold run left in WORK must be the run asked for, before any starts.
    for n, f in jobs:
        cfg, model_cfg = recipe_run(n, f, args.device, threads, args.epochs, args.limit_cells)
        try:
            check_reusable(cfg, args.work / n / f"fold{f}", model_cfg)
        except CheckpointError as e:
            raise not_reusable(e) from None
    # What this run finishes replaces those runs; the table pools the folds of both.
    done, before = earlier(results, options)
    folds_all = sorted({*before, *folds})
    args.work.mkdir(parents=True, exist_ok=True)
    results.mkdir(parents=True, exist_ok=True)
    atomic_write_text(marker, sha + "\n")
    start = time.perf_counter()
    meta = {"device": args.device, "workers": args.workers, "folds": folds_all, "options": options}
    if dev.type == "cuda":
        import torch

        meta["gpu"] = torch.cuda.get_device_name(dev)
    failed, finished_here = 0, 0
    tries: dict[tuple[str, int], int] = {}

    def pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn"))

    ex = pool()
    running: dict[Future[dict[str, Any]], tuple[str, int]] = {}
    try:
        while jobs or running:
            while jobs and len(running) < args.workers and time.perf_counter() - start < args.budget_s:
                job = jobs.pop(0)
                tries[job] = tries.get(job, 0) + 1
                running[ex.submit(_job, str(args.pack), str(args.work), *job, args.device, threads, args.epochs,
                                  args.limit_cells)] = job
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = False
            for fut in finished:
                n, f = running.pop(fut)
                try:
                    done[(n, f)] = fut.result()
                except BrokenProcessPool:
                    broken = True
                    running[fut] = (n, f)  # handled with the rest of the pool's runs below
                    continue
                except Exception as e:  # noqa: BLE001 -- any failure of one run (CUDA, a bad run folder) is reported, the others go on
                    print(f"{n} fold {f}: failed: {type(e).__name__}: {e}", flush=True)
                    failed += 1
                    continue
                finished_here += 1
                r = done[(n, f)]
                acc = (tta_probs(r["logits"]).argmax(1) == r["y"]).mean()
                print(f"{time.perf_counter() - start:6.0f}s  {n} fold {f}: {r['epochs']} epochs, {r['seconds']:.0f} s of "
                      f"training, held-out accuracy {100 * acc:.2f}% (8 views, no temperature)", flush=True)
                save(results, done, folds_all, {**meta, "elapsed_s": time.perf_counter() - start})
            if broken:
                # A worker died (killed, out of memory) and took the pool's other runs with it: a new pool
                # starts them again (they resume from their last epoch), each at most twice in all.
                lost = list(running.values())
                running.clear()
                ex.shutdown(wait=False, cancel_futures=True)
                ex = pool()
                for job in lost:
                    if tries[job] >= 2:
                        print(f"{job[0]} fold {job[1]}: failed: its worker died twice", flush=True)
                        failed += 1
                    else:
                        print(f"{job[0]} fold {job[1]}: its worker died; starting it again", flush=True)
                        jobs.insert(0, job)
    except KeyboardInterrupt:
        # A SIGTERM sent to this process alone (`kill PID`) reaches no worker: they are ended here, or the shutdown
        # below would wait out their trainings (each resumes from its last epoch when run again).
        for p in list((getattr(ex, "_processes", None) or {}).values()):
            p.terminate()
        raise
    finally:
        ex.shutdown(wait=True, cancel_futures=True)
    if jobs:
        print(f"not started (budget {args.budget_s} s): {', '.join(f'{n} fold {f}' for n, f in jobs)}")
    if not finished_here:
        print("no run finished; the results in place are left as they were")
        return 1
    print((results / "scale.md").read_text())
    return 1 if failed or jobs else 0


def render(path: Path) -> str:
    from wbc.errors import DataError

    path = path / "scale.json" if path.is_dir() else path
    try:
        result = json.loads(path.read_text())
        return table(result)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path}: not a scale.json that `scale_cv.py run` wrote ({type(e).__name__}: {e})") from None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="store TRAIN's crops (needs the data set; about 20 s)")
    p.add_argument("--out", type=Path, required=True, help="the pack's file (.npz)")
    p.add_argument("--data", help="data set folder (default: WBC_DATA, else ../shared/data/blood-cells)")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality of the stored crops, 50-95 (default: 95)")
    r = sub.add_parser("run", help="cross-validate the recipes on a pack",
                       epilog="recipes: " + "; ".join(f"{n}: {rc.about}" for n, rc in RECIPES.items()))
    r.add_argument("--pack", type=Path, required=True, help="a file `scale_cv.py pack` wrote")
    r.add_argument("--work", type=Path, required=True, help="the fold runs go to WORK/RECIPE/foldK")
    r.add_argument("--results", type=Path, help="scale.json, scale.npz and scale.md go here (default: WORK)")
    r.add_argument("--device", default="cuda", help="the torch device to train on (default: cuda; cpu for a check)")
    r.add_argument("--workers", type=int, default=8, help="runs at once (default: 8)")
    r.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=DEFAULT_RECIPES, metavar="RECIPE",
                   help=f"which, in the order to start them (default: {' '.join(DEFAULT_RECIPES)}; all are listed below)")
    r.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2], metavar="K",
                   help="which of the 5 cell-grouped folds to hold out, one run each (default: 0 1 2)")
    r.add_argument("--budget-s", type=float, default=float("inf"), help="start no run after this many seconds (default: no limit)")
    r.add_argument("--epochs", type=int, help="every recipe this many epochs (a quick check; default: each its own)")
    r.add_argument("--limit-cells", type=int, help="the first N cells of each class only, 5 or more (a quick check)")
    d = sub.add_parser("render", help="print the table of a scale.json")
    d.add_argument("json", type=Path, help="a scale.json, or the folder that holds it")
    args = ap.parse_args()
    if args.cmd == "pack":
        if not 50 <= args.quality <= 95:
            ap.error(f"--quality {args.quality}: choose 50 to 95")
        pack(args.data, args.out, args.quality)
        return 0
    if args.cmd == "render":
        print(render(args.json), end="")
        return 0
    return run(args)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
