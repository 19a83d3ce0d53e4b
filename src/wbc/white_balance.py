"""A field's white and the gains that match it to the data set's: for the screening's second look, `wbc predict`'s
white matching and the judging of a cast field's magnification; what is too dark or too cast to match; and the
share of a field clipped white, a rotated photo's white page corners left out."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from wbc.imaging import CellLocation, PreprocessSpec, prepare_located, scale_channels
from wbc.pixels import DATA_WHITE, LIT_MIN, darkest_channel, lit_mask

# Overexposure: in every 4th file of TRAIN and TEST at most 0.042% of the lit pixels are white (>= 250)
# in every channel. Held-out TRAIN files brightened x1.0-1.5 read as well as clean up to 40% white and
# 10 points worse from there (benchmarks/overexposure.py; the bound was chosen by a rule written first).
WHITE_LEVEL = 250
OVEREXPOSED_SHARE = 0.4


def is_overexposed(clipped: float) -> bool:
    """Whether a photo with this share of its lit pixels pure white (`clipped_share`) is marked overexposed."""
    return clipped >= OVEREXPOSED_SHARE


CELL_CLEAR_PX = 48  # radius around the nucleus, at the data set's scale, that `clipped_share(loc=...)` can leave out
# (only benchmarks/overexposure_framing.py does: `screen` counts the whole field, BENCHMARKS.md)
# A photo rotated in an editor shows its page in triangles at its four corners, white where the page was: no
# light the camera clipped (`page_corners`).
CORNER_MIN_PX = 8  # a corner's shorter side along the photo's edge, at least: smaller ones hardly count
CORNER_SOLID = 0.98  # share of the triangle (short of its long side) that must be white
CORNER_EDGE_PX = 8  # and past its long side, as far as JPEG's 8 px blocks ring the photo's edge with white


# The range of TRAIN's whites, per channel (R, G, B): their 0.1th and 99.9th percentiles
# (benchmarks/white_range.py; 14 of 9,957 files lie outside). A field whose white lies below it was
# photographed dimmer or with another tint than the data set, and its colours can be matched to it.
DATA_WHITE_RANGE = ((209.0, 208.0, 209.0), (242.0, 242.0, 244.0))
# The gains a second look may apply: a dim field (x0.6) needs 1.67, a warm white balance (blue x0.85)
# 1.18 in blue against 0.91 in red. A nearly black photo or one of a single hue is not rescued.
GAIN_RANGE = (0.5, 2.0)
GAIN_SPREAD_MAX = 1.5  # largest channel gain / smallest
WARM_RED_MAX = 1.3  # red's gain over green's at most in a warm cast (tungsten half corrected: 1.18)
# A warm cast's (blue short most, as under halogen light without a daylight filter) may spread further: what
# it clips is red, which the stain checks and the network hardly read. Every 25th TRAIN file cast R x1.2, G x0.95,
# B x0.65 (spread 1.8): 20 of 399 typed at 1.5, 380 at 2.0, 98.7% of them right as clean; a cool cast clips
# blue, the stain's channel, and its files read 9-12 points worse matched (BENCHMARKS.md, *Warm casts*).
WARM_SPREAD_MAX = 2.0
CAST_SPREAD = 1.1  # channel gains this far apart or more: a cast (magenta, green x0.8: 1.3), not an exposure
DARK_GAIN_MIN = 1.25  # every channel's gain above this (its white under 80% of theirs) for "much darker"


def clipped_share(rgb: np.ndarray, loc: CellLocation | None = None, radius: float = CELL_CLEAR_PX) -> float:
    """Share of the lit pixels of `rgb` (H, W, 3) that are white (>= WHITE_LEVEL) in every channel; with
    `loc`, of those outside the white cell there (`radius` px around its nucleus), which never clips."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"clipped_share needs an RGB image (H, W, 3), not shape {rgb.shape}")
    if rgb.size == 0:
        return 0.0
    if rgb[..., 1].max() < WHITE_LEVEL:  # green, a smear's darkest channel, nowhere white: most photos
        return 0.0
    white = darkest_channel(rgb) >= WHITE_LEVEL
    if not white.any():  # most photos: no need to count the lit pixels
        return 0.0
    lit = lit_mask(rgb)
    if (page := page_corners(white)) is not None:
        white, lit = white & ~page, lit & ~page
    if loc is not None:
        h, w = white.shape
        yy, xx = np.ogrid[:h, :w]
        field = (yy - loc.cy) ** 2 + (xx - loc.cx) ** 2 > radius**2
        white, lit = white & field, lit & field
    n = np.count_nonzero(lit)
    return float(np.count_nonzero(white) / n) if n else 0.0


def page_corners(white: np.ndarray) -> np.ndarray | None:
    """Where a rotated photo shows the page behind it: (H, W) bool over the white triangles in its four
    corners, or None where they are not such. `white`: (H, W) bool, the pixels white in every channel.
    A corner's triangle has its two short sides on the photo's edges, as far as the first pixel there
    that is not white (JPEG's noise at the photo's pale edge moves that end, so its long side is not
    checked for a straight line); each must be solid white. The white background of an overexposed smear
    may fill a corner so, but not all four: in none of every 2nd file of the data set brightened x1.2-1.6,
    nor every 3rd x1.8-3.0 (their edges white all along, or some corner not solid)."""
    h, w = white.shape
    masks = []
    for flip in ((1, 1), (1, -1), (-1, -1), (-1, 1)):  # clockwise from the top left
        view = white[:: flip[0], :: flip[1]]  # the corner turned to the top left (a view: marks land in place)
        if not view[0, 0]:
            return None
        a, b = _white_run(view), _white_run(view.T)
        if min(a, b) < CORNER_MIN_PX:
            return None
        # t: where a pixel lies between the corner (0) and the triangle's long side (1), past it above 1
        sub_h, sub_w = min(h, b + 2 * CORNER_EDGE_PX), min(w, a + 2 * CORNER_EDGE_PX)
        t = np.arange(sub_h)[:, None] / b + np.arange(sub_w)[None, :] / a
        if view[:sub_h, :sub_w][t < 0.9].mean() < CORNER_SOLID:
            return None
        masks.append((flip, sub_h, sub_w, (t - 1) * (a * b / math.hypot(a, b)) < CORNER_EDGE_PX))
    page = np.zeros_like(white)
    for flip, sub_h, sub_w, inside in masks:
        page[:: flip[0], :: flip[1]][:sub_h, :sub_w] |= inside
    return page


def _white_run(view: np.ndarray) -> int:
    """How far white runs from the top left along the top edge of `view` (H, W) bool: to the first pixel
    that is not, on the outermost of its first 3 rows that has one (where a rotated photo's corner meets
    the edge, it is blended with the page, and may be white there); 0 where none has."""
    for row in view[:3]:
        if not row.all():
            return int(np.argmin(row))
    return 0


def field_white(rgb: np.ndarray) -> np.ndarray:
    """The field's white (3,): each channel's 99th percentile over its lit pixels (all, if none is) outside
    a rotated photo's white corners (`page_corners`), interpolated as np.percentile's default does. Read
    off each channel's histogram: np.percentile sorts, and costs 3 ms a field where every prediction needs it."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.size == 0:
        raise ValueError(f"field_white needs a non-empty uint8 RGB image (H, W, 3), not {rgb.dtype} of shape {rgb.shape}")
    size = rgb.shape[0] * rgb.shape[1]
    # Where red alone lights every pixel (a photo without black fill) there is no mask to build.
    lit = None if rgb[..., 0].min() >= LIT_MIN else lit_mask(rgb)
    # A photo rotated in an editor shows the white page in its four corners: not the field's white, which
    # under a dim light it would hide (the matching read the page's 255 and left the field as dim).
    corners = rgb[[0, 0, -1, -1], [0, -1, 0, -1]]  # (4, 3): page_corners needs all four white
    if darkest_channel(corners).min() >= WHITE_LEVEL:
        if (page := page_corners(darkest_channel(rgb) >= WHITE_LEVEL)) is not None:
            lit = ~page if lit is None else lit & ~page
    n = size if lit is None else int(np.count_nonzero(lit))
    image = Image.fromarray(np.ascontiguousarray(rgb))
    # Pillow's histogram (one pass in C, under a mask) is 2x faster than numpy's bincount per channel.
    hist = np.asarray(image.histogram(mask=Image.fromarray(lit.astype(np.uint8)) if lit is not None and 0 < n < size
                                      else None), dtype=np.int64).reshape(3, 256)  # (R, G, B) x 256 levels
    n = n or size  # a wholly dark field: all its pixels
    pos = 0.99 * (n - 1)
    k, frac = int(pos), pos - int(pos)
    white = np.empty(3)
    for c in range(3):
        cum = np.cumsum(hist[c])
        lo, hi = np.searchsorted(cum, k + 1), np.searchsorted(cum, min(k + 2, n))  # order statistics k, k + 1
        white[c] = lo + frac * (hi - lo)
    return white


def gains_to_data_white(white: np.ndarray) -> np.ndarray:
    return np.asarray(DATA_WHITE) / np.maximum(white, 1.0)


def white_gains(rgb: np.ndarray) -> np.ndarray:
    """Per-channel gains (3,) that make the field's white read as the data set's."""
    return gains_to_data_white(field_white(rgb))


def gains_allowed(gains: np.ndarray) -> bool:
    """Whether per-channel `gains` (3,) are a camera's white balance or exposure to undo, not a nearly
    black photo or one of a single hue."""
    bound = WARM_SPREAD_MAX if is_warm(gains) else GAIN_SPREAD_MAX
    return bool(GAIN_RANGE[0] <= gains.min() and gains.max() <= GAIN_RANGE[1] and spread(gains) <= bound)


def spread(gains: np.ndarray) -> float:
    """How far apart channel gains (3,) are: the largest over the smallest."""
    return float(gains.max() / gains.min())


def is_warm(gains: np.ndarray) -> bool:
    """Whether the gains (3,) that match a field's white undo a warm cast: blue short most, red no more
    than a little short of green (WARM_RED_MAX), as under halogen light without a daylight filter (blue x0.6
    or less), or tungsten light half corrected."""
    return bool(gains.argmax() == 2 and gains[0] <= WARM_RED_MAX * gains[1])


def input_gains(rgb: np.ndarray, white: np.ndarray | None = None) -> np.ndarray | None:
    """Per-channel gains (3,) that match the field's white to the data set's when it lies below
    DATA_WHITE_RANGE in some channel (a dimmer exposure or another camera's tint) and the gains are
    allowed; None for a field photographed like the data set's (no change), one whose white lies only
    above the range, or one that cannot be matched. `white`: `field_white(rgb)` where the caller has it."""
    white = field_white(rgb) if white is None else white
    # Only a white below the range: a field at or above the range's floor in every channel is a
    # brighter exposure (what clipped stays clipped) or a paler stain, which darkening does not undo.
    # Matching those too cost a pale stain (H x0.6, E x0.6) 2.05 points held out; the one shift it
    # helped, overexposure (x1.4, +2.47), is marked for review anyway (BENCHMARKS.md, *Matching the
    # field's white*).
    if (white >= np.asarray(DATA_WHITE_RANGE[0])).all():
        return None
    gains = gains_to_data_white(white)
    return gains if gains_allowed(gains) else None


def unlike_data_white(whites: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Of fields' whites (N, 3) (`field_white`): which lie below DATA_WHITE_RANGE in some channel, so that the
    screening and the white matching read them through gains (N,) bool, and which of those need gains past what
    it undoes, so that `screen` calls them too dark or too cast to judge (N,) bool."""
    below = (whites < np.asarray(DATA_WHITE_RANGE[0])).any(1)
    refused = np.array([b and not gains_allowed(gains_to_data_white(w)) for w, b in zip(whites, below)], bool)
    return below, refused


def match_data_white(rgb: np.ndarray, gains: np.ndarray | None = None) -> np.ndarray:
    """uint8 (H, W, 3) with each channel scaled by `gains` (default: `white_gains(rgb)`): undoes
    another camera's white balance or exposure."""
    return scale_channels(rgb, white_gains(rgb) if gains is None else gains)


def cast_gains(white: np.ndarray) -> np.ndarray | None:
    """The gains (3,) that match a field's `white` (3,) to the data set's where the field is cast: below
    DATA_WHITE_RANGE in some channel, the gains CAST_SPREAD or more apart and a camera's to undo
    (`gains_allowed`); else None. An even exposure cannot lift (blue - green) over the background."""
    gains = gains_to_data_white(white)
    if not (white < np.asarray(DATA_WHITE_RANGE[0])).any() or spread(gains) < CAST_SPREAD or not gains_allowed(gains):
        return None
    return gains


def matched_if_cast(rgb: np.ndarray) -> np.ndarray | None:
    """The field (H, W, 3) with its white matched to the data set's where it is cast (`cast_gains`); else None
    (as it is). How `imaging.locate_at_data_scale` judges a cast field's magnification: a bright phone photo,
    white above the range, was searched twice at full size for nothing (3.7x the time at 1920 x 1440). Its
    white is read on every 4th pixel each way."""
    gains = cast_gains(field_white(rgb[::4, ::4]))
    return None if gains is None else match_data_white(rgb, gains)


def prepared_as_predicted(rgb: np.ndarray, spec: PreprocessSpec) -> tuple[np.ndarray, CellLocation, np.ndarray]:
    """`imaging.prepare_located` as `wbc predict` prepares a photo, and the data cache each file it trains and
    evaluates on: a cast field's magnification judged in the data set's colours (`matched_if_cast`)."""
    return prepare_located(rgb, spec, matched=matched_if_cast)


def too_dark(to_white: np.ndarray) -> bool:
    """Whether a field whose white the gains `to_white` (3,) match, not allowed (`gains_allowed`), is too dark
    rather than cast: every channel beyond the range, or every one well below the training images' white
    (DARK_GAIN_MIN) and one beyond. A channel at nearly full light beside dim ones is a cast, for which more
    light is the wrong advice."""
    return bool(to_white.min() > GAIN_RANGE[1] or (to_white.min() > DARK_GAIN_MIN and to_white.max() > GAIN_RANGE[1]))
