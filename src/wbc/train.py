"""Training: `train_one_epoch`, `predict_probs`, `fit`. Resumable, seeded, one summary row an epoch."""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wbc.augment import (
    ROBUST,
    ROBUST_ERASE,
    ROBUST_ERASE_OVEREXPOSED,
    ROBUST_ERASE_SHARP,
    ROBUST_EXPOSURE,
    ROBUST_OVEREXPOSED,
    ROBUST_WIDE,
    AugmentConfig,
    augment_batch,
)
from wbc.data import (Sample, colourless, find_images_root, grouped_split, list_split, listed, load_arrays,
                      say_once, test_copies_of)
from wbc.errors import CheckpointError, ConfigError, DataError, OutputError, WbcError
from wbc.imaging import PreprocessSpec, dihedral_views
from wbc.info import CLASSES, NUM_CLASSES
from wbc.io import atomic_write_bytes, atomic_write_text, missing_folders, printable, remove_empty
from wbc.model import (
    SeedConfig,
    WbcNetConfig,
    build_model,
    config_from_dict,
    config_to_dict,
    count_params,
    default_config,
)
from wbc.sources import read_linked

CHECKPOINT_VERSION = 1
EOS, NEUT = CLASSES.index("EOSINOPHIL"), CLASSES.index("NEUTROPHIL")
# The class each class's pair smoothing moves its share to (-1: none): eosinophil <-> neutrophil.
PARTNER = torch.full((NUM_CLASSES,), -1, dtype=torch.long)
PARTNER[EOS], PARTNER[NEUT] = NEUT, EOS


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


def context_spec(spec: PreprocessSpec, context: int) -> PreprocessSpec:
    """The crop `spec` gives, widened by `context` px of network input on each side at the same scale:
    (size + 2 context) px from a window wider by as many source px. ConfigError where that is not a
    whole number of source px, since a rounded window would not centre the test crop's pixels."""
    if not context:
        return spec
    source, rest = divmod(context * spec.window, spec.size)
    if spec.mode != "cell" or rest:
        raise ConfigError(f"context {context} px: a {spec.mode} crop of {spec.window} source px to {spec.size} px widens "
                          f"only by a multiple of {spec.size // math.gcd(spec.window, spec.size)} px"
                          + ("" if spec.mode == "cell" else "; a whole field has no field around it"))
    return replace(spec, window=spec.window + 2 * source, size=spec.size + 2 * context)


def centre_crop(x: torch.Tensor, context: int) -> torch.Tensor:
    """The network's crop inside a widened one: (N, C, h, w) less `context` px on each side."""
    return x[:, :, context : x.shape[2] - context, context : x.shape[3] - context] if context else x


def _to_tensor(x: np.ndarray) -> torch.Tensor:
    """uint8 (N, h, w, 3) -> uint8 tensor (N, 3, h, w); converted to float per batch to save memory."""
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def _normalise(x: torch.Tensor, spec: PreprocessSpec) -> torch.Tensor:
    """float (N, 3, h, w) in 0..1 -> normalised as imaging.to_input does, in channels-last memory:
    the network's input in training and validation."""
    mean = torch.tensor(spec.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=x.device).view(1, 3, 1, 1)
    # The small convs run forward and backward 1.2-1.3x faster in channels-last on CPU
    # (benchmarks/train_step.py).
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, spec: PreprocessSpec, batch: int = 256) -> torch.Tensor:
    """uint8 (N, 3, h, w) -> logits (N, 4) on the CPU, in eval mode, computed on the model's device."""
    model.eval()
    dev = next(model.parameters()).device
    out = [model(_normalise(x[i : i + batch].to(dev).float() / 255.0, spec)).cpu() for i in range(0, len(x), batch)]
    return torch.cat(out) if out else torch.zeros((0, NUM_CLASSES))


def predict_probs(model: nn.Module, x: torch.Tensor, spec: PreprocessSpec, batch: int = 256) -> np.ndarray:
    """uint8 (N, 3, h, w) -> softmax probabilities (N, 4), in eval mode, computed on the model's device."""
    return F.softmax(predict_logits(model, x, spec, batch), 1).numpy()


def view_logits(model: nn.Module, x: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """uint8 crops (N, h, w, 3) -> logits (8, N, 4) of their 8 views (`imaging.dihedral_views`: the
    quarter turns, each also mirrored, in that function's order), as the cross-validation predicts
    held-out files (`crossval.OOF_VIEWS`)."""
    views = _to_tensor(dihedral_views(x, 8))
    return predict_logits(model, views, spec).numpy().reshape(8, len(x), NUM_CLASSES)


def smoothed_targets(y: torch.Tensor, label_smoothing: float, pair_smoothing: float) -> torch.Tensor:
    """Labels (B,) -> target distributions (B, 4): label smoothing spreads its share evenly, then
    `pair_smoothing` of an eosinophil's or a neutrophil's target moves to the other of the two."""
    t = F.one_hot(y, NUM_CLASSES).float() * (1 - label_smoothing) + label_smoothing / NUM_CLASSES
    partner = PARTNER.to(y.device)
    rows = (partner[y] >= 0).nonzero().flatten()
    t[rows, y[rows]] -= pair_smoothing
    t[rows, partner[y[rows]]] += pair_smoothing
    return t


def _loss(logits: torch.Tensor, idx: torch.Tensor, y: torch.Tensor, soft: torch.Tensor | None,
          weights: torch.Tensor | None, cfg: TrainConfig) -> torch.Tensor:
    """Label-smoothed (and pair-smoothed: `smoothed_targets`), class-weighted cross-entropy of logits
    (B, 4) against the files `idx` (B,), mixed with the teachers' soft targets where there are teachers."""
    if cfg.pair_smoothing > 0:
        t = smoothed_targets(y[idx], cfg.label_smoothing, cfg.pair_smoothing)
        cw = weights if weights is not None else torch.ones(NUM_CLASSES, device=logits.device)
        # As F.cross_entropy weighs label smoothing: each target class c by cw[c], the sum over the
        # batch divided by the labels' weights.
        loss = -(t * cw * F.log_softmax(logits, 1)).sum() / cw[y[idx]].sum()
    else:
        loss = F.cross_entropy(logits, y[idx], weight=weights, label_smoothing=cfg.label_smoothing)
    if soft is not None:
        w = weights[y[idx]] if weights is not None else torch.ones(len(idx), device=logits.device)
        soft_ce = -(soft[idx] * F.log_softmax(logits, 1)).sum(1)
        loss = (1 - cfg.distill) * loss + cfg.distill * (w * soft_ce).sum() / w.sum()
    return loss


def _mix_pairs(n: int, alpha: float, gen: torch.Generator) -> tuple[float, torch.Tensor]:
    """Mixup: a weight lam ~ Beta(alpha, alpha), kept >= 0.5 so the first image stays the main one,
    and a partner (n,) for each image of the batch."""
    g1, g2 = (torch._standard_gamma(torch.full((1,), alpha), generator=gen) for _ in range(2))
    lam = float(g1 / (g1 + g2))
    return max(lam, 1 - lam), torch.randperm(n, generator=gen)


def train_one_epoch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    cfg: TrainConfig,
    spec: PreprocessSpec,
    weights: torch.Tensor | None,
    gen: torch.Generator,
    progress: bool = True,
    soft: torch.Tensor | None = None,
    ema: nn.Module | None = None,
    size: int | None = None,
) -> float:
    """One pass over (x uint8 (N, 3, h, w), y (N,)) in shuffled batches; returns the mean loss.
    x, y, `soft`, `weights` and the model are on one device; `gen` is a CPU generator.
    With `soft` (N, 4), the teachers' probabilities, the loss mixes in their cross-entropy; `ema`, an
    AveragedModel of `model`, is updated after every step; `size`: the network sees size x size px
    (progressive resizing) instead of its input size. With `cfg.context`, x holds widened crops
    (`context_spec`) and the warp samples the network's crop from them."""
    from wbc.progress import bar

    model.train()
    perm = torch.randperm(len(x), generator=gen)
    aug = AUGMENT.get(cfg.augment)
    # The sum stays on the device: reading it every step would make a GPU wait for each batch.
    total, seen = torch.zeros((), dtype=torch.float64, device=x.device), 0
    steps = bar(range(0, len(x), cfg.batch_size), show=progress, desc="train", leave=False)
    for start in steps:
        idx = perm[start : start + cfg.batch_size].to(x.device)
        if len(idx) < 2:  # BatchNorm needs two samples
            continue
        xb = x[idx].float() / 255.0
        if aug is not None:
            xb = augment_batch(xb, aug, gen, size, antialias=cfg.low_res_antialias,
                               extent=spec.input_hw[0] / xb.shape[2])
        else:
            xb = centre_crop(xb, cfg.context)
            if size:
                xb = F.interpolate(xb, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        if cfg.mixup > 0:
            lam, pair = _mix_pairs(len(idx), cfg.mixup, gen)
            pair = pair.to(x.device)
            logits = model(_normalise(lam * xb + (1 - lam) * xb[pair], spec))
            loss = (lam * _loss(logits, idx, y, soft, weights, cfg)
                    + (1 - lam) * _loss(logits, idx[pair], y, soft, weights, cfg))
        else:
            logits = model(_normalise(xb, spec))
            loss = _loss(logits, idx, y, soft, weights, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if ema is not None:
            ema.update_parameters(model)
        total += loss.detach().double() * len(idx)
        seen += len(idx)
        if not steps.disable:  # reading the sum waits for a GPU: only where a bar shows it
            steps.set_postfix(loss=f"{float(total) / seen:.3f}")
    return float(total) / max(seen, 1)


# name -> constructor(params, lr, weight_decay); check_config refuses any other name before a run starts.
_OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adamw": torch.optim.AdamW,
    "adam": torch.optim.Adam,
    # Nesterov momentum 0.9, the usual from-scratch CNN recipe; its weight decay is plain L2.
    "sgd": lambda params, **kw: torch.optim.SGD(params, momentum=0.9, nesterov=True, **kw),
}
OPTIMIZERS = tuple(_OPTIMIZERS)


def _make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    return _OPTIMIZERS[cfg.optimizer](model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def _make_schedule(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    total = max(1, cfg.epochs * steps_per_epoch)
    warm = cfg.warmup_epochs * steps_per_epoch

    def factor(step: int) -> float:
        if cfg.schedule == "constant":
            return 1.0
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _make_ema(model: nn.Module, decay: float) -> nn.Module:
    """torch's AveragedModel of `model`: an exponential moving average of its weights and buffers."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _class_weights(y: np.ndarray) -> torch.Tensor:
    """Inverse-frequency weights, mean 1 (scikit-learn's "balanced")."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(y)
    w = np.ones(NUM_CLASSES)
    w[present] = compute_class_weight("balanced", classes=present, y=y)
    return torch.tensor(w, dtype=torch.float32)


def _subset(samples: list[Sample], limit_cells: int | None, wanted: dict[int, int] | None = None) -> list[Sample]:
    """The files of the first `limit_cells` cells of each class (`wanted`: that many of each class it names, and
    none of the others), in their order."""
    if not limit_cells and wanted is None:
        return samples
    keep: dict[int, list[str]] = {}
    for s in samples:
        cells = keep.setdefault(s.label, [])
        if s.cell not in cells and len(cells) < (limit_cells if wanted is None else wanted.get(s.label, 0)):
            cells.append(s.cell)
    return [s for s in samples if s.cell in keep[s.label]]


def _load_limited(listed: list[Sample], limit_cells: int | None, spec: PreprocessSpec, skip_bad: bool,
                  progress: bool) -> tuple[np.ndarray, list[Sample]]:
    """The crops (N, h, w, 3) and samples of `--limit-cells` cells of each class of `listed`. With `skip_bad`, a
    cell whose files are all unreadable is made up by the next cell of its class, as long as there is one: the
    unreadable file is left out, not the cell (5 readable neutrophils asked, 6 there and a broken file, were 4)."""
    x, kept = load_arrays(_subset(listed, limit_cells), spec, skip_bad=skip_bad, progress=progress)
    if not (skip_bad and limit_cells):
        return x, kept
    parts, tried = [x], {s.cell for s in _subset(listed, limit_cells)}
    while True:
        have = {lab: len({s.cell for s in kept if s.label == lab}) for lab in {s.label for s in listed}}
        wanted = {lab: limit_cells - n for lab, n in have.items() if n < limit_cells}
        more = _subset([s for s in listed if s.cell not in tried], None, wanted)
        if not more:
            return np.concatenate(parts), kept
        tried |= {s.cell for s in more}
        try:
            x_more, got = load_arrays(more, spec, skip_bad=True, progress=progress)
        except DataError:  # every one of these files unreadable: the next cells, if any, make them up
            continue
        parts.append(x_more)
        kept = kept + got


def _val_metrics(probs: np.ndarray, y: np.ndarray, cells: list[str], weights: torch.Tensor | None) -> dict[str, float]:
    from sklearn.metrics import f1_score

    from wbc.metrics import pool_cells

    pred = probs.argmax(1)
    loss = float(F.nll_loss(torch.log(torch.from_numpy(probs).clamp_min(1e-8)), torch.from_numpy(y),
                            weight=weights.cpu() if weights is not None else None))
    cp, cy, _ = pool_cells(probs, y, cells)
    return {
        "val_loss": loss,
        "val_accuracy": float((pred == y).mean()),
        "val_macro_f1": float(f1_score(y, pred, average="macro", labels=np.unique(y), zero_division=0)),
        "val_cell_accuracy": float((cp.argmax(1) == cy).mean()),
    }


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def _run_split(run: Path) -> tuple[dict[str, Any], set[str], set[str]]:
    """A run's split.json, its training cells and its validation cells; CheckpointError where it is missing or
    damaged."""
    try:
        split = json.loads((run / "split.json").read_text())
        return split, set(split["train_cells"]), set(split["val_cells"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{run}: split.json, the cells the run trained on, is missing or damaged; "
                              "it cannot be resumed safely: start it again") from e


def _split_before_links(then_tr: set[str], then_va: set[str], cells: list[str], tr_idx: np.ndarray,
                        va_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The run's own split (`then_tr`, `then_va`: its split.json's cells) where the split made now differs from
    it only in where the linked cells went (`wbc.sources.read_linked`: a run started before wbc 0.21 kept a
    field labelled twice apart, and goes on as it started); the split made now otherwise, for `_check_same_split`."""
    now_tr, now_va = {cells[i] for i in tr_idx}, {cells[i] for i in va_idx}
    moved = (then_tr & now_va) | (then_va & now_tr)
    linked = {c for pair in read_linked().items() for c in pair}
    if not moved or then_tr | then_va != now_tr | now_va or not moved <= linked:
        return tr_idx, va_idx
    return (np.array([i for i, c in enumerate(cells) if c in then_tr], dtype=int),
            np.array([i for i, c in enumerate(cells) if c in then_va], dtype=int))


def _resumed_on_other_cells(run: Path, cells: set[str], root: Path | str, error: DataError) -> None:
    """DataError naming the data as the cause where the cells a resumed run reads (at `root`) are not those its
    split.json holds, and the split made of them failed with `error`."""
    _, then_tr, then_va = _run_split(run)
    if cells != then_tr | then_va:
        raise DataError(f"{run}: --resume: the data at {root} gives {len(cells)} cells, other than the "
                        f"{len(then_tr | then_va)} the run started on (split.json), and no split of them can be made "
                        f"({error}): --data points at other data, or files were added, removed or left out as unusable "
                        "(--skip-bad, named above) since; point --data at the data it started on, or start a new "
                        "run") from error


def _check_same_split(run: Path, split: tuple[dict[str, Any], set[str], set[str]], cells: list[str],
                      tr_idx: np.ndarray, va_idx: np.ndarray, root: Path | str) -> None:
    """DataError unless the data a resumed run reads (`root`) gives the cells, and files, the run
    started on (its `split`, `_run_split`; the file counts only where it has them): --data may move, not change
    what is trained on."""
    split_json, then = split[0], (split[1], split[2])
    now = ({cells[i] for i in tr_idx}, {cells[i] for i in va_idx})
    if now != then:
        gone, new = sorted((then[0] | then[1]) - (now[0] | now[1])), sorted((now[0] | now[1]) - (then[0] | then[1]))
        moved = sorted((then[0] & now[1]) | (then[1] & now[0]))  # on the other side of the split now
        which = "; ".join(f"{len(c)} {what}: {', '.join(c[:3])}{' ...' if len(c) > 3 else ''}"
                          for what, c in (("missing", gone), ("new", new), ("moved between training and validation",
                                                                               moved)) if c)
        raise DataError(
            f"{run}: --resume: the data at {root} gives {len(now[0])} training and {len(now[1])} validation cells, "
            f"other than the {len(then[0])} and {len(then[1])} the run started on (split.json; {which}): --data points at "
            "other data, or files were added, removed or left out as unusable (--skip-bad, named above) since; "
            "point --data at the data it started on, restore the files, or start a new run")
    counts = (split_json.get("train_files"), split_json.get("val_files"))  # absent from runs before version 0.15
    if any(c is not None and c != n for c, n in zip(counts, (len(tr_idx), len(va_idx)))):
        raise DataError(
            f"{run}: --resume: the data at {root} gives {len(tr_idx)} training and {len(va_idx)} validation files of "
            f"the run's cells, but it started on {counts[0]} and {counts[1]} (split.json): files were added, removed "
            "or left out as unusable (--skip-bad, named above) since; restore them as they were, or start a new run")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by `fit`; CheckpointError if it is missing or not ours."""
    path = Path(path)
    if path.is_dir() and path.suffix != ".pt":  # a run folder; a folder named last.pt is named as itself
        path = path / "best.pt"
    if path.is_dir():
        raise CheckpointError(f"{path}: a folder, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises several unrelated types for a damaged file
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION or "model_name" not in state:
        raise CheckpointError(f"{path}: not a wbc checkpoint of version {CHECKPOINT_VERSION}")
    if tuple(state.get("classes", ())) != CLASSES:
        raise CheckpointError(f"{path}: trained for classes {state.get('classes')}, expected {CLASSES}")
    # What every reader takes from it: a file of this version without them (edited, or another tool's) gave
    # KeyError and TypeError tracebacks in evaluate, export and --resume.
    for key, kind, what in CHECKPOINT_FIELDS:
        if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
            held = "missing" if key not in state else f"{state[key]!r:.40}"
            raise CheckpointError(f"{path}: a damaged checkpoint: its {key} is {held}, not {what}")
    try:  # (its train_config is read by --resume alone: a later version's new settings do not stop an export)
        config_from_dict(state["model_name"], state["model_config"])
    except (TypeError, ValueError, KeyError, AttributeError, WbcError) as e:
        raise CheckpointError(f"{path}: its settings are not this version's ({type(e).__name__}: {e})") from e
    return state


CHECKPOINT_FIELDS: tuple[tuple[str, type, str], ...] = (
    ("model_name", str, "a name"), ("model_config", dict, "an object"), ("train_config", dict, "an object"),
    ("state_dict", dict, "a set of weights"), ("epoch", int, "a whole number"), ("history", list, "a list"))


def stored_config(state: dict[str, Any], path: str | Path) -> TrainConfig:
    """The settings a checkpoint (read from `path`) was trained with, those it lacks at their defaults (as `fit`
    fills them); CheckpointError where it holds one this version does not know (a later version's run, or an
    edited file), which --resume cannot honour."""
    try:
        return TrainConfig(**state["train_config"])
    except TypeError as e:
        raise CheckpointError(f"{path}: its settings are not this version's ({e}); resume it with the version that "
                              "started it") from e


def _one_line(e: BaseException, limit: int = 300) -> str:
    """An error's words on one line, cut at `limit` characters (torch's run to many lines, one per weight)."""
    return " ".join(str(e).split())[:limit]


def model_from_checkpoint(state: dict[str, Any], path: str | Path = "the checkpoint") -> tuple[nn.Module, PreprocessSpec]:
    """Rebuild the network a checkpoint (read from `path`, for messages) describes, with its weights, in eval mode."""
    try:
        cfg = config_from_dict(state["model_name"], state["model_config"])
        model = build_model(state["model_name"], cfg)
        model.load_state_dict(state["state_dict"])
    except (RuntimeError, TypeError, ValueError) as e:  # torch's "size mismatch for fc.weight ...", a width of "x"
        raise CheckpointError(f"{path}: its weights do not fit the network its model_config describes, or that "
                              f"network cannot be built ({_one_line(e)})") from e
    model.eval()
    return model, cfg.preprocess


def _write_summary(run: Path, history: list[dict[str, float]]) -> None:
    if not history:
        return
    out = io.StringIO()
    # Rows of a run begun by an older version lack the newer columns (input_px): blank there.
    fields = list(dict.fromkeys(k for row in history for k in row))
    w = csv.DictWriter(out, fieldnames=fields, restval="")
    w.writeheader()
    w.writerows(history)
    atomic_write_text(run / "summary.csv", out.getvalue())


def _improved(value: float, best: float | None, monitor: str) -> bool:
    if best is None:
        return True
    return value < best if monitor == "val_loss" else value > best


def read_val_cells(run: Path) -> set[str]:
    """The cells a run held out for validation, from the split.json that `fit` wrote."""
    if not Path(run).is_dir():
        raise CheckpointError(f"{run}: no such run folder")
    try:
        return set(json.loads((run / "split.json").read_text())["val_cells"])
    except (OSError, KeyError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{run}: split.json with the validation cells is missing or damaged") from e


@torch.no_grad()
def teacher_probs(teachers: tuple[str, ...], x: torch.Tensor, val_cells: set[str],
                  device: torch.device | str = "cpu", student: PreprocessSpec | None = None) -> torch.Tensor:
    """Mean softmax (N, 4) of the teachers' best.pt over the 8 rotations/mirrors of x, uint8 (N, 3, h, w),
    computed on `device` (the student's), returned on the CPU.

    A teacher must have held out exactly these validation cells: one that learnt from them would
    carry them into the student and make its validation figures optimistic. It must read the crops `x` are
    (`student`: their spec; its mode, window and size): a whole-field network crashed on them, and one trained on
    wider crops taught from crops it never saw."""
    total = torch.zeros(len(x), NUM_CLASSES)
    for t in teachers:
        if read_val_cells(Path(t)) != val_cells:
            raise CheckpointError(f"{t}: this teacher held out other validation cells than the student; train it "
                                  "with the student's data, --limit-cells, --val-fraction, --fold and --split-seed")
        net, spec = model_from_checkpoint(load_checkpoint(Path(t) / "best.pt"), Path(t) / "best.pt")
        if student is not None and (spec.mode, spec.window, spec.size) != (student.mode, student.window, student.size):
            def reads(p: PreprocessSpec) -> str:
                return (f"the whole field at {p.size} px" if p.mode == "frame"
                        else f"{p.window} px crops at {p.size} px")
            raise CheckpointError(f"{t}: this teacher reads {reads(spec)}, the student {reads(student)}; train the "
                                  "teacher with the student's --model, --window and --input-size")
        net = net.to(device)
        # One view at a time, added in this order: a CPU run's soft targets stay bit for bit as they were.
        for k in range(4):
            for flip in (False, True):
                v = torch.rot90(x, k, dims=(2, 3))
                v = torch.flip(v, dims=(3,)) if flip else v
                total += torch.from_numpy(predict_probs(net, v.contiguous(), spec))
    return total / (8 * len(teachers))


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


@contextlib.contextmanager
def _only_writer(run: Path) -> Iterator[None]:
    """Hold the run folder for one `wbc train` at a time (an advisory lock on the folder, released
    when the process ends however it ends); the folders made here (`runs/` too) and left empty are
    removed. Where no lock can be had (not POSIX; a file system without locks) training goes on without one."""
    made = missing_folders(run)
    run.mkdir(parents=True, exist_ok=True)
    fd: int | None = None
    held = False
    try:
        try:
            import fcntl

            fd = os.open(run, os.O_RDONLY)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CheckpointError(f"{run}: another `wbc train` is writing to this run now; wait for it to "
                                  "end, or choose another --out") from None
        except ImportError:
            pass  # not POSIX: train without a lock
        except OSError as e:
            if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS):
                raise CheckpointError(f"{run}: cannot be held for this run ({e.strerror or e})") from None
            # a file system without locks: train without one
        held = True
        yield
    finally:
        if fd is not None:
            os.close(fd)
        # Only the holder tidies: a refused start must not remove the folder the holder is about to fill.
        if held:
            remove_empty(made)


RUN_FILES = ("config.json", "split.json", "summary.csv", "best.pt", "curves.png")  # and last.pt, which `fit` refuses


def _refuse_others_files(run: Path) -> None:
    """OutputError, before the work, where a new run's folder holds files of a run's names that are not a wbc
    run's (its config.json has no recipe): a user's config.json and curves.png are not ours to replace. A run
    stopped before its first epoch ended (config.json and split.json, no last.pt) is started again there."""
    theirs = [f for f in RUN_FILES if (run / f).exists()]
    if not theirs:
        return
    try:
        ours = {"train", "model"} <= set(json.loads((run / "config.json").read_text()))
    except (OSError, ValueError, TypeError):
        ours = False
    if not ours:
        raise OutputError(f"{run}: holds {', '.join(theirs)}, not of a run by wbc; training there would replace them. "
                          "Give another --out folder, or move them")


def fit(cfg: TrainConfig, run: str | Path, resume: bool = False, progress: bool = True,
        model_cfg: SeedConfig | WbcNetConfig | None = None,
        crops: tuple[np.ndarray, list[Sample]] | None = None) -> Path:
    """Train `cfg.model` on TRAIN's cell-grouped training part; select on its validation part.

    Writes to `run`: config.json, split.json, summary.csv, last.pt, best.pt and curves.png.
    With `resume`, continues from run/last.pt (the config stored in the run wins, but for
    MACHINE_SETTINGS, taken from `cfg`). `model_cfg`
    replaces the network's default config (architecture experiments). `crops`, TRAIN's crops uint8
    (N, h, w, 3) as `load_arrays` gives them for the network's (context-widened) spec, with their
    samples, stand in for decoding TRAIN from `cfg.data` (a machine that holds crops, not the data set).
    One `fit` writes to a run folder at a time: a second is refused while the first runs.
    """
    # ".." resolved first, as missing_folders walks it: "runs/../x" would make runs/ too, and leave it
    # (and "nope/../x" could not be written at all).
    run = Path(os.path.normpath(run))
    with _only_writer(run):
        return _fit(cfg, run, resume, progress, model_cfg, crops)


def _fit(cfg: TrainConfig, run: Path, resume: bool, progress: bool,
         model_cfg: SeedConfig | WbcNetConfig | None, crops: tuple[np.ndarray, list[Sample]] | None) -> Path:
    from wbc.progress import bar

    from wbc.report import plot_curves

    check_config(cfg)
    state: dict[str, Any] | None = None
    if resume:
        state = load_checkpoint(run / "last.pt")
        cfg = replace(stored_config(state, run / "last.pt"), **{k: getattr(cfg, k) for k in MACHINE_SETTINGS})
    elif (run / "last.pt").exists():
        raise CheckpointError(f"{run}: already holds a run; pass --resume to continue it or choose another --out")
    else:
        _refuse_others_files(run)
        if done := [f for f in ("best.pt", "summary.csv") if (run / f).exists() and (run / f).stat().st_size]:
            # A finished run whose last.pt was deleted to save space is still a run: its model is not to be replaced.
            raise CheckpointError(f"{run}: already holds a trained run ({', '.join(done)}; its last.pt, which "
                                  "--resume needs, is gone); choose another --out, or move them")
    torch.set_num_threads(cfg.threads)

    if state is not None:
        model_cfg = config_from_dict(cfg.model, state["model_config"])
    model_cfg = model_cfg or default_config(cfg.model)
    torch.manual_seed(cfg.seed)  # the initial weights are part of what --seed fixes
    dev = check_device(cfg.device)
    # Built on the CPU and then moved: the initial weights are the same on every device.
    model = build_model(cfg.model, model_cfg).to(dev)
    spec = model_cfg.preprocess
    if cfg.low_res_epochs and cfg.low_res_size >= spec.size:
        raise ConfigError(f"low resolution {cfg.low_res_size} px (progressive resizing; wbcnet's recipe uses 64): choose "
                          f"less than the network's input, {spec.size} px, with --low-res PX EPOCHS, or turn it off "
                          "with --low-res 0 0")

    crop_spec = context_spec(spec, cfg.context)
    if crops is None:
        root: Path | str = find_images_root(cfg.data)
        x_all, samples = _load_limited(list_split(root, "TRAIN", every_class=True), cfg.limit_cells, crop_spec,
                                       cfg.skip_bad, progress)
        if gray := colourless(x_all, samples):  # `wbc predict` would call each "cannot judge"
            say_once(f"wbc: note: {len(gray)} of the {len(samples)} training image(s) have no colour (grayscale): the "
                     "stain's colours, which tell the types apart, are missing from them; they are trained on as they "
                     f"are, but a photo without colour is one `wbc predict` cannot judge. Convert or remove them:\n  "
                     f"{listed([printable(str(p)) for p in gray])}")
        if seen := test_copies_of(Path(root), samples):
            say_once(f"wbc: note: {len(seen)} TEST image(s) are byte-for-byte copies of TRAIN images: TEST's figures "
                     "would score them as seen; remove them from TEST:\n  "
                     + listed([f"{printable(str(t))} (= {printable(str(s))})" for t, s in seen]))
    else:
        root = "crops given to fit"
        if crops[0].shape[1:] != (*crop_spec.input_hw, 3) or len(crops[0]) != len(crops[1]):
            raise DataError(f"the crops given are {crops[0].shape} for {len(crops[1])} samples; this network "
                            f"takes one (N, {crop_spec.input_hw[0]}, {crop_spec.input_hw[1]}, 3) crop per sample")
        kept = {s.cell for s in _subset(crops[1], cfg.limit_cells)}
        pick = [i for i, s in enumerate(crops[1]) if s.cell in kept]
        x_all, samples = crops[0][pick], [crops[1][i] for i in pick]
    split_seed = cfg.seed if cfg.split_seed is None else cfg.split_seed
    if cfg.fold is None:
        if cfg.teachers:
            raise DataError("distillation needs the teachers' validation cells held out, and --all-cells holds out none")
        tr_idx, va_idx = np.arange(len(samples)), np.zeros(0, dtype=int)
    else:
        try:
            tr_idx, va_idx = grouped_split(samples, cfg.val_fraction, seed=split_seed, fold=cfg.fold)
        except DataError as e:
            if state is not None:  # other data than the run's: that, not how to make folds ("a larger --limit-cells")
                _resumed_on_other_cells(run, {s.cell for s in samples}, root, e)
            raise
        if len(tr_idx) == 0 or len(va_idx) == 0:
            raise DataError("the cell-grouped split left the training or validation part empty")
    y_all = np.array([s.label for s in samples])
    cells = [s.cell for s in samples]
    if state is not None:  # before the teachers' pass, which a mismatch would waste
        split = _run_split(run)
        tr_idx, va_idx = _split_before_links(split[1], split[2], cells, tr_idx, va_idx)
        _check_same_split(run, split, cells, tr_idx, va_idx, root)
    x_tr, y_tr = _to_tensor(x_all[tr_idx]), torch.from_numpy(y_all[tr_idx])
    x_va, y_va = centre_crop(_to_tensor(x_all[va_idx]), cfg.context), y_all[va_idx]
    va_cells = [cells[i] for i in va_idx]
    weights = _class_weights(y_all[tr_idx]) if cfg.class_weights else None
    soft = (teacher_probs(tuple(cfg.teachers), centre_crop(x_tr, cfg.context), set(va_cells), dev, spec)
            if cfg.teachers else None)
    # The training crops (uint8) live on the device with the network; the validation crops go over per batch.
    x_tr, y_tr = x_tr.to(dev), y_tr.to(dev)
    weights = weights.to(dev) if weights is not None else None
    soft = soft.to(dev) if soft is not None else None

    run.mkdir(parents=True, exist_ok=True)
    # Written again on a resume: the recipe is the stored one, but where and how the run goes on
    # (MACHINE_SETTINGS: the data's folder, threads, device) may differ from where it started. Not for
    # a finished run, which trains no more.
    if state is None or not state.get("stopped"):
        atomic_write_text(run / "config.json", json.dumps({"train": asdict(cfg), "model": config_to_dict(model_cfg),
                                                           "data_root": str(root)}, indent=2))
    if state is None:
        atomic_write_text(run / "split.json", json.dumps({
            "train_cells": sorted({cells[i] for i in tr_idx}), "val_cells": sorted(set(va_cells)),
            "train_files": len(tr_idx), "val_files": len(va_idx)}, indent=1))

    ema = _make_ema(model, cfg.ema) if cfg.ema else None
    opt = _make_optimizer(model, cfg)
    steps = math.ceil(len(x_tr) / cfg.batch_size)
    sched = _make_schedule(opt, cfg, steps)
    history: list[dict[str, float]] = []
    best: float | None = None
    bad_epochs, start = 0, 0
    best_epoch: int | None = None  # the epoch best.pt holds, where one was chosen on validation
    if state is not None:
        if state.get("stopped"):
            print(f"{run}: this run already finished at epoch {state['epoch'] + 1}")
            return run
        try:
            model.load_state_dict(state["training_state_dict"] if ema is not None else state["state_dict"])
            if ema is not None:
                ema.load_state_dict(state["ema"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            history, best, bad_epochs, start = state["history"], state["best"], state["bad_epochs"], state["epoch"] + 1
            best_epoch = next((h["epoch"] for h in history if best is not None and h.get(cfg.monitor) == best
                               and h.get("input_px", spec.size) == spec.size), None)
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
            raise CheckpointError(f"{run / 'last.pt'}: a damaged checkpoint: it cannot be resumed from "
                                  f"({type(e).__name__}: {_one_line(e)}); train it again with another --out, or "
                                  "remove this folder first") from e

    print(f"{cfg.model}: {count_params(model):,} parameters; {len(x_tr)} training files "
          f"({len(set(cells[i] for i in tr_idx))} cells), {len(x_va)} validation files ({len(set(va_cells))} cells)")
    epochs = bar(range(start, cfg.epochs), show=progress, desc="epochs", initial=start, total=cfg.epochs)
    for epoch in epochs:
        t0 = time.perf_counter()
        # Seeded per epoch so a resumed run repeats exactly what an uninterrupted one would do (on the CPU;
        # a GPU's backward passes are not deterministic).
        torch.manual_seed(cfg.seed * 100_003 + epoch)
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        size = cfg.low_res_size if epoch < cfg.low_res_epochs else None
        train_loss = train_one_epoch(model, x_tr, y_tr, opt, sched, cfg, spec, weights, gen, progress, soft, ema, size)
        if not math.isfinite(train_loss):  # not saved, nor marked best: --lr inf trained to NaN and shipped it as best.pt
            epochs.close()
            # A resume would diverge again, and the run's settings cannot change: a new run is the way on. Epochs
            # before it are the run's to keep: its best.pt may still be worth exporting.
            kept = (f"; {run}/best.pt keeps the best of the {epoch} epoch(s) before it" if (run / "best.pt").is_file()
                    else f" (or remove {run})")
            raise ConfigError(f"epoch {epoch + 1}: the training loss is {train_loss} (the run diverged, at learning rate "
                              f"{cfg.lr}): start a new run with a lower --lr, in another --out folder{kept}")
        served = model if ema is None else ema.module  # what is validated and saved as the model
        row = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"], "train_loss": train_loss,
               "input_px": size or spec.size}
        if len(x_va):
            row.update(_val_metrics(predict_probs(served, x_va, spec), y_va, va_cells, weights))
            # A network still training on smaller inputs is not a candidate, nor a reason to stop:
            # validation at full size reads it before it has adapted to that size.
            is_best = size is None and _improved(row[cfg.monitor], best, cfg.monitor)
            if is_best:
                best, bad_epochs, best_epoch = row[cfg.monitor], 0, epoch + 1
            elif size is None:
                bad_epochs += 1
        else:
            # Nothing to select on: the model is the last epoch's, and never one still at low resolution.
            is_best = size is None
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        stopped = bad_epochs >= cfg.patience or epoch + 1 == cfg.epochs
        ckpt = {
            "version": CHECKPOINT_VERSION, "classes": CLASSES, "model_name": cfg.model,
            "model_config": config_to_dict(model_cfg), "train_config": asdict(cfg),
            "state_dict": served.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "epoch": epoch, "history": history, "best": best, "bad_epochs": bad_epochs, "stopped": stopped,
            "val_metrics": row,
        }
        if ema is not None:  # the weights being trained, and the average's state, to resume from
            ckpt.update(training_state_dict=model.state_dict(), ema=ema.state_dict())
        if is_best:
            save_checkpoint(run / "best.pt", ckpt)
        # The summary and curves before last.pt, which marks the epoch done: a run stopped between them is resumed
        # from the epoch before and writes them again (after, a finished run's last row was never written).
        _write_summary(run, history)
        plot_curves(history, run / "curves.png", best_epoch, spec.size)
        save_checkpoint(run / "last.pt", ckpt)
        val = (f"  val_loss {row['val_loss']:.4f}  val_acc {row['val_accuracy']:.4f}  val_f1 {row['val_macro_f1']:.4f}  "
               f"val_cell_acc {row['val_cell_accuracy']:.4f}" if len(x_va) else "")
        px = f"  ({size} px)" if size else ""
        epochs.write(f"epoch {epoch + 1:3d}{px}  loss {train_loss:.4f}{val}  {row['seconds']:.0f}s" + ("  *" if is_best else ""))
        if stopped:
            if bad_epochs >= cfg.patience:
                epochs.write(f"early stop: {cfg.monitor} did not improve for {cfg.patience} epochs")
            epochs.update()  # the bar counts an epoch when the next begins: count this last one too
            epochs.close()
            break
    return run
