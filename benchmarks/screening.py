"""How often the is-it-a-white-cell screening (wbc.screening) is wrong, both ways, with and without its
second look (the field's white matched to the data set's).

    python benchmarks/screening.py [--data PATH] [--every 1] [--offset 0] [--patches corners|sides]
                                   [--json FILE]

Real cells: every TRAIN and TEST file (every k-th with --every, from the --offset-th), clean and under
the colour shifts of other cameras (wbc.robustness: white balance, exposure, flat contrast, pale
stain); each should pass. It also counts the photos marked overexposed
(wbc.white_balance.OVEREXPOSED_SHARE), which brightness x1.2 and x1.3 join the shifts for.
Red cells only: 128 x 128 px corners of the original fields (dataset-master, halved to the data set's
scale; or with --patches sides, the middle of each side, which overlap the corners: half of a top or
bottom patch, all of a left or right one) that keep 16 px clear of every annotated white cell's box;
each should be flagged, clean and under the same shifts. The screening decides nothing about the
type, so TEST's fields may serve here.
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gain_ceiling  # noqa: E402

PATCH = 128  # px, at the data set's scale
MARGIN = 16  # px kept clear of a white cell's annotated box


PLACES = {  # top-left corner of each patch in a 320 x 240 field
    "corners": [(0, 0), (320 - PATCH, 0), (0, 240 - PATCH), (320 - PATCH, 240 - PATCH)],
    "sides": [((320 - PATCH) // 2, 0), ((320 - PATCH) // 2, 240 - PATCH), (0, (240 - PATCH) // 2),
              (320 - PATCH, (240 - PATCH) // 2)],
}


def red_cell_patches(originals: Path, places: str = "corners") -> list[np.ndarray]:
    """Patches of the original fields, halved to 320 x 240, at their corners (or the middles of their
    sides) that hold no annotated white cell."""
    from PIL import Image

    from wbc.decode import load_image

    out = []
    for xml in sorted((originals / "Annotations").glob("*.xml")):
        tree = ET.parse(xml)
        photo = originals / "JPEGImages" / (tree.findtext("filename") or "")
        if not photo.is_file():
            continue
        rgb = np.asarray(Image.fromarray(load_image(photo)).resize((320, 240), Image.BILINEAR))
        boxes = [[float(o.findtext(f"bndbox/{k}") or 0) / 2 for k in ("xmin", "ymin", "xmax", "ymax")]
                 for o in tree.findall("object") if o.findtext("name") == "WBC"]
        for x0, y0 in PLACES[places]:
            if all(x0 + PATCH < b[0] - MARGIN or x0 > b[2] + MARGIN or y0 + PATCH < b[1] - MARGIN
                   or y0 > b[3] + MARGIN for b in boxes):
                out.append(rgb[y0 : y0 + PATCH, x0 : x0 + PATCH])
    return out


def list_passing(patches: list[np.ndarray], sheet: Path) -> int:
    """Print the patches that pass the screening as photographed, and save them in a numbered sheet."""
    from PIL import Image, ImageDraw

    from wbc.imaging import locate_at_data_scale
    from wbc.screening import screen

    passing = [(i, p, screen(*locate_at_data_scale(p))) for i, p in enumerate(patches)]
    passing = [(i, p, v) for i, p, v in passing if v.is_cell]
    print(f"{len(passing)} of {len(patches)} patches pass\n\n| place | stain peak | stained px | second look |\n|---|---|---|---|")
    for i, _, v in passing:
        print(f"| {i} | {v.peak:.0f} | {v.nucleus_px} | {'yes' if v.white_balanced else 'no'} |")
    cols = 6
    out = Image.new("RGB", (PATCH * cols, PATCH * max(1, -(-len(passing) // cols))), "white")
    draw = ImageDraw.Draw(out)
    for k, (i, p, _) in enumerate(passing):
        x, y = PATCH * (k % cols), PATCH * (k // cols)
        out.paste(Image.fromarray(p), (x, y))
        draw.text((x + 3, y + 3), str(i), fill=(0, 0, 0))
    sheet.parent.mkdir(parents=True, exist_ok=True)
    out.save(sheet)
    print(f"\nsheet: {sheet}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from wbc.progress import bar

    from wbc.cli import whole_number
    from wbc.data import list_split
    from wbc.decode import load_image
    from wbc.folders import find_images_root
    from wbc.imaging import locate_at_data_scale
    from wbc.io import atomic_write_text
    from wbc.robustness import COLOUR_SHIFTS, brightness
    from wbc.screening import screen
    from wbc.sources import originals_near
    from wbc.white_balance import OVEREXPOSED_SHARE

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="data set folder (default: WBC_DATA, else ../shared/data/blood-cells)")
    ap.add_argument("--every", type=whole_number(1), default=1, help="use every k-th TRAIN and TEST file (default: all)")
    ap.add_argument("--offset", type=int, default=0, help="start from this file (other files for the same --every)")
    ap.add_argument("--patches", choices=sorted(PLACES), default="corners", help="where the red-cell patches are cut")
    ap.add_argument("--json", type=Path, help="also write the counts here")
    gain_ceiling.add_option(ap)
    ap.add_argument("--list-passing", type=Path, metavar="SHEET_PNG",
                    help="instead: list the clean red-cell patches that pass the screening (place in the list, "
                         "stain peak, stained pixels, second look) and save them side by side, numbered, to look at")
    args = ap.parse_args(argv)
    from wbc.io import check_writable_files

    check_writable_files(args.json, args.list_passing)  # before the work, not after it
    gain_ceiling.apply(ap, args)
    if not 0 <= args.offset < args.every:  # --every is 1 or more (whole_number)
        ap.error("--every must be 1 or more, and --offset from 0 to --every - 1")
    root = find_images_root(args.data)
    if args.list_passing:
        return list_passing(red_cell_patches(originals_near(root, args.data), args.patches), args.list_passing)
    cells = [s.path for split in ("TRAIN", "TEST") for s in list_split(root, split)][args.offset :: args.every]
    red = red_cell_patches(originals_near(root, args.data), args.patches)
    # x1.2 and x1.3 beside COLOUR_SHIFTS' x1.4: where the overexposure mark starts (x1.2 costs the network nothing)
    shifts = {"clean": lambda rgb: rgb, **COLOUR_SHIFTS, "brightness x1.2": brightness(1.2),
              "brightness x1.3": brightness(1.3)}
    images = {"real cells (TRAIN + TEST files)": [load_image(p) for p in bar(cells, show=True, desc="decode")],
              f"red cells only (original fields' {args.patches})": red}
    res: dict[str, dict[str, dict[str, float]]] = {}  # counts, and the largest clipped share
    for what, imgs in images.items():
        for name, shift in bar(shifts.items(), show=True, desc=what[:9]):
            verdicts = [screen(*locate_at_data_scale(shift(img))) for img in imgs]
            res.setdefault(what, {})[name] = {
                "n": len(verdicts),
                "flagged": sum(not v.is_cell for v in verdicts),
                "flagged_first_look": sum(not v.is_cell or v.white_balanced for v in verdicts),
                "overexposed": sum(v.overexposed for v in verdicts),
                "most_clipped": max((v.clipped for v in verdicts), default=0.0),
            }
    lines = ["| images | shift | n | flagged by the screening (not a white cell, or cannot judge) | without the second look | marked overexposed |",
             "|---|---|---|---|---|---|"]
    for what, rows in res.items():
        for name, r in rows.items():
            n = max(r["n"], 1)
            lines.append(f"| {what} | {name} | {r['n']} | {r['flagged']} ({100 * r['flagged'] / n:.1f}%) | "
                         f"{r['flagged_first_look']} ({100 * r['flagged_first_look'] / n:.1f}%) | "
                         f"{r['overexposed']} ({100 * r['overexposed'] / n:.1f}%) |")
    clean = res["real cells (TRAIN + TEST files)"]["clean"]["most_clipped"]
    lines += ["", f"Marked overexposed: {100 * OVEREXPOSED_SHARE:.0f}% or more of the lit pixels pure white. The most "
              f"in any real cell's file as photographed: {100 * clean:.3f}%."]
    print("\n".join(lines))
    if args.json:
        atomic_write_text(args.json, json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
