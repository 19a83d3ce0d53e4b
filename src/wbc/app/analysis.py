"""The uploads and their analysis: the uploader's limits, the samples, repeats left out, each image read and explained."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wbc.app.images import cam_overlay, marked_photo, thumbnail_url
from wbc.app.markup import markdown_literal
from wbc.app.words import threshold_shown
from wbc.decode import load_image
from wbc.info import CLASS_INDEX
from wbc.io import bytes_key, first_copies
from wbc.predict import Prediction, Predictor

# The largest file the page analyses, and Streamlit's server.maxUploadSize set by `wbc app` (one limit the page
# names once): a microscope camera's TIFF or a phone's full-size JPEG fits; a field over 50 megapixels is
# refused by the decoder anyway.
MAX_UPLOAD_MB = 50
SAMPLES_DIR = Path(__file__).parent / "samples"


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


def samples() -> list[tuple[str, bytes]]:
    """The built-in sample images (name, bytes), two per class from TEST_SIMPLE."""
    return [(p.name, p.read_bytes()) for p in sorted(SAMPLES_DIR.glob("*.jpeg"))]


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


def unusable(results: Sequence[CellResult]) -> list[tuple[str, str]]:
    """(file, why) of each upload that could not be read: no row of the review table, no count."""
    return [(r.name, r.error) for r in results if r.prediction is None and r.error]


def four_types_only(threshold: float) -> str:
    """Under the upload box: the four types the model knows, and what its verdict *confident* means, with the
    review `threshold` it is given at ("the model is sure" overstated a verdict given from about 67%)."""
    return ("It knows four types only: eosinophil, lymphocyte, monocyte and neutrophil. A basophil, a blast, "
            "an immature granulocyte, a nucleated red cell, a smudge cell, a clump of platelets or any other "
            "cell is read as one of them, often with high confidence; *confident* means only that the model's "
            f"confidence is at or above its review threshold ({threshold_shown(threshold)}), not that it is right.")
