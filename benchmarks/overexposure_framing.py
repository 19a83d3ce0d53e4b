"""Does the overexposure mark find a bright photo whatever share of the frame the cell fills? TRAIN only.

    python benchmarks/overexposure_framing.py [--data PATH] [--every 10] [--json FILE]

The mark (`wbc.white_balance.OVEREXPOSED_SHARE`) was set on the share of a photo's lit pixels that are
white in every channel: in a field like the data set's, brightening clips the background first, then
the red cells' pale centres. A photo more magnified, or cropped tighter, shows less background around
a larger cell, so the same exposure clips a smaller share of it: an "other laboratory" test found
monocytes magnified 3x and brightened x1.4 read as eosinophils at 0.79-0.94 with only 54 of 99
marked. Here every k-th TRAIN file is magnified m times about its cell (the middle 1/m of the field
around the located nucleus, resized back to 320 x 240 bicubically, as a higher-power objective frames
it), brightened by a gain (`wbc.robustness.brightness`), found as `wbc predict` finds it
(`locate_at_data_scale`), and its clipped share taken three ways: over the whole field (the mark), over
the field outside CELL_CLEAR_PX of the nucleus (`clipped_share(field, loc)`), and outside that radius
grown with the nucleus's extent (added after a 100-file look at the second). Prints the share of files
each way marks, per magnification and gain.

The rule, written before the figures were seen: a share outside the cell replaces the whole field's
if (a) it marks no file at gain 1.0 at any magnification, (b) at 1x and gain 1.2 it marks at most 10
points more files than the whole field's share does (the bound was set on held-out accuracy by the
whole field's share, which this does not re-measure), and (c) at 2x and 3x, gain 1.4, it marks within 10
points of what it marks at 1x, gain 1.4.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

MAGNIFICATIONS = (1.0, 2.0, 3.0)
GAINS = (1.0, 1.2, 1.3, 1.4)
MEDIAN_EXTENT = 55.0  # px: the data set's median nucleus extent (wbc.imaging, EXTENT_MAX's comment)


def magnified(rgb: np.ndarray, cy: float, cx: float, m: float) -> np.ndarray:
    """The middle 1/m of the field (H, W, 3) about (cy, cx), kept inside it, resized back to (H, W)."""
    if m == 1:
        return rgb
    h, w, _ = rgb.shape
    ch, cw = round(h / m), round(w / m)
    y0 = int(np.clip(round(cy - ch / 2), 0, h - ch))
    x0 = int(np.clip(round(cx - cw / 2), 0, w - cw))
    return np.asarray(Image.fromarray(rgb[y0:y0 + ch, x0:x0 + cw]).resize((w, h), Image.BICUBIC))


def main(argv: list[str] | None = None) -> int:
    from wbc.cli import whole_number
    from wbc.data import list_split
    from wbc.decode import load_image
    from wbc.folders import find_images_root
    from wbc.imaging import locate_at_data_scale, locate_cell
    from wbc.io import atomic_write_text
    from wbc.progress import bar
    from wbc.robustness import brightness
    from wbc.white_balance import CELL_CLEAR_PX, OVEREXPOSED_SHARE, clipped_share

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="data set folder (default: WBC_DATA, else ../shared/data/blood-cells)")
    ap.add_argument("--every", type=whole_number(1), default=10, help="every k-th TRAIN file (default 10)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    from wbc.io import check_writable_files

    check_writable_files(args.json)  # before the work, not after it

    samples = list_split(find_images_root(args.data), "TRAIN")[:: args.every]
    ways = ("field", "outside", "scaled")
    marked = {(m, g, way): 0 for m in MAGNIFICATIONS for g in GAINS for way in ways}
    for s in bar(samples, show=True, desc="files", unit="file"):
        rgb = load_image(s.path)
        loc = locate_cell(rgb)
        for m in MAGNIFICATIONS:
            framed = magnified(rgb, loc.cy, loc.cx, m)
            for g in GAINS:
                field, found = locate_at_data_scale(brightness(g)(framed))
                marked[m, g, "field"] += clipped_share(field) >= OVEREXPOSED_SHARE
                marked[m, g, "outside"] += clipped_share(field, found) >= OVEREXPOSED_SHARE
                radius = CELL_CLEAR_PX * max(1.0, found.extent / MEDIAN_EXTENT)
                marked[m, g, "scaled"] += clipped_share(field, found, radius) >= OVEREXPOSED_SHARE
    n = len(samples)
    pct = {k: 100 * v / n for k, v in marked.items()}
    lines = [f"Every {args.every}th TRAIN file ({n}), magnified about its cell and brightened; marked overexposed "
             f"({100 * OVEREXPOSED_SHARE:.0f}% or more white), by the share of the whole field / outside "
             f"{CELL_CLEAR_PX} px of the nucleus / outside that radius grown with the nucleus's extent over "
             f"{MEDIAN_EXTENT:g} px:", "",
             "| magnification | " + " | ".join(f"gain {g:g}" for g in GAINS) + " |", "|---|" + "---|" * len(GAINS)]
    lines += [f"| {m:g}x | " + " | ".join(" / ".join(f"{pct[m, g, way]:.1f}%" for way in ways) for g in GAINS) + " |"
              for m in MAGNIFICATIONS]
    rule: dict[str, dict[str, bool]] = {}
    for way in ways[1:]:
        rule[way] = {
            "a: none marked at gain 1": all(marked[m, 1.0, way] == 0 for m in MAGNIFICATIONS),
            "b: 1x gain 1.2 at most 10 points more": pct[1.0, 1.2, way] - pct[1.0, 1.2, "field"] <= 10,
            "c: 2x and 3x gain 1.4 within 10 points of 1x": all(
                abs(pct[m, 1.4, way] - pct[1.0, 1.4, way]) <= 10 for m in (2.0, 3.0)),
        }
        lines += ["", f"Rule, {way}: " + "; ".join(f"{k}: {'yes' if v else 'no'}" for k, v in rule[way].items())
                  + f" -> {'adopt' if all(rule[way].values()) else 'not adopted'}"]
    print("\n".join(lines))
    if args.json:
        out: dict[str, Any] = {"files": n, "every": args.every,
                               "marked_pct": {f"{m:g}x gain {g:g} {way}": v for (m, g, way), v in pct.items()},
                               "rule": rule}
        atomic_write_text(args.json, json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
