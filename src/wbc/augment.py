"""Batched training augmentation on uint8 crops, in torch: geometry and colour.

A white cell has no orientation, so any rotation and a mirror are free labels-preserving views;
scale and colour jitter stand in for other microscopes and stains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    rotate: bool = True  # any angle, plus a random mirror
    scale: tuple[float, float] = (0.8, 1.25)  # zoom factor range, log-uniform
    shift: float = 0.08  # max shift as a fraction of the side
    brightness: float = 0.15  # +- multiplicative
    contrast: float = 0.15
    channel_gain: float = 0.08  # per-channel +- gain: stain tone
    gamma: float = 0.15


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """float (N, 3, H, W) in 0..1 -> augmented float (N, 3, H, W) in 0..1."""
    n = x.shape[0]

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return torch.rand(*(shape or (n,)), generator=gen) * (hi - lo) + lo

    theta = u(0, 2 * math.pi) if cfg.rotate else torch.zeros(n)
    mirror = (torch.rand(n, generator=gen) < 0.5).float() * 2 - 1 if cfg.rotate else torch.ones(n)
    lo, hi = math.log(cfg.scale[0]), math.log(cfg.scale[1])
    zoom = torch.exp(u(lo, hi))
    cos, sin = torch.cos(theta) / zoom, torch.sin(theta) / zoom
    # affine_grid maps output coords to input coords: zoom > 1 samples a smaller area (enlarges).
    mat = torch.stack(
        [
            torch.stack([cos * mirror, -sin, u(-cfg.shift, cfg.shift) * 2], 1),
            torch.stack([sin * mirror, cos, u(-cfg.shift, cfg.shift) * 2], 1),
        ],
        1,
    )
    grid = F.affine_grid(mat, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    gain = u(1 - cfg.channel_gain, 1 + cfg.channel_gain, n, 3).view(n, 3, 1, 1)
    bright = u(1 - cfg.brightness, 1 + cfg.brightness).view(n, 1, 1, 1)
    x = x * gain * bright
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * u(1 - cfg.contrast, 1 + cfg.contrast).view(n, 1, 1, 1) + mean
    x = x.clamp(0, 1) ** u(1 - cfg.gamma, 1 + cfg.gamma).view(n, 1, 1, 1)
    return x.clamp(0, 1)
