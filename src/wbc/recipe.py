"""The recipe a run trains by: `TrainConfig`, its presets, the augmentations and optimizers it names, `check_config`;
and where it runs (`MACHINE_SETTINGS`, `check_device`)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from wbc.augment import (
    ROBUST,
    ROBUST_ERASE,
    ROBUST_ERASE_OVEREXPOSED,
    ROBUST_ERASE_SHARP,
    ROBUST_EXPOSURE,
    ROBUST_OVEREXPOSED,
    ROBUST_WIDE,
    AugmentConfig,
)
from wbc.errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a run; saved as config.json in the run folder."""

    model: str = "wbcnet"
    epochs: int = 80
    batch_size: int = 64
    lr: float = 2e-3
    optimizer: str = "adamw"  # one of OPTIMIZERS
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # "cosine" (with warmup) or "constant"
    warmup_epochs: int = 1
    label_smoothing: float = 0.1  # the presets set their own (wbcnet 0.2, seed 0): see `preset`
    # Share of each eosinophil's target moved to neutrophil and back (on top of label smoothing):
    # the pair that out-of-fold errors confuse, so a cell that looks like the other costs less.
    pair_smoothing: float = 0.0
    patience: int = 20  # epochs without improvement of `monitor` before stopping
    monitor: str = "val_macro_f1"  # or "val_loss"
    val_fraction: float = 0.2
    seed: int = 0
    split_seed: int | None = None  # seed of the cell-grouped split alone (None: `seed`); teachers share one
    # Which of the round(1 / val_fraction) cell-grouped folds is held out (cross-validation). None:
    # none is, every TRAIN cell trains for exactly `epochs` epochs and the last one is the model; for
    # a recipe whose epochs and calibration cross-validation has already fixed.
    fold: int | None = 0
    class_weights: bool = True
    augment: str = "robust"  # a key of AUGMENT ("basic": geometry and light colour jitter) or "none"
    limit_cells: int | None = None  # keep only the first N cells of each class (quick runs)
    data: str | None = None
    skip_bad: bool = False
    threads: int = 2
    # The torch device the network trains on: "cpu", or "cuda" where a GPU and a CUDA build of torch
    # are present (the augmentation's random draws stay on the CPU, so both draw the same numbers;
    # the arithmetic differs in the last digits, so a GPU run is not a bit-for-bit CPU run).
    device: str = "cpu"
    teachers: tuple[str, ...] = ()  # run folders whose best.pt teach this one (distillation)
    distill: float = 0.7  # with teachers: weight of the teachers' soft targets in the loss
    mixup: float = 0.0  # alpha of mixup's Beta(alpha, alpha) blend of image pairs and their targets (0 = off)
    # Decay per step of an exponential moving average of the weights (and BatchNorm statistics);
    # 0 = off. When on, the average is what is validated and saved as the model.
    ema: float = 0.0
    # Progressive resizing: the first `low_res_epochs` epochs see the augmented crops at
    # low_res_size x low_res_size px instead of the network's input size (0 = off). The network is
    # fully convolutional with global pooling, so the same weights take both; the later epochs at
    # full size adapt it (and its BatchNorm statistics) to the size it is used at.
    low_res_size: int = 0
    low_res_epochs: int = 0
    # Shrink the crops with an antialiasing filter before the low-resolution warp instead of sampling
    # the full-size crop sparsely (aliased); what e34 and e36 ran without.
    low_res_antialias: bool = False
    # Px of the network's input cached around each training crop (0 = none): the warp's rotations and
    # zoom-outs then sample real field where they would otherwise mirror the crop's own border. A test
    # crop is unchanged; validation reads each crop's centre, as a test crop frames it.
    context: int = 0


# Where and how fast a run is made, not what it learns: a resumed run takes these from its caller.
MACHINE_SETTINGS = ("data", "threads", "skip_bad", "device")


# The reference's recipe: Adam at 1e-4, class weights, augmentation, early stopping, 50 epochs.
SEED_PRESET: dict[str, Any] = dict(
    epochs=50, lr=1e-4, optimizer="adam", weight_decay=0.0, schedule="constant", warmup_epochs=0,
    label_smoothing=0.0, patience=10, monitor="val_loss", augment="basic",
)
AUGMENT = {"basic": AugmentConfig(), "robust": ROBUST, "robust-wide": ROBUST_WIDE, "robust-erase": ROBUST_ERASE,
           "robust-exposure": ROBUST_EXPOSURE, "robust-overexposed": ROBUST_OVEREXPOSED,
           "robust-erase-overexposed": ROBUST_ERASE_OVEREXPOSED, "robust-erase-sharp": ROBUST_ERASE_SHARP}


# wbcnet's default recipe (e36): mixup 0.4 was better on held-out fields than none (e11 against e10),
# label smoothing 0.2 no worse than 0.1 (e21 against e11), and the first 64 of 80 epochs at 64 px with
# cutout read as well as e21 on five folds at 0.56x e21's training time, within the 20-minute target on
# a 2-core AVX2 CPU (benchmarks/cv.py; BENCHMARKS.md, "Design comparisons over real cells", "e36 on five folds").
WBCNET_PRESET: dict[str, Any] = dict(mixup=0.4, label_smoothing=0.2, augment="robust-erase",
                                     low_res_size=64, low_res_epochs=64)


def preset(model: str) -> TrainConfig:
    """Default TrainConfig for `model` ("wbcnet" or "seed")."""
    return TrainConfig(model=model, **(SEED_PRESET if model == "seed" else WBCNET_PRESET))


def with_epochs(cfg: TrainConfig, epochs: int) -> TrainConfig:
    """`cfg` run for `epochs` epochs, its progressive resizing keeping its share of the schedule (the
    preset's 64 of 80 become 8 of 10, and 1 of 2: the last epoch is always full size), and off for a
    one-epoch run."""
    if not cfg.low_res_epochs:
        return replace(cfg, epochs=epochs)
    low = min(round(cfg.low_res_epochs * epochs / cfg.epochs), epochs - 1)
    if low < 1:
        return replace(cfg, epochs=epochs, low_res_size=0, low_res_epochs=0, low_res_antialias=False)
    return replace(cfg, epochs=epochs, low_res_epochs=low)


# name -> constructor(params, lr, weight_decay); check_config refuses any other name before a run starts.
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adamw": torch.optim.AdamW,
    "adam": torch.optim.Adam,
    # Nesterov momentum 0.9, the usual from-scratch CNN recipe; its weight decay is plain L2.
    "sgd": lambda params, **kw: torch.optim.SGD(params, momentum=0.9, nesterov=True, **kw),
}


def check_config(cfg: TrainConfig) -> None:
    """Refuse settings out of range before any work, naming the setting (ConfigError)."""
    if cfg.augment not in (*AUGMENT, "none"):
        raise ConfigError(f"unknown augmentation {cfg.augment!r}; choose {', '.join(AUGMENT)} or none")
    if cfg.optimizer not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {cfg.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if cfg.epochs < 1:
        raise ConfigError(f"epochs {cfg.epochs}: choose 1 or more (the recipe's default is 80 for wbcnet)")
    if cfg.patience < 1:
        raise ConfigError(f"patience {cfg.patience}: choose 1 or more epochs without improvement before stopping")
    if cfg.limit_cells is not None and cfg.limit_cells < 1:
        raise ConfigError(f"limit cells {cfg.limit_cells}: choose 1 or more cells per class, or leave it out to use "
                          "every cell")
    if cfg.threads < 1:
        raise ConfigError(f"threads {cfg.threads}: choose 1 or more (this machine has {os.cpu_count()} CPUs)")
    check_device(cfg.device)
    for name, v in (("learning rate", cfg.lr), ("ema decay", cfg.ema), ("weight decay", cfg.weight_decay),
                    ("mixup alpha", cfg.mixup), ("label smoothing", cfg.label_smoothing), ("distill weight", cfg.distill)):
        if not math.isfinite(v):  # NaN passes every comparison below unseen, and config.json cannot hold it
            raise ConfigError(f"{name} {v}: choose a finite number")
    if not cfg.lr > 0:
        raise ConfigError(f"learning rate {cfg.lr}: choose a positive value, e.g. 2e-3 (adamw) or 0.05 (sgd)")
    if cfg.batch_size < 2:  # BatchNorm needs two samples
        raise ConfigError(f"batch size {cfg.batch_size}: choose 2 or more, e.g. 64")
    if not 0 <= cfg.ema < 1:
        raise ConfigError(f"ema decay {cfg.ema}: choose 0 (off) or a value in (0, 1), e.g. 0.998")
    if not 0 <= cfg.weight_decay < 1:
        raise ConfigError(f"weight decay {cfg.weight_decay}: choose a value in [0, 1), e.g. 0.05")
    if cfg.mixup < 0:
        raise ConfigError(f"mixup alpha {cfg.mixup}: choose 0 (off) or a positive value, e.g. 0.4")
    if not 0 <= cfg.label_smoothing < 1:
        raise ConfigError(f"label smoothing {cfg.label_smoothing}: choose a value in [0, 1), e.g. 0.2")
    if cfg.low_res_size or cfg.low_res_epochs:
        low = f"low resolution {cfg.low_res_size} px for {cfg.low_res_epochs} epochs"
        if cfg.model != "wbcnet":
            raise ConfigError(f"{low}: only wbcnet takes inputs of another size ({cfg.model} has a fixed dense head)")
        if cfg.low_res_size < 32:
            raise ConfigError(f"{low}: choose 32 px or more")
        if cfg.epochs < 2:  # "choose 1 to 0 epochs" said nothing a user could do
            raise ConfigError(f"{low}: progressive resizing needs a run of 2 or more epochs, the last at full size; "
                              f"give more --epochs, or --low-res 0 0 to turn it off")
        if not 0 < cfg.low_res_epochs < cfg.epochs:
            raise ConfigError(f"{low}: choose 1 to {cfg.epochs - 1} epochs, fewer than the run's {cfg.epochs}, so "
                              "that the last ones train at full size (or --low-res 0 0 to turn it off)")
    elif cfg.low_res_antialias:
        raise ConfigError("low-resolution antialiasing applies to progressive resizing: add --low-res PX EPOCHS")
    for name, seed in (("seed", cfg.seed), ("split seed", cfg.split_seed)):
        if seed is not None and not 0 <= seed < 2**32:  # numpy's generators take no other (a traceback)
            raise ConfigError(f"{name} {seed}: choose a whole number from 0 to {2**32 - 1}")
    if not 0 <= cfg.distill <= 1:  # the loss is (1 - w) x the labels' + w x the teachers': 2 weighed the labels by -1
        raise ConfigError(f"distillation weight {cfg.distill}: choose a value in [0, 1], the teachers' share of the loss")
    if cfg.context < 0:
        raise ConfigError(f"context {cfg.context} px: choose 0 (off) or more px of field around each training crop")
    # The labelled class keeps 1 - ls + ls/4 - ps and its partner gets ls/4 + ps.
    most = (1 - cfg.label_smoothing) / 2
    if not 0 <= cfg.pair_smoothing < most:
        raise ConfigError(f"pair smoothing {cfg.pair_smoothing}: choose a value in [0, {most:.2f}) with label "
                          f"smoothing {cfg.label_smoothing}, so that the labelled class keeps the larger share")


def check_device(device: str) -> torch.device:
    """The torch device a run names, or ConfigError saying why it cannot train there."""
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"device {device!r}: not a torch device; choose cpu or cuda (cuda:N for the N-th GPU)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r}: no CUDA GPU is visible to this torch ({torch.__version__}; "
                              "a CPU-only build, or no driver); train on --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r}: this machine shows {torch.cuda.device_count()} CUDA GPU(s), "
                              f"numbered from 0")
    elif dev.type != "cpu":
        raise ConfigError(f"device {device!r}: wbc trains on cpu or cuda only")
    return dev
