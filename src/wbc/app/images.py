"""A result's pictures: the heatmap over the crop, the photo with two cells ringed, the thumbnail, their alt texts."""

from __future__ import annotations

import base64
import io
import math

import numpy as np
from PIL import Image

from wbc.app.words import headline
from wbc.info import cell_type
from wbc.predict import Prediction

# matplotlib's viridis at eight points (dark purple -> blue -> green -> yellow): its brightness rises with the
# value all the way, so brighter reads as more, also in grey or to a colour-blind eye. (The map it replaced,
# blue -> yellow -> red, ended darker than its middle: the strongest evidence looked weaker than moderate.)
COLORMAP_ANCHORS = ((68, 1, 84), (70, 50, 126), (54, 92, 141), (39, 127, 142), (31, 161, 135), (74, 193, 109),
                    (160, 218, 57), (253, 231, 37))
HEATMAP_CAPTION = "Where the evidence was (class activation map: coloured where it was, brighter where stronger)"
# The map's opacity over the crop: none below HEAT_FLOOR of its peak, rising to HEAT_OPACITY at it. A flat
# 0.45 laid viridis's dark purple over the whole crop, where no evidence read as mauve, a stained nucleus's
# colour, and the peak's pale yellow mixed to tan on a violet nucleus.
HEAT_FLOOR = 0.25
HEAT_OPACITY = 0.65


def _colormap(v: np.ndarray) -> np.ndarray:
    """Values in 0..1 (h, w) -> RGB uint8 (h, w, 3) along COLORMAP_ANCHORS."""
    anchors = np.array(COLORMAP_ANCHORS, dtype=np.float32)
    pos = np.clip(v, 0, 1) * (len(anchors) - 1)
    i = np.minimum(pos.astype(int), len(anchors) - 2)
    f = (pos - i)[..., None]
    return (anchors[i] * (1 - f) + anchors[i + 1] * f).astype(np.uint8)


def cam_overlay(crop: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """Blend the class activation map cam (fh, fw) over crop (h, w, 3), more opaque where the evidence is
    stronger (HEAT_FLOOR, HEAT_OPACITY); only positive evidence shows."""
    h, w, _ = crop.shape
    c = np.maximum(cam, 0)
    c = c / c.max() if c.max() > 0 else c
    up = np.asarray(Image.fromarray((c * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC), np.float32) / 255
    alpha = (HEAT_OPACITY * np.clip((up - HEAT_FLOOR) / (1 - HEAT_FLOOR), 0, 1))[..., None]
    return (crop * (1 - alpha) + _colormap(up) * alpha).astype(np.uint8)


MARKED_SIDE = 480  # px: the longer side of the photo shown with its two cells ringed
# Blue and orange, told apart in every common colour blindness (green and red were one colour to a
# deuteranope), and the other cell's ring dashed, so that neither colour is needed to tell them apart.
TYPED_RING = (0, 90, 255)
OTHER_RING = (255, 140, 0)
DASH_PX = 16  # about, along the ring: a dash of the other cell's ring, and the gap after it
# The dashed ring's line is 1.5x the solid one's, on a dark halo: orange is about as light as the pink red
# cells and the pale field, so a white halo set it off from neither, and at desktop width (the photo ~227 px
# wide) a thin dashed line half of gaps was easy to miss.
DASHED_WIDTH = 1.5
DASHED_HALO = (40, 40, 40)
MARKED_CAPTION = "The photo: what the model read in a solid blue ring, the other white cell in a dashed orange one"
CELL_RADIUS = 40  # px at the data set's magnification: a white cell's radius, about


def ring_radius(shown_side: int, photo_side: int, reduced_by: float) -> int:
    """Display px of a ring round a cell in a photo whose longer side (`photo_side` px) is shown at
    `shown_side` px, the photo shrunk by `reduced_by` to find its cells: a cell's radius, at least 8 px."""
    return max(8, round(CELL_RADIUS * reduced_by * shown_side / photo_side))


def marked_photo(rgb: np.ndarray, typed: tuple[int, int], other: tuple[int, int], reduced_by: float = 1.0,
                 other_larger: bool = False) -> np.ndarray:
    """The photo (H, W, 3) with the typed cell in a solid TYPED_RING ring and the other white cell in a
    dashed OTHER_RING one, at (x, y) px, scaled to MARKED_SIDE px on its longer side: where each is, at a
    glance. The rings assume a cell at the data set's magnification once the photo is shrunk by
    `reduced_by`; `other_larger` (the other nucleus twice the typed mass or more) draws the other's 1.5x
    as large."""
    from PIL import ImageDraw

    h, w = rgb.shape[:2]
    k = MARKED_SIDE / max(h, w)
    img = Image.fromarray(rgb).resize((max(1, round(w * k)), max(1, round(h * k))), Image.BILINEAR)
    draw = ImageDraw.Draw(img)
    r, width = ring_radius(max(img.size), max(h, w), reduced_by), max(3, max(img.size) // 120)
    for (x, y), colour, rr, dashed in ((typed, TYPED_RING, r, False),
                                       (other, OTHER_RING, round(r * (1.5 if other_larger else 1)), True)):
        box = (x * k - rr, y * k - rr, x * k + rr, y * k + rr)
        halo = (box[0] - 1, box[1] - 1, box[2] + 1, box[3] + 1)
        if not dashed:  # a white halo under the colour: blue alone is lost on a purple nucleus
            draw.ellipse(halo, outline=(255, 255, 255), width=width + 2)
            draw.ellipse(box, outline=colour, width=width)
            continue
        # PIL draws no dashed ellipse: arcs, an even number so that dash and gap alternate all round
        step = 360 / (2 * max(3, round(math.pi * rr / DASH_PX)))
        cap = math.degrees(1 / rr)  # the halo 1 px past each end of its dash, as it is 1 px past each side
        thick = round(width * DASHED_WIDTH)
        for start in np.arange(0, 360, 2 * step):
            draw.arc(halo, start - cap, start + step + cap, fill=DASHED_HALO, width=thick + 2)
            draw.arc(box, start, start + step, fill=colour, width=thick)
    return np.asarray(img)


THUMBNAIL_PX = 96  # a review table row's picture of its cell: the crop's own side (a double-click enlarges it)


def thumbnail_url(crop: np.ndarray) -> str:
    """The crop (h, w, 3) uint8 as a THUMBNAIL_PX JPEG data URL: the review table shows each row's cell, so that
    a reviewer checks a type without scrolling to its result (110 results made a page 76,000 px tall). A JPEG:
    the table goes to the browser whenever a correction reruns it, and a PNG was twice the bytes (7 KB); its
    colour kept whole (no chroma subsampling), as a granule's tells a type."""
    out = io.BytesIO()
    small = Image.fromarray(crop).resize((THUMBNAIL_PX, THUMBNAIL_PX), Image.Resampling.LANCZOS)
    small.save(out, "JPEG", quality=90, subsampling=0)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


# Each picture's alt text, for a screen reader: what the picture shows of this file, not its caption again.
def crop_alt(name: str, p: Prediction) -> str:
    """The crop's alt text: the file, that it is the cell the model read, and the type where the page gives one."""
    if p.typed:
        return f"{name}, cropped to the cell the model read (typed {cell_type(p.label).label.lower()})"
    return f"{name}, cropped to what the model read (given no type: {headline(p).lower()})"


def _place(x: float, y: float) -> str:
    """Where a point (shares of the width and height) lies in a picture, by thirds: "at the top left", "in
    the middle"."""
    row = ("top", "", "bottom")[min(int(y * 3), 2)]
    col = ("left", "", "right")[min(int(x * 3), 2)]
    return f"at the {' '.join(filter(None, (row, col)))}" if row or col else "in the middle"


def heatmap_alt(name: str, p: Prediction, evidence_at: tuple[float, float] | None) -> str:
    """The heatmap's alt text: whose crop, the evidence for which type, and where it was strongest."""
    where = f", strongest {_place(*evidence_at)} of the crop" if evidence_at else ""
    return (f"The crop of {name} tinted by where the evidence for {cell_type(p.label).label.lower()} was, "
            f"brighter where stronger{where}")


def marked_alt(name: str, p: Prediction) -> str:
    """The ringed photo's alt text: which ring is round which cell, and both cells' places in the photo."""
    if p.other_cell is None:
        return f"The whole photo {name}"
    typed = f" at x={p.cell[0]}, y={p.cell[1]} px" if p.cell else ""
    other = "a much larger nucleus" if p.other_larger else "another white cell"
    return (f"The whole photo {name}, two cells ringed: a solid blue ring round the one the model read{typed}; a "
            f"dashed orange ring round {other} at x={p.other_cell[0]}, y={p.other_cell[1]} px (from the top left)")
