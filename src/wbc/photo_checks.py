"""The checks `screening.screen` makes and their result (`Screening`): what is wrong with a photo itself (a crop
too small, no colour, a stained edge, magnified past the shrinking, a mark drawn near the cell), and whether the
stain at its cell shows a white cell's nucleus (found, purple, in focus); each reason says what to do."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import overload

import numpy as np

from wbc.framing import MIN_UNFRAMED_SIDE, near_colour
from wbc.imaging import EXTENT_MAX, REDUCTIONS, CellLocation, PreprocessSpec, median_colour, photo_xy
from wbc.pixels import LIT_MIN, STAIN_LEVEL, brightest_channel, darkest_channel, dilated, edge_ring, stain_map
from wbc.white_balance import GAIN_RANGE, WHITE_LEVEL, field_white, gains_to_data_white, is_overexposed

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
        return is_overexposed(self.clipped)


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
    keep = ~dilated((g < FILL_SHARE * percentiles(g, 99)) & (s < STAIN_LEVEL), FILL_MARGIN)
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


CROP_HALF_PX = PreprocessSpec.window // 2  # px round the nucleus the shipped card's crop reads, at the data set's scale


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
# A mark drawn on the photo (an arrow, a line, a letter) in a colour no stain gives: red, green, cyan, orange to yellow
# or magenta. Each pixel is read in the data set's colours (the field's white matched, its gains kept to GAIN_RANGE) and
# scored per family (`mark_scores`); the score that MARK_MIN_PX / 4 of the pixels read (every other pixel each way)
# reach is what `benchmarks/drawn_marks.py` prints. In every 3rd file of the data set, and every 25th under each
# robustness shift, other cameras' colours and 1.3-1.6x saturation, it is at most 69, 35, 44, 101 and 102 by family
# (each 1.6x saturation's; the halogen cast's 67, 13, 14, 77, 85); beside every 10th TEST cell, a 2 px arrow saved
# as JPEG (quality 75, whose halved chroma thins a line's colour) reaches at least 109, 102, 115, 133 and 130. The
# margins lie between. Inside the crop the network reads, a red arrow turned a neutrophil and a monocyte into
# lymphocytes, confident; a 4 px cyan one changed the type given to 115 of 249 TEST files. Blue and black are a
# nucleus's colours: not sought.
MARK_FAMILIES = ("red", "green", "cyan", "orange to yellow", "magenta")
MARK_MARGINS = (90, 90, 90, 115, 115)  # per family, in MARK_FAMILIES' order
MARK_MIN_PX = 30
# "Crop them out" alone could not be done for a circle drawn round the cell, as teaching photos ring it.
DRAWN_MARK = ("a mark drawn on the photo (an arrow, a line or a letter in red, orange, yellow, green, cyan or "
              "magenta) lies in the part the model reads around the cell")
_MARK_ADVICE = (", and changes its reading: give the photo without marks (one that lies apart from the cell may be "
                "cropped away; a ring round the cell cannot)")


def photo_at_fault(reason: str) -> bool:
    """Whether a screening's reason says the photo cannot be judged (too small, without colour, out of
    focus, too dark, cast beyond the white matching, magnified past its shrinking, on a coloured
    background, or marked by hand near the cell), rather than that it shows no white cell."""
    return reason.startswith((TOO_SMALL_HEAD, GRAYSCALE, BLACK_AND_WHITE, OUT_OF_FOCUS, TOO_DARK_HEAD, TINTED_HEAD,
                              MAGNIFIED_HEAD, STAINED_EDGE, DRAWN_MARK))


def drawn_mark(rgb: np.ndarray, loc: CellLocation, white: np.ndarray | None = None, r: int = CROP_HALF_PX) -> str:
    """DRAWN_MARK where at least MARK_MIN_PX pixels of the field (H, W, 3) in the square of side 2 `r` round
    the cell (the crop the network reads) are a colour no stain gives (`mark_scores` past MARK_MARGINS), else "".
    Read on every other pixel each way (a 2 px line still shows a quarter of its pixels). `white`: the field's
    (`field_white`), where the caller has it."""
    white = field_white(rgb[::4, ::4]) if white is None else white
    gains = _mark_gains(white)
    win = _window(rgb, loc, r)[::2, ::2]
    # Each family's score is one channel less another, so no more than the channels' spread once scaled: only the
    # few px whose spread may reach the lowest margin are scored (0.12-0.15 ms a photo; 0.3 ms scoring all of the
    # crop, against 0.04 for the check of three pure colours before).
    spread = gains.max() * brightest_channel(win) - gains.min() * darkest_channel(win)
    n = np.count_nonzero((mark_scores(_in_data_colours(win[spread >= min(MARK_MARGINS)], gains))
                          >= MARK_MARGINS).any(axis=1))
    if 4 * n < MARK_MIN_PX:
        return ""
    # Not where the field's own white, so matched, leans half a margin towards any family: such colour is the
    # field's (a dark frame's green hot pixels, or a cast past GAIN_RANGE), not a mark's; its cast checks tell of it.
    leans = mark_scores(_in_data_colours(white[None], gains)) >= np.asarray(MARK_MARGINS) / 2
    return "" if leans.any() else _mark_found(loc, r, rgb.shape[:2])


def _mark_found(loc: CellLocation, r: int, field_hw: tuple[int, ...]) -> str:
    """DRAWN_MARK with where the part read lies in the photo as given (the square of side 2 `r` round the cell at
    `loc`, in px of the field (H, W) searched), so that a user knows how far from the cell a mark may be cropped."""
    if 2 * r >= max(field_hw):  # a model reading the whole field ("frame")
        return f"{DRAWN_MARK} (all of the photo){_MARK_ADVICE}"
    x, y = photo_xy((loc.cy, loc.cx), loc.reduced_by, loc.offset_yx)
    side = round(2 * r * loc.reduced_by)
    return f"{DRAWN_MARK} (the {side} x {side} px square centred on the cell, at x={x}, y={y}){_MARK_ADVICE}"


def mark_pixels(rgb: np.ndarray, loc: CellLocation, white: np.ndarray | None = None, r: int = CROP_HALF_PX
                ) -> np.ndarray:
    """The pixels `drawn_mark` reads (N, 3; float32, 0..255): every other one each way in the square of side 2 `r`
    round the cell, in the data set's colours. A camera's cast moves a whole field's colours (a strong yellow one,
    blue x0.4, made every fixture photo's background yellow enough); its gains are kept to GAIN_RANGE, so that a
    nearly black field's noise is not raised to a mark's colour, and such a cast, past the matching, stays below
    the margins (the cast checks tell of it)."""
    white = field_white(rgb[::4, ::4]) if white is None else white
    return _in_data_colours(_window(rgb, loc, r)[::2, ::2].reshape(-1, 3), _mark_gains(white))


def _mark_gains(white: np.ndarray) -> np.ndarray:
    return np.clip(gains_to_data_white(white), *GAIN_RANGE).astype(np.float32)


def _in_data_colours(px: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Pixels (N, 3) scaled by `gains` (3,), clipped to 255 (float32)."""
    return np.minimum(px.astype(np.float32) * gains, 255.0)


def mark_scores(px: np.ndarray) -> np.ndarray:
    """How far each colour of `px` (N, 3) stands towards each of MARK_FAMILIES (N, 5): red above both other
    channels, green above both, green and blue above red, (where green is at least blue, as no stain's is by far)
    red above blue, and red and blue above green (a nucleus's purple, but far past any stain's). Any dtype: read
    as float32, since uint8 differences wrap (a nucleus's blue, (0, 0, 160), would stand 96 towards red)."""
    px = np.asarray(px, dtype=np.float32)
    red, green, blue = px[:, 0], px[:, 1], px[:, 2]
    warm = np.where(green >= blue, red - blue, -255.0)
    return np.stack([red - np.maximum(green, blue), green - np.maximum(red, blue), np.minimum(green, blue) - red,
                     warm, np.minimum(red, blue) - green], axis=1)


def too_magnified(loc: CellLocation) -> str:
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


def too_small(w: int, h: int, reduced_by: float = 1.0, photo_hw: tuple[int, int] | None = None) -> str:
    """Why a photo of w x h px (once shrunk by `reduced_by` to the data set's magnification), a side under
    MIN_SIDE_PX, cannot be judged; `photo_hw`: the (height, width) of the file, where w x h is what lies within a
    flat frame cut off (a student's 900 x 700 px photo of a book's page was told "only 96x72 px")."""
    shrunk = f" once shrunk {reduced_by:.2g}x to the training images' magnification" if reduced_by > 1 else ""
    framed = (f" within the flat frame round it (a page's margin, a border or a caption, cut off; the whole photo is "
              f"{photo_hw[1]}x{photo_hw[0]} px)" if photo_hw else "")
    return (f"{TOO_SMALL_HEAD}{w}x{h} px{framed}{shrunk}: too small or too tight a crop to judge a cell ({MIN_SIDE_PX} px "
            "or more a side at the training images' magnification, where a white cell is 60-100 px across and "
            "the training images show 160 px around it): "
            + ("photograph the picture closer, so that it fills the photo" if photo_hw
               else "give the photo at full size, or crop wider around the cell"))


def photo_unfit(rgb: np.ndarray, reduced_by: float = 1.0, photo_hw: tuple[int, int] | None = None) -> str:
    """Why a photo (H, W, 3; shrunk by `reduced_by` to the data set's magnification; cut out of a flat frame of a
    photo of `photo_hw` (height, width) px, where one was cut off) cannot show a
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
        return too_small(w, h, reduced_by, photo_hw)
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


def checks_of(rgb: np.ndarray, loc: CellLocation) -> Screening:
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
