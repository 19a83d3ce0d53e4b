"""Is this a stained white blood cell at all? Checks made before the network is trusted.

The network always answers with one of four types; these checks catch what it was never shown:
a blank field, red cells only, an out-of-focus image or a picture that is not a stained smear.
A white cell in an overexposed photo passes, but is marked: the network reads those poorly.
Thresholds were read off TRAIN images and red-cell-only regions of the original fields in
dataset-master; benchmarks/screening.py counts the errors both ways (0.3% of the data set's files
flagged, 98% of red-cell-only corners) and tests/test_app.py checks both sides.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, replace
from typing import NamedTuple, overload

import numpy as np
from PIL import Image

from wbc.framing import MIN_UNFRAMED_SIDE, near_colour
from wbc.imaging import (
    COARSE_REDUCE,
    EXTENT_MAX,
    REDUCTIONS,
    CellLocation,
    PreprocessSpec,
    coarse_stain,
    locate_cell,
    median_colour,
    prepare_located,
    scale_channels,
)
from wbc.pixels import (
    DATA_WHITE,
    LIT_MIN,
    STAIN_LEVEL,
    brightest_channel,
    darkest_channel,
    edge_ring,
    lit_mask,
    stain_map,
)

PEAK_MIN = 60.0  # blurred (blue - green) at the nucleus; TRAIN views >= 82, red-cell fields median 21
NUCLEUS_MIN_PX = 150  # stained pixels near the peak; TRAIN views >= 700 (a 0.7x scale leaves ~340)
# A peak at least this high, with no nucleus found and the stain's edges below the focus bound, is a cell
# blurred past finding (the blur spreads its stain below STAIN_LEVEL): out of focus, not no cell. Of every
# 20th TRAIN file blurred by 16 and 20 px, 12.4% and 31.9% read "no stained nucleus found" before, 0.2%
# now; their 120 px corners of red cells, sharp or blurred by 3 px, none out of focus (76.3% no nucleus,
# as before). `benchmarks/focus.py --every 20`; BENCHMARKS.md, *Out of focus*.
BLUR_PEAK_MIN = 30.0
# ... and rising at least this far above the window's own floor (its 10th percentile): a uniform tinted
# field, with no cell in it, has no edges either, and is no blurred cell (a review found a blank bluish
# field called out of focus). Cells blurred by 20 px rise 28 or more, by 28 px 21 or more.
BLUR_RISE_MIN = 15.0
PURPLE_MIN = 0.0  # mean (red - green) of stained pixels: hematoxylin is purple (TRAIN >= 4), a blue sky is not
# Fewer px a side (at the data set's magnification) is a crop too tight to judge. Cut around their cells,
# every 10th held-out TRAIN file of three folds reads 86.9% right whole and at 96 px, 85.7% at 88, 83.9% at
# 80, 80.1% at 72, 63.3% at 64 and 51.8% at 56 (benchmarks/crop_size.py --cv): 80 is the smallest side
# within 3 points of the whole photo, the bound the issue sets for other labs' shifts.
MIN_SIDE_PX = MIN_UNFRAMED_SIDE  # 80
GRAY_SPREAD_MAX = 2  # largest channel spread (0..255) of any pixel in a photo without colour (JPEG noise)
# Steepest stain edge / the stain's range (1/px). Of every 10th TRAIN file (`benchmarks/focus.py --every 10`;
# BENCHMARKS.md, *Out of focus*), none falls below it as photographed or blurred by 1.5 or 3 px, 26% blurred
# by 5 px and 99.8% by 8, framed or not.
SHARPNESS_MIN = 0.065
# A magnified field shrunk back (imaging.REDUCTIONS, steps of sqrt 2) may stay up to sqrt 2 more magnified than
# the data set's, softer per px by as much: of every 10th TRAIN file enlarged 2-6x, 0.4-1.5% fall below the
# bound that applies (the grey measure's 0-0.5%).
SHRUNK_SHARPNESS_MIN = SHARPNESS_MIN / 2**0.5
FILL_SHARE = 0.3  # grey below this share of the window's 99th percentile, and unstained: fill or a frame, not field
FILL_MARGIN = 3  # px around the fill left out of the sharpness
MIN_SHARPNESS_PX = 100  # fewer pixels of field than this in the window: the sharpness is taken over all of it
# Overexposure: in every 4th file of TRAIN and TEST at most 0.042% of the lit pixels are white (>= 250)
# in every channel. Held-out TRAIN files brightened x1.0-1.5 read as well as clean up to 40% white and
# 10 points worse from there (benchmarks/overexposure.py; the bound was chosen by a rule written first).
WHITE_LEVEL = 250
OVEREXPOSED_SHARE = 0.4
CELL_CLEAR_PX = 48  # radius around the nucleus, at the data set's scale, that `clipped_share(loc=...)` can leave out
# (only benchmarks/overexposure_framing.py does: `screen` counts the whole field, BENCHMARKS.md)
# A photo rotated in an editor shows its page in triangles at its four corners, white where the page was: no
# light the camera clipped (`page_corners`).
CORNER_MIN_PX = 8  # a corner's shorter side along the photo's edge, at least: smaller ones hardly count
CORNER_SOLID = 0.98  # share of the triangle (short of its long side) that must be white
CORNER_EDGE_PX = 8  # and past its long side, as far as JPEG's 8 px blocks ring the photo's edge with white


@dataclass(frozen=True)
class Screening:
    is_cell: bool
    reason: str  # why it is not a white cell; empty when it is
    peak: float
    nucleus_px: int
    sharpness: float
    reduced_by: float = 1.0  # the field was shrunk by this to the data set's magnification first
    white_balanced: bool = False  # it passed only once the field's white was matched to the data set's
    clipped: float = 0.0  # share of the field's lit pixels white in every channel: clipped highlights
    white_matched: bool = False  # the network saw the crop with the field's white matched to the data set's
    other_cell_yx: tuple[float, float] | None = None  # in the searched field's px: a second white cell's nucleus
    other_larger: bool = False  # that nucleus is OTHER_LARGER times the typed mass: the typed may be a piece or speck
    cell_yx: tuple[float, float] | None = None  # in the searched field's px: the cell cropped and typed
    offset_yx: tuple[int, int] = (0, 0)  # px: where the searched field starts in the photo (a flat frame cut off)

    @property
    def overexposed(self) -> bool:
        return self.clipped >= OVEREXPOSED_SHARE


def _window(a: np.ndarray, loc: CellLocation, r: int) -> np.ndarray:
    cy, cx = int(round(loc.cy)), int(round(loc.cx))
    return a[max(0, cy - r) : cy + r, max(0, cx - r) : cx + r]


def sharpness(rgb: np.ndarray, loc: CellLocation, r: int = 48, stain: np.ndarray | None = None) -> float:
    """Steepest edges of the stain near the cell relative to the stain's range (1/px): an edge blurred
    over w pixels rises by about 1/w of the range per pixel, whatever the stain, brightness or contrast.

    Measured on (blue - green), not on grey, and away from dark fill: the sharp edge of a dark frame, an
    eyepiece's vignette or the data set's black fill, added after the blur, made a wholly blurred photo
    read as sharp on grey (a monocyte blurred by 12 px in a dark frame was typed, confident). Fill is
    dark for the field (below FILL_SHARE of its bright end) and unstained; FILL_MARGIN px around it are
    left out, where JPEG rings its edge. `stain`: the window's `stain_map`, where the caller made it already."""
    win = _window(rgb, loc, r)
    if min(win.shape[:2]) < 3:
        return 0.0
    s = (stain_map(win) if stain is None else stain).astype(np.float32)
    g = win[..., 0].astype(np.float32)  # the channels' sum: a mean's order, without the division
    g += win[..., 1]
    g += win[..., 2]
    fill = (g < FILL_SHARE * percentiles(g, 99)) & (s < STAIN_LEVEL)
    for _ in range(FILL_MARGIN):  # grown by a pixel each way, the corners included (a 3x3 dilation)
        grown = fill.copy()
        grown[1:] |= fill[:-1]
        grown[:-1] |= fill[1:]
        grown[:, 1:] |= grown[:, :-1].copy()
        grown[:, :-1] |= grown[:, 1:].copy()
        fill = grown
    keep = ~fill
    if keep.sum() < MIN_SHARPNESS_PX:  # nearly all fill: judged on the whole window, as before there was fill
        keep[:] = True
    gy, gx = np.gradient(s)
    lo, hi = percentiles(s[keep], (1, 99))
    return float(percentiles(np.hypot(gx, gy)[keep], 99) / max(hi - lo, 10.0))


@overload
def percentiles(a: np.ndarray, q: tuple[float, ...]) -> np.ndarray: ...
@overload
def percentiles(a: np.ndarray, q: float) -> np.floating: ...
def percentiles(a: np.ndarray, q: float | tuple[float, ...]) -> np.ndarray | np.floating:
    """np.percentile(a, q) with linear interpolation, bit for bit, from a partition around the two
    order statistics each percentile needs, without np.percentile's overhead on the small windows
    here. As numpy does, a tuple q gives float64 (len(q),) and a Python int or float a scalar of a's
    dtype. For a non-empty array without NaN (numpy gives NaN for one with it)."""
    qs = np.asarray(q, dtype=np.float64)
    if a.size == 0 or ((qs < 0) | (qs > 100)).any():
        raise ValueError(f"percentiles needs a non-empty array and q in 0..100, not size {a.size} and q {q!r}")
    flat = a.ravel()
    pos = (flat.size - 1) * (qs / 100)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, flat.size - 1)
    part = np.partition(flat, np.unique(np.concatenate([np.atleast_1d(lo), np.atleast_1d(hi)])))
    below, above = part[lo], part[hi]
    step = above - below  # in a's dtype, as numpy's _lerp takes it
    if type(q) in (int, float):  # numpy's weak promotion: the weight a Python float, the arithmetic in a's dtype
        t = float(pos - lo)
        return above - step * (1 - t) if t >= 0.5 else below + step * t
    t = pos - lo
    return np.where(t >= 0.5, above - step * (1 - t), below + step * t)


# The range of TRAIN's whites, per channel (R, G, B): their 0.1th and 99.9th percentiles
# (benchmarks/white_range.py; 14 of 9,957 files lie outside). A field whose white lies below it was
# photographed dimmer or with another tint than the data set, and its colours can be matched to it.
DATA_WHITE_RANGE = ((209.0, 208.0, 209.0), (242.0, 242.0, 244.0))
SECOND_LOOK_MAX_MOVE = 24.0  # px: the balanced field must point at the same cell
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


def _gains_to_data_white(white: np.ndarray) -> np.ndarray:
    return np.asarray(DATA_WHITE) / np.maximum(white, 1.0)


def white_gains(rgb: np.ndarray) -> np.ndarray:
    """Per-channel gains (3,) that make the field's white read as the data set's."""
    return _gains_to_data_white(field_white(rgb))


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
    gains = _gains_to_data_white(white)
    return gains if gains_allowed(gains) else None


def unlike_data_white(whites: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Of fields' whites (N, 3) (`field_white`): which lie below DATA_WHITE_RANGE in some channel, so that the
    screening and the white matching read them through gains (N,) bool, and which of those need gains past what
    it undoes, so that `screen` calls them too dark or too cast to judge (N,) bool."""
    below = (whites < np.asarray(DATA_WHITE_RANGE[0])).any(1)
    refused = np.array([b and not gains_allowed(_gains_to_data_white(w)) for w, b in zip(whites, below)], bool)
    return below, refused


def match_data_white(rgb: np.ndarray, gains: np.ndarray | None = None) -> np.ndarray:
    """uint8 (H, W, 3) with each channel scaled by `gains` (default: `white_gains(rgb)`): undoes
    another camera's white balance or exposure."""
    return scale_channels(rgb, white_gains(rgb) if gains is None else gains)


def cast_gains(white: np.ndarray) -> np.ndarray | None:
    """The gains (3,) that match a field's `white` (3,) to the data set's where the field is cast: below
    DATA_WHITE_RANGE in some channel, the gains CAST_SPREAD or more apart and a camera's to undo
    (`gains_allowed`); else None. An even exposure cannot lift (blue - green) over the background."""
    gains = _gains_to_data_white(white)
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


CROP_HALF_PX = PreprocessSpec.window // 2  # px round the nucleus the shipped card's crop reads, at the data set's scale


def screen(rgb: np.ndarray, loc: CellLocation, white: np.ndarray | None = None,
           gains: np.ndarray | None = None, floor: int | None = None, crop_half: int = CROP_HALF_PX) -> Screening:
    """Decide whether `rgb` (H, W, 3) shows a stained white cell at `loc`, and where a second one is.

    A field that fails is looked at once more with its white matched to the data set's: the stain
    thresholds are in the data set's colours, and another camera's white balance or exposure moves
    a nucleus's (blue - green) across them. Red-cell-only fields fail both looks. A field that needs
    gains outside GAIN_RANGE (nearly black, or one hue) is not passed on a second look: it is told that
    it is too dark, or that its cast is beyond the matching where the cast is warm or where undoing it
    in full shows a white cell (else it keeps the first look's reason). `clipped` is measured on
    the field as given. `white`: `field_white(rgb)` where the caller has it. `gains`: the channel
    gains the network's input is scaled by (`input_gains`, where the model card matches white); the
    search for a second cell reads the field in those colours, in which the stain thresholds hold
    (in a warm or dim photo as given, the lobes of one nucleus fall apart); for such a photo it costs
    about 1 ms more, the field scaled and its stain maps made again. `floor`: `other_cell`'s. `crop_half`:
    half the side of the square the model's crop reads (px, data scale), in which a drawn mark matters.
    Before any look, what is wrong with the photo itself (`_unfit`, `_too_magnified`, `drawn_mark`): a
    stained edge is judged again in the data set's colours where a cast the matching undoes may be why.
    """
    white = field_white(rgb) if white is None else white
    to_white = _gains_to_data_white(white)
    unfit = _unfit(rgb, loc.reduced_by)
    if unfit == STAINED_EDGE and (cast := cast_gains(white)) is not None:
        # A cast (magenta) lifts the background's (blue - green) to a stain's: its edge is judged in the data
        # set's colours, and the looks below read the cell (the second in those colours).
        unfit = _unfit(match_data_white(rgb, cast), loc.reduced_by)
    elif loc.reduced_by > 1 and unfit.startswith((TOO_SMALL_HEAD, STAINED_EDGE)) and not gains_allowed(to_white):
        # Shrunk for a nucleus that is the background, read as stain under a cast past the matching: the cast,
        # not the size, is what to mend (green x0.7 told 65 of 71 TEST_SIMPLE cells they were too small; x0.45,
        # a gain past the range, 11 of 11 every 7th).
        unfit = _beyond_matching(to_white)
    unfit = unfit or _too_magnified(loc) or drawn_mark(rgb, loc, white, crop_half)
    if unfit:  # no look at the stain can help: say what is wrong with the photo itself
        # A black-and-white picture's white is not clipped light: it is not called overexposed.
        clipped = 0.0 if unfit == BLACK_AND_WHITE else clipped_share(rgb)
        return Screening(is_cell=False, reason=unfit, peak=loc.peak, nucleus_px=0, sharpness=0.0,
                         reduced_by=loc.reduced_by, clipped=clipped)
    first = replace(_checks(rgb, loc), clipped=clipped_share(rgb))
    if first.is_cell and not gains_allowed(to_white):
        # A cell found through a cast the matching cannot undo reads as the cast: every 20th TRAIN file cast magenta
        # past the bound (white gains 1.5 apart or more) was typed 224 times, 36% right (95-97% below it). So does
        # one too dim or too cast for a gain within the range (green x0.4, blue x0.6: 12 of 71 TEST_SIMPLE right).
        return replace(first, is_cell=False, reason=_beyond_matching(to_white))
    if first.is_cell:
        if gains is None:
            return _with_other_cell(first, rgb, loc, floor)
        return _with_other_cell(first, scale_channels(rgb, gains), replace(loc, coarse=None), floor)
    # Warm past the spread other casts keep: refused for its spread or a gain past the range, or matched only by
    # the warm cast's wider bound.
    warm = is_warm(to_white) and spread(to_white) > GAIN_SPREAD_MAX
    if not gains_allowed(to_white):
        # What is wrong with the light first: "no stained nucleus found" alone would say no cell is there.
        if _too_dark(to_white):
            return replace(first, reason=f"{_beyond_matching(to_white)}; as photographed, {first.reason}")
        # Another cast (an LED's light under a camera set for tungsten, a green filter) is called one only
        # where undoing it in full shows a white cell: a blue sky's or a green leaf's photo is no smear.
        if warm or _balanced_look(rgb, loc, to_white) is not None:
            return replace(first, reason=_tinted(to_white, warm))
        return first
    look = _balanced_look(rgb, loc, to_white)
    if look is None:
        # A warm cast only the wider spread lets matched, still without a cell: told of its cast, as before it was
        # matched, rather than that no white cell is there (in 19 of 399 TRAIN files cast R x1.2, G x0.95, B x0.65).
        if warm:
            return replace(first, reason=_tinted(to_white, True))
        return first
    second, balanced, again = look
    return _with_other_cell(replace(second, white_balanced=True, clipped=first.clipped), balanced, again, floor)


def _too_dark(to_white: np.ndarray) -> bool:
    """Whether a field whose white the gains `to_white` (3,) match, not allowed (`gains_allowed`), is too dark
    rather than cast: every channel beyond the range, or every one well below the training images' white
    (DARK_GAIN_MIN) and one beyond. A channel at nearly full light beside dim ones is a cast, for which more
    light is the wrong advice."""
    return bool(to_white.min() > GAIN_RANGE[1] or (to_white.min() > DARK_GAIN_MIN and to_white.max() > GAIN_RANGE[1]))


def _beyond_matching(to_white: np.ndarray) -> str:
    """Why a field that matching its white (gains `to_white`, (3,), not allowed) cannot bring to the training
    images' colours cannot be judged: too dark (take it with more light; dim and warm, as a halogen lamp turned
    down, also its white balance, without a daylight filter, which takes more light), or cast."""
    warm = is_warm(to_white) and spread(to_white) > GAIN_SPREAD_MAX
    if not _too_dark(to_white):
        return _tinted(to_white, warm)
    cast = " and correct its white balance, which is cast warm" if warm else ""
    return f"{TOO_DARK_HEAD} (its white at {100 / to_white.mean():.0f}% of theirs): take it with more light{cast}"


def _tinted(to_white: np.ndarray, warm: bool) -> str:
    """Why a field cast beyond what matching its white (gains `to_white`, (3,)) undoes cannot be judged."""
    cast = DATA_WHITE / to_white  # the field's white (3,), as measured
    # No "as photographed, no stained nucleus found": in such colours the stain checks cannot tell.
    return (f"{TINTED_HEAD} (its white at R {cast[0]:.0f}, G {cast[1]:.0f}, B {cast[2]:.0f}; theirs "
            f"{DATA_WHITE[0]:.0f}, {DATA_WHITE[1]:.0f}, {DATA_WHITE[2]:.0f}), beyond what matching its white undoes: "
            "correct the white balance" + (" (or use a daylight filter)" if warm else "") + " and take it again")


def _balanced_look(rgb: np.ndarray, loc: CellLocation,
                   to_white: np.ndarray) -> tuple[Screening, np.ndarray, CellLocation] | None:
    """The checks of the field with its channels scaled by `to_white` (3,), where they pass on a cell
    within SECOND_LOOK_MAX_MOVE of `loc`: (their screening, the scaled field, its cell); else None."""
    balanced = match_data_white(rgb, to_white)
    again = locate_cell(balanced)
    if np.hypot(again.cy - loc.cy, again.cx - loc.cx) > SECOND_LOOK_MAX_MOVE:
        return None
    second = _checks(balanced, replace(again, reduced_by=loc.reduced_by))
    return (second, balanced, again) if second.is_cell else None


def _with_other_cell(sc: Screening, rgb: np.ndarray, loc: CellLocation, floor: int | None) -> Screening:
    """`sc` of a white cell with the search for a second one in `rgb`, the field in the colours to read."""
    found = other_cell(rgb, loc, floor)
    return sc if found is None else replace(sc, other_cell_yx=(found.y, found.x), other_larger=found.larger)


# A second white cell: a stained mass apart from the typed cell's (the coarse blurred stain map falls
# below OTHER_LEVEL between them, which the lobes of one nucleus never do), peaking at PEAK_MIN or more,
# with OTHER_NUCLEUS_PX stained px or more, at the data set's magnification. The floor is the smallest
# that warns on at most 1% of TRAIN's files from fields BCCD boxes one white cell in (0.99%) and 3% of
# those fields' originals (1.2%); each of those warnings points at a real second cell the boxes leave
# out, mostly a piece cut by the edge. It finds 11 of 14 two-cell originals' second cells (not cells
# that touch) and warns on none of TEST's 622 files (benchmarks/other_cells.py).
OTHER_LEVEL = 40
OTHER_NUCLEUS_PX = 400
OTHER_TRIES = 3  # stained masses looked at, strongest first, before the search gives up
# The other nucleus holds this many times the typed mass's stained px or more: the crop is on a piece of
# a cell or a speck (3.6-8.5x where it was, in BloodImage_00040 and 00242 and TRAIN MONOCYTE _3_9992),
# not on a whole cell beside a larger one (1.15-1.7x in two-cell photographs).
OTHER_LARGER = 2.0


class OtherCell(NamedTuple):
    y: float  # px of the searched field: the centroid of the other nucleus's stained px
    x: float
    larger: bool  # it holds OTHER_LARGER times the typed mass's stained px or more


def _grown(seed: np.ndarray, within: np.ndarray) -> np.ndarray:
    """The cells of `within` (bool, 2-D) connected to `seed` (bool, the same shape) through 8-neighbours."""
    comp = seed & within
    g = np.empty_like(comp)
    while True:
        np.copyto(g, comp)
        g[1:] |= comp[:-1]
        g[:-1] |= comp[1:]
        rows = g.copy()
        g[:, 1:] |= rows[:, :-1]
        g[:, :-1] |= rows[:, 1:]
        g &= within
        if np.array_equal(g, comp):
            return comp
        comp, g = g, comp


def other_cell(rgb: np.ndarray, loc: CellLocation, floor: int | None = None) -> OtherCell | None:
    """The nucleus of a second white cell in the field (H, W, 3) at the data set's magnification, whose
    typed cell is at `loc` (found in this very field); None where there is none. `floor`: stained px a
    second mass needs (default OTHER_NUCLEUS_PX)."""
    floor = OTHER_NUCLEUS_PX if floor is None else floor
    f = COARSE_REDUCE
    h, w = rgb.shape[:2]
    kept = loc.coarse is not None and loc.coarse.shape == (-(-h // f), -(-w // f))
    sm = None if kept else stain_map(rgb)  # made once, and only where a mass is measured or no coarse map came
    coarse = loc.coarse if kept else coarse_stain(sm)
    masses = coarse >= OTHER_LEVEL
    seed = np.zeros_like(masses)
    y, x = loc.peak_yx or (int(loc.cy), int(loc.cx))
    iy, ix = min(y // f, seed.shape[0] - 1), min(x // f, seed.shape[1] - 1)
    seed[max(0, iy - 1) : iy + 2, max(0, ix - 1) : ix + 2] = True  # the coarse cells round the typed cell's peak
    typed = _grown(seed, masses)
    left = masses & ~typed  # all but the typed cell's mass
    s = None
    for _ in range(OTHER_TRIES):
        strongest = np.where(left, coarse, 0)
        k = int(np.argmax(strongest))
        if strongest.flat[k] < PEAK_MIN:
            return None
        one = np.zeros_like(left)
        one.flat[k] = True
        mass = _grown(one, left)
        left &= ~mass
        if s is None:
            s = (stain_map(rgb) if sm is None else sm) > STAIN_LEVEL
        full = _full_size(mass, s)
        n = np.count_nonzero(full)
        if n >= floor:
            py, px = np.nonzero(full)
            return OtherCell(float(py.mean()), float(px.mean()),
                             bool(n >= OTHER_LARGER * np.count_nonzero(_full_size(typed, s))))
    return None


def _full_size(cells: np.ndarray, stained: np.ndarray) -> np.ndarray:
    """The stained px (bool, H x W) that lie in the coarse grid's `cells` (bool, COARSE_REDUCE times coarser)."""
    f = COARSE_REDUCE
    return cells.repeat(f, 0).repeat(f, 1)[: stained.shape[0], : stained.shape[1]] & stained


# Each reason a photo cannot be judged ends with what to do about it (a student was told the fault alone).
BLACK_AND_WHITE = ("a black-and-white picture: the stain's colours, which show a white cell and its type, are missing; "
                   "give the colour original")
GRAYSCALE = ("a grayscale photo: the stain's colours, which show a white cell and its type, are missing; give the "
             "colour original")
OUT_OF_FOCUS = "out of focus: too blurred to judge the cell; focus on the cell and take it again"
TOO_SMALL_HEAD = "only "  # "only W x H px: too small ..."
# A nucleus stained too faintly, or washed out by a photo's low contrast, is not found either (of TEST at half its
# contrast, 1,070 of 2,487 files; benchmarks/robustness.md): the reason says so, with what to do.
NO_NUCLEUS = ("no stained nucleus found (blank field, red cells only, not a stained smear, or a magnification "
              "well below the training images'; or a stain too pale or a photo too low in contrast to show one: "
              "then a fresh stain, or the photo with more contrast)")
NOT_PURPLE = "the stained area is not the purple of a Romanowsky-stained nucleus"
TOO_DARK_HEAD = "the photo is much darker than the training images"  # a photo too dark for the second look
TINTED_HEAD = "the photo's colours are cast far from the training images'"  # a tint beyond the second look
MAGNIFIED_HEAD = "magnified beyond what this tool can match"
# A slide's or a web page's coloured background round the photo: most of its edge reads as stain, where a smear's
# shows red cells on a pale ground. Of the data set's 12,515 files' edges at most 12% does; of TEST's cells cropped
# to 90 px round them, at most 38%. Read as a nucleus, such a background was typed (a lymphocyte on a purple slide:
# "monocyte, confident", the photo shrunk 4x for the size of its "nucleus").
STAINED_EDGE_SHARE = 0.5
STAINED_EDGE = ("most of the photo's edge is blue or purple, as a slide's or a web page's background is, where a smear "
                "shows red cells on a pale ground: crop it to the microscope's field")
# A mark drawn on the photo (an arrow, a line, a letter) in a colour no stain gives: pure red, yellow or green, one
# channel MARK_MARGIN above both others (red, green) or two above the third (yellow). In every 5th file of the data
# set red stands at most 59 above, yellow 61, green 37; under the robustness shifts (every 25th) at most 125 (the
# halogen cast's red and yellow) and 110 (E x1.3's green); no file of every 3rd, nor of every 25th under each shift,
# is flagged. A 2 px red or yellow arrow saved as JPEG gives 130-160 such px near a cell (green fewer), and each of
# 96 arrows (2 and 4 px, red, yellow and green, PNG and JPEG, beside 8 TEST_SIMPLE cells) is found. Inside the
# crop the network reads, a red arrow turned a neutrophil and a monocyte into lymphocytes, confident.
MARK_MARGIN = 150
MARK_MIN_PX = 30
DRAWN_MARK = ("a mark drawn on the photo (an arrow, a line or a letter in red, yellow or green) lies in the part the "
              "model reads around the cell, and changes its reading: give the photo without marks, or crop them out")


def photo_at_fault(reason: str) -> bool:
    """Whether a screening's reason says the photo cannot be judged (too small, without colour, out of
    focus, too dark, cast beyond the white matching, magnified past its shrinking, on a coloured
    background, or marked by hand near the cell), rather than that it shows no white cell."""
    return reason.startswith((TOO_SMALL_HEAD, GRAYSCALE, BLACK_AND_WHITE, OUT_OF_FOCUS, TOO_DARK_HEAD, TINTED_HEAD,
                              MAGNIFIED_HEAD, STAINED_EDGE, DRAWN_MARK))


def drawn_mark(rgb: np.ndarray, loc: CellLocation, white: np.ndarray | None = None, r: int = CROP_HALF_PX) -> str:
    """DRAWN_MARK where at least MARK_MIN_PX pixels of the field (H, W, 3) in the square of side 2 `r` round
    the cell (the crop the network reads) are a colour no stain gives (MARK_MARGIN), else "". Read on every
    other pixel each way (a 2 px line still shows a quarter of its pixels), and only where the channels spread
    MARK_MARGIN. Not where the field's own white (`field_white`, where the caller has it) leans half as far
    that way: a strong yellow cast (blue x0.4) marked the background of 32 of 32 fixture photos, which the cast
    checks tell of instead."""
    win = _window(rgb, loc, r)[::2, ::2]
    spread = brightest_channel(win) - darkest_channel(win)  # uint8: never below 0
    px = win[spread >= MARK_MARGIN]  # (N, 3): the few pixels the test may take
    if 4 * np.count_nonzero(_mark_colour(px, MARK_MARGIN)) < MARK_MIN_PX:
        return ""
    white = field_white(rgb[::4, ::4]) if white is None else white
    return "" if _mark_colour(white[None], MARK_MARGIN // 2).any() else DRAWN_MARK


def _mark_colour(px: np.ndarray, margin: int) -> np.ndarray:
    """Which of the colours `px` (N, 3) stand `margin` or more towards pure red, green or yellow (bool (N,))."""
    px = px.astype(np.int16)
    red, green, blue = px[:, 0], px[:, 1], px[:, 2]
    return ((red - np.maximum(green, blue) >= margin) | (green - np.maximum(red, blue) >= margin)
            | (np.minimum(red, green) - blue >= margin))


def _too_magnified(loc: CellLocation) -> str:
    """Why a field still too magnified once shrunk as far as `imaging.locate_at_data_scale` shrinks
    (its nucleus above EXTENT_MAX, which no file of the data set reaches) cannot be judged, or ""."""
    if loc.extent <= EXTENT_MAX:
        return ""
    how = (f"shrunk {loc.reduced_by:.2g}x, the most it shrinks a photo," if loc.reduced_by >= REDUCTIONS[-1]
           else f"shrunk {loc.reduced_by:.2g}x, as far as the photo's size allows," if loc.reduced_by > 1
           else "not shrunk (this model reads the whole photo as it is),")
    # By how much, where the tool shrank it all it does: a halving or two more lands the nucleus in range.
    times = 2 ** math.ceil(math.log2(loc.extent / EXTENT_MAX)) if loc.reduced_by >= REDUCTIONS[-1] else 0
    return (f"{MAGNIFIED_HEAD}: {how} its nucleus still reads larger than any of the training images' "
            f"({loc.extent:.0f} px against at most {EXTENT_MAX:.0f}, the side of a square of its stained area): "
            "take it at a lower magnification, or shrink it first"
            + (f" (to 1/{times} of its width and height)" if times > 1 else ""))


def too_small(w: int, h: int, reduced_by: float = 1.0) -> str:
    """Why a photo of w x h px (once shrunk by `reduced_by` to the data set's magnification), a side under
    MIN_SIDE_PX, cannot be judged."""
    shrunk = f" once shrunk {reduced_by:.2g}x to the training images' magnification" if reduced_by > 1 else ""
    return (f"{TOO_SMALL_HEAD}{w}x{h} px{shrunk}: too small or too tight a crop to judge a cell ({MIN_SIDE_PX} px "
            "or more a side at the training images' magnification, where a white cell is 60-100 px across and "
            "the training images show 160 px around it): give the photo at full size, or crop wider around the "
            "cell")


def _unfit(rgb: np.ndarray, reduced_by: float = 1.0) -> str:
    """Why a photo (H, W, 3; shrunk by `reduced_by` to the data set's magnification) cannot show a
    stained cell as the network needs it, or "": a crop too tight to judge, no colour (a grayscale
    or black-and-white photo, in which a stain cannot be told from shade), or a coloured background."""
    h, w = rgb.shape[:2]
    ring = edge_ring(rgb)
    stained = ring[stain_map(ring[None])[0] > STAIN_LEVEL]
    stained_edge = len(stained) >= STAINED_EDGE_SHARE * len(ring)
    # A flat background read as a nucleus shrinks the photo for its size: small only then, it is the background's
    # fault. A tight crop of a magnified cell, its nucleus at the edge, is too small (a nucleus is not one flat colour:
    # most of its pixels lie beyond JPEG's noise, FRAME_TOL, of their median).
    if stained_edge and reduced_by > 1 and near_colour(stained, median_colour(stained[None])).mean() >= 0.5:
        return STAINED_EDGE
    if min(h, w) < MIN_SIDE_PX:
        return too_small(w, h, reduced_by)
    px = rgb[::2, ::2]  # every fourth pixel tells colour from gray as well, at a quarter of the time
    brightest, darkest = brightest_channel(px), darkest_channel(px)
    # Only where the photo shows something: a blank, black or clipped white field has no colour either,
    # and its reason is the stain check's.
    shown = (brightest >= LIT_MIN) & (darkest < WHITE_LEVEL)
    if shown.mean() >= 0.05 and int((brightest - darkest)[shown].max()) <= GRAY_SPREAD_MAX:
        return GRAYSCALE
    # Black and white only (a 1-bit scan or a thresholded mask): nothing is shown between them, but it is
    # a picture, not a blank field. Both must be in the middle of the photo: a blank field's black is
    # fill at its corners or a frame (a rotated view's, or a scanner's).
    h2, w2 = brightest.shape
    mid = (slice(h2 // 4, h2 - h2 // 4), slice(w2 // 4, w2 - w2 // 4))
    if (int((brightest - darkest).max()) <= GRAY_SPREAD_MAX and (brightest[mid] < LIT_MIN).mean() >= 0.01
            and (darkest[mid] >= WHITE_LEVEL).mean() >= 0.01):
        return BLACK_AND_WHITE
    return STAINED_EDGE if stained_edge else ""


def focus_bound(loc: CellLocation) -> float:
    """The sharpness below which the cell at `loc` is out of focus: SHRUNK_SHARPNESS_MIN where its field
    was shrunk back from a magnified photo, else SHARPNESS_MIN."""
    return SHRUNK_SHARPNESS_MIN if loc.reduced_by > 1 else SHARPNESS_MIN


def _checks(rgb: np.ndarray, loc: CellLocation) -> Screening:
    win = _window(rgb, loc, 48)
    s = stain_map(win)
    mask = s > STAIN_LEVEL
    nucleus_px = int(mask.sum())
    sharp = sharpness(rgb, loc, 48, s)
    reason = ""
    if loc.peak < PEAK_MIN or nucleus_px < NUCLEUS_MIN_PX:
        blurred = (loc.peak >= BLUR_PEAK_MIN and sharp < focus_bound(loc)
                   and loc.peak - float(np.percentile(s, 10)) >= BLUR_RISE_MIN)
        reason = OUT_OF_FOCUS if blurred else NO_NUCLEUS
    else:
        purple = float((win[..., 0].astype(np.float32) - win[..., 1])[mask].mean())
        if purple < PURPLE_MIN:
            reason = NOT_PURPLE
        elif sharp < focus_bound(loc):
            reason = OUT_OF_FOCUS
    return Screening(is_cell=not reason, reason=reason, peak=loc.peak, nucleus_px=nucleus_px, sharpness=sharp,
                     reduced_by=loc.reduced_by)
