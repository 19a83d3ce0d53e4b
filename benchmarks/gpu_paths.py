"""Check, on a GPU, the training paths that a plain run does not take: a teacher distilled on the
device, pair smoothing, weight averaging, a batch of 6, a run made on one device and resumed on the
other, and `wbc train --device` from the command line. A few seconds on the fixture images.

    python benchmarks/gpu_paths.py [--device cuda]

Prints one line per check and exits 1 if any failed. `--device cpu` runs the same paths with no GPU
(one resume, on the CPU), which the tests do.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "blood-cells" / "images"


def main() -> int:
    from wbc.checkpoint import load_checkpoint, save_checkpoint
    from wbc.recipe import TrainConfig, check_device
    from wbc.train import fit

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="the device to check (default: cuda)")
    args = ap.parse_args()
    check_device(args.device)
    base = TrainConfig(epochs=2, batch_size=6, val_fraction=0.34, data=str(FIXTURES), threads=2, device=args.device,
                       mixup=0.4, augment="robust-erase", low_res_size=64, low_res_epochs=1, pair_smoothing=0.05,
                       ema=0.9)
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)

        def check(name: str, step: Callable[[], str]) -> None:
            nonlocal failed
            try:
                with contextlib.redirect_stdout(io.StringIO()):  # the runs' epoch lines
                    said = step()
                print(f"{name}: ok{said}", flush=True)
            except Exception as e:  # noqa: BLE001 -- every check is run and reported, whatever breaks it
                print(f"{name}: FAILED: {type(e).__name__}: {e}", flush=True)
                failed += 1

        def distil() -> str:
            fit(base, work / "teacher", progress=False)
            fit(replace(base, teachers=(str(work / "teacher"),), ema=0.0, split_seed=0), work / "student", progress=False)
            return f" (student's validation accuracy {load_checkpoint(work / 'student' / 'last.pt')['history'][-1]['val_accuracy']:.2f})"

        def resume(first: str, then: str) -> str:
            run = work / f"{first}-{then}"
            fit(replace(base, device=first), run, progress=False)
            state = load_checkpoint(run / "last.pt")  # as if it had stopped after its first epoch
            state.update(epoch=0, stopped=False, history=state["history"][:1])
            save_checkpoint(run / "last.pt", state)
            fit(replace(base, device=then), run, resume=True, progress=False)
            epochs = [h["epoch"] for h in load_checkpoint(run / "last.pt")["history"]]
            if epochs != [1, 2]:
                raise AssertionError(f"epochs {epochs} after resuming, not [1, 2]")
            return ""

        def cli() -> str:
            r = subprocess.run([sys.executable, "-m", "wbc.cli", "train", "--data", str(FIXTURES), "--out",
                                str(work / "cli"), "--dry-run", "--val-fraction", "0.34", "--batch-size", "8",
                                "--device", args.device, "--quiet"], capture_output=True, text=True)
            if r.returncode != 0:
                raise AssertionError(r.stderr.strip())
            return ""

        check(f"teacher and student on {args.device}", distil)
        for first, then in dict.fromkeys(((args.device, "cpu"), ("cpu", args.device))):
            check(f"made on {first}, resumed on {then}", lambda a=first, b=then: resume(a, b))
        check(f"wbc train --device {args.device}", cli)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
