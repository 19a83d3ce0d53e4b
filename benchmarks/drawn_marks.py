"""Marks drawn on a photo near its cell, which change the network's reading: which colours the screening
(`wbc.photo_checks.drawn_mark`) finds, and how often it takes the data set's own files for marked.

    python benchmarks/drawn_marks.py [--data PATH] [--every 3] [--shifts-every 25] [--marks-every 10]

False marks: every k-th TRAIN and TEST file as given, and every m-th under each of the robustness test's
shifts and other cameras' colours (`wbc.robustness.SHIFTS`, `COLOUR_SHIFTS`, and colours made 1.3 and 1.6
times as saturated); none should be flagged. Each row also gives, per family of colour sought, the highest
score that enough of a file's pixels reach: how far below its margin the data set stays.
Marks: every n-th TEST file with an arrow of each colour, 2 and 4 px wide, ending beside the cell (inside
the crop the network reads), saved as PNG and as JPEG (quality 75); each goes through the shipped model's
whole path, and a mark is found where the photo is refused for it; of the marks not found, how many changed
the type given (against the same photo unmarked) is in brackets. The screening decides nothing about the
type, so TEST may serve. To compare commits, run it with another commit's `src` first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

if TYPE_CHECKING:
    from wbc.imaging import CellLocation

COLOURS: dict[str, tuple[int, int, int]] = {  # a family of photo_checks.MARK_FAMILIES each, but the last two
    "red": (230, 20, 20),
    "yellow": (250, 230, 0),
    "green": (0, 200, 0),
    "orange": (255, 128, 0),
    "cyan": (0, 220, 230),
    "magenta": (230, 0, 230),
    "blue": (20, 20, 230),
    "black": (0, 0, 0),
}
FAMILY = {"red": "red", "yellow": "orange to yellow", "green": "green", "orange": "orange to yellow", "cyan": "cyan",
          "magenta": "magenta"}  # the MARK_FAMILIES family each colour is drawn to be found in
WIDTHS = (2, 4)  # px
FORMATS: tuple[tuple[str, dict[str, int]], ...] = (("PNG", {}), ("JPEG", {"quality": 75}))


def arrow(photo: Image.Image, colour: tuple[int, int, int], width: int) -> Image.Image:
    """`photo` with a line drawn from the side with room towards its cell, ending 30 px from the nucleus's centre."""
    from wbc.imaging import locate_cell

    loc = locate_cell(np.asarray(photo))
    x, y = loc.cx, loc.cy
    sx, sy = (-1 if x > photo.width / 2 else 1), (-1 if y > photo.height / 2 else 1)
    out = photo.copy()
    ImageDraw.Draw(out).line([(x + 70 * sx, y + 60 * sy), (x + 25 * sx, y + 20 * sy)], fill=colour, width=width)
    return out


def saturated(k: float) -> Callable[[np.ndarray], np.ndarray]:
    """A camera's colours made k times as saturated (each pixel's distance from its grey), as phones' are."""
    def f(rgb: np.ndarray) -> np.ndarray:
        grey = rgb.astype(np.float32).mean(axis=2, keepdims=True)
        return np.clip(grey + k * (rgb - grey), 0, 255).astype(np.uint8)
    return f


def needed(field: np.ndarray, loc: CellLocation) -> np.ndarray:
    """Per family of MARK_FAMILIES, the score (5,) that enough of the field's pixels read for `drawn_mark` to flag it
    at that family's margin: the (MARK_MIN_PX / 4)-th highest. The field's white is read from all of it, as
    `screening.screen` reads it for `drawn_mark`."""
    from wbc.photo_checks import MARK_MIN_PX, mark_pixels, mark_scores
    from wbc.white_balance import field_white

    scores = mark_scores(mark_pixels(field, loc, field_white(field)))
    k = -(-MARK_MIN_PX // 4)
    return np.sort(scores, axis=0)[-k] if len(scores) >= k else np.full(scores.shape[1], -255.0)


def false_marks(paths: list[Path], shifts: dict[str, Callable[[np.ndarray], np.ndarray]]
                ) -> dict[str, tuple[int, int, np.ndarray]]:
    """For each shift: how many of the files read as marked, of how many, and each family's highest `needed`."""
    from wbc.decode import load_image
    from wbc.imaging import locate_at_data_scale
    from wbc.photo_checks import drawn_mark
    from wbc.progress import bar
    from wbc.white_balance import field_white

    images = [load_image(p) for p in bar(paths, show=True, desc="decode")]
    out = {}
    for name, shift in shifts.items():
        located = [locate_at_data_scale(shift(img)) for img in images]
        out[name] = (sum(bool(drawn_mark(field, loc, field_white(field))) for field, loc in located), len(located),
                     np.max([needed(*f) for f in located], axis=0))
    return out


def _saved(photo: Image.Image, fmt: str = "PNG", **options: int) -> bytes:
    buf = io.BytesIO()
    photo.save(buf, format=fmt, **options)
    return buf.getvalue()


def found_marks(paths: list[Path]) -> dict[tuple[str, int, str], tuple[int, int, int, float]]:
    """For each (colour, width, format): how many of the marked photos are refused for their mark, of how
    many, how many of the others are typed otherwise than unmarked, and the lowest `needed` in the colour's
    family (nan for a colour of none)."""
    from wbc.decode import load_image
    from wbc.imaging import locate_at_data_scale
    from wbc.photo_checks import DRAWN_MARK, MARK_FAMILIES
    from wbc.predict import Predictor

    pred = Predictor()
    photos = [Image.open(p).convert("RGB") for p in paths]
    unmarked = [p.label if p.typed else "" for p, _, _ in pred.predict_sources(
        [(p.name, _saved(photo)) for p, photo in zip(paths, photos)], hashed=False)]
    out = {}
    for colour, rgb in COLOURS.items():
        for width in WIDTHS:
            marked = [arrow(photo, rgb, width) for photo in photos]
            for fmt, options in FORMATS:
                items = [(p.name, _saved(photo, fmt, **options)) for p, photo in zip(paths, marked)]
                preds = [p for p, _, _ in pred.predict_sources(items, hashed=False)]
                changed = sum(p.typed and p.label != was for p, was in zip(preds, unmarked))
                lowest = float("nan")
                if colour in FAMILY:
                    f = MARK_FAMILIES.index(FAMILY[colour])
                    lowest = min(needed(*locate_at_data_scale(load_image(b, n)))[f] for n, b in items)
                out[(colour, width, fmt)] = (sum(p.not_wbc.startswith(DRAWN_MARK) for p in preds), len(preds), changed, lowest)
    return out


def main(argv: list[str] | None = None) -> int:
    from wbc.cli import whole_number
    from wbc.data import list_split
    from wbc.folders import find_images_root
    from wbc.photo_checks import MARK_FAMILIES, MARK_MARGINS
    from wbc.robustness import COLOUR_SHIFTS, SHIFTS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="data set folder (default: WBC_DATA, else ../shared/data/blood-cells)")
    ap.add_argument("--every", type=whole_number(1), default=3, help="every k-th TRAIN and TEST file as given")
    ap.add_argument("--shifts-every", type=whole_number(1), default=25, help="every m-th under each shift")
    ap.add_argument("--marks-every", type=whole_number(1), default=10, help="every n-th TEST file marked")
    args = ap.parse_args(argv)
    root = find_images_root(args.data)
    files = [s.path for split in ("TRAIN", "TEST") for s in list_split(root, split)]
    found = found_marks([s.path for s in list_split(root, "TEST")][:: args.marks_every])
    print("Marks found (of the others, how many changed the type given), and in the colour's family the lowest score "
          "that enough of a photo's pixels reach:")
    print("| mark | 2 px, PNG | 2 px, JPEG | 4 px, PNG | 4 px, JPEG |\n|---|---|---|---|---|")
    for colour in COLOURS:
        cells = [found[(colour, w, fmt)] for w in WIDTHS for fmt, _ in FORMATS]
        print(f"| {colour} {COLOURS[colour]} | " + " | ".join(
            f"{k} / {n} ({m})" + ("" if np.isnan(low) else f", {low:.0f}") for k, n, m, low in cells) + " |", flush=True)
    rows = false_marks(files[:: args.every], {"as given": lambda rgb: rgb})
    shifted = {k: v for k, v in {**SHIFTS, **COLOUR_SHIFTS}.items() if k != "clean"}
    shifted |= {"saturation x1.3": saturated(1.3), "saturation x1.6": saturated(1.6)}
    rows |= false_marks(files[:: args.shifts_every], shifted)
    print(f"\n| data set files | read as marked | highest score that enough pixels reach: "
          f"{', '.join(MARK_FAMILIES)} |\n|---|---|---|")
    for name, (k, n, high) in rows.items():
        print(f"| {name} | {k} / {n} | {', '.join(f'{v:.0f}' for v in high)} |")
    highest = np.max([high for _, _, high in rows.values()], axis=0)
    print(f"| all of these | {sum(k for k, _, _ in rows.values())} / {sum(n for _, n, _ in rows.values())} | "
          f"{', '.join(f'{v:.0f}' for v in highest)} (margins {', '.join(map(str, MARK_MARGINS))}) |")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
