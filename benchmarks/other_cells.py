"""How often the second-white-cell warning (wbc.other_cell.other_cell) fires, where it should and where
it should not, at each size floor (OTHER_NUCLEUS_PX) it could have.

    python benchmarks/other_cells.py [--data PATH] [--every 4] [--floors 400 600 ...] [--sheet FILE]
                                     [--shifts-every 8] [--mosaics 40]

Photographs: the annotated original fields of dataset-master, halved to the data set's 320 x 240,
grouped by how many white cells BCCD's boxes mark (its boxes miss some cells cut by the edge) and by
the split their field went to. A two-cell field's warning is a hit when it points into a box that the
typed cell is not in. Files: every k-th TRAIN and TEST file, by its field's box count (a view of a
two-cell field may show one of them). The screening decides nothing about the type, so TEST may serve.
--sheet saves the one-box fields warned at the chosen floor, the typed cell ringed green, the other
red, the boxes blue. --shifts-every k also counts, at the shipped floor, the warnings on every k-th
TRAIN and TEST file from a one-box field under each of the robustness test's shifts (other labs'
stain, exposure, scale, blur, JPEG and framing, and other cameras' colours). --mosaics n also screens n fields of
nine originals (3 x 3) at 1x to 0.25x the data set's magnification, as a lower-power objective shows a smear: how
many are passed as a white cell and how many warned of another.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from wbc.photo_checks import Screening

HALF = (320, 240)  # the originals at the data set's scale


def wbc_boxes(xml: Path) -> list[tuple[float, float, float, float]]:
    """White-cell boxes of an annotation, in the halved field's px (x0, y0, x1, y1)."""
    tree = ET.parse(xml)
    corners = ("xmin", "ymin", "xmax", "ymax")
    return [tuple(float(o.findtext(f"bndbox/{k}") or 0) / 2 for k in corners)  # type: ignore[misc]
            for o in tree.findall("object") if o.findtext("name") == "WBC"]


def boxes_at(boxes: list[tuple[float, float, float, float]], y: float, x: float, margin: float = 8) -> set[int]:
    """The boxes (their indices) that hold the point (y, x), with `margin` px to spare."""
    return {i for i, (x0, y0, x1, y1) in enumerate(boxes)
            if x0 - margin <= x <= x1 + margin and y0 - margin <= y <= y1 + margin}


def main(argv: list[str] | None = None) -> int:
    from PIL import Image

    import wbc.screening as scr
    from wbc.cli import whole_number
    from wbc.data import list_split
    from wbc.decode import load_image
    from wbc.folders import find_images_root
    from wbc.imaging import CellLocation, locate_at_data_scale
    from wbc.info import SPLITS
    from wbc.other_cell import OTHER_NUCLEUS_PX, typed_nucleus
    from wbc.sources import field_name, originals_near, source_field
    from wbc.white_balance import field_white, input_gains

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="data set folder (default: WBC_DATA, else ../shared/data/blood-cells)")
    ap.add_argument("--every", type=whole_number(1), default=4, help="use every k-th TRAIN and TEST file (default: 4)")
    ap.add_argument("--floors", type=whole_number(1), nargs="+",
                    default=[400, 600, 800, 1000, 1200, 1500, 2000], help="OTHER_NUCLEUS_PX values to try (default: %(default)s)")
    ap.add_argument("--sheet", type=Path, help="save the one-box fields warned at the shipped floor here (PNG)")
    ap.add_argument("--shifts-every", type=whole_number(1),
                    help="also count warnings on every k-th one-box file under each robustness shift")
    ap.add_argument("--mosaics", type=whole_number(1),
                    help="also count warnings on this many fields of nine originals, at lower magnifications")
    args = ap.parse_args(argv)
    from wbc.io import check_writable_files

    check_writable_files(args.sheet)  # before the work, not after it
    root = find_images_root(args.data)
    originals = originals_near(root, args.data)
    shipped = OTHER_NUCLEUS_PX
    floors = sorted(set(args.floors) | {shipped})

    split_of: dict[int, str] = {}
    files: dict[str, list[tuple[Path, int | None]]] = {}
    for split in SPLITS[:2]:
        every = [(s.path, source_field(split, s.path.parent.name, s.path.name)) for s in list_split(root, split)]
        files[split] = every[:: args.every]
        split_of.update((f, split) for _, f in every if f is not None)
    fields = []
    for xml in sorted((originals / "Annotations").glob("*.xml")):
        photo = originals / "JPEGImages" / (ET.parse(xml).findtext("filename") or "")
        if photo.is_file():
            fields.append((int(xml.stem.split("_")[-1]), photo, wbc_boxes(xml)))
    n_boxes = {f: len(b) for f, _, b in fields}

    def screened(rgb: np.ndarray, at: Sequence[int | None] = (None,)) -> tuple[CellLocation, list[Screening]]:
        """What `Predictor.analyse` does with a photo under the shipped card, which matches white: the
        cell found once, the screening at each floor in `at` (None: the shipped one)."""
        field, loc = locate_at_data_scale(rgb)
        white = field_white(field)
        gains = input_gains(field, white)
        return loc, [scr.screen(field, loc, white, gains, floor) for floor in at]

    def warned(rgb: np.ndarray) -> tuple[dict[int, Screening], CellLocation]:
        loc, at_floors = screened(rgb, floors)
        return dict(zip(floors, at_floors)), loc

    def kind(f: int) -> str:
        n = n_boxes.get(f)
        return "unknown" if n is None else "one box" if n == 1 else "no box" if n == 0 else "two boxes or more"

    larger: dict[str, list[int]] = {"one box": [], "two boxes or more": [], "no box": [], "unknown": []}
    photo_rows: Counter[tuple[str, str, int]] = Counter()
    photo_hits: Counter[tuple[str, int]] = Counter()
    totals: Counter[tuple[str, str]] = Counter()
    sheet = []
    for f, photo, boxes in fields:
        rgb = np.asarray(Image.fromarray(load_image(photo)).resize(HALF, Image.BILINEAR))
        res, loc = warned(rgb)
        where = split_of.get(f, "neither (a duplicate photograph)")
        totals[(kind(f), where)] += 1
        for floor, sc in res.items():
            if sc.other_cell_yx is None:
                continue
            photo_rows[(kind(f), where, floor)] += 1
            if len(boxes) > 1 and boxes_at(boxes, *sc.other_cell_yx) - boxes_at(boxes, loc.cy, loc.cx):
                photo_hits[(where, floor)] += 1
            if floor == shipped:
                if sc.other_larger:
                    larger[kind(f)].append(f)
                if len(boxes) == 1:
                    sheet.append((f, rgb, loc, sc.other_cell_yx, boxes))
    print(f"Annotated original fields (halved to 320 x 240), warned at each floor (stained px); shipped {shipped}\n")
    print("| white-cell boxes | field in | fields | " + " | ".join(str(v) for v in floors) + " |")
    print("|---|---|---|" + "---|" * len(floors))
    for (k, where), n in sorted(totals.items()):
        cells = []
        for floor in floors:
            c = photo_rows[(k, where, floor)]
            hit = f" ({photo_hits[(where, floor)]} in the other box)" if k == "two boxes or more" else ""
            cells.append(f"{c}{hit}")
        print(f"| {k} | {where} | {n} | " + " | ".join(cells) + " |")

    print(f"\nMarked 'other cell much larger' (other_larger) at {shipped}: "
          + "; ".join(f"{k} {len(v)} ({', '.join(field_name(f) for f in v)})" for k, v in larger.items() if v))
    # As photographed (640 x 480, 2x the data set's magnification): shrunk by sqrt(2) steps only until the
    # nucleus fits (`locate_at_data_scale`), or not at all, so the cells stay 1.4-2x the data set's size.
    full: Counter[str] = Counter()
    for f, photo, boxes in fields:
        rgb = load_image(photo)
        loc, (sc,) = screened(rgb)
        full[f"shrunk {loc.reduced_by:.2f}x"] += 1
        k = kind(f)
        full[k] += 1
        if sc.other_cell_yx is not None:
            full[k + " warned"] += 1
            y, x = (v * loc.reduced_by / 2 for v in sc.other_cell_yx)  # in the halved field's px, as the boxes
            full[k + " in the other box"] += bool(boxes_at(boxes, y, x) - boxes_at(
                boxes, loc.cy * loc.reduced_by / 2, loc.cx * loc.reduced_by / 2))
    print(f"\nThe same originals as photographed (640 x 480), warned at {shipped}: one box "
          f"{full['one box warned']} of {full['one box']}; two boxes {full['two boxes or more warned']} of "
          f"{full['two boxes or more']} ({full['two boxes or more in the other box']} in the other box); "
          + ", ".join(f"{k}: {v}" for k, v in sorted(full.items()) if k.startswith("shrunk")))

    print(f"\nData set files (every {args.every}th), warned at each floor\n")
    print("| split | field's white-cell boxes | files | " + " | ".join(str(v) for v in floors)
          + f" | other much larger, at {shipped} |")
    print("|---|---|---|" + "---|" * (len(floors) + 1))
    whole: list[int] = []  # stained px of each typed nucleus that lies whole in its field
    for split, items in files.items():
        count: Counter[tuple[str, int]] = Counter()
        seen: Counter[str] = Counter()
        for path, f in items:
            k = kind(f) if f is not None else "unknown"
            seen[k] += 1
            rgb = load_image(path)
            res, _ = warned(rgb)
            px, is_whole = typed_nucleus(*locate_at_data_scale(rgb))
            if is_whole:
                whole.append(px)
            for floor, sc in res.items():
                count[(k, floor)] += sc.other_cell_yx is not None
            count[(k, "larger")] += res[shipped].other_larger
        for k in sorted(seen):
            print(f"| {split} | {k} | {seen[k]} | "
                  + " | ".join(f"{count[(k, v)]} ({100 * count[(k, v)] / seen[k]:.1f}%)" for v in floors)
                  + f" | {count[(k, 'larger')]} |")
    print(f"\nTyped nuclei that lie whole in their field: {len(whole)} of these files, the smallest {min(whole, default=0)} "
          f"stained px; {sum(px < 2 * OTHER_NUCLEUS_PX for px in whole)} under {2 * OTHER_NUCLEUS_PX}, where another "
          "mass needs half the typed nucleus's px rather than the floor (a lower magnification)")
    if args.shifts_every:
        from wbc.robustness import EXTRA_SHIFTS, SHIFTS

        chosen = [(split, p) for split in files for p in (s.path for s in list_split(root, split)[:: args.shifts_every])
                  if kind(source_field(split, p.parent.name, p.name) or -1) == "one box"]
        rgbs = [load_image(p) for _, p in chosen]
        pairs = [(np.asarray(Image.fromarray(load_image(photo)).resize(HALF, Image.BILINEAR)), boxes)
                 for _, photo, boxes in fields if len(boxes) > 1]
        print(f"\nUnder other labs' shifts, warned at {shipped}: every {args.shifts_every}th TRAIN and TEST file "
              f"from a one-box field ({len(rgbs)}), and the two-box originals, halved ({len(pairs)}), whose other "
              "box is found\n")
        print("| shift | one-box files warned | of them, other much larger | screened as a white cell | "
              "two-box photos: other box found |")
        print("|---|---|---|---|---|")
        for name, shift in {"clean": lambda x: x, **SHIFTS, **EXTRA_SHIFTS}.items():
            n_cell = n_warned = 0
            n_larger = 0
            for rgb in rgbs:
                sc = screened(shift(rgb))[1][0]
                n_cell += sc.is_cell
                n_warned += sc.other_cell_yx is not None
                n_larger += sc.other_larger
            found, same_frame = 0, True
            for rgb, boxes in pairs:
                # the shifts keep the field's size and place, except scale, framing and magnification:
                # only those that keep the 320 x 240 frame are scored against the boxes
                shifted = shift(rgb)
                loc, (sc,) = screened(shifted)
                same_frame &= shifted.shape == rgb.shape and loc.reduced_by == 1
                if sc.other_cell_yx is not None:
                    found += bool(boxes_at(boxes, *sc.other_cell_yx) - boxes_at(boxes, loc.cy, loc.cx))
            print(f"| {name} | {n_warned} ({100 * n_warned / max(1, len(rgbs)):.1f}%) | {n_larger} | {n_cell} | "
                  f"{found if same_frame else '-'} |")
    if args.mosaics:
        print(f"\nFields of nine cells at lower magnifications, as another microscope's lower-power objective shows "
              f"them: {args.mosaics} mosaics of 3 x 3 originals picked at random (seed 0), resized to each scale of the "
              "data set's (1x: 960 x 720 px), warned at the shipped floor\n")
        print("| magnification | photo (px) | screened as a white cell | warned of another cell |")
        print("|---|---|---|---|")
        for scale, size, n_cell, n_warned in mosaic_rows([photo for _, photo, _ in fields], args.mosaics,
                                                         lambda rgb: screened(rgb)[1][0]):
            print(f"| {scale}x | {size[0]} x {size[1]} | {n_cell} | {n_warned} |")
    if args.sheet:
        save_sheet(sheet, args.sheet, field_name)
        print(f"\nwrote {args.sheet} ({len(sheet)} one-box fields warned at {shipped})")
    return 0


MOSAIC_SCALES = (1.0, 0.5, 0.4, 0.35, 0.3, 0.25)


def mosaic_rows(photos: Sequence[Path], n: int, screen_one: Callable[[np.ndarray], Screening],
                scales: Sequence[float] = MOSAIC_SCALES) -> list[tuple[float, tuple[int, int], int, int]]:
    """For each scale (of the data set's magnification), the photo's size (w, h) and how many of `n` mosaics of
    nine `photos` (640 x 480 originals, 2x the data set's scale, in a 3 x 3 grid) `screen_one` passes as a white
    cell and warns of another: a field as a lower-power objective shows it, many cells in one photo."""
    from PIL import Image

    from wbc.decode import load_image

    rng = np.random.default_rng(0)
    picks = [rng.choice(len(photos), 9, replace=len(photos) < 9) for _ in range(n)]
    counts = {s: [0, 0] for s in scales}
    size = {}
    for pick in picks:
        grid = Image.new("RGB", (3 * 640, 3 * 480))
        for k, i in enumerate(pick):
            grid.paste(Image.fromarray(load_image(photos[i])).resize((640, 480)), ((k % 3) * 640, (k // 3) * 480))
        for s in scales:
            size[s] = (round(grid.width * s / 2), round(grid.height * s / 2))
            sc = screen_one(np.asarray(grid.resize(size[s], Image.BILINEAR)))
            counts[s][0] += sc.is_cell
            counts[s][1] += sc.other_cell_yx is not None
    return [(s, size[s], *counts[s]) for s in scales]


def save_sheet(rows: list, path: Path, name) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image, ImageDraw

    cols = 4
    out = Image.new("RGB", (HALF[0] * cols, HALF[1] * max(1, -(-len(rows) // cols))), "white")
    for k, (f, rgb, loc, other, boxes) in enumerate(rows):
        im = Image.fromarray(rgb).copy()
        d = ImageDraw.Draw(im)
        for b in boxes:
            d.rectangle(b, outline="blue")
        d.ellipse((loc.cx - 6, loc.cy - 6, loc.cx + 6, loc.cy + 6), outline="green", width=3)
        d.ellipse((other[1] - 8, other[0] - 8, other[1] + 8, other[0] + 8), outline="red", width=3)
        d.text((3, 3), name(f), fill="black")
        out.paste(im, ((k % cols) * HALF[0], (k // cols) * HALF[1]))
    out.save(path)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
