"""Where a training step's time goes, side by side in one process: augmentation, and the network's
forward + backward + optimizer step in the default (NCHW) and the channels-last memory layout.

    python benchmarks/train_step.py [--model wbcnet|seed] [--batch-size 64] [--rounds 15]

A batch of random inputs of the network's size (wbcnet: 96 x 96 crops; seed: 120 x 160 frames) runs
`wbc.augment.augment_batch` (the network's own recipe: robust-erase, or basic for the seed replica) and a step of the network, in alternation (`timing.time_interleaved`),
with the training thread count (2). Prints ms per batch and ratios. The training loop
(`wbc.train.train_one_epoch`) feeds the network channels-last; this shows what that buys on this CPU.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import time_interleaved  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    import torch

    from wbc.augment import augment_batch
    from wbc.cli import whole_number
    from wbc.model import build_model, default_config
    try:
        from wbc.recipe import AUGMENT, preset
    except ImportError:  # an earlier commit's src (the old side of a comparison): the recipe was in wbc.train
        from wbc.train import AUGMENT, preset
    try:
        from wbc.train import make_optimizer
    except ImportError:  # an earlier commit's src (the old side of a comparison): it was _make_optimizer
        from wbc.train import _make_optimizer as make_optimizer

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["wbcnet", "seed"], default="wbcnet")
    ap.add_argument("--batch-size", type=whole_number(1), default=64, help="default: 64")
    ap.add_argument("--rounds", type=whole_number(1), default=15, help="default: 15")
    ap.add_argument("--threads", type=whole_number(1), default=2, help="default: 2, the training's")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    h, w = default_config(args.model).preprocess.input_hw
    cfg = preset(args.model)
    recipe = cfg.augment  # robust-erase for wbcnet, basic for the seed replica
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch_size, 3, h, w, generator=gen)  # (N, 3, H, W) in 0..1
    y = torch.randint(0, 4, (args.batch_size,), generator=gen)
    model = build_model(args.model)
    model.train()
    opt = make_optimizer(model, cfg)  # the recipe's own: AdamW for wbcnet, Adam for the seed replica

    def step(layout: torch.memory_format) -> Callable[[], object]:
        xb = x.contiguous(memory_format=layout)

        def run() -> None:
            loss = torch.nn.functional.cross_entropy(model(xb), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return run

    times = time_interleaved(
        {
            f"augment ({recipe})": lambda: augment_batch(x, AUGMENT[recipe], gen),
            "network step, NCHW": step(torch.contiguous_format),
            "network step, channels-last": step(torch.channels_last),
        },
        rounds=args.rounds,
    )
    print(f"{args.model}: batch {args.batch_size} x 3 x {h} x {w}, {args.threads} threads, "
          f"{args.rounds} rounds in alternation (median ms per batch)")
    for name, sec in times.items():
        print(f"  {name:30s} {sec * 1000:7.1f} ms")
    aug, nchw, cl = times.values()
    print(f"channels-last step: {nchw / cl:.2f}x the NCHW one")
    print(f"augment share of a channels-last step (augment + network): {aug / (aug + cl):.0%}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
