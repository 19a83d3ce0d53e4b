"""Image files to RGB arrays: `load_image` decodes any file a microscope camera writes into RGB uint8 (H, W, 3)."""

from __future__ import annotations

import functools
import io
import os
import re
import stat
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from wbc.errors import BadImageError
from wbc.pixels import DATA_WHITE


# Larger images are refused before decoding. 50 MP takes a phone camera's 48 MP frame (8,000 x
# 6,000), which `wbc predict` read in 3.2 s at a peak of 0.63 GB (0.53 GB at 39 MP).
MAX_PIXELS = 50_000_000
THUMBNAIL_AREA = 0.3  # a TIFF page under this share of the largest page's area (half its sides: 0.25) is a preview


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
    except Exception as e:  # Pillow's EXIF parser raises struct.error, SyntaxError, ValueError, KeyError...
        if isinstance(e, MemoryError) or not _raised_in_pillow(e):
            raise  # not a damaged EXIF block: out of memory, or a fault of this code's


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
