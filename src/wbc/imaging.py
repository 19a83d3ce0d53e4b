"""Reading images and turning them into network input: one path for training, predict and the app.

Only NumPy and Pillow, so inference needs no PyTorch. The steps are:
`load_image` (any file a microscope camera writes -> RGB uint8 (H, W, 3)),
`prepare` (find the white cell by its stained nucleus, shrinking a field more magnified than the
data set's first, and crop a fixed window around it -> uint8 (S, S, 3)) and `to_input`
(uint8 (N, S, S, 3) -> normalised float32 (N, 3, S, S)).
"""

from __future__ import annotations

import functools
import io
import os
import re
import stat
import struct
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from wbc.errors import BadImageError

# Larger images are refused before decoding. 50 MP takes a phone camera's 48 MP frame (8,000 x
# 6,000), which `wbc predict` read in 3.2 s at a peak of 0.63 GB (0.53 GB at 39 MP).
MAX_PIXELS = 50_000_000
THUMBNAIL_AREA = 0.3  # a TIFF page under this share of the largest page's area (half its sides: 0.25) is a preview


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
    stained_fraction: float  # share of the image whose (blue - green) exceeds STAIN_LEVEL
    extent: float = 0.0  # px: sqrt of the stained area in the (2 EXTENT_RADIUS)^2 square around (cy, cx)
    reduced_by: float = 1.0  # the field was shrunk by this factor before it was searched
    # Kept for the screening's search for a second cell (None: not kept): where the blurred stain peaks,
    # (y, x) px, which lies on the nucleus where its centroid (cy, cx) may not (a ring), and the field's
    # `coarse_stain`.
    peak_yx: tuple[int, int] | None = None
    coarse: np.ndarray | None = field(default=None, compare=False, repr=False)
    # (top, left) px of the photo as given cut off as a flat frame before the search (`frame_margins`):
    # where the field searched starts in the photo.
    offset_yx: tuple[int, int] = (0, 0)


# Ruifrok & Johnston stain vectors in optical density (rows: hematoxylin, eosin, DAB): the stain
# jitter of training (wbc.augment) and the stain shifts of the robustness test use the same ones.
OD_FROM_HED = ((0.65, 0.70, 0.29), (0.07, 0.99, 0.11), (0.27, 0.57, 0.78))

# The data set's white: per channel, the median over TRAIN and TEST of each file's 99th percentile of
# its lit pixels (background between the red cells; range 209-244 over the 0.1th-99.9th percentiles).
DATA_WHITE = (224.0, 224.0, 231.0)

STAIN_LEVEL = 60.0  # (blue - green) of a Romanowsky-stained (purple) nucleus; red cells sit near 20
LIT_MIN = 24  # a pixel darker than this in every channel is black fill (a rotated view's corners), not the field

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


# The largest file read (bytes): a 50 MP photo (MAX_PIXELS) in 16-bit RGBA, uncompressed, is 400 MB. A larger one
# (a whole-slide scan) was read whole into memory, only to be refused as too large (6 GB: 17 s, or a MemoryError
# that lost every result of the batch).
MAX_FILE_BYTES = 450_000_000
STREAM_CHUNK = 1 << 20  # bytes read at a time from a pipe: read(n) reserves n bytes before it reads any
# The formats decoded, as Pillow names them: those the tool names (JPEG, PNG, BMP, TIFF, WebP, GIF; JPEG's opener
# also opens a camera's MPO), and the plain raster formats a named file may be in (PPM, TGA, PCX, SGI, QOI, JPEG 2000).
# Pillow identifies a file by its bytes, whatever its name; some of its other plugins raise what no caller expects
# for a damaged file (a DDS's NotImplementedError, a SPIDER's AttributeError), or hand a PostScript file to
# Ghostscript.
FORMATS = ("JPEG", "PNG", "BMP", "TIFF", "WEBP", "GIF", "PPM", "TGA", "PCX", "SGI", "QOI", "JPEG2000")


def read_source(source: str | Path | bytes, label: str) -> bytes:
    """The bytes of an image file (path or bytes; a pipe, as a shell's <(...) gives, is read too); BadImageError
    naming it as `label` where it cannot be read or holds more than MAX_FILE_BYTES (a file is not read then, and a
    stream, /dev/zero for one, is read no further)."""
    if isinstance(source, bytes):
        return source
    too_large = (f"{label}: larger than any image this tool reads (limit {MAX_FILE_BYTES // 1_000_000} MB): crop the "
                 "field around the cell first")
    try:
        if stat.S_ISREG((info := os.stat(source)).st_mode):
            if info.st_size > MAX_FILE_BYTES:
                raise BadImageError(f"{too_large} ({info.st_size / 1e9:.1f} GB)")
            return Path(source).read_bytes()
        chunks, total = [], 0
        with open(source, "rb") as f:
            while chunk := f.read(STREAM_CHUNK):
                chunks.append(chunk)
                total += len(chunk)
                if total > MAX_FILE_BYTES:
                    raise BadImageError(too_large)
        return b"".join(chunks)
    except OSError as e:
        raise BadImageError(f"{label}: cannot be read ({e.strerror or e})") from e
    except MemoryError as e:  # one file too large for this machine's memory must not end a batch
        raise BadImageError(f"{label}: not enough memory to read it: crop the field around the cell, or free "
                            "memory") from e


def load_image(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """Decode an image file (path or bytes) into RGB uint8 (H, W, 3).

    Handles grayscale, 16-bit, palette, RGBA/LA (composited on the data set's white), CMYK and EXIF
    rotation. Raises BadImageError naming the file for anything unreadable, truncated or too large.
    """
    label = name or (str(source) if not isinstance(source, bytes) else "uploaded image")
    raw = read_source(source, label)
    if not raw:
        raise BadImageError(f"{label}: the file is empty")
    try:
        with warnings.catch_warnings():
            # Pillow's own warnings (a corrupt EXIF block, say) would reach the user as stray lines
            # naming no file; the image still decodes, and what cannot be read raises below.
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw), formats=FORMATS)
            if (pages := _pages(img)) > 1:
                kind = "images (pages)" if img.format == "TIFF" else "frames (an animation)"
                raise BadImageError(f"{label}: holds {pages} {kind}; this tool reads one image a file (only one "
                                    "would be read, the others ignored): save each as its own file")
            w, h = img.size  # the page to read's
            if w * h > MAX_PIXELS:
                raise BadImageError(
                    f"{label}: {w}x{h} pixels is too large (limit {MAX_PIXELS // 1_000_000} MP); "
                    "crop the field around the cell first"
                )
            sixteen_bit_colour = _sixteen_bit_colour(img)  # the tiles say so only before loading
            img.load()
            _upright(img)
            if sixteen_bit_colour:
                _refuse_unscaled(img, label)
            return _to_rgb(_in_srgb(img))
    except BadImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # Pillow refuses these (over 89 MP) before its size can be read here: said as the 50 MP limit is.
        found = re.search(r"(\d+) pixels", str(e))
        size = f"{int(found.group(1)) / 1e6:.0f} MP" if found else "the image"
        raise BadImageError(f"{label}: {size} is too large (limit {MAX_PIXELS // 1_000_000} MP); "
                            "crop the field around the cell first") from e
    except UnidentifiedImageError as e:
        raise BadImageError(f"{label}: {_unreadable_kind(raw)}") from e
    except (OSError, SyntaxError, ValueError, TypeError, EOFError, KeyError, IndexError, struct.error) as e:
        # Pillow's decoders raise any of these for a damaged file (a fuzzed TIFF's tags: TypeError)
        raise BadImageError(f"{label}: damaged or truncated image ({e})") from e
    except MemoryError as e:
        raise BadImageError(f"{label}: not enough memory to decode it: crop the field around the cell, or free "
                            "memory") from e
    except Exception as e:
        if not _raised_in_pillow(e):  # a fault of this tool's own is no fault of the file
            raise
        # A plugin's own error for one damaged file (an AttributeError) must not end a batch
        raise BadImageError(f"{label}: damaged image, which the decoder cannot read ({type(e).__name__}: {e})") from e


def _raised_in_pillow(e: BaseException) -> bool:
    """Whether `e` was raised in Pillow's code (the innermost frame of its traceback is in a PIL module)."""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and str(tb.tb_frame.f_globals.get("__name__", "")).startswith("PIL")


def _in_srgb(img: Image.Image) -> Image.Image:
    """`img` converted to sRGB where it carries an ICC colour profile of another space (a phone's Display P3, a
    linear camera profile, a CMYK file's): its numbers taken as sRGB, as the training images' are (none carries a
    profile), would shift the stain's colours, which a browser shows converted. As it is without one, with an sRGB
    one, or with a profile that cannot be read (its numbers then taken as sRGB). RGB and RGBA are converted in
    place: a 48 MP photo's copy took 190 MB more."""
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in ("RGB", "RGBA", "CMYK", "P"):
        return img
    from PIL import ImageCms  # (a Pillow built without littlecms raises ImportError at the first call, below)

    if img.mode == "P":
        img = img.convert("RGBA")
    try:
        transform = _to_srgb(icc, img.mode)
        if transform is None:
            return img
        if img.mode == "CMYK":
            return ImageCms.applyTransform(img, transform)
        ImageCms.applyTransform(img, transform, inPlace=True)
        return img
    except (ImageCms.PyCMSError, ImportError, OSError, ValueError, TypeError):
        return img


@functools.lru_cache(maxsize=8)
def _to_srgb(icc: bytes, mode: str) -> Any:
    """The transform from the ICC profile `icc` to sRGB for images of `mode`, or None where it changes no colour by
    more than 1 (an sRGB profile, as most cameras embed: converting a 12 MP photo took 0.35 s). Raises what
    ImageCms raises for a profile it cannot read."""
    from PIL import ImageCms

    transform = ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"), mode,
                                        "RGBA" if mode == "RGBA" else "RGB",
                                        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    if mode == "CMYK":
        return transform
    probe = Image.fromarray(_COLOUR_PROBE).convert(mode)
    moved = np.asarray(ImageCms.applyTransform(probe, transform), dtype=np.int16)
    return None if np.abs(moved - np.asarray(probe, dtype=np.int16)).max() <= 1 else transform


# Every 17th level of each channel, 16 x 16 x 16 colours: where a profile moves none of them by more than 1, it is sRGB.
_COLOUR_PROBE = np.stack(np.meshgrid(*(np.arange(0, 256, 17, dtype=np.uint8),) * 3, indexing="ij"), -1).reshape(64, 64, 3)


def _upright(img: Image.Image) -> None:
    """Turn `img` (loaded) upright in place as its EXIF orientation says; a damaged EXIF block (cut short, or
    with a header Pillow cannot parse: struct.error, SyntaxError) leaves it as stored, since its pixels decode
    and only the turn is unknown. In place: a copy of every photo otherwise."""
    try:
        ImageOps.exif_transpose(img, in_place=True)
    except Exception:  # Pillow's EXIF parser raises struct.error, SyntaxError, ValueError, KeyError...
        pass


def _pages(img: Image.Image) -> int:
    """How many full images `img` (opened, not loaded) holds, left at the one to read: a multi-page
    TIFF's pages of at least THUMBNAIL_AREA of its largest page's area (a smaller page is a thumbnail or
    preview, such as a copy at half the sides; where one comes first, the largest page is read), an
    animation's frames. JPEG's MPO second pictures (a camera's preview or depth map) are not counted:
    the photo is the first."""
    try:
        n = getattr(img, "n_frames", 1)
        if n <= 1 or img.format == "MPO":
            return 1
        if img.format != "TIFF":
            return n
        areas = []
        for i in range(n):
            img.seek(i)
            areas.append(img.size[0] * img.size[1])
        largest = max(areas)
        img.seek(areas.index(largest))
        return sum(a >= THUMBNAIL_AREA * largest for a in areas)
    except MemoryError:
        raise
    except Exception as e:  # Pillow raises TypeError, EOFError, struct.error... for a damaged later page
        if not _raised_in_pillow(e):  # a fault of this tool's own is no fault of the file
            raise
        raise ValueError("a page after the first is damaged or cut short") from e


def _sixteen_bit_colour(img: Image.Image) -> bool:
    """Whether Pillow decodes `img` (opened, not loaded) from 16 bits a colour channel (PNG, TIFF):
    by its tiles' raw modes, such as "RGB;16B". Not 16-bit gray ("I;16") nor 16 bits a pixel ("BGR;16",
    a BMP's 5-6 bits a channel)."""
    for tile in img.tile:
        raw = tile.args[0] if isinstance(tile.args, tuple) and tile.args else tile.args
        if isinstance(raw, str) and raw.startswith(("RGB;16", "RGBA;16", "RGBX;16")):
            return True
    return False


def _refuse_unscaled(img: Image.Image, label: str) -> None:
    """BadImageError for a 16-bit colour `img` (RGB or RGBA, decoded to its top 8 bits) whose values,
    where it is not wholly transparent, stay below 64: a 10-14-bit camera's data saved unscaled leaves
    those bits nearly all 0, which would read as a black photo."""
    a = np.asarray(img)
    colour = a[..., :3][a[..., 3] > 0] if a.ndim == 3 and a.shape[2] == 4 else a[..., :3]
    top = int(colour.max()) if colour.size else 0
    if top < 64:
        raise BadImageError(f"{label}: a 16-bit colour image whose values stay below {256 * (top + 1):,} "
                            "of 65,535 (a 10-, 12- or 14-bit camera's data saved without scaling, or a nearly black "
                            "photo): its top 8 bits, which this tool reads, show almost nothing; save it scaled to "
                            "the full 16-bit range, or as an 8-bit PNG or JPEG")


def _unreadable_kind(raw: bytes) -> str:
    """Why Pillow could not identify `raw`, as specifically as its first bytes tell."""
    if raw[:4] in (b"II*\x00", b"MM\x00*"):
        return ("a TIFF this tool cannot decode (32-bit floating-point samples, or a layout Pillow does not read): "
                "save it as an 8- or 16-bit RGB TIFF, PNG or JPEG")
    if raw[4:8] == b"ftyp" and raw[8:12] in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
        return "a HEIC/HEIF photo (as phones save them), which this tool does not read: export it as JPEG or PNG"
    return ("not a readable image (damaged, or not a picture in a format this tool reads: JPEG, PNG, BMP, TIFF, "
            "WebP, GIF)")


def _to_rgb(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit or float grayscale: stretch the used range onto 0..255.
        a = np.asarray(img, dtype=np.float64)
        finite = np.isfinite(a)  # a float TIFF's NaN or inf pixels (0 here) must not set the range
        used = a[finite] if not finite.all() else a
        lo, hi = (float(used.min()), float(used.max())) if used.size else (0.0, 0.0)
        a = np.where(finite, (a - lo) / (hi - lo) * 255.0, 0.0) if hi > lo else np.zeros_like(a)
        g = a.astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2)
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # On the data set's white, not pure white: a transparent background is then a lit field like
        # the training images', not clipped highlights that would mark the photo overexposed.
        # A gray one on a gray of that level: the white's tint would give it colour it does not have.
        white = (round(DATA_WHITE[1]),) * 3 if img.mode in ("LA", "La") else tuple(round(v) for v in DATA_WHITE)
        rgba = img.convert("RGBA")
        ground = Image.new("RGBA", rgba.size, (*white, 255))
        img = Image.alpha_composite(ground, rgba)
    return np.asarray(img if img.mode == "RGB" else img.convert("RGB"), dtype=np.uint8)


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
    return CellLocation(cy=cy, cx=cx, peak=peak, stained_fraction=float(np.count_nonzero(stained) / stained.size),
                        extent=extent, peak_yx=(py, px), coarse=coarse)


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


def edge_ring(rgb: np.ndarray) -> np.ndarray:
    """The image's one-pixel border (2 (H + W) - 4, ...), each pixel once: (H, W, 3) colours or an (H, W) mask."""
    return np.concatenate([rgb[0], rgb[-1], rgb[1:-1, 0], rgb[1:-1, -1]])


def background_colour(rgb: np.ndarray) -> np.ndarray:
    """Median colour of the image's one-pixel border, leaving out black fill (all channels < LIT_MIN).

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


def _resize(rgb: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    hh, ww = spec.input_hw
    return np.asarray(Image.fromarray(rgb).resize((ww, hh), Image.BILINEAR))


def prepare(rgb: np.ndarray, spec: PreprocessSpec, rescale: bool = True) -> np.ndarray:
    """Source RGB uint8 (H, W, 3) -> model-sized uint8 (h, w, 3) as `spec` says. `rescale=False`
    never shrinks a magnified field (benchmarks compare the two)."""
    if spec.mode == "frame":  # the whole field: no need to find the cell
        return _resize(unframed(rgb)[0], spec)
    return prepare_located(rgb, spec, rescale)[0]


# A flat frame round a photo: a screenshot's or a page's margin, a viewer's border, maybe with a caption, a
# title or a page's text in it. JPEG leaves a flat area within a few levels of its colour.
FRAME_TOL = 8  # uint8 levels a frame's pixels may stray from its colour (`_frame_colour`)
FRAME_SIDE_SHARE = 0.9  # a side is a frame's where its outermost line is this much one colour (a smear's: red cells, ground)
MIN_FRAME_PX = 4  # thinner flat edges are left: a clipped row or two of an overexposed field
# The box's own edge must be mostly unlike the frame: a photo against a page, not a photo's ground that happens
# to be the page's colour, or an overexposed field's clipped white round its cells.
BOX_EDGE_SHARE = 0.9
MIN_PHOTO_SIDE = 32  # px: a box smaller than this is no photo
# px: a frame on some sides only is not cut off where less than this would be left: the screening's smallest
# photo (screening.MIN_SIDE_PX). A crop padded out to its size with a flat fill where the photo ends is read whole,
# as before: cut, 242 of TEST's 2,487 files cropped to 110 px round their cell (those near the photo's edge)
# were refused as too small. A small photo with a page all round it is cut, and told that it is too small.
MIN_UNFRAMED_SIDE = 80
FRAME_STEP_PX = 1000  # the page's mask is read every (longest side // this)-th px: a 12 MP photo's took 0.3 s
BLEND_PX = 3  # px a page enlarged with its photo (a HiDPI screenshot) blends the two over, each side of the edge
FRAME_PASSES = 3  # frames within frames: a browser's grey bar, then its white page


def _longest_run(on: np.ndarray) -> tuple[int, int]:
    """(start, stop) of the longest run of True in a 1-D bool array ((0, 0) where none is)."""
    padded = np.concatenate([[False], on, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    if not len(edges):
        return 0, 0
    starts, stops = edges[::2], edges[1::2]
    i = int(np.argmax(stops - starts))
    return int(starts[i]), int(stops[i])


def frame_margins(rgb: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) px of a lit, flat frame round the photo (H, W, 3), or zeros: on one side
    or more, whose outermost line is FRAME_SIDE_SHARE one lit colour (the first such side gives it). The photo
    is a box whose edge is all unlike the frame's colour and whose inside is not flat (a solid title bar
    is no photo): the longest band of rows at least half unlike the frame, then of columns in it, then of
    rows again within those (a caption's or a page's text is thinner than half the photo, and apart from it
    by a line of page), or the same from the columns first; the larger of the two. Black (unlit) fill is
    left: it is the data set's own, which the crops were trained with; so is a stained colour (a slide's
    blue or purple: `screening.STAINED_EDGE` says what to do)."""
    h, w, _ = rgb.shape
    colour = next((c for c in map(_frame_colour, (rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1])) if c is not None), None)
    if colour is None:
        return 0, 0, 0, 0
    # A large photo's page is read on a grid (`step` px; exact up to 1999 px a side): its box then lies within a
    # step of the photo's edge, a few px of 4000.
    step = max(1, max(h, w) // FRAME_STEP_PX)
    grid = rgb[::step, ::step]
    off = np.zeros(grid.shape[:2], bool)  # (h, w) of the grid: True off the frame's colour
    for c in range(3):  # channel by channel, in uint8: no int16 copy of the photo (a 720 x 560 one took 18 ms)
        lo, hi = max(0, int(colour[c]) - FRAME_TOL), min(255, int(colour[c]) + FRAME_TOL)
        off |= (grid[..., c] < lo) | (grid[..., c] > hi)
    box = _largest_photo(grid, off, MIN_PHOTO_SIDE / step)
    if box is None:
        return 0, 0, 0, 0
    y0, y1, x0, x1 = box
    # One photo on a page, not one of several (an atlas plate's panels: cut to one, the others went unseen); a
    # box a quarter of its size or less is a page's furniture (a browser's address box at 2x, 48 px tall).
    rest = off.copy()
    rest[y0:y1, x0:x1] = False
    other = _largest_photo(grid, rest, MIN_PHOTO_SIDE / step)
    if other is not None and _area(other) > _area(box) / 4:
        return 0, 0, 0, 0
    y0, x0, y1, x1 = y0 * step, x0 * step, min(h, y1 * step), min(w, x1 * step)
    margins = (y0, h - y1, x0, w - x1)
    if not all(margins) and min(y1 - y0, x1 - x0) < MIN_UNFRAMED_SIDE:
        return 0, 0, 0, 0
    return tuple(m if m >= MIN_FRAME_PX else 0 for m in margins)  # type: ignore[return-value]


def near_colour(pixels: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Which pixels (..., 3) lie within FRAME_TOL of `colour` (..., 3; broadcast) in every channel."""
    return np.abs(pixels.astype(np.int16) - colour.astype(np.int16)).max(axis=-1) <= FRAME_TOL


def _frame_colour(line: np.ndarray) -> np.ndarray | None:
    """The colour (3,) int16 of a frame whose side's outermost line (L, 3) this is, where FRAME_SIDE_SHARE of
    the line lies within FRAME_TOL of it and it is lit and not a stain's; else None."""
    near = line[::4].astype(np.int16)  # every 4th pixel tells a flat line from a photo's, at a fraction of the time
    n = len(near)
    # A line FRAME_SIDE_SHARE one colour has it at one of three pixels spread along it (a median costs 6x as much);
    # the three tried at once.
    candidates = near[[n // 4, n // 2, 3 * n // 4]]  # (3, 3)
    shares = near_colour(near[None], candidates[:, None]).mean(axis=1)
    if shares.max() < FRAME_SIDE_SHARE:
        return None
    colour = candidates[int(shares.argmax())]
    stained = int(stain_map(colour.astype(np.uint8)[None, None])[0, 0]) > STAIN_LEVEL
    return colour if colour.max() >= LIT_MIN and not stained else None


def _largest_photo(rgb: np.ndarray, off: np.ndarray, least: float) -> tuple[int, int, int, int] | None:
    """The larger of the two boxes (y0, y1, x0, x1) `_photo_box` reads off `off` (H, W), rows or columns
    first, that is a photo (`_is_photo`, `least` px a side or more); None where neither is."""
    x0, x1, y0, y1 = _photo_box(off.T)  # the columns first
    boxes = [box for box in (_photo_box(off), (y0, y1, x0, x1)) if _is_photo(rgb, off, box, least)]
    return max(boxes, key=_area) if boxes else None


def _blended_edge(off: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """Whether the box's edge is a photo's blended into its page: the ring BLEND_PX inside it is BOX_EDGE_SHARE
    off the page's colour, and the line BLEND_PX outside each side that has room is as much the page's (a
    cell's blob in a clipped field, its box cut through it, has it off on both sides)."""
    y0, y1, x0, x1 = box
    b = BLEND_PX
    if min(y1 - y0, x1 - x0) <= 4 * b or edge_ring(off[y0 + b : y1 - b, x0 + b : x1 - b]).mean() < BOX_EDGE_SHARE:
        return False
    h, w = off.shape
    outside = [line for line, room in ((off[y0 - b, x0:x1], y0 >= b), (off[min(y1 + b - 1, h - 1), x0:x1], y1 + b <= h),
                                       (off[y0:y1, x0 - b], x0 >= b), (off[y0:y1, min(x1 + b - 1, w - 1)], x1 + b <= w))
               if room]
    return bool(outside) and all(line.mean() <= 1 - BOX_EDGE_SHARE for line in outside)


def _area(box: tuple[int, int, int, int]) -> int:
    return (box[1] - box[0]) * (box[3] - box[2])


def _photo_box(off: np.ndarray) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of the box `frame_margins` reads off the mask `off` (H, W), rows first."""
    rows = off.sum(axis=1)
    y0, y1 = _longest_run(rows >= 0.5 * rows.max())
    x0, x1 = _longest_run(off[y0:y1].sum(axis=0) >= 0.5 * (y1 - y0))
    y0, y1 = _longest_run(off[:, x0:x1].sum(axis=1) >= 0.5 * (x1 - x0))
    return y0, y1, x0, x1


def _is_photo(rgb: np.ndarray, off: np.ndarray, box: tuple[int, int, int, int], least: float) -> bool:
    y0, y1, x0, x1 = box
    if min(y1 - y0, x1 - x0) < least:
        return False
    if edge_ring(off[y0:y1, x0:x1]).mean() < BOX_EDGE_SHARE and not _blended_edge(off, box):
        return False
    inside = rgb[y0:y1:2, x0:x1:2]  # every 4th pixel: a photo's spread shows in it as well
    return any(int(inside[..., c].max()) - int(inside[..., c].min()) > 2 * FRAME_TOL for c in range(3))


def unframed(rgb: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """The photo (H, W, 3) without its flat frames (`frame_margins`, cut again from what is left, up to
    FRAME_PASSES times; itself where it has none) and the (top, left) px cut off in all."""
    oy = ox = 0
    for _ in range(FRAME_PASSES):
        top, bottom, left, right = frame_margins(rgb)
        if not (top or bottom or left or right):
            break
        h, w, _ = rgb.shape
        rgb, oy, ox = rgb[top : h - bottom, left : w - right], oy + top, ox + left
    return rgb, (oy, ox)


def prepare_located(
    rgb: np.ndarray, spec: PreprocessSpec, rescale: bool = True,
    matched: Callable[[np.ndarray], np.ndarray | None] | None = None,
) -> tuple[np.ndarray, CellLocation, np.ndarray]:
    """`prepare`, also returning where the cell was found and the field it was found in (`rgb`
    unless shrunk or cut out of a flat frame, `unframed`; `loc.offset_yx` says where it lies in
    the photo): the screening needs both, in both modes. `matched`: `locate_at_data_scale`'s."""
    rgb, offset = unframed(rgb)
    field, loc = located_field(rgb, spec, rescale, matched)
    loc = replace(loc, offset_yx=offset) if offset != (0, 0) else loc
    if spec.mode == "frame":
        return _resize(rgb, spec), loc, field
    return _resize(crop_square(field, loc.cy, loc.cx, spec.window), spec), loc, field


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
