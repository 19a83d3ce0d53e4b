"""Every decision the app makes, as plain functions: the Streamlit page only lays them out."""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from wbc import __version__
from wbc.differential import (  # noqa: F401 (the page reads them from here)
    DASH, HIGH_BY_CHANCE, IMAGES_AS_CELLS, LIMITS_COLUMN, LOW_BY_CHANCE, NRBC, REVIEWED_TYPES, balanced_test,
    differential, differential_note, differential_notes, misread_figures, nrbc_note, per_100)
from wbc.imaging import load_image
from wbc.info import CLASS_INDEX, CLASSES, DATASET, cell_type
from wbc.io import bytes_key, first_copies, spreadsheet_text, unquoted
from wbc.predict import CANNOT_JUDGE_VERDICT, CROP_EACH, NEEDS_REVIEW_VERDICT, Prediction, Predictor

# The largest file the page analyses, and Streamlit's server.maxUploadSize set by `wbc app` (one limit the page
# names once): a microscope camera's TIFF or a phone's full-size JPEG fits; a field over 50 megapixels is
# refused by the decoder anyway.
MAX_UPLOAD_MB = 50
SAMPLES_DIR = Path(__file__).parent / "samples"
EXCLUDED = "Excluded"  # the reviewed label of an image that is not counted
# The review table's tick for a row whose type a reviewer has checked by eye and kept: a *needs review* row ticked
# no longer counts as unchecked. As a downloaded table holds it, "yes"; read back in any of TICKED's words.
CHECKED = "checked"
TICKED = frozenset({"yes", "y", "true", "1", "x", "\u2713"})
# What the review table's "reviewed" column may hold: the types as the page names them elsewhere
# ("Eosinophil"), the cells a reviewer may name that the model does not know (a basophil, another white cell, a
# nucleated red cell: `differential.REVIEWED_TYPES`), then EXCLUDED; `reviewed_classes` reads them back as the
# differential's names.
REVIEW_LABELS = (*(cell_type(c).label for c in CLASSES), *REVIEWED_TYPES.values(), EXCLUDED)
_REVIEWED_NAMES = {**{cell_type(c).label: c for c in CLASSES}, **{v: k for k, v in REVIEWED_TYPES.items()}}
# The reviewed labels a differential counts as white cells: all but a nucleated red cell's and EXCLUDED.
COUNTED_LABELS = frozenset(REVIEW_LABELS) - {REVIEWED_TYPES[NRBC], EXCLUDED}


def reviewed_classes(labels: Sequence[str]) -> list[str]:
    """The review table's labels as the differential's names (CLASSES, then `differential.REVIEWED_TYPES`'
    keys); EXCLUDED (or anything else) as is."""
    return [_REVIEWED_NAMES.get(lab, lab) for lab in labels]


@dataclass
class CellResult:
    """One uploaded image after analysis; `error` set when it could not be used."""

    name: str
    prediction: Prediction | None = None
    crop: np.ndarray | None = None  # what the network saw, uint8 (h, w, 3)
    heatmap: np.ndarray | None = None  # CAM of the predicted class over the crop, uint8 (h, w, 3)
    marked: np.ndarray | None = None  # a photo with a second white cell, both ringed, uint8 (H', W', 3)
    evidence_at: tuple[float, float] | None = None  # (x, y) of the heatmap's peak, shares of the crop's width, height
    thumbnail: str = ""  # the crop as a small JPEG data URL, for the review table's rows (`thumbnail_url`)
    error: str = ""


def markdown_literal(text: str) -> str:
    """`text` for a Streamlit markdown body, shown as it is: every ASCII punctuation mark backslash-escaped
    (a file named a*b_c.jpg was shown as a, then b_c.jpg in italics)."""
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", text)


def heading_name(name: str) -> str:
    """A file's name as its result's heading: `markdown_literal`, with a place to break the line (a
    zero-width space) after each _ . and -, where a long camera name breaks rather than mid-word."""
    return re.sub(r"(\\[_.\-])", "\\1\u200b", markdown_literal(name))


def samples() -> list[tuple[str, bytes]]:
    """The built-in sample images (name, bytes), two per class from TEST_SIMPLE."""
    return [(p.name, p.read_bytes()) for p in sorted(SAMPLES_DIR.glob("*.jpeg"))]


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


@dataclass(frozen=True)
class Uploads:
    """The uploads as the page shows them: one image, one row and one cell in the count."""
    kept: list[tuple[str, bytes]]  # (name as shown, bytes), repeats left out
    keys: list[str]  # each kept upload's `bytes_key`
    repeats: list[tuple[str, str]]  # (name given, the shown name of the upload it repeats)
    notes: list[str]  # for the page, in upload order: each repeat, and each name shown otherwise


def distinct_uploads(uploads: Sequence[tuple[str, bytes]]) -> Uploads:
    """The uploads with repeats of the same bytes left out, whatever their names. A different image under
    a name already taken (the same in Unicode's composed form: é typed either way looks alike) is shown as
    "name (2).ext", so that the table's rows can be told apart. Empty files repeat nothing: each is named
    as unreadable, where a second was called a repeat of the first."""
    keys = [bytes_key(data) if data else f"empty-{i}" for i, (_, data) in enumerate(uploads)]
    copies = first_copies(keys)
    # A new name must be no upload's own: "cell (2).jpeg", as a browser saves a second download, keeps its name
    given = {unicodedata.normalize("NFC", name) for i, (name, _) in enumerate(uploads) if i not in copies}
    shown: dict[int, str] = {}
    repeats: list[tuple[str, str]] = []
    again: dict[int, list[str]] = {}  # an image repeated (its first upload) -> the names its repeats came under
    notes: list[str | int] = []  # in upload order: a rename's note, or the image repeated (said once, at its first repeat)
    for i, (name, _) in enumerate(uploads):
        if i in copies:
            repeats.append((name, shown[copies[i]]))
            if copies[i] not in again:
                notes.append(copies[i])
            again.setdefault(copies[i], []).append(name)
            continue
        as_shown, n = name, 2
        taken = {unicodedata.normalize("NFC", s) for s in shown.values()}
        while unicodedata.normalize("NFC", as_shown) in taken or (as_shown != name and
                                                                  unicodedata.normalize("NFC", as_shown) in given):
            as_shown = f"{Path(name).stem} ({n}){Path(name).suffix}"
            n += 1
        if as_shown != name:
            notes.append(f"Another image is also named {markdown_literal(name)}: this one is shown as "
                         f"{markdown_literal(as_shown)}.")
        shown[i] = as_shown
    said = {j: _repeat_said(shown[j], names) for j, names in again.items()}
    if len(said) <= REPEATS_LISTED:
        out = [f"{said[n]}: it is shown and counted once." if isinstance(n, int) else n for n in notes]
    else:  # a batch given again: one note on its repeats, first (adding a whole folder again put 60 notes above)
        first = [said[n] for n in notes if isinstance(n, int)]
        out = [f"{len(said)} images were given more than once, each shown and counted once: "
               f"{'; '.join(first[:REPEATS_LISTED])}; and {len(said) - REPEATS_LISTED} more (the uploader lists each "
               "copy: remove them there to tidy it)."] + [n for n in notes if isinstance(n, str)]
    return Uploads(kept=[(shown[i], uploads[i][1]) for i in shown], keys=[keys[i] for i in shown],
                   repeats=repeats, notes=out)


REPEATS_LISTED = 3  # images repeated named one by one, in turn with the other notes; more (a batch given again) make one


def _repeat_said(first: str, names: list[str]) -> str:
    """How an image shown as `first` and given again under `names` is named: "a.jpeg was given 3 times", "b.jpeg is
    the same image as a.jpeg", or both (each repeat was a note of its own: "a.jpeg was given twice" three times)."""
    same = sum(1 for n in names if n == first)
    others = list(dict.fromkeys(n for n in names if n != first))
    parts = [f"{markdown_literal(first)} was given {'twice' if same == 1 else f'{same + 1} times'}"] if same else []
    if others:
        parts.append(f"{' and '.join(map(markdown_literal, others))} {'is' if len(others) == 1 else 'are'} the same "
                     f"image as {markdown_literal(first)}")
    return "; ".join(parts)


# Uploads' analyses kept, for every visitor, for CACHED_FOR_S after last use: each some 50-100 kB (crops, heatmap,
# thumbnail), 0.5 MB with a second white cell's ringed photo: some 60 MB typical, 0.6 GB at worst.
CACHED_RESULTS = 1000
CACHED_FOR_S = 3600
PROGRESS_AFTER_S = 0.5  # a count of the images analysed is shown once the analysis has taken this long


def analyse_uploads(predictor: Predictor, uploads: Sequence[tuple[str, bytes]]) -> list[CellResult]:
    """Decode, screen, classify (one batch) and explain every upload; bad files get their message."""
    results = [CellResult(name=n) for n, _ in uploads]
    fits = [i for i, (_, data) in enumerate(uploads) if len(data) <= MAX_UPLOAD_MB * 1024 * 1024]
    for i in set(range(len(uploads))) - set(fits):
        name, data = uploads[i]
        results[i].error = (f"{name}: {len(data) / 1e6:.0f} MB is over the {MAX_UPLOAD_MB} MB upload limit; save the "
                            "photo at a smaller size")
    # Unhashed: the page has each upload's bytes_key already (`distinct_uploads`).
    read = predictor.predict_sources([uploads[i] for i in fits], cam=True, hashed=False)
    for i, (pred, crop, cam) in zip(fits, read):
        if pred.error:
            results[i].error = pred.error
            continue
        results[i].prediction, results[i].crop = pred, crop
        if crop is not None:
            results[i].thumbnail = thumbnail_url(crop)
        if pred.other_cell is not None and pred.cell is not None:
            results[i].marked = marked_photo(load_image(uploads[i][1], uploads[i][0]), pred.cell, pred.other_cell,
                                             pred.reduced_by, pred.other_larger)
        if cam is not None and crop is not None:
            own = cam[CLASS_INDEX[pred.label]]
            results[i].heatmap = cam_overlay(crop, own)
            y, x = np.unravel_index(int(np.argmax(own)), own.shape)
            results[i].evidence_at = ((x + 0.5) / own.shape[1], (y + 0.5) / own.shape[0])
    return results


THUMBNAIL_PX = 96  # a review table row's picture of its cell: the crop's own side (a double-click enlarges it)


# The review table's columns as the page shows them (main.py says why in this order)
REVIEW_SHOWN = ("reviewed", "file", CHECKED, "predicted", "confidence (%)", "verdict", "cell")
REVIEW_ROW_PX, REVIEW_HEADER_PX = 66, 38  # the review table's rows (its pictures; over 64 px, its text wraps) and header, px


def review_table_height(rows: int) -> int:
    """The review table's height in px: whole rows, up to 8 in view (the default 400 px ended on half a row; 10
    rows of REVIEW_ROW_PX took all of a laptop's 800 px screen)."""
    return REVIEW_HEADER_PX + REVIEW_ROW_PX * min(max(rows, 1), 8) + 2  # + its border


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


def evaluation_confusion(model_dir: Path) -> object:
    """The test images' confusion matrix from the metrics.json beside the model (which `wbc evaluate` writes
    with confusion.png), or None where there is none to read."""
    try:
        return json.loads((model_dir / "metrics.json").read_text()).get("confusion")
    except (OSError, ValueError, AttributeError):
        return None


def confusion_alt(confusion: object) -> str:
    """The confusion matrix picture's alt text: for each true type, how many test images were read right and
    what the rest were read as; without a 4 x 4 matrix of counts, what the picture is."""
    head = "Confusion matrix of the test images: each true type against the type the model read"
    try:
        m = np.asarray(confusion, dtype=np.int64)
    except (TypeError, ValueError):
        return head
    if m.shape != (len(CLASSES), len(CLASSES)):
        return head
    parts = []
    for i, c in enumerate(CLASSES):
        wrong = ", ".join(f"{m[i, j]} as {cell_type(d).label.lower()}" for j, d in enumerate(CLASSES) if j != i and m[i, j])
        parts.append(f"{cell_type(c).label}: {m[i, i]} of {m[i].sum()} right" + (f" ({wrong})" if wrong else ""))
    return f"{head}. " + "; ".join(parts)


def confusion_rows(confusion: object) -> list[dict[str, object]]:
    """The test images' confusion matrix as a table's rows (a true type each, then how many of its images were
    read as each type), for the page beside its picture, whose figures a phone shows 4 px tall; [] without a
    4 x 4 matrix of counts."""
    try:
        m = np.asarray(confusion, dtype=np.int64)
    except (TypeError, ValueError):
        return []
    if m.shape != (len(CLASSES), len(CLASSES)):
        return []
    return [{"true type": cell_type(c).label, **{f"read as {SHORT_NAMES[d]}": int(m[i, j])
                                                 for j, d in enumerate(CLASSES)}} for i, c in enumerate(CLASSES)]


# A differential's usual short names: a phone's width holds four columns of them (of the full names, 109 px ran past
# a 322 px table, the column of the misread monocytes among them)
SHORT_NAMES = {"EOSINOPHIL": "Eos", "LYMPHOCYTE": "Lymph", "MONOCYTE": "Mono", "NEUTROPHIL": "Neut"}


def crop_caption(p: Prediction) -> str:
    """The caption under the crop; says when a magnified photo was shrunk to the training scale and
    when the photo's colours (white balance, exposure) are unlike the training images'."""
    notes = []
    if p.shrunk:
        # Towards, not to: a magnified cell ends somewhat larger than a typical one of theirs (imaging.EXTENT_MAX).
        notes.append(f"the photo was shrunk {p.reduced_by:.1f}x towards the training images' magnification")
    how = {(True, True): "the cell was found with its colours matched, and the model saw them matched to theirs",
           (True, False): "the cell was found with its colours matched, but the model saw them as photographed",
           (False, True): "the model saw its colours matched to theirs"}.get((p.white_balanced, p.white_matched))
    if how:
        notes.append(f"its white balance or exposure is unlike the training images': {how}")
    return "What the model saw" + (f" ({'; '.join(notes)})" if notes else "")


def overexposure_warning(p: Prediction, threshold: float = 0.0) -> str:
    """What the page says about an overexposed photo (empty when it is not): for an image given a type
    (`Prediction.typed`), that it needs review, as the review table's verdict says, and its top two types,
    the first shown as the confidence beside it is against the review `threshold` (`confidence_shown`)."""
    if not p.overexposed:
        return ""
    text = (f"{100 * p.clipped:.0f}% of the lit area is pure white (clipped), and detail in the palest parts of "
            "the cell may be lost with it. Such photos are read much less well, however confident the model is: "
            "check the type by eye, or photograph the cell again with less light.")
    if not p.typed:
        return f"Overexposed: {text}"
    (a, pa), (b, pb) = p.top2
    return (f"{OVEREXPOSED_REVIEW}: {text} Top two: {cell_type(a).label} {confidence_shown(pa, threshold)}, "
            f"{cell_type(b).label} {100 * pb:.1f}%.")


OVEREXPOSED_REVIEW = "Needs review, overexposed"  # how the warning over a typed, overexposed photo begins


def other_cell_warning(p: Prediction) -> str:
    """What the page says when the photo shows a second white cell, which was neither typed nor counted
    (empty when it shows none; the screening looks for one only in a photo it takes for a white cell)."""
    if p.other_cell is None:
        return ""
    x, y = p.other_cell
    typed = f" at x={p.cell[0]}, y={p.cell[1]} px" if p.cell else ""
    if p.other_larger:
        return (f"No type given, and left out of the count: the model read a small stained mass{typed} (solid "
                f"blue ring; the crop shown), which may be a piece of a cell cut by the photo's edge or a speck, "
                f"while a much larger nucleus lies at x={x}, y={y} px (dashed orange ring), from the photo's top "
                f"left. Do not take the network's reading (small print) for that cell: {CROP_EACH} and upload each.")
    return (f"Another white cell: the photo shows a second stained nucleus (at least one) at x={x}, y={y} px from "
            f"its top left (dashed orange ring), which was neither typed nor counted; the type here is of the "
            f"cell{typed} (solid blue ring; the crop shown). {CROP_EACH.capitalize()} and upload each.")


def about_image(name: str, text: str, several: bool) -> str:
    """A warning or error about one image as the page shows it: where the page shows `several`, the file's
    name on a line of its own first, since a screen reader reads each out as it comes, away from the heading that names the
    file ("Needs review: ..." twice said not which)."""
    return f"**{markdown_literal(name)}**  \n{text}" if several else text  # the name a line of its own


def uncounted_note(results: Sequence[CellResult]) -> str:
    """Under the differential: how many photos hold a white cell that no row counts (empty for none)."""
    preds = [r.prediction for r in results if r.prediction is not None and r.prediction.other_cell is not None]
    if not preds:
        return ""
    pieces = sum(p.other_larger for p in preds)
    return (f"{len(preds)} photo(s) show a white cell that is not counted (each is marked in its verdict)"
            + (f"; in {pieces} of them the model typed what may be a piece of a cell beside it, so "
               + ("it starts" if pieces == 1 else "they start") + " excluded" if pieces else "")
            + f": {CROP_EACH} and upload them, to count every cell.")


NOT_A_WBC = "Not a white blood cell"  # the heading of an image the screening flags
NO_TEST_FIGURES = ("This model card holds no TEST figures: the model was exported without `--evaluate`. "
                   "Measure them with `wbc evaluate --model DIR --out REPORTS` (a report in REPORTS; the card "
                   "stays as it is), or export the run again with `wbc export RUN --out DIR --evaluate` to put "
                   "them in the card.")


# The heading of an image given no type for the photo's sake: too small, colourless, blurred, too dark or
# overexposed, or its crop on what may be a piece of a cell beside a much larger one.
CANNOT_JUDGE = "Cannot judge this photo"


def cannot_judge(p: Prediction) -> bool:
    """Whether an image given no type is so for the photo's sake (too small, colourless, blurred, too
    dark, cast warm, magnified past the shrinking or overexposed, or its crop on what may be a piece of
    a cell), not for showing no white cell: the verdict `wbc predict` gives it too."""
    return p.verdict == CANNOT_JUDGE_VERDICT


def headline(p: Prediction) -> str:
    """The result's heading: the type, or, for an image given none, that it is not a white cell or that
    the photo cannot be judged; the network names one of four types for any image, so there its type
    means nothing."""
    if p.typed:
        return cell_type(p.label).label
    return CANNOT_JUDGE if cannot_judge(p) else NOT_A_WBC


def flagged_message(p: Prediction, counted: bool = True) -> str:
    """The error box over an image given no type: why, and, where the page counts (`counted`: two images
    or more), that it is left out of the count."""
    if p.other_larger:
        return other_cell_warning(p)
    # Under the heading ("Not a white blood cell" or "Cannot judge this photo"): why, not the heading again.
    return f"Why: {p.not_wbc}." + (" It is left out of the differential count unless you include it below."
                                   if counted else "")


def forced_reading(p: Prediction) -> str:
    """The small print under the heading of an image given no type: what the network said anyway, marked
    as meaningless."""
    return (f"The network has to name one of the four types for any image; for this one it said "
            f"{cell_type(p.label).label} ({100 * p.confidence:.1f}%), which means nothing here.")


def _finite(v: object) -> bool:
    """A card's number: an int or float, not NaN or infinite (a hand-edited card may hold anything)."""
    return type(v) in (int, float) and math.isfinite(v)  # type: ignore[arg-type]


def ece_note(test: dict[str, object] | None) -> str:
    """The calibration clause of the page's limits: the card's TEST expected calibration error (and its
    interval over cells where the card has one), or that the card holds none."""
    ece = (test or {}).get("ece")
    if not _finite(ece):
        return "this model card holds no TEST figures to say how well"
    ci = (test or {}).get("ece_ci95")
    spread = (f"; resampling the cells moves it over {ci[0]:.3f}-{ci[1]:.3f}"
              if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(map(_finite, ci)) else "")
    # What the figure means, in the page's own unit: points of confidence, on average.
    return (f"expected calibration error on the test images {ece:.3f}, its confidence off by about "
            f"{100 * float(ece):.0f} points on average{spread}")


def review_rows(results: Sequence[CellResult], keys: Sequence[str] = (),
                corrections: Mapping[str, str] | None = None,
                checks: Mapping[str, bool] | None = None) -> list[dict[str, object]]:
    """One row per usable image for the review table; images that are not white cells start excluded,
    with no type or confidence (the network's forced reading means nothing there), and so do those whose
    crop may be on a piece of a cell beside a much larger one (`other_larger`). With `keys` (each
    result's `bytes_key`), a row also carries its "key" and starts from the label `corrections` holds
    for it, and ticked CHECKED where `checks` says so: a reviewer's work stays with its image when the
    uploads change."""
    corrections, checks = corrections or {}, checks or {}
    rows = []
    for i, r in enumerate(results):
        p = r.prediction
        if p is None:
            continue
        row: dict[str, object] = {
            "cell": r.thumbnail or None,
            "file": r.name,
            "predicted": cell_type(p.label).label if p.typed else "",
            "confidence (%)": round(100 * p.confidence, 2) if p.typed else None,  # as the page shows it
            "verdict": p.verdict
            + (f": {p.not_wbc}" if p.not_wbc else "") + (" (overexposed)" if p.overexposed else "")
            # The runner-up where the type needs review, as `wbc predict` gives it: what to check it against.
            + (f" (or {cell_type(p.top2[1][0]).label.lower()} {100 * p.top2[1][1]:.1f}%)"
               if p.typed and p.verdict == NEEDS_REVIEW_VERDICT else "")
            + (" (crop on a piece? a larger cell uncounted)" if p.other_larger
               else " (another cell uncounted)" if p.other_cell else ""),
            # A typed piece of a cell is not a cell to count; the larger cell beside it is the user's to crop.
            "reviewed": cell_type(p.label).label if p.typed else EXCLUDED,
            CHECKED: False,
        }
        if keys:
            row["key"] = keys[i]
            if corrections.get(keys[i]) in REVIEW_LABELS:
                row["reviewed"] = corrections[keys[i]]
            row[CHECKED] = bool(checks.get(keys[i], False))
        rows.append(row)
    return rows


def unchecked_count(rows: Sequence[Mapping[str, object]]) -> int:
    """How many counted rows were marked *needs review* and still hold the model's type, neither corrected nor
    ticked CHECKED."""
    return sum(1 for r in rows if str(r["verdict"]).startswith(NEEDS_REVIEW_VERDICT) and r["reviewed"] == r["predicted"]
               and not ticked(r.get(CHECKED)))


def unchecked_note(rows: Sequence[Mapping[str, object]]) -> str:
    """Under the differential: how many counted rows were marked *needs review* and still hold the model's
    type, neither corrected nor ticked CHECKED, so the count may still move (empty for none)."""
    n = unchecked_count(rows)
    if not n:
        return ""
    return (f"{n} of the counted image(s) {'is' if n == 1 else 'are'} marked *needs review* in the verdict column and "
            f"{'keeps' if n == 1 else 'keep'} the model's type unchecked: check {'it' if n == 1 else 'them'} before "
            f"using the count, and tick the *{CHECKED}* column where you agree (a corrected or excluded one is "
            "not in this number).")


def unchecked_any_count(rows: Sequence[Mapping[str, object]]) -> int:
    """How many counted rows no reviewer has looked at, whatever their verdict: the model's type kept and not
    ticked CHECKED (a confident reading may be wrong: a basophil read as a neutrophil at 69%)."""
    return sum(1 for r in rows if r["reviewed"] in COUNTED_LABELS and r["reviewed"] == r["predicted"]
               and not ticked(r.get(CHECKED)))


def provisional_note(rows: Sequence[Mapping[str, object]]) -> str:
    """Under the differential: how many of the counted rows no reviewer has checked (`unchecked_any_count`),
    so that the count is the model's own and provisional (empty where every one was)."""
    n = unchecked_any_count(rows)
    counted = sum(1 for r in rows if r["reviewed"] in COUNTED_LABELS)
    if not n:
        return ""
    return (f"Provisional: {n} of the {counted} counted image(s) keep the model's type unchecked, whatever their "
            "verdict. A *confident* reading can be wrong, and a cell the model does not know (a basophil, a blast) "
            "is read as one of its four: check each by eye, correcting it or ticking it *checked*, before the "
            "count is used.")


def ticked(v: object) -> bool:
    """Whether a CHECKED cell is ticked: True as the table hands it back; NaN (a row the table added blank) is not."""
    return v is True or (isinstance(v, (bool, np.bool_)) and bool(v))


def unusable(results: Sequence[CellResult]) -> list[tuple[str, str]]:
    """(file, why) of each upload that could not be read: no row of the review table, no count."""
    return [(r.name, r.error) for r in results if r.prediction is None and r.error]


def public_data(card: Mapping[str, object]) -> bool:
    """Whether the card's model was made from the public data set (BCCD, as the shipped one was), not from
    a user's own images: what the page may say of its cells and test set."""
    data = card.get("data")
    return isinstance(data, Mapping) and data.get("source") == DATASET["kaggle_handle"]


def trained_on(card: Mapping[str, object]) -> str:
    """The Limits' first words: how many cells, and whose."""
    data = card.get("data")
    data = data if isinstance(data, Mapping) else {}
    n, public = data.get("training_cells", "the"), data.get("public_cells")
    if public_data(card):
        return f"Trained from scratch on **{n} cells from one laboratory** (the BCCD data set)"
    return (f"Trained from scratch on **{n} cells** of its maker's own images"
            + (f", {public} of them from the public BCCD data set" if public else " (not the public BCCD data set)"))


def shows_views(test: Mapping[str, Any]) -> bool:
    """Whether the card's test images are views of fewer cells (the public data set's), not a cell each (a maker's
    own photos may be): where the page may speak of a cell's views."""
    n_files, n_cells = test.get("n_files"), test.get("n_cells")
    return isinstance(n_files, int) and isinstance(n_cells, int) and n_files > n_cells


def test_summary(test: dict, public: bool = True) -> str:
    """The card's headline TEST figures in words, saying what each is over (`public`: the public data
    set's test set, else the model maker's own)."""
    lo, hi = test["accuracy_ci95"]
    views = shows_views(test)  # a maker's own test set may be a cell an image: no views to pool
    cells = (f"**{test['cells_correct']} of {test['n_cells']}** cells right"
             + (" when a cell's views are pooled (their probabilities averaged)" if views else ""))
    if test.get("cell_accuracy_ci95"):
        clo, chi = test["cell_accuracy_ci95"]
        cells += f" (95% interval {100 * clo:.1f}-{100 * chi:.1f}%)"
    shows = f"views of **{test['n_cells']} cells**" if views else f"a cell each, **{test['n_cells']} cells**"
    return (f"On the {'public test set' if public else 'test set of its maker'} ({test['n_files']:,} images, {shows}): "
            "accuracy "
            f"**{100 * test['accuracy']:.1f}%** of the images (95% interval {100 * lo:.1f}-{100 * hi:.1f}%, from "
            f"resampling whole cells), {cells}, macro-F1 {test['macro_f1']:.3f}. With so few cells the intervals "
            f"are wide: one cell more or fewer right moves the cells' accuracy by {100 / test['n_cells']:.1f} points."
            + _also_in_train(test))


def _also_in_train(test: dict) -> str:
    """The figures without the test cells its training set holds too (the public data set puts 2 of TEST's cells
    in TRAIN as well), in a sentence; "" for a card without them."""
    w = test.get("without_cells_in_train")
    if not w:
        return ""
    n = len(w["cells_dropped"])
    lo, hi = w["accuracy_ci95"]
    return (f" {n} of the test cells {'is' if n == 1 else 'are'} in the training set too, so the model has seen "
            f"{'it' if n == 1 else 'them'}; without {'it' if n == 1 else 'them'}: **{100 * w['accuracy']:.1f}%** of "
            f"the images (95% interval {100 * lo:.1f}-{100 * hi:.1f}%), {w['cells_correct']} of {w['n_cells']} cells.")


def balanced_note(per_class: dict[str, dict]) -> str:
    """Under the per-type table: where the test images are about as many for each type (`balanced_test`), unlike a
    smear, that the rarer types' precision there would be lower (more of the common type's errors land on them);
    else how many there are of each."""
    n = [int(v["support"]) for v in per_class.values() if isinstance(v, dict) and "support" in v]
    if not n:
        return ""
    cells = [v.get("cells") for v in per_class.values() if isinstance(v, dict)]
    # A card of wbc 0.20 or before has no cells per type; a maker's own photos may be a cell each.
    views = (cells and all(isinstance(c, int) for c in cells)
             and any(int(v["support"]) > c for v, c in zip(per_class.values(), cells)))
    of_cells = (f", but they are views of {_listed_counts(cells, per_class)} cells: a type's figures rest on "
                "its few cells" if views else "")
    if not balanced_test(per_class):  # a maker's own test set may hold mostly neutrophils, as a smear does
        counts = _listed_counts([int(v.get("support", 0)) for v in per_class.values()], per_class)
        return (f"The test images are {counts}{of_cells}; a type's precision depends on how many of the others "
                "there are, whose errors land on it.")
    return (f"The test images are about as many for each type ({min(n):,}-{max(n):,}){of_cells}; in a smear, where "
            "neutrophils are most of the cells, the rarer types' precision would be lower.")


def _listed_counts(counts: list[int], per_class: dict[str, dict]) -> str:
    """ "13 eosinophil, 6 lymphocyte, 4 monocyte and 45 neutrophil": counts in the per-type order, the
    types with none left out."""
    parts = [f"{k} {cell_type(c).label.lower()}" for k, c in zip(counts, per_class) if k]
    return ", ".join(parts[:-1]) + f" and {parts[-1]}" if len(parts) > 1 else parts[0]


def per_class_rows(per_class: dict[str, dict]) -> list[dict[str, object]]:
    """The card's per-type TEST figures as the page shows them: three decimals, None where undefined,
    and what each rests on: its cells read right of its cells (the images, views of a few cells each,
    on a card of wbc 0.20 or before, which has no cells per type; `balanced_note` gives them otherwise:
    both columns ran a phone's table 33 px past its 356)."""
    by_cell = all(isinstance(v.get("cells"), int) and isinstance(v.get("cells_right"), int) for v in per_class.values())
    return [{"type": cell_type(c).label,
             **{k: None if v.get(k) is None else round(float(v[k]), 3) for k in ("precision", "recall", "f1")},
             # None (blank) for a type with no cells, as the report and the CLI leave it.
             **({"cells right": f"{v['cells_right']} of {v['cells']}" if v["cells"] else None} if by_cell
                else {"images": int(v["support"])})}
            for c, v in per_class.items()]


def review_note(review: dict | None) -> str:
    """What the *needs review* mark did on the test images: how many it marked, how well those and the
    rest were read, and how many of the errors it caught."""
    marked = (review or {}).get("flagged_share")
    if not _finite(marked):
        return ""
    right, rest, caught = review.get("accuracy_flagged"), review.get("accuracy_rest"), review.get("errors_flagged_share")
    out = f"**What *needs review* catches.** It marked {100 * marked:.1f}% of the test images"
    if _finite(right) and _finite(rest):
        out += f"; those were right {100 * right:.1f}% of the time, the rest {100 * rest:.1f}%"
    if all(not _finite(v) or v == 1 for v in (right, rest)):
        return out + ", and the model made no error on them."
    if not _finite(caught):
        return out + "."
    if caught < 0.5:
        out += (f". It caught only {100 * caught:.0f}% of the wrong images: errors come in whole cells, and a cell "
                "read wrong in every view with confidence is not marked, so a confident answer is not a checked one")
    else:
        out += f". It caught {100 * caught:.0f}% of the wrong images; the rest were confident"
    cells, marked_cells = review.get("cells_with_errors"), review.get("cells_with_errors_marked")
    if type(cells) is int and type(marked_cells) is int and cells:
        out += f" ({marked_cells} of the {cells} cells with a wrong image had one marked)"
    return out + "."


def busiest_band_note(reliability: Sequence[dict[str, float]] | None,
                      by_type: Mapping[str, Sequence[dict[str, float]]] | None = None) -> str:
    """How the card's test confidences held where most test images fell (the fullest reliability bin),
    as a clause for the page's limits, with each type's calls in that bin (`reliability_by_type`, where the
    card keeps it and the type's calls there are MIN_RECORD_FILES or more); "" where the card has no bins, or the
    fullest holds fewer than MIN_RECORD_FILES images.
    The gap is that of the figures as shown (95.6 and 87.6 read "too sure by 8.1")."""
    bins = [b for b in reliability or () if b.get("files")]
    if not bins:
        return ""
    b = max(bins, key=lambda b: b["files"])
    if b["files"] < MIN_RECORD_FILES:  # 2 images "too modest by 56 points", where a result's caption reads none
        return ""
    accuracy, confidence = round(100 * b["accuracy"], 1), round(100 * b["confidence"], 1)
    gap = confidence - accuracy
    how = "too sure by" if gap > 0 else "too modest by" if gap < 0 else "as sure as it was right"
    calls = []
    for c, kept in (by_type or {}).items():
        same = [t for t in kept if isinstance(t, Mapping) and t.get("from") == b["from"]
                and int(t.get("files", 0)) >= MIN_RECORD_FILES]
        if same and c in CLASS_INDEX:
            calls.append(f"{100 * float(same[0]['accuracy']):.1f}% of its {int(same[0]['files']):,} "
                         f"{cell_type(c).label.lower()} calls")
    return (f"where most of its test images fell ({int(b['files']):,} at {100 * b['from']:.1f}{DASH}{100 * b['to']:.1f}%) "
            f"it was right on {accuracy:.1f}% at a mean confidence of {confidence:.1f}%, {how}"
            + (f" {abs(gap):.1f} points" if gap else "")
            + (f" (there it was right on {', '.join(calls)}: a type's errors land in another's calls)" if calls else "")
            + "; ")


# The About tab's figures in plain words, for a student who has not met them (a user test found none explained).
FIGURES_GLOSSARY = (
    ("Accuracy over files", "the share of the test images typed right. The test set's images are several views "
     "(turned, flipped, shifted) of only a few dozen cells, so they are not independent."),
    ("Cell-level accuracy", "the share of the test cells typed right, a cell's answer being the type its views "
     "agree on most strongly (their probabilities averaged)."),
    ("Precision of a type", "of the images the model called this type, the share that were."),
    ("Recall of a type", "of the images of this type, the share the model found."),
    ("Cells right", "of the test cells of a type, how many the model typed right, a cell's answer being the type "
     "its views agree on most strongly. Recall is over images, which are views of a few cells: where a type has 4 "
     "cells, one cell moves its share by 25 points."),
    ("F1 and macro-F1", "F1 joins precision and recall in one figure; macro-F1 is its mean over the four types, "
     "so that each type counts alike however many images it has."),
    ("95% interval", "how far the figure could move with other cells like these: the test cells were drawn again "
     "at random, with replacement, many times, and the figure's middle 95% kept. With so few cells it is wide."),
    ("Calibration error (ECE)", "how far the model's confidence lies from the share it gets right, on average "
     "over the test images (0 is perfect: of the answers given 80%, four in five right)."),
    ("Held-out", "images kept out of training, so that the model is judged on cells it has not seen."),
)
# The same terms where each test image is a cell of its own (a maker's own photos): no views to speak of.
_OWN_CELLS_GLOSSARY = {
    "Accuracy over files": "the share of the test images typed right; here each image is a cell of its own.",
    "Cell-level accuracy": "the share of the test cells typed right; here each image is a cell, so it is the same.",
    "Cells right": "of the test cells of a type, how many the model typed right; here each image is a cell.",
}


def figures_glossary(test: Mapping[str, Any]) -> list[tuple[str, str]]:
    """FIGURES_GLOSSARY for the card's test figures: where its images are no views of fewer cells (each a cell of
    its own, as a maker's own photos may be), its entries that speak of views say so instead."""
    views = shows_views(test)
    return [(term, meaning if views else _OWN_CELLS_GLOSSARY.get(term, meaning)) for term, meaning in FIGURES_GLOSSARY]


MIN_RECORD_FILES = 20  # a reliability bin of fewer test images tells nothing of a confidence (2 images read 0%)
TOO_FEW_RECORD = "Too few of the test images"  # how `confidence_record` begins for such a bin


def confidence_record(test: Mapping[str, Any] | None, confidence: float, label: str | None = None) -> str:
    """How often the test images given about this confidence were right: the card's reliability bin that holds
    it, in a sentence; where the bin holds fewer than MIN_RECORD_FILES test images, that they are too few to
    say; "" where it holds none or the card has no such figures. With the type called (`label`) and a card that
    keeps them (`reliability_by_type`), the bin of that type's calls: pooled, a neutrophil call at 96% read "answers given 93.3-100.0% were right 87.6%", where
    neutrophil calls so sure were right 70% (the monocytes read wrong land there). The bin is found by the
    confidence as the page shows it (one decimal), against the bins' edges as the sentence shows them, so that
    two results both shown as 93.3% get one sentence. Beside a result, what a bare 93.9% does not say: on TEST
    the top bin was right less often than the two below it (a monocyte's 155 views, all read wrong)."""
    by_type = (test or {}).get("reliability_by_type") if isinstance(test, Mapping) else None
    typed = isinstance(by_type, Mapping) and label is not None
    try:
        kept = by_type.get(label) or () if typed else (test or {}).get("reliability") or ()
        bins = [(round(100 * float(b["from"]), 1), round(100 * float(b["to"]), 1), int(b["files"]),
                 float(b["accuracy"]), int(b["cells"]) if "cells" in b else None) for b in kept]
        cells = int((test or {})["n_cells"])
    except (KeyError, TypeError, ValueError, AttributeError):  # a card from another version: no sentence, not a wrong one
        return ""
    shown = float(f"{100 * confidence:.1f}")  # as the page's metric writes it
    answers = f"{cell_type(label).label} answers" if typed else "answers"
    for lo, hi, files, accuracy, of_cells in bins:
        if lo <= shown < hi or (hi >= 100.0 and shown >= lo):  # [from, to), the last closed, as metrics bins
            if files < MIN_RECORD_FILES:  # said, not left blank: a blank read as nothing to say (18 images, 56% right)
                return (f"{TOO_FEW_RECORD} got {answers} at {lo:.1f}{DASH}{hi:.1f}% ({files}) to say how "
                        "often such answers are right.")
            # The cells behind the figure where the card has them: 100% of 338 images read as far stronger than
            # the 6 lymphocytes they are views of.
            behind = (f"{files:,} images, {'views of ' if files > of_cells else 'a cell each, '}{of_cells} "
                      f"cell{'s' if of_cells != 1 else ''}" if of_cells is not None
                      else f"{files:,} images; the test set has {cells} cells")
            return (f"On the test images, {answers} given {lo:.1f}{DASH}{hi:.1f}% were right {100 * accuracy:.1f}% "
                    f"of the time ({behind}, and errors come in whole cells, so this is rough).")
    return ""


# Under an overexposed photo's confidence, instead of the test images' record at it (`confidence_note`).
OVEREXPOSED_RECORD = ("The test images' record at this confidence is for photos exposed as the training images "
                      "were; it does not hold for an overexposed one, which the model reads much less well.")


def shown_digits(confidence: float, threshold: float) -> int:
    """Decimals of a percentage that show a confidence below the review threshold as below it, the threshold
    given to at least two (66.553% showed as 66.6% beside "below 66.58%"): 1 where it is not below."""
    for digits in (1, 2, 3, 4):
        if confidence >= threshold or round(100 * confidence, digits) < round(100 * threshold, max(digits, 2)):
            return digits
    return 4


def threshold_shown(threshold: float, confidence: float = 1.0) -> str:
    """The review threshold as a percentage, to two decimals or as many as `confidence` is shown with."""
    return f"{100 * threshold:.{max(2, shown_digits(confidence, threshold))}f}%"


def threshold_basis(card: Mapping[str, Any]) -> str:
    """Whose answers the card's review threshold is the least sure tenth of, as its `review_rule` says: cells kept
    out of training in cross-validation (an export with --calibration) or the run's own validation cells."""
    rule = str(card.get("review_rule") or "")
    return ("its answers on cells kept out of its training, in cross-validation" if "out-of-fold" in rule
            else "its answers on the cells kept out of its training to validate it")


def confidence_shown(confidence: float, threshold: float) -> str:
    """A confidence as a percentage, to one decimal or to as many as it takes to read below the threshold."""
    return f"{100 * confidence:.{shown_digits(confidence, threshold)}f}%"


# Beside a record of the few types' calls: the test images hold about as many of each type, a smear far fewer of
# them, so that more of such calls are misread neutrophils there (a hematologist's review: the record read as the
# chance that an eosinophil call in a smear is right).
FEW_IN_A_SMEAR = {"EOSINOPHIL": "eosinophils", "MONOCYTE": "monocytes"}


def confidence_note(test: Mapping[str, Any] | None, p: Prediction) -> str:
    """The caption under a typed result's confidence: the test images' record at it (`confidence_record`),
    except for an overexposed photo, which that record does not describe; for a type few in a smear
    (FEW_IN_A_SMEAR), that such calls are right less often there than on a test set of as many of each type
    (`balanced_test`)."""
    record = confidence_record(test, p.confidence, p.label)
    given = bool(record) and not record.startswith(TOO_FEW_RECORD)  # a record with a figure, not "too few"
    if p.overexposed:  # no record to set aside where the card has none to give, or too few images for one
        return OVEREXPOSED_RECORD if given else ""
    if given and (few := FEW_IN_A_SMEAR.get(p.label)) and balanced_test((test or {}).get("per_class") or {}):
        record += (f" The test images hold about as many of each type; in a smear, where {few} are few, fewer such "
                   "calls are right.")
    return record


def tell_apart(first: str, second: str) -> str:
    """What tells two types apart, for a result that needs review: each one's morphology (class names)."""
    return "What tells them apart:" + "".join(f"  \n**{cell_type(c).label}**: {cell_type(c).morphology}"
                                               for c in (first, second))


def trust_rows(reliability: Sequence[dict[str, float]]) -> list[dict[str, object]]:
    """The card's test-set calibration bins (metrics.reliability) as the page shows them: for each
    range of the model's confidence (%, one decimal so that neighbours do not share an edge), how many
    test images fell in it and the percentage of those it got right."""
    return [{"model's confidence": f"{100 * b['from']:.1f}{DASH}{100 * b['to']:.1f}%", "test images": int(b["files"]),
             "right (%)": round(100 * b["accuracy"], 1), "mean confidence (%)": round(100 * b["confidence"], 1)}
            for b in reliability]


def trust_rows_by_type(by_type: Mapping[str, Sequence[Mapping[str, Any]]] | None) -> list[dict[str, object]]:
    """The card's bins of each type's calls (metrics.reliability_by_type) as the page shows them: for each type
    called and range of confidence, its test images (and the cells they show, where the card has them) and the
    percentage right; [] where the card has none or another version's."""
    rows = []
    try:
        for c, bins in (by_type or {}).items():
            for b in bins:
                rows.append({"type called": cell_type(c).label,  # the range without "%": the table fits a phone's width
                             "model's confidence (%)": f"{100 * b['from']:.1f}{DASH}{100 * b['to']:.1f}",
                             "test images": int(b["files"]), **({"cells": int(b["cells"])} if "cells" in b else {}),
                             "right (%)": round(100 * float(b["accuracy"]), 1)})
    except (KeyError, TypeError, ValueError, AttributeError):
        return []
    return rows


# Hides the "Download as CSV" button of the review table's toolbar (its aria-label starts so; the table's
# label may follow it), in the container Streamlit marks with the widget's key: the page's own button gives it
# with repeats, unreadable files and formula quoting. The other buttons (search, full screen) and the About
# tab's tables' downloads stay. (The differential, a plain table, has no toolbar; its container's key is for
# DIFFERENTIAL_CSS and the tests.)
REVIEW_KEY = "review"
DIFFERENTIAL_KEY = "differential"
# (The review table's key gains "-N" when a restored review replaces its values: *= finds every one.)
HIDE_GRID_DOWNLOAD_CSS = (f'[class*="st-key-{REVIEW_KEY}"] [data-testid="stElementToolbarButton"]'
                          ':has(button[aria-label^="Download as CSV"]) { display: none; }')
# Each result sits in a container keyed RESULT_KEY + its index. On a phone its two columns stack, and the
# pictures (the left column) came first: the type and confidence began about 1,500 px down. There the
# verdict's column goes first, and the crop and its heatmap sit side by side (one above the other, each the
# screen's width, a result was 1,210 px tall: 1.4 screens); a ringed photo of two cells keeps the full width.
RESULT_KEY = "result-"
PICTURES_KEY = "pictures-"  # the crop and its heatmap, in a container of their own (the ringed photo is not)
PHONE_RESULT_CSS = ('@media (max-width: 640px) { [class*="st-key-' + RESULT_KEY + '"] [data-testid="stHorizontalBlock"] > '
                    '[data-testid="stColumn"]:last-child { order: -1; } '
                    '[class*="st-key-' + PICTURES_KEY + '"] { flex-flow: row wrap; } '
                    '[class*="st-key-' + PICTURES_KEY + '"] > [data-testid="stElementContainer"] '
                    '{ width: calc(50% - 0.5rem) !important; } }')
# The differential's plain table: its number columns' headings over their figures (Streamlit sets every
# heading to the left, the figures to the right).
# On a phone its cells' padding narrowed: with 100 cells or more (three-digit counts, a status in every row) it
# ran 15 px past a 356 px screen and cut the status off.
DIFFERENTIAL_CSS = ('[class*="st-key-' + DIFFERENTIAL_KEY + '"] thead th:nth-child(2), '
                    '[class*="st-key-' + DIFFERENTIAL_KEY + '"] thead th:nth-child(3) { text-align: right !important; } '
                    '@media (max-width: 640px) { [class*="st-key-' + DIFFERENTIAL_KEY + '"] th, '
                    '[class*="st-key-' + DIFFERENTIAL_KEY + '"] td { padding-left: 0.3rem !important; '
                    'padding-right: 0.3rem !important; } }')
# On a touch screen (Streamlit's own test for it: pointer: coarse) a table's toolbar is always shown, 44 px
# tall and above the table, where the gap to what comes before is 16 px: it covered the last line of the
# caption above the review table and the last row of the review table above the differential. There a table
# keeps that room above it.
TOOLBAR_ROOM_CSS = ('@media (pointer: coarse) { [data-testid="stElementContainer"]:has([data-testid="stDataFrame"]) '
                    '{ margin-top: 1.75rem; } }')

# Each result is headed by its file's name, an h2 (the type under it an h3), so that a list of the page's
# headings names each file; shown smaller than Streamlit's h2, and than the type, as the bold name it replaced.
# A long name without spaces (a camera's) breaks rather than widen the page. Their anchors (`result_anchors`)
# are for unique ids only: Streamlit gives a heading without one an id made of its text, the same for two
# results of one type, so their "Link to heading" buttons stay hidden, as the bold name had none.
RESULT_HEADINGS_CSS = ('[class*="st-key-' + RESULT_KEY + '"] [data-testid="stHeading"] h2 '
                       '{ font-size: 1.15rem; font-weight: 600; padding: 0.25rem 0 0.5rem; overflow-wrap: anywhere; } '
                       '[class*="st-key-' + RESULT_KEY + '"] [data-testid="stHeaderActionElements"] { display: none; }')


RESULTS_PER_PAGE = 20  # results drawn at a time: each costs the browser about 0.1 s, and a screen or two of page


def result_pages(n: int) -> list[range]:
    """The indices of `n` results, RESULTS_PER_PAGE to a page (none for none)."""
    return [range(start, min(start + RESULTS_PER_PAGE, n)) for start in range(0, n, RESULTS_PER_PAGE)]


def page_label(page: range, n: int) -> str:
    """A page of results as its selector names it: "21–40 of 110"."""
    return f"{page.start + 1}{DASH}{page.stop} of {n}"


FOUR_TYPES_ONLY = ("It knows four types only: eosinophil, lymphocyte, monocyte and neutrophil. A basophil, a blast, "
                   "an immature granulocyte, a nucleated red cell, a smudge cell, a clump of platelets or any other "
                   "cell is read as one of them, often with high confidence; *confident* means the model is sure, "
                   "not that it is right.")
PAGES_ANCHOR = "results-shown"  # the id above the choice of results, which `pages_note` links to
# The link's target lands below Streamlit's header (60 px, opaque), not under it: the choice's label was hidden.
PAGES_ANCHOR_CSS = f"#{PAGES_ANCHOR} {{ display: block; scroll-margin-top: 4.5rem; }}"


def pages_note(pages: Sequence[range], page: int, n: int, table: bool = True) -> str:
    """Under a page of results: which are shown, a link up to the choice of the others and, where some image
    was read (`table`), that the review table holds them all."""
    others = f"the next {len(pages[page + 1])}, or others" if page + 1 < len(pages) else "others"
    return (f"Results {page_label(pages[page], n)} shown. [Choose {others} above the results](#{PAGES_ANCHOR})"
            + ("; the review table below has every image read." if table else "."))


def result_anchors(i: int) -> tuple[str, str]:
    """The anchors (the headings' ids) of the `i`th result's file name and type: unique on the page."""
    return f"{RESULT_KEY}{i}", f"{RESULT_KEY}{i}-type"


# Streamlit draws captions at 0.6 opacity: 3.9:1 on the light theme's white, under the 4.5:1 that small
# text needs, and the captions here carry what a picture or a table means. At 0.8 they are 7.2:1.
CAPTION_CONTRAST_CSS = '[data-testid="stCaptionContainer"] { opacity: 0.8; }'

REVIEW_CSV = "wbc-review.csv"  # the review table's download, which `restored_labels` reads back
RESTORE_KEY = "restore"  # the uploader that takes it
REVIEW_COLUMNS = ("file", "predicted", "confidence (%)", "verdict", "reviewed", CHECKED)
IMAGE_ID = "sha256"  # the download's column that names each image by its bytes (`bytes_key`)


def _spreadsheet_csv(fieldnames: Sequence[str], rows: Sequence[Mapping[str, object]]) -> bytes:
    """Rows as CSV for a spreadsheet: UTF-8 with a byte-order mark (Excel reads other names garbled without
    it), a blank for a missing value or NaN (the edited table hands a blank back as NaN), and a text that a
    spreadsheet would run as a formula (wbc.io.FORMULA_STARTS first), or that starts with ' itself, quoted with '
    (a lone "-", the differential's blank status, is no formula)."""
    def cell(v: object) -> object:
        if v is None or isinstance(v, float) and math.isnan(v):
            return ""
        return spreadsheet_text(v) if isinstance(v, str) and v != "-" else v

    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=fieldnames)
    w.writeheader()
    for r in rows:
        w.writerow({k: cell(r.get(k)) for k in fieldnames})
    return out.getvalue().encode("utf-8-sig")


def table_csv(rows: Sequence[Mapping[str, object]], unusable_files: Sequence[tuple[str, str]] = (),
              repeats: Sequence[tuple[str, str]] = ()) -> bytes:
    """The review table as CSV for a spreadsheet: predicted and reviewed label side by side and, last, the
    image's sha256 (a row's "key": what `restored_labels` finds it again by, whatever its name), then the
    files that could not be used and a line for each upload left out as a repeat, so that every upload
    has a line."""
    # the message names the file, as the row does already
    extra = [{"file": name, "verdict": f"unreadable: {why.removeprefix(f'{name}: ')}"} for name, why in unusable_files]
    extra += [{"file": name, "verdict": f"the same image as {first}: left out as a repeat"} for name, first in repeats]
    return _spreadsheet_csv([*REVIEW_COLUMNS, IMAGE_ID], [*({**r, CHECKED: "yes" if ticked(r.get(CHECKED)) else "",
                                                             IMAGE_ID: r.get("key")} for r in rows), *extra])


@dataclass(frozen=True)
class Restored:
    """A downloaded review table's reviewed labels: by image sha256 where a row has one (this version's
    downloads), else by file name (an older table's rows, or one added by hand); and the rows whose reviewed column holds something else (a type
    mistyped in a spreadsheet), as (file, what it holds); and the images two rows gave two types (the last
    row's taken), as (the sha256 or name they are found by, file)."""
    by_key: dict[str, str]
    by_name: dict[str, str]
    unknown: tuple[tuple[str, str], ...] = ()
    conflicts: tuple[tuple[str, str], ...] = ()
    checked: frozenset[str] = frozenset()  # the sha256s or names of the rows ticked CHECKED

    def __len__(self) -> int:
        return len(self.by_key) + len(self.by_name)

    def label(self, key: str, name: str) -> str | None:
        """The reviewed label the table gives the image with this sha256 and shown name, if any."""
        return self.by_key.get(key) or self.by_name.get(name)

    def is_checked(self, key: str, name: str) -> bool:
        """Whether the table's row for the image with this sha256 (or, without one, this name) is ticked CHECKED."""
        return (key if key in self.by_key else name) in self.checked


def restored_labels(data: bytes, name: str) -> Restored:
    """The reviewed labels of a review table this page downloaded (`table_csv`), so that a review survives
    a reload: the images uploaded again, then the table. Read as a spreadsheet may have saved it back too:
    without the byte-order mark, in Windows' encoding, separated by ; or tabs, the types in any case. Rows
    whose reviewed column holds no label of REVIEW_LABELS (a repeat, an unreadable file) give none.
    ValueError naming the file where it is not such a table, or gives no label."""
    try:
        # Excel's "Unicode text" is UTF-16 with its byte-order mark
        text = data.decode("utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")  # Excel's plain "CSV" on Windows
    # Any line ending: Excel's "Macintosh Comma Separated" ends lines with a lone CR, which csv read as one line.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # The delimiter is the header's (its column names hold none of them). csv.Sniffer took the ' that quotes
    # formula-like names (`spreadsheet_text`) for the quote character and merged rows (corrections lost under
    # a note of success), and found no delimiter in some ;-separated re-saves.
    header = text.split("\n", 1)[0]
    reader = csv.DictReader(io.StringIO(text), delimiter=max(",;\t", key=header.count))
    give = f"give the {REVIEW_CSV} that the Download the table button saved"
    not_ours = f"{name}: not a table this page downloaded; {give}"
    labels = {lab.lower(): lab for lab in REVIEW_LABELS}
    by_key: dict[str, str] = {}
    by_name: dict[str, str] = {}
    unknown: list[tuple[str, str]] = []
    conflicts: dict[str, str] = {}
    checked: set[str] = set()
    try:  # a file of another kind (binary, a photo renamed .csv) can stop the reader anywhere
        if reader.fieldnames:  # headers as a spreadsheet may have retyped them ("File", " Reviewed")
            reader.fieldnames = [f.strip().lower() for f in reader.fieldnames]
        fields = set(reader.fieldnames or ())
        if missing := [c for c in ("file", "reviewed") if c not in fields]:
            # `wbc predict`'s table has a file column: named so, the message read as false.
            predict_like = {"file", "class", "verdict"} <= fields
            raise ValueError(f"{name}: not a table this page downloaded (it has no {' and no '.join(missing)} "
                             "column" + ("; it looks like wbc predict's table, which holds the model's types, not "
                                         "a reviewer's" if predict_like else "") + f"); {give}")
        for r in reader:
            held, file = (r.get("reviewed") or "").strip(), unquoted(r.get("file") or "")
            label = labels.get(held.lower())
            if label is None:
                if held:  # blank: a repeat's or an unreadable file's line, which has no type to give
                    unknown.append((file, held))
                continue
            store, key = (by_key, r[IMAGE_ID].strip()) if r.get(IMAGE_ID) else (by_name, file)
            if store.get(key, label) != label:
                conflicts[key] = file
            store[key] = label
            # "yes" as downloaded; a spreadsheet may have retyped it, or ticked it in its own words
            if (r.get(CHECKED) or "").strip().lower() in TICKED:
                checked.add(key)
            else:
                checked.discard(key)
    except csv.Error as e:
        raise ValueError(f"{not_ours} ({e})") from e
    if not by_key and not by_name:
        raise ValueError(f"{name}: no row gives a type in its reviewed column ({', '.join(REVIEW_LABELS)})")
    return Restored(by_key=by_key, by_name=by_name, unknown=tuple(unknown),
                    conflicts=tuple(conflicts.items()), checked=frozenset(checked))


def restore_note(name: str, restored: int, corrected: int, missed: int, unknown: Sequence[tuple[str, str]],
                 conflicts: Sequence[str] = (), excluded: int = 0, ticked: int = 0) -> tuple[str, str]:
    """(kind, text) of what a restore did: how many images took the table's type (and how many of those
    differ from the model's: `corrected` to another type, `excluded` by the reviewer; `ticked` checked), how many
    of its rows name no image shown, the rows whose type it could not read, named, which keep the model's type,
    and the images two rows gave two types. Markdown, its names escaped."""
    name = markdown_literal(name)
    if not restored:
        text = f"No row of {name} names an image shown here: upload the images it was made from."
    else:
        # Each kind of change in words (the exclusions were counted as types other than the model's, the ticks unsaid)
        done = [f"{k} {what}" for k, what in ((corrected, "given a type other than the model's"),
                                              (excluded, "excluded"), (ticked, "ticked checked")) if k]
        text = f"Restored the review of {restored} image(s) from {name}: {', '.join(done) or 'each as the model read it'}."
        if missed > 0:
            text += f" {missed} of its rows name no image shown here: upload those images to restore them too."
    if unknown:
        shown = "; ".join(markdown_literal(f"{f}: {v!r}") for f, v in unknown[:5]) + ("; ..." if len(unknown) > 5 else "")
        text += (f" {len(unknown)} row(s) hold in their reviewed column no type this page knows "
                 f"({', '.join(REVIEW_LABELS)}), and keep the model's type: {shown}")
    if conflicts:
        shown = ", ".join(map(markdown_literal, conflicts[:5])) + (", ..." if len(conflicts) > 5 else "")
        text += (f" {len(conflicts)} image(s) have two rows of different types in the table, and took the last "
                 f"row's: {shown}; check them")
    return ("success" if restored and not unknown and not conflicts else "warning"), text


# The basophils' status while a counted image keeps the model's type unchecked (`reviewed_differential`)
BASOPHILS_UNCHECKED = "to check: the model never calls a basophil"
# The differential's statuses as the page's narrow column shows them (its caption names them in full); "in
# range" kept on one line on a phone (a no-break space), and "to check" no wider.
SHORT_STATUS = {"within range": "in\u00a0range", LOW_BY_CHANCE: "low?", HIGH_BY_CHANCE: "high?",
                BASOPHILS_UNCHECKED: "to\u00a0check"}


def reviewed_differential(names: Sequence[str], records: Sequence[Mapping[str, object]]) -> list[dict[str, object]]:
    """The review table's differential (`differential` of the reviewed `names`, reviewed=True), its basophils
    not called within range while any counted row (`records`) keeps the model's type unchecked: the model never
    calls a basophil, so their count is only the reviewer's corrections so far ("0, within range" stood beside
    96 of 106 images unchecked). A high share stands: the images still to check can only add to it."""
    diff = differential(names, reviewed=True)
    if unchecked_any_count(records):
        for r in diff:
            if r["type"] == REVIEWED_TYPES["BASOPHIL"] and r["status"] == "within range":
                r["status"] = BASOPHILS_UNCHECKED
    return diff


# Word joiners around a range's dash: on a phone "18.4–35.6" broke after the dash and read as two numbers.
UNBROKEN_DASH = f"\u2060{DASH}\u2060"


def differential_shown(diff: Sequence[Mapping[str, object]]) -> list[dict[str, object]]:
    """The differential as the page's table shows it: short headings and statuses, ranges that do not break,
    and a long dash for no status (the table reads its cells as Markdown, where a lone "-" is a list's bullet)."""
    heading = {LIMITS_COLUMN: "95% limits (%)", "adult range (%)": "range (%)"}
    status = {**SHORT_STATUS, "-": "\u2014", "": "\u2014"}  # "": a row with no range (other white cells)

    def shown(k: str, v: object) -> object:
        if k == "status":
            return status.get(str(v), v)
        if k == "adult range (%)" and v == "":
            return "\u2014"
        return v.replace(DASH, UNBROKEN_DASH) if k in (LIMITS_COLUMN, "adult range (%)") and isinstance(v, str) else v

    return [{heading.get(k, k): shown(k, v) for k, v in r.items()} for r in diff]


NO_STATUS_BELOW = "none below 100 cells"  # the total's status where the types' are "-"


def differential_csv(diff: Sequence[Mapping[str, object]], set_aside: int = 0, excluded: int = 0,
                     unreadable: int = 0, unchecked: int = 0, not_checked: int = 0, nrbc: int = 0,
                     made_with: Sequence[str] = (), repeats: int = 0) -> bytes:
    """The differential as the page shows it (a row per type, its statuses in full), then its total, then what
    the page says beside it: the nucleated red cells marked (`nrbc`, where any; per 100 white cells in the percent
    column), the images left out
    (`set_aside` by the screening and still excluded, `excluded` by the reviewer, `unreadable`, `repeats` of an
    image given before, so that the rows add up to the images given), the counted ones
    still marked *needs review* and unchecked, and those no reviewer checked at all (`not_checked`) (the download
    had the counts alone: 9 unchecked, 3 left out, unsaid); last, `made_with`: what made it (the model, its
    review threshold, the date), each line a row of its own."""
    if not diff:
        return b""
    n = sum(int(str(r["count"])) for r in diff)
    total = {"type": "Total", "count": n, "percent": 100.0 if n else 0.0,
             "status": NO_STATUS_BELOW if any(r.get("status") == "-" for r in diff) else ""}
    beside = [*([{"type": "Nucleated red cells (not in the total; percent: per 100 white cells)", "count": nrbc,
                  "percent": per_100(nrbc, n)}] if nrbc else []),
              {"type": "Not counted: set aside by the screening", "count": set_aside},
              {"type": "Not counted: excluded in review", "count": excluded},
              {"type": "Not counted: unreadable files", "count": unreadable},
              {"type": "Not counted: repeats of an image given before", "count": repeats},
              {"type": "Counted, marked needs review, unchecked", "count": unchecked},
              {"type": "Counted, not checked by a reviewer (any verdict)", "count": not_checked},
              *({"type": line} for line in made_with)]
    return _spreadsheet_csv(list(diff[0]), [*diff, total, *beside])


# The differential download's last lines: what the figures are, whatever is done with the file.
NOT_A_DIAGNOSIS = ("Each image is taken as one cell. A second opinion for learning and checking by a qualified "
                   "person, not a diagnosis.")


def made_with(card: Mapping[str, Any], threshold: float, when: str) -> list[str]:
    """The differential download's provenance lines: the model (its name and the sha256 of its ONNX file), its
    review threshold, when it was made (`when`, e.g. an ISO date), and NOT_A_DIAGNOSIS."""
    sha = str(card.get("onnx_sha256") or "unknown")
    return [f"Model: {card.get('name') or 'unnamed'}, ONNX sha256 {sha}",
            f"Review threshold: {threshold_shown(threshold)}", f"Made: {when} by wbc {__version__}", NOT_A_DIAGNOSIS]


def describe(label: str) -> dict[str, str]:
    """The biology the app shows for a predicted type, from the one source of truth in wbc.info."""
    t = cell_type(label)
    lo, hi = t.normal_range_pct
    return {
        "What it is": t.summary,
        "Role in immunity": t.immunity,
        "Typical morphology": t.morphology,
        "Typical adult share of white cells (ranges vary by laboratory)": f"{lo:g}{DASH}{hi:g}%",
        # Eosinophilia, neutropenia and the like are defined on absolute counts, not on shares.
        "A high absolute count can point to": t.high_count,
        "A low absolute count can point to": t.low_count,
    }
