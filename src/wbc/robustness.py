"""Images from other laboratories, simulated: named shifts of stain, light, scale, focus,
compression and framing, applied to the source image before preprocessing.

No data from other laboratories is available, so these shifts stand in for them; each is a
deterministic function of the image so every model meets exactly the same test.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from wbc.imaging import (
    PreprocessSpec,
    crop_square,
    locate_cell,
    median_colour,
    prepare,
    scale_channels,
)
from wbc.photo_checks import Screening
from wbc.pixels import OD_FROM_HED, lit_mask

Shift = Callable[[np.ndarray], np.ndarray]

_OD_FROM_HED = np.array(OD_FROM_HED)
_HED_FROM_OD = np.linalg.inv(_OD_FROM_HED)


def stain(h: float, e: float) -> Shift:
    """Multiply the hematoxylin and eosin optical densities by h and e (Ruifrok-Johnston HED)."""
    def f(rgb: np.ndarray) -> np.ndarray:
        od = -np.log(np.clip(rgb.astype(np.float64) / 255.0, 1 / 255, 1))
        hed = od @ _HED_FROM_OD
        hed[..., 0] *= h
        hed[..., 1] *= e
        return np.clip(np.exp(-(hed @ _OD_FROM_HED)) * 255.0, 0, 255).astype(np.uint8)
    return f


def brightness(k: float) -> Shift:
    return lambda rgb: scale_channels(rgb, (k, k, k))


def contrast(k: float) -> Shift:
    """Another camera's contrast: the lit pixels scaled by k about their mean. The black fill of the
    data set's rotated views is left black: it comes from the data set's augmentation, not from a
    camera (scaling it too turned it grey, which no flat photo has)."""
    def f(rgb: np.ndarray) -> np.ndarray:
        lit = lit_mask(rgb)
        a = rgb.astype(np.float32)
        mean = a[lit].mean() if lit.any() else a.mean()
        out = np.clip((a - mean) * k + mean, 0, 255).astype(np.uint8)
        out[~lit] = rgb[~lit]
        return out
    return f


def scale(k: float) -> Shift:
    """Another magnification: the whole field resized by k."""
    def f(rgb: np.ndarray) -> np.ndarray:
        h, w, _ = rgb.shape
        return np.asarray(Image.fromarray(rgb).resize((round(w * k), round(h * k)), Image.BILINEAR))
    return f


def blur(sigma: float) -> Shift:
    return lambda rgb: np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(sigma)))


def jpeg(quality: int) -> Shift:
    def f(rgb: np.ndarray) -> np.ndarray:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
        return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return f


def pad(px: int) -> Shift:
    """A wider field: a border of background colour around the image."""
    return lambda rgb: _pad(rgb, px)


def _pad(rgb: np.ndarray, px: int) -> np.ndarray:
    fill = median_colour(rgb)
    h, w, _ = rgb.shape
    out = np.empty((h + 2 * px, w + 2 * px, 3), np.uint8)
    out[:] = fill
    out[px : px + h, px : px + w] = rgb
    return out


def cell_crop(side: int) -> Shift:
    """A user's tight crop: only a side x side square around the white cell is uploaded."""
    def f(rgb: np.ndarray) -> np.ndarray:
        loc = locate_cell(rgb)
        return crop_square(rgb, loc.cy, loc.cx, side)
    return f


SHIFTS: dict[str, Shift] = {
    "clean": lambda rgb: rgb,
    "stain: more hematoxylin (H x1.3)": stain(1.3, 1.0),
    "stain: less hematoxylin (H x0.75)": stain(0.75, 1.0),
    "stain: more eosin (E x1.3)": stain(1.0, 1.3),
    "stain: less eosin (E x0.75)": stain(1.0, 0.75),
    "brightness x1.2": brightness(1.2),
    "brightness x0.8": brightness(0.8),
    "contrast x0.7": contrast(0.7),
    "contrast x1.3": contrast(1.3),
    "scale x0.7": scale(0.7),
    "scale x1.5": scale(1.5),
    "blur sigma 1.5 px": blur(1.5),
    "JPEG quality 30": jpeg(30),
    "framing: 80 px wider field": pad(80),
    "framing: 110 px crop around the cell": cell_crop(110),
}

def white_balance(red: float, blue: float) -> Shift:
    """Another camera's white balance: the red and blue channels scaled against green."""
    return lambda rgb: scale_channels(rgb, (red, 1.0, blue))


# Beyond the range, reported by benchmarks/robustness.py only (the ablations keep the 14 above,
# so their rows stay comparable). At x3 the pipeline shrinks the field back first
# (wbc.imaging.locate_at_data_scale); nothing enlarges a field at x0.5. The white-balance, dim and
# flat fields are what the screening's second look (wbc.white_balance.match_data_white) is for; nothing
# undoes overexposure, whose clipped highlights are lost.
EXTRA_SHIFTS: dict[str, Shift] = {
    "scale x0.5": scale(0.5),
    "scale x3 (shrunk first)": scale(3.0),
    "white balance: warm (R x1.1, B x0.85)": white_balance(1.1, 0.85),
    "white balance: cool (R x0.9, B x1.1)": white_balance(0.9, 1.1),
    "white balance: halogen (R x1.25, B x0.65)": white_balance(1.25, 0.65),  # no daylight filter: red clips
    "brightness x0.6": brightness(0.6),
    "brightness x0.5": brightness(0.5),
    "brightness x0.3": brightness(0.3),
    "brightness x1.4 (overexposed)": brightness(1.4),
    "contrast x0.5": contrast(0.5),
    "stain: pale (H x0.6, E x0.6)": stain(0.6, 0.6),
}
# Other cameras' and stainings' colours, for benchmarks/screening.py.
COLOUR_SHIFTS: dict[str, Shift] = {k: v for k, v in EXTRA_SHIFTS.items() if not k.startswith("scale")}


def run_shifts(
    predict: Callable[[np.ndarray], np.ndarray],
    images: Sequence[np.ndarray],
    y: np.ndarray,
    cells: Sequence[str],
    spec: PreprocessSpec,
    shifts: dict[str, Shift] | None = None,
    analyse: Callable[[np.ndarray], tuple[np.ndarray, Screening]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Accuracy over files, cell accuracy and macro-F1 under each shift.

    `predict` maps prepared uint8 (N, h, w, 3) to probabilities (N, 4); `images` are decoded
    source fields. With `analyse` (`Predictor.analyse`: the same crop, and the screening) it also
    counts the files a user would be told are not a white cell ("flagged", and by reason), and those
    that pass only on the screening's second look ("second_look") and those marked overexposed
    ("overexposed", flagged ones included; the rest get the verdict "needs review") and those the
    network saw with their white matched to the data set's ("white_matched"). "confusion" (true x predicted,
    4 x 4) lets results over disjoint files be pooled.
    """
    from collections import Counter

    from sklearn.metrics import confusion_matrix, f1_score

    from wbc.metrics import pool_cells

    out: dict[str, dict[str, Any]] = {}
    for name, shift in (shifts or SHIFTS).items():
        if analyse is None:
            x, screenings = np.stack([prepare(shift(img), spec) for img in images]), None
        else:
            crops, screenings = zip(*(analyse(shift(img)) for img in images))
            x = np.stack(crops)
        probs = predict(x)
        cp, cy, _ = pool_cells(probs, y, cells)
        out[name] = {
            "accuracy": float((probs.argmax(1) == y).mean()),
            "cell_accuracy": float((cp.argmax(1) == cy).mean()),
            "macro_f1": float(f1_score(y, probs.argmax(1), average="macro", labels=np.unique(y))),
            "confusion": confusion_matrix(y, probs.argmax(1), labels=range(probs.shape[1])).tolist(),
        }
        if screenings is not None:
            out[name]["flagged"] = sum(not s.is_cell for s in screenings)
            out[name]["flagged_by"] = dict(Counter(s.reason for s in screenings if not s.is_cell))
            out[name]["second_look"] = sum(s.white_balanced for s in screenings)
            out[name]["overexposed"] = sum(s.overexposed for s in screenings)
            out[name]["white_matched"] = sum(s.white_matched for s in screenings)
    return out
