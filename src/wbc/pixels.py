"""Colours and per-pixel measures shared by decoding, framing, cell finding and screening: stain map, lit pixels."""

from __future__ import annotations

import numpy as np


# Ruifrok & Johnston stain vectors in optical density (rows: hematoxylin, eosin, DAB): the stain
# jitter of training (wbc.augment) and the stain shifts of the robustness test use the same ones.
OD_FROM_HED = ((0.65, 0.70, 0.29), (0.07, 0.99, 0.11), (0.27, 0.57, 0.78))

# The data set's white: per channel, the median over TRAIN and TEST of each file's 99th percentile of
# its lit pixels (background between the red cells; range 209-244 over the 0.1th-99.9th percentiles).
DATA_WHITE = (224.0, 224.0, 231.0)

STAIN_LEVEL = 60.0  # (blue - green) of a Romanowsky-stained (purple) nucleus; red cells sit near 20
LIT_MIN = 24  # a pixel darker than this in every channel is black fill (a rotated view's corners), not the field


# Blue that is no stain: green this far above red (a screen's button or title bar beside the cell in a
# screenshot). No pixel of the data set's 12,515 files with any (blue - green) reaches it, so their maps are
# as before (tests/test_imaging.py checks every file); a bright UI blue (30, 90, 200) reads 60, and was
# taken for the nucleus. (A title bar's dark blue, (40, 61, 118), reads 21 and still can be.)
NOT_PURPLE_MARGIN = 50


def stain_map(rgb: np.ndarray) -> np.ndarray:
    """(blue - green) clipped at 0, uint8 (H, W) from uint8 RGB (H, W, 3): high on nuclei, low on red cells;
    0 where green exceeds red by more than NOT_PURPLE_MARGIN (blue, not the purple of a stain)."""
    red, green = rgb[..., 0], rgb[..., 1]
    s = np.maximum(rgb[..., 2], green) - green  # in uint8, never below 0: no wider copy of the field
    s[(green > red) & (green - red > NOT_PURPLE_MARGIN)] = 0  # green - red wraps where green <= red: masked
    return s


def brightest_channel(pixels: np.ndarray) -> np.ndarray:
    """Each pixel's largest channel value, (...), from pixels (..., 3). Channel by channel, because
    numpy's max over a last axis of 3 is many times slower."""
    return np.maximum(np.maximum(pixels[..., 0], pixels[..., 1]), pixels[..., 2])


def darkest_channel(pixels: np.ndarray) -> np.ndarray:
    """Each pixel's smallest channel value, (...), from pixels (..., 3): white in every channel where
    it is white at all. Channel by channel, as `brightest_channel` (numpy's min over a last axis of 3
    is ~30x slower: 10 ms for 320 x 240)."""
    return np.minimum(np.minimum(pixels[..., 0], pixels[..., 1]), pixels[..., 2])


def lit_mask(pixels: np.ndarray) -> np.ndarray:
    """Which pixels (..., 3) reach LIT_MIN in some channel: the field, not black fill."""
    return brightest_channel(pixels) >= LIT_MIN


def edge_ring(rgb: np.ndarray) -> np.ndarray:
    """The image's one-pixel border (2 (H + W) - 4, ...), each pixel once: (H, W, 3) colours or an (H, W) mask."""
    return np.concatenate([rgb[0], rgb[-1], rgb[1:-1, 0], rgb[1:-1, -1]])


def dilated(mask: np.ndarray, r: int) -> np.ndarray:
    """`mask` (bool, 2-D) grown by `r` px each way, the corners included (r dilations by a 3 x 3 square); nothing
    beyond the border grows in. Its dual, ~dilated(~mask, r), erodes with the border counted as inside."""
    for _ in range(r):
        grown = mask.copy()
        grown[1:] |= mask[:-1]
        grown[:-1] |= mask[1:]
        grown[:, 1:] |= grown[:, :-1].copy()
        grown[:, :-1] |= grown[:, 1:].copy()
        mask = grown
    return mask
