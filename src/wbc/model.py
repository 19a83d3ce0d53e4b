"""The two networks and their configs; a checkpoint stores (name, config) and rebuilds itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import nn

from wbc.imaging import PreprocessSpec
from wbc.info import NUM_CLASSES


@dataclass(frozen=True)
class SeedConfig:
    """The reference network: four Conv -> LeakyReLU -> BatchNorm -> MaxPool blocks, then a
    512 -> 256 -> 128 dense head with dropout 0.5 / 0.4 / 0.3, on the whole 120 x 160 field."""

    filters: tuple[int, ...] = (32, 64, 128, 128)
    dense: tuple[int, ...] = (512, 256, 128)
    dropout: tuple[float, ...] = (0.5, 0.4, 0.3)
    preprocess: PreprocessSpec = field(default_factory=lambda: PreprocessSpec(mode="frame", size=120))


@dataclass(frozen=True)
class WbcNetConfig:
    """The default network: a small residual CNN on a 96 x 96 crop around the nucleus.

    widths[i] channels at stage i; the stem halves the input, stage 0 keeps it (first_stride 1) or
    halves it again (2), each later stage halves it: 96 px in -> 48 (stem) -> 24 -> 12 -> a
    (widths[-1], 6, 6) feature map, global average pooled into a linear layer. The defaults (one
    16-channel stem conv, stages 24/48/96: 31 MFLOPs) trained for 80 epochs beat the earlier
    two-conv stem with stages 32/64/128 (79 MFLOPs, 40 epochs) on validation, at 2.5x less work.
    """

    widths: tuple[int, ...] = (24, 48, 96)
    stem: int = 16
    stem_convs: int = 1  # 3x3 convs in the stem; the first has stride 2
    first_stride: int = 2  # 2 halves the resolution once more before the first stage: ~3x fewer FLOPs
    dropout: float = 0.2
    preprocess: PreprocessSpec = field(default_factory=PreprocessSpec)


class SeedNet(nn.Module):
    def __init__(self, cfg: SeedConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c in cfg.filters:
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.LeakyReLU(0.1), nn.BatchNorm2d(c), nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*layers)
        h, w = cfg.preprocess.input_hw
        for _ in cfg.filters:
            h, w = h // 2, w // 2
        head: list[nn.Module] = [nn.Flatten()]
        d_in = c_in * h * w
        for d, p in zip(cfg.dense, cfg.dropout):
            head += [nn.Linear(d_in, d), nn.LeakyReLU(0.1), nn.Dropout(p)]
            d_in = d
        head.append(nn.Linear(d_in, NUM_CLASSES))
        self.head = nn.Sequential(*head)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised -> logits (N, 4)."""
        return self.head(self.features(x))


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a shortcut; the first conv may stride 2."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.act = nn.ReLU(inplace=True)
        self.short: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.short = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.act(y + self.short(x))


class WbcNet(nn.Module):
    def __init__(self, cfg: WbcNetConfig) -> None:
        super().__init__()
        stem: list[nn.Module] = []
        for i in range(cfg.stem_convs):
            stem += [nn.Conv2d(3 if i == 0 else cfg.stem, cfg.stem, 3, 2 if i == 0 else 1, 1, bias=False),
                     nn.BatchNorm2d(cfg.stem), nn.ReLU(inplace=True)]
        self.stem = nn.Sequential(*stem)
        blocks = []
        c_in = cfg.stem
        for i, c in enumerate(cfg.widths):
            blocks.append(BasicBlock(c_in, c, stride=cfg.first_stride if i == 0 else 2))
            c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.drop = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(c_in, NUM_CLASSES)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) -> last feature map (N, C, S/2^k, S/2^k), the input of CAM."""
        return self.blocks(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) normalised -> logits (N, 4)."""
        f = self.forward_features(x).mean(dim=(2, 3))
        return self.fc(self.drop(f))


MODELS: dict[str, tuple[type, type]] = {"wbcnet": (WbcNet, WbcNetConfig), "seed": (SeedNet, SeedConfig)}


def config_to_dict(cfg: SeedConfig | WbcNetConfig) -> dict[str, Any]:
    return asdict(cfg)


def config_from_dict(name: str, d: dict[str, Any]) -> SeedConfig | WbcNetConfig:
    _, cfg_cls = MODELS[name]
    d = dict(d)
    if name == "wbcnet":
        # Checkpoints written before these fields existed had one stem conv and a stride-1 first stage.
        d.setdefault("stem_convs", 1)
        d.setdefault("first_stride", 1)
    pre = PreprocessSpec.from_dict(d.pop("preprocess", {}))
    fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    return cfg_cls(**fixed, preprocess=pre)


def default_config(name: str, window: int | None = None, size: int | None = None,
                   widths: Sequence[int] | None = None) -> SeedConfig | WbcNetConfig:
    """Network `name`'s default config; `window`: crop that many source px around the cell instead;
    `size`: feed the network size x size px (the crop, or the field's height) instead; `widths`:
    wbcnet's channels per stage instead."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    cfg = MODELS[name][1]()
    if widths is not None:
        if not isinstance(cfg, WbcNetConfig):
            raise ValueError(f"{name} has fixed filters; stage widths apply to wbcnet")
        if not 1 <= len(widths) <= 5 or any(not 4 <= w <= 512 for w in widths):
            raise ValueError(f"stage widths {list(widths)}: choose one to five stages (each halves the input) "
                             "of 4..512 channels")
        cfg = replace(cfg, widths=tuple(widths))
    pre = cfg.preprocess
    if window is not None:
        if pre.mode != "cell":
            raise ValueError(f"{name} sees the whole field; a crop window applies to networks that look at the cell")
        if not 32 <= window <= 640:
            raise ValueError(f"crop window {window} px: choose 32..640 source pixels")
        pre = replace(pre, window=window)
    if size is not None:
        if not 32 <= size <= 320:
            raise ValueError(f"input size {size} px: choose 32..320 pixels")
        pre = replace(pre, size=size)
    return replace(cfg, preprocess=pre)


def build_model(name: str, cfg: SeedConfig | WbcNetConfig | None = None) -> nn.Module:
    """Build network `name` ("wbcnet" or "seed") from its config (default config if None)."""
    cfg = cfg or default_config(name)
    return MODELS[name][0](cfg)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_hw: tuple[int, int]) -> int:
    """Forward FLOPs for one image (multiply-add = 2 FLOPs), counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(torch.zeros(1, 3, *input_hw))
    model.train(was_training)
    return int(fc.get_total_flops())
