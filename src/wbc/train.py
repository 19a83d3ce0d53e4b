"""Training: `train_one_epoch`, `predict_probs`, `fit`. Resumable, seeded, one summary row an epoch."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wbc.augment import augment_batch
from wbc.cache import colourless, files_too_small, load_prepared
from wbc.checkpoint import (
    CHECKPOINT_VERSION,
    load_checkpoint,
    model_from_checkpoint,
    one_line,
    save_checkpoint,
    stored_config,
)
from wbc.data import Sample, list_split, listed, say_once, test_copies_of
from wbc.errors import CheckpointError, ConfigError, DataError
from wbc.folders import find_images_root
from wbc.imaging import PreprocessSpec, dihedral_views
from wbc.info import CLASSES, NUM_CLASSES
from wbc.io import atomic_write_text, printable
from wbc.model import (
    SeedConfig,
    WbcNetConfig,
    build_model,
    config_from_dict,
    config_to_dict,
    count_params,
    default_config,
)
from wbc.photo_checks import MIN_SIDE_PX
from wbc.recipe import (
    AUGMENT,
    MACHINE_SETTINGS,
    OPTIMIZERS,
    TrainConfig,
    check_config,
    check_device,
)
from wbc.run_folder import (
    check_same_split,
    only_writer,
    read_val_cells,
    refuse_others_files,
    resumable_state,
    resumed_on_other_cells,
    run_split,
    split_before_links,
    stopped_saving_first_epoch,
)
from wbc.splits import grouped_split

EOS, NEUT = CLASSES.index("EOSINOPHIL"), CLASSES.index("NEUTROPHIL")
# The class each class's pair smoothing moves its share to (-1: none): eosinophil <-> neutrophil.
PARTNER = torch.full((NUM_CLASSES,), -1, dtype=torch.long)
PARTNER[EOS], PARTNER[NEUT] = NEUT, EOS


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


def to_tensor(x: np.ndarray) -> torch.Tensor:
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
    views = to_tensor(dihedral_views(x, 8))
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


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    return OPTIMIZERS[cfg.optimizer](model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


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
                  progress: bool) -> tuple[np.ndarray, list[Sample], np.ndarray]:
    """The crops (N, h, w, 3), samples and fields' sides (N, 2) px (`Prepared.sides`) of `--limit-cells` cells of
    each class of `listed`. With `skip_bad`, a cell whose files are all unreadable is made up by the next cell of its
    class, as long as there is one: the unreadable file is left out, not the cell (5 readable neutrophils asked, 6
    there and a broken file, were 4)."""
    p = load_prepared(_subset(listed, limit_cells), spec, skip_bad=skip_bad, progress=progress)
    if not (skip_bad and limit_cells):
        return p.x, p.samples, p.sides
    parts, kept, tried = [p], p.samples, {s.cell for s in _subset(listed, limit_cells)}
    while True:
        have = {lab: len({s.cell for s in kept if s.label == lab}) for lab in {s.label for s in listed}}
        wanted = {lab: limit_cells - n for lab, n in have.items() if n < limit_cells}
        more = _subset([s for s in listed if s.cell not in tried], None, wanted)
        if not more:
            return np.concatenate([q.x for q in parts]), kept, np.concatenate([q.sides for q in parts])
        tried |= {s.cell for s in more}
        try:
            got = load_prepared(more, spec, skip_bad=True, progress=progress)
        except DataError:  # every one of these files unreadable: the next cells, if any, make them up
            continue
        parts.append(got)
        kept = kept + got.samples


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
    with only_writer(run):
        return _fit(cfg, run, resume, progress, model_cfg, crops)


def _fit(cfg: TrainConfig, run: Path, resume: bool, progress: bool,
         model_cfg: SeedConfig | WbcNetConfig | None, crops: tuple[np.ndarray, list[Sample]] | None) -> Path:
    from wbc.progress import bar
    from wbc.report import plot_curves

    check_config(cfg)
    state: dict[str, Any] | None = None
    if resume:
        state = resumable_state(run)
        if state.get("stopped"):  # trains no more: TRAIN is not decoded for nothing
            print(f"{run}: this run already finished at epoch {state['epoch'] + 1}")
            return run
        cfg = replace(stored_config(state, run / "last.pt"), **{k: getattr(cfg, k) for k in MACHINE_SETTINGS})
    elif (run / "last.pt").exists():
        raise CheckpointError(f"{run}: already holds a run; pass --resume to continue it or choose another --out")
    else:
        refuse_others_files(run)
        done = [f for f in ("best.pt", "summary.csv") if (run / f).exists() and (run / f).stat().st_size]
        if done and stopped_saving_first_epoch(run):
            # Stopped after best.pt or summary.csv but before last.pt: `wbc train` said "start it again", then
            # refused the folder as a finished run's.
            print(f"wbc: note: {run}: its run was stopped while its first epoch was saved (no last.pt to resume "
                  "from): starting it again", file=sys.stderr)
            # Its best.pt is no model of the new run's, which may write none for epochs (low resolution):
            # `wbc export` would take it for the new run's.
            (run / "best.pt").unlink(missing_ok=True)
        elif done:
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
        x_all, samples, sides = _load_limited(list_split(root, "TRAIN", every_class=True), cfg.limit_cells, crop_spec,
                                              cfg.skip_bad, progress)
        if small := files_too_small(samples, sides):  # `wbc predict` would call each "cannot judge"
            say_once(f"wbc: warning: {len(small)} of the {len(samples)} training image(s) are smaller than "
                     f"{MIN_SIDE_PX} px a side at the training images' magnification, the least that the screening of "
                     "`wbc predict` and the app judges: they are trained on as they are, but a model trained on them "
                     "will not be used on such photos (each is called \"cannot judge: too small\"). Give them at full "
                     f"size, or crop wider around the cell:\n  {listed([printable(str(f)) for f in small], shown=5)}")
        if gray := colourless(x_all, samples):  # `wbc predict` would call each "cannot judge"
            say_once(f"wbc: note: {len(gray)} of the {len(samples)} training image(s) have no colour (grayscale): the "
                     "stain's colours, which tell the types apart, are missing from them; they are trained on as they "
                     f"are, but a photo without colour is one `wbc predict` cannot judge. Convert or remove them:\n  "
                     f"{listed([printable(str(p)) for p in gray])}")
        if seen := test_copies_of(Path(root), samples):
            say_once(f"wbc: note: {len(seen)} TEST image(s) are byte-for-byte copies of TRAIN images: TEST's figures "
                     "would score them as seen; remove them from TEST (or, for a copy of a TEST image made into "
                     "TRAIN, from TRAIN):\n  "
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
                resumed_on_other_cells(run, {s.cell for s in samples}, root, e)
            raise
        if len(tr_idx) == 0 or len(va_idx) == 0:
            raise DataError("the cell-grouped split left the training or validation part empty")
    y_all = np.array([s.label for s in samples])
    cells = [s.cell for s in samples]
    if state is not None:  # before the teachers' pass, which a mismatch would waste
        split = run_split(run)
        tr_idx, va_idx = split_before_links(split[1], split[2], cells, tr_idx, va_idx)
        check_same_split(run, split, cells, tr_idx, va_idx, root)
    x_tr, y_tr = to_tensor(x_all[tr_idx]), torch.from_numpy(y_all[tr_idx])
    x_va, y_va = centre_crop(to_tensor(x_all[va_idx]), cfg.context), y_all[va_idx]
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
    # (MACHINE_SETTINGS: the data's folder, threads, device) may differ from where it started.
    atomic_write_text(run / "config.json", json.dumps({"train": asdict(cfg), "model": config_to_dict(model_cfg),
                                                       "data_root": str(root)}, indent=2))
    if state is None:
        atomic_write_text(run / "split.json", json.dumps({
            "train_cells": sorted({cells[i] for i in tr_idx}), "val_cells": sorted(set(va_cells)),
            "train_files": len(tr_idx), "val_files": len(va_idx)}, indent=1))

    ema = _make_ema(model, cfg.ema) if cfg.ema else None
    opt = make_optimizer(model, cfg)
    steps = math.ceil(len(x_tr) / cfg.batch_size)
    sched = _make_schedule(opt, cfg, steps)
    history: list[dict[str, float]] = []
    best: float | None = None
    bad_epochs, start = 0, 0
    best_epoch: int | None = None  # the epoch best.pt holds, where one was chosen on validation
    if state is not None:
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
                                  f"({type(e).__name__}: {one_line(e)}); train it again with another --out, or "
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
