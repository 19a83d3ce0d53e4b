"""Batch-1 ONNX Runtime latency of several trained networks, side by side in one process.

    python benchmarks/arch_latency.py runs/bench/seed-seed0 runs/e4-borderfill runs/e5-light-wide ...

Exports each run's best.pt (one view, no calibration: the network alone) and times one image
through `Predictor.predict_probs` as `wbc predict --single-view` runs it, in the same process and
thread setting, in alternation (`timing.time_interleaved`); prints ms/image and the ratio of the
first run (the baseline) to each. With --int8, each run is also timed as a static INT8 copy
(ONNX Runtime's quantizer, QDQ, per-channel weights, activations calibrated on the same TRAIN images
the export checks parity on): does quantizing buy the batch-1 speed a smaller network would?
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from wbc.imaging import PreprocessSpec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import single_pass, time_interleaved  # noqa: E402


def quantized(export_dir: Path, spec: PreprocessSpec, images: list[Path]) -> Path:
    """A static INT8 copy of an export (export_dir/int8: model.onnx and its card with the copy's sha256;
    the card's other figures, such as its size and parity check, are the float model's)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from wbc.decode import load_image
    from wbc.imaging import prepare
    from wbc.card import sha256_file

    crops = [prepare(load_image(p), spec)[None] for p in images]  # uint8 (1, h, w, 3) each

    class Crops(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(crops)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self.it, None)
            return None if x is None else {"input": x}

    out = export_dir / "int8"
    out.mkdir()
    quant_pre_process(str(export_dir / "model.onnx"), str(out / "pre.onnx"))
    quantize_static(str(out / "pre.onnx"), str(out / "model.onnx"), Crops(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    card = json.loads((export_dir / "model.json").read_text())
    card["onnx_sha256"] = sha256_file(out / "model.onnx")
    (out / "model.json").write_text(json.dumps(card))
    return out


def main() -> int:
    from wbc.cli import whole_number

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, nargs="+", help="run folders (their best.pt) or checkpoints; the first is the baseline")
    ap.add_argument("--threads", type=whole_number(1), default=2, help="ONNX Runtime threads (default: 2)")
    ap.add_argument("--rounds", type=whole_number(1), default=15, help="alternating timing rounds (default: 15)")
    ap.add_argument("--int8", action="store_true", help="also time a statically quantized INT8 copy of each run")
    args = ap.parse_args()

    from wbc.crossval import run_label
    from wbc.model import count_flops
    from wbc.predict import Predictor
    from wbc.ship import parity_images, run_checkpoint
    from wbc.export import export
    from wbc.checkpoint import load_checkpoint, model_from_checkpoint
    from wbc.errors import WbcError

    try:  # each named, before any is exported: a checkpoint given was read as a folder ("last.pt/best.pt")
        checkpoints = [run_checkpoint(run) for run in args.runs]
    except WbcError as e:
        ap.error(str(e))
    labels = [run_label(r) if r.is_dir() else f"{run_label(r.resolve().parent)}/{r.name}" for r in args.runs]
    if len(set(labels)) < len(labels):  # the table is keyed by them: a second run of one name replaced the first's row
        ap.error(f"two runs would share a row's name ({', '.join(sorted({x for x in labels if labels.count(x) > 1}))}): "
                 "give each once, or copy one to a folder of another name")
    images = parity_images(None)
    fns: dict[str, Callable[[], object]] = {}  # keyed by the table's row label
    mflops: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, ckpt) in enumerate(zip(labels, checkpoints)):
            out = Path(tmp) / str(i)
            export(ckpt, out, images)
            pred = Predictor(out, threads=args.threads)
            net, _ = model_from_checkpoint(load_checkpoint(ckpt))
            mflops[label] = count_flops(net, pred.spec.input_hw) / 1e6
            fns[label] = single_pass(pred)
            if args.int8:
                fns[f"{label} (int8)"] = single_pass(Predictor(quantized(out, pred.spec, images), threads=args.threads))
                mflops[f"{label} (int8)"] = mflops[label]  # the float network's count: the same arithmetic, in int8
        ms = {k: 1000 * v for k, v in time_interleaved(fns, rounds=args.rounds).items()}
    base = next(iter(ms.values()))
    print("| run | MFLOPs | ORT ms/image, batch 1 | baseline / run |\n|---|---|---|---|")
    for label, t in ms.items():
        print(f"| {label} | {mflops[label]:.0f} | {t:.3f} | {base / t:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
