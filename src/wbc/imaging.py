"""Finding the white cell and turning a field into network input: one path for training, predict and the app.

Only NumPy and Pillow, so inference needs no PyTorch. The steps are:
`load_image` (`wbc.decode`: any file a microscope camera writes -> RGB uint8 (H, W, 3)),
`prepare` (cut off a flat frame round the photo, `wbc.framing`; find the white cell by its stained nucleus,
shrinking a field more magnified than the data set's first, and crop a fixed window around it -> uint8 (S, S, 3))
and `to_input` (uint8 (N, S, S, 3) -> normalised float32 (N, 3, S, S)).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, overload

import numpy as np
from PIL import Image, ImageFilter

from wbc.framing import unframed
from wbc.pixels import STAIN_LEVEL, edge_ring, lit_mask, stain_map


MODES = ("cell", "frame")  # PreprocessSpec.mode: crop around the cell, or the whole field


# px: the largest crop window or network input a card may ask for (the data set's fields are 320x240; a window of
# 10^9 px tried to allocate exabytes at the first prediction)
MAX_CROP_PX = 4096


@dataclass(frozen=True)
class PreprocessSpec:
    """How a model wants its input; stored in the checkpoint and the model card.

    mode "cell": crop a `window` x `window` px square (pixels of the field at the data set's magnification:
    a magnified photo's once shrunk, `locate_at_data_scale`) centred on the
    stained nucleus and resize it to `size` x `size`. mode "frame": resize the whole field to
    `size` x round(size * 4 / 3) (height x width), as the reference network did.
    """

    mode: str = "cell"
    window: int = 160
    size: int = 96
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.25, 0.25, 0.25)

    @property
    def input_hw(self) -> tuple[int, int]:
        if self.mode == "frame":
            return self.size, round(self.size * 4 / 3)
        return self.size, self.size

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PreprocessSpec":
        known = {k: d[k] for k in ("mode", "window", "size") if k in d}
        return cls(**known, mean=tuple(d.get("mean", cls.mean)), std=tuple(d.get("std", cls.std)))

    @classmethod
    def from_card(cls, d: object) -> "PreprocessSpec":
        """`from_dict` for a model card's "preprocess", each field checked: ValueError naming the first
        bad one. Fields a card lacks take the defaults, as `from_dict` gives them."""
        if not isinstance(d, dict):
            raise ValueError(f"preprocess is {d!r}; it must be an object with mode, window, size, mean and std")
        if d.get("mode", cls.mode) not in MODES:
            raise ValueError(f"preprocess.mode is {d['mode']!r}; this version knows {' and '.join(map(repr, MODES))}")
        for key in ("window", "size"):
            v = d.get(key, getattr(cls, key))
            if type(v) is not int or not 1 <= v <= MAX_CROP_PX:  # type(): True is an int to isinstance
                raise ValueError(f"preprocess.{key} is {v!r}; it must be a whole number of pixels, 1 to {MAX_CROP_PX}")
        rules = (("mean", lambda c: 0 <= c <= 1, "numbers in 0..1"), ("std", lambda c: c > 0, "numbers above 0"))
        for key, rule, what in rules:
            v = d.get(key, getattr(cls, key))
            if not (isinstance(v, (list, tuple)) and len(v) == 3
                    and all(type(c) in (int, float) and np.isfinite(c) and rule(c) for c in v)):
                raise ValueError(f"preprocess.{key} is {v!r}; it must be 3 {what}, one per channel (RGB)")
        return cls.from_dict(d)


@dataclass(frozen=True)
class CellLocation:
    """Where `locate_cell` found the most strongly stained blob, in pixels of the field it searched
    (the source image, or the source shrunk by `reduced_by`)."""

    cy: float
    cx: float
    peak: float  # blurred (blue - green) at the peak, 0..255: low means no stained nucleus
    extent: float = 0.0  # px: sqrt of the stained area in the (2 EXTENT_RADIUS)^2 square around (cy, cx)
    reduced_by: float = 1.0  # the field was shrunk by this factor before it was searched
    # Kept for the screening's search for a second cell (None: not kept): where the blurred stain peaks,
    # (y, x) px, which lies on the nucleus where its centroid (cy, cx) may not (a ring), and the field's
    # `coarse_stain`.
    peak_yx: tuple[int, int] | None = None
    coarse: np.ndarray | None = field(default=None, compare=False, repr=False)
    # (top, left) px of the photo as given cut off as a flat frame before the search (`framing.frame_margins`):
    # where the field searched starts in the photo.
    offset_yx: tuple[int, int] = (0, 0)
    # (height, width) px of the photo as given, where a flat frame was cut off (None: none was): a photo small
    # within its frame is told so, not given the frame's inner size as if it were the file's.
    photo_hw: tuple[int, int] | None = None


@overload
def photo_xy(yx: tuple[float, float], reduced_by: float, offset_yx: tuple[int, int] = ...) -> tuple[int, int]: ...
@overload
def photo_xy(yx: None, reduced_by: float, offset_yx: tuple[int, int] = ...) -> None: ...
@overload
def photo_xy(yx: tuple[float, float] | None, reduced_by: float,
             offset_yx: tuple[int, int] = ...) -> tuple[int, int] | None: ...
def photo_xy(yx: tuple[float, float] | None, reduced_by: float,
             offset_yx: tuple[int, int] = (0, 0)) -> tuple[int, int] | None:
    """(x, y) px in the photo as given of a point (y, x) in the field the screening searched (shrunk by
    `reduced_by`, after a flat frame of `offset_yx` (top, left) px was cut off)."""
    if yx is None:
        return None
    return round(yx[1] * reduced_by) + offset_yx[1], round(yx[0] * reduced_by) + offset_yx[0]


# Magnification. The nucleus's extent (sqrt of the stained px in the 192 px square around the cell)
# is at most 85.7 px in every one of the 12,444 files of TRAIN and TEST (benchmarks/magnification.py
# --check-data), so none of them is ever shrunk and training crops are what they were. A field whose
# nucleus reads larger was photographed more magnified (another microscope or camera): it is shrunk
# in steps of sqrt(2) until the nucleus reads <= EXTENT_MAX, the top of the data set's range, so the
# cell ends up somewhat larger than a typical one of the data set (median extent 55), not at 1x. Up to
# 16x: a phone's 4000 x 3000 photo through the eyepiece is about 12.5x the data set's scale (of 40 TRAIN
# files enlarged so, 20 were typed shrunk 8x at most, 40 at 16x: benchmarks/phone_resolution.py).
EXTENT_RADIUS = 96
EXTENT_MAX = 90.0
REDUCTIONS = (2**0.5, 2.0, 2 * 2**0.5, 4.0, 4 * 2**0.5, 8.0, 8 * 2**0.5, 16.0)
MIN_REDUCED_SIDE = 48  # px: a field is never shrunk below this


BLUR_SIGMA = 8  # px: ~1/4 of a nucleus, so that a multi-lobed nucleus reads as one mass
# Pillow's GaussianBlur(8) is three box blurs of radius 7.47 each way, so a blurred pixel depends on
# source pixels up to 3 x 8 px away: a crop blurs exactly as the whole field does at least BLUR_REACH px
# inside its edges (and not one pixel nearer; tests/test_imaging.py).
BLUR_REACH = 24
COARSE_REDUCE = 4  # `coarse_stain` reads the field on a grid this much coarser
# How far below the full blur's peak value its cell may read on the coarse map for `stain_peak` to
# find it. Over all 12,444 files of TRAIN and TEST, as they are and enlarged 2x, it read at most 5
# below (benchmarks/stain_peak.py); the margin leaves room for photographs unlike these.
COARSE_MARGIN = 40


def blurred_stain(s: np.ndarray) -> np.ndarray:
    """The stain map uint8 (H, W) blurred by GaussianBlur(BLUR_SIGMA), all of it: what `stain_peak`
    reads the maximum of without computing it whole."""
    return np.asarray(Image.fromarray(s).filter(ImageFilter.GaussianBlur(BLUR_SIGMA)))


def whole_stain_peak(s: np.ndarray) -> tuple[int, int, float]:
    """Row, column and value of the maximum of `blurred_stain(s)`, the first in raster order among
    equal values, from the whole blur: what `stain_peak` returns, the slow way (its tests and
    benchmarks/stain_peak.py compare the two)."""
    b = blurred_stain(s)
    y, x = np.unravel_index(int(b.argmax()), b.shape)
    return int(y), int(x), float(b[y, x])


def coarse_stain(s: np.ndarray) -> np.ndarray:
    """`blurred_stain(s)` approximated on a grid COARSE_REDUCE (f) times coarser: uint8 (ceil(H / f),
    ceil(W / f)), cell (i, j) standing for the full-size pixels [f i, f i + f) x [f j, f j + f).

    The map is first extended by its edge pixels as far as the blur reaches: shrunk without that, a
    stained line along an edge reads far weaker than at full size. (Pillow extends each of its box
    passes from the blurred edge instead, so such a line can read stronger here; `stain_peak` allows
    for that.)
    """
    f, pad = COARSE_REDUCE, BLUR_REACH  # the pad a multiple of f, so the cells stay aligned
    h, w = s.shape
    big = Image.fromarray(edge_padded(s, pad)).reduce(f).filter(ImageFilter.GaussianBlur(BLUR_SIGMA / f))
    k = pad // f
    return np.asarray(big)[k : k + -(-h // f), k : k + -(-w // f)]


def edge_padded(a: np.ndarray, pad: int) -> np.ndarray:
    """`np.pad(a, pad, mode="edge")` for a 2-D array, without np.pad's general machinery (3x slower
    on a field)."""
    h, w = a.shape
    out = np.empty((h + 2 * pad, w + 2 * pad), a.dtype)
    out[pad : pad + h, pad : pad + w] = a
    out[pad : pad + h, :pad] = a[:, :1]
    out[pad : pad + h, pad + w :] = a[:, -1:]
    out[:pad] = out[pad]
    out[pad + h :] = out[pad + h - 1]
    return out


def stain_peak(s: np.ndarray, coarse: np.ndarray | None = None) -> tuple[int, int, float]:
    """Row, column and value of the maximum of `blurred_stain(s)` for a stain map uint8 (H, W), the
    first in raster order among equal values, as long as the coarse map (`coarse_stain`) reads the
    cell of that maximum at most COARSE_MARGIN below its value.

    The full-size blur costs 1.2-1.6 ms a 320 x 240 field; it is computed only on the pixels of the
    coarse cells within COARSE_MARGIN of the coarse maximum and the blur's reach around them (exactly,
    as `blurred_stain` of the whole would give them), in about half the time on the data set's
    fields. Where the peak found there reads below the coarse maximum (the coarse map overstated
    something, e.g. a line along an edge), the cells within COARSE_MARGIN of the peak's value are
    searched again. A field with no stained mass (a flat map) is blurred whole. `coarse`:
    `coarse_stain(s)` where the caller has it.
    """
    coarse = coarse_stain(s) if coarse is None else coarse
    top = int(coarse.max())
    y, x, value = _peak_among(s, coarse >= top - COARSE_MARGIN)
    if value < top:  # the true peak, at least `value`, has its cell at least `value` - COARSE_MARGIN
        y, x, value = _peak_among(s, coarse >= int(value) - COARSE_MARGIN)
    return y, x, value


def _peak_among(s: np.ndarray, cells: np.ndarray) -> tuple[int, int, float]:
    """The whole blur's maximum over the full-size pixels of the bounding box of `cells` (bool, the
    coarse grid), blurred with the blur's reach around them."""
    h, w = s.shape
    f = COARSE_REDUCE
    ys, xs = np.nonzero(cells)
    iy0, iy1, ix0, ix1 = f * int(ys.min()), min(h, f * int(ys.max()) + f), f * int(xs.min()), min(w, f * int(xs.max()) + f)
    y0, y1, x0, x1 = max(0, iy0 - BLUR_REACH), min(h, iy1 + BLUR_REACH), max(0, ix0 - BLUR_REACH), min(w, ix1 + BLUR_REACH)
    inner = blurred_stain(s[y0:y1, x0:x1])[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0]
    ly, lx = np.unravel_index(int(inner.argmax()), inner.shape)
    return iy0 + int(ly), ix0 + int(lx), float(inner[ly, lx])


def locate_cell(rgb: np.ndarray) -> CellLocation:
    """Find the centre of the white cell: the densest stained mass, refined to its centroid."""
    s = stain_map(rgb)
    h, w = s.shape
    coarse = coarse_stain(s)
    py, px, peak = stain_peak(s, coarse)
    r = 48  # px: a large nucleus fits in 96 x 96 at the data set's scale
    y0, y1, x0, x1 = max(0, py - r), min(h, py + r), max(0, px - r), min(w, px + r)
    stained = s > STAIN_LEVEL
    mask = stained[y0:y1, x0:x1]
    if np.count_nonzero(mask) >= 20:
        ys, xs = np.nonzero(mask)
        cy, cx = float(ys.mean() + y0), float(xs.mean() + x0)
    else:
        cy, cx = float(py), float(px)
    iy, ix, r = int(round(cy)), int(round(cx)), EXTENT_RADIUS
    # Only the part of the square inside the image counts, so a magnified cell cut by the image's edge
    # can read small and stay unshrunk. Scaling the count up to the whole square would put 339 of the
    # data set's files (cells at its edges) above EXTENT_MAX.
    extent = float(np.sqrt(np.count_nonzero(stained[max(0, iy - r) : iy + r, max(0, ix - r) : ix + r])))
    return CellLocation(cy=cy, cx=cx, peak=peak, extent=extent, peak_yx=(py, px), coarse=coarse)


def locate_at_data_scale(rgb: np.ndarray, matched: Callable[[np.ndarray], np.ndarray | None] | None = None
                         ) -> tuple[np.ndarray, CellLocation]:
    """Find the cell in a field (H, W, 3), first shrinking a field more magnified than the data set's
    (see EXTENT_MAX). Returns the field as searched (`rgb` itself unless shrunk) and the cell in it.
    `matched`: the field with its white matched to the data set's (None where it cannot be), which then
    judges how far to shrink it: a cast that lifts (blue - green) over the whole background (magenta,
    green x0.8) had 70 of 71 TEST_SIMPLE cells read as 1.4-2.8x magnified, and shrunk for it."""
    field, loc, f = _shrunk(rgb)
    if f > 1 and matched is not None and (gauge := matched(rgb)) is not None:
        # The nucleus found, and its size read, in the data set's colours; the field is shrunk as it is
        _, loc, f = _shrunk(gauge)
        field = rgb if f == 1 else _reduced(rgb, f)
    return field, loc


def _shrunk(rgb: np.ndarray) -> tuple[np.ndarray, CellLocation, float]:
    """The field shrunk in steps of REDUCTIONS until its nucleus reads <= EXTENT_MAX (or the field would
    fall below MIN_REDUCED_SIDE), the cell in it and the factor (1.0: as it is)."""
    h, w, _ = rgb.shape
    field, loc, reduced = rgb, locate_cell(rgb), 1.0
    for f in REDUCTIONS:
        if loc.extent <= EXTENT_MAX or min(round(w / f), round(h / f)) < MIN_REDUCED_SIDE:
            break
        field, reduced = _reduced(rgb, f), f
        loc = replace(locate_cell(field), reduced_by=f)
    return field, loc, reduced


def _reduced(rgb: np.ndarray, f: float) -> np.ndarray:
    h, w, _ = rgb.shape
    return np.asarray(Image.fromarray(rgb).resize((round(w / f), round(h / f)), Image.BILINEAR))


def scale_channels(rgb: np.ndarray, gains: np.ndarray | tuple[float, float, float]) -> np.ndarray:
    """uint8 (H, W, 3) with each channel multiplied by its gain (3,), clipped to 0..255: a camera's
    exposure or white balance."""
    return np.clip(rgb.astype(np.float32) * np.asarray(gains, np.float32), 0, 255).astype(np.uint8)


def median_colour(rgb: np.ndarray) -> np.ndarray:
    """Per-channel median of uint8 (H, W, 3), as np.median(...).astype(uint8) gives it, from
    histograms: exact, and ~10x faster than sorting 77k values per channel."""
    flat = rgb.reshape(-1, 3)
    n = len(flat)
    out = np.empty(3, dtype=np.uint8)
    for c in range(3):
        cum = np.cumsum(np.bincount(flat[:, c], minlength=256))
        lo = int(np.searchsorted(cum, (n - 1) // 2 + 1))  # value of the lower middle element
        hi = int(np.searchsorted(cum, n // 2 + 1))  # value of the upper middle element
        out[c] = (lo + hi) // 2  # np.median averages the two; astype(uint8) floors
    return out


def background_colour(rgb: np.ndarray) -> np.ndarray:
    """Median colour of the image's one-pixel border, leaving out black fill (all channels < pixels.LIT_MIN).

    The border is background or red cells even when the user cropped tightly around the white cell,
    where the median of the whole image would be the cell's own colour.
    """
    ring = edge_ring(rgb)
    lit = ring[lit_mask(ring)]
    return median_colour((lit if len(lit) else ring)[None])


def crop_square(rgb: np.ndarray, cy: float, cx: float, window: int) -> np.ndarray:
    """Crop `window` x `window` centred at (cy, cx); outside the image is its background colour."""
    h, w, _ = rgb.shape
    top, left = int(round(cy)) - window // 2, int(round(cx)) - window // 2
    if top >= 0 and left >= 0 and top + window <= h and left + window <= w:  # inside: no fill to find
        return rgb[top : top + window, left : left + window].copy()
    fill = background_colour(rgb)
    out = np.empty((window, window, 3), dtype=np.uint8)
    for c in range(3):  # channel by channel: numpy broadcasts a (3,) colour over the square many times slower
        out[..., c] = fill[c]
    sy0, sx0 = max(0, top), max(0, left)
    sy1, sx1 = min(h, top + window), min(w, left + window)
    if sy1 > sy0 and sx1 > sx0:
        out[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = rgb[sy0:sy1, sx0:sx1]
    return out


def resize(rgb: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    hh, ww = spec.input_hw
    return np.asarray(Image.fromarray(rgb).resize((ww, hh), Image.BILINEAR))


def prepare(rgb: np.ndarray, spec: PreprocessSpec, rescale: bool = True) -> np.ndarray:
    """Source RGB uint8 (H, W, 3) -> model-sized uint8 (h, w, 3) as `spec` says. `rescale=False`
    never shrinks a magnified field (benchmarks compare the two)."""
    if spec.mode == "frame":  # the whole field: no need to find the cell
        return resize(unframed(rgb)[0], spec)
    return prepare_located(rgb, spec, rescale)[0]


def prepare_located(
    rgb: np.ndarray, spec: PreprocessSpec, rescale: bool = True,
    matched: Callable[[np.ndarray], np.ndarray | None] | None = None,
) -> tuple[np.ndarray, CellLocation, np.ndarray]:
    """`prepare`, also returning where the cell was found and the field it was found in (`rgb`
    unless shrunk or cut out of a flat frame, `unframed`; `loc.offset_yx` says where it lies in
    the photo): the screening needs both, in both modes. `matched`: `locate_at_data_scale`'s."""
    photo_hw = rgb.shape[:2]
    rgb, offset = unframed(rgb)
    field, loc = located_field(rgb, spec, rescale, matched)
    loc = replace(loc, offset_yx=offset, photo_hw=photo_hw) if rgb.shape[:2] != photo_hw else loc
    if spec.mode == "frame":
        return resize(rgb, spec), loc, field
    return resize(crop_square(field, loc.cy, loc.cx, spec.window), spec), loc, field


def located_field(rgb: np.ndarray, spec: PreprocessSpec, rescale: bool = True,
                  matched: Callable[[np.ndarray], np.ndarray | None] | None = None) -> tuple[np.ndarray, CellLocation]:
    """The field `prepare` crops from (`rgb` unless a magnified one is shrunk) and the cell in it,
    without the crop."""
    if spec.mode == "frame":  # the network sees the whole field as it is: nothing is shrunk
        return rgb, locate_cell(rgb)
    return locate_at_data_scale(rgb, matched) if rescale else (rgb, locate_cell(rgb))


def to_input(batch: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """uint8 (N, h, w, 3) -> float32 (N, 3, h, w), scaled to 0..1 then normalised by spec."""
    x = batch.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    mean = np.asarray(spec.mean, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(spec.std, dtype=np.float32).reshape(1, 3, 1, 1)
    return (x - mean) / std


# Views a prediction averages over: the 4 rotations by 90 degrees. Out of fold they read as all 8
# dihedral views did (seven recipes, 1,092 cell decisions: as many cells right, NLL +0.0015; BENCHMARKS,
# "Test-time views") at about half the network's time.
TEST_TIME_VIEWS = 4


def dihedral_views(batch: np.ndarray, views: int = 8) -> np.ndarray:
    """uint8 (N, h, w, 3) -> (views * N, h, w, 3): the 4 rotations by 90 degrees, then (views=8) each
    of them mirrored; views=4 gives the rotations alone, the first half of the 8.

    A cell has no orientation, so averaging over these views (test-time augmentation) removes
    the network's leftover orientation preferences. View v of image i is at index v * N + i.
    """
    if views not in (4, 8):
        raise ValueError(f"views must be 4 (the rotations) or 8 (rotations and mirrors), not {views}")
    n, h, w, c = batch.shape
    # Each pixel's c bytes as one element: the rotated copies then move whole pixels (2x faster).
    px = np.ascontiguousarray(batch).view(np.dtype((np.void, c * batch.itemsize))).reshape(n, h, w)
    rotated = [np.rot90(px, k, axes=(1, 2)) for k in range(4)]
    if views == 8:
        rotated += [v[:, :, ::-1] for v in rotated]
    return np.concatenate(rotated).view(batch.dtype).reshape(views * n, h, w, c)
