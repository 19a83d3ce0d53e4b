"""Where the focus check's bound sits: the share of TRAIN files it calls out of focus, as photographed and
blurred, framed in dark grey, dimmed and enlarged, against the grey measure used before version 0.16.

    python benchmarks/focus.py [--every 5] [--data DIR]

For every Nth TRAIN file (TEST is not looked at), each variant is found, shrunk where magnified and
measured as `Predictor.analyse` does (`imaging.locate_at_data_scale`, then `photo_checks.sharpness`), and
the share below the bound that applies (`SHRUNK_SHARPNESS_MIN` for a shrunk field, else
`SHARPNESS_MIN`) is printed beside the share the grey measure put below its bound of 0.06 (steepest
grey edge over the window's 1-99 percentile range of grey: a dark frame's edge read as sharp). The
last column gives what the whole screening says (`screening.screen`): out of focus, or no stained
nucleus found, which a cell blurred past finding its nucleus read before version 0.17 and a field with
no white cell (a corner of red cells, bare or with a sharp speck of the nucleus's colour) should.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

GREY_MIN = 0.06  # the grey measure's bound before 0.16


def grey_sharpness(field: np.ndarray, cy: float, cx: float, r: int = 48) -> float:
    """The focus measure before 0.16: steepest edge of the grey window over its 1-99 percentile range."""
    y, x = int(round(cy)), int(round(cx))
    g = field[max(0, y - r) : y + r, max(0, x - r) : x + r].astype(np.float32).mean(2)
    if min(g.shape) < 3:
        return 0.0
    gy, gx = np.gradient(g)
    lo, hi = np.percentile(g, [1, 99])
    return float(np.percentile(np.hypot(gx, gy), 99) / max(hi - lo, 10.0))


def blurred(sigma: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda rgb: np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(sigma)))


def framed(shift: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """The shift, then a 30 px dark grey frame (an eyepiece's vignette, a viewer's border)."""
    return lambda rgb: np.pad(shift(rgb), ((30, 30), (30, 30), (0, 0)), constant_values=20)


def jpeg(shift: Callable[[np.ndarray], np.ndarray], quality: int = 75) -> Callable[[np.ndarray], np.ndarray]:
    """The shift, then saved as JPEG: a real blurred photo carries its block noise."""
    from wbc.robustness import jpeg as jpeg_shift

    return lambda rgb: jpeg_shift(quality)(shift(rgb))


def speck(diameter: int) -> Callable[[np.ndarray], np.ndarray]:
    """The field's top-left 120 px (no white cell) with a sharp disc `diameter` px across in the middle, in
    the colour of the file's own nucleus (the median of its stained pixels): a speck of stain, or debris."""
    from wbc.pixels import STAIN_LEVEL, stain_map

    def f(rgb: np.ndarray) -> np.ndarray:
        stained = rgb[stain_map(rgb) > STAIN_LEVEL]
        out = np.ascontiguousarray(rgb[:120, :120]).copy()
        yy, xx = np.mgrid[:120, :120]
        out[(yy - 59.5) ** 2 + (xx - 59.5) ** 2 <= (diameter / 2) ** 2] = np.median(stained, axis=0)
        return out
    return f


def variants() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    from wbc.robustness import brightness, scale

    out: dict[str, Callable[[np.ndarray], np.ndarray]] = {"as photographed": lambda rgb: rgb}
    for sigma in (1.5, 3, 5, 8, 12):
        out[f"blur {sigma} px"] = blurred(sigma)
        out[f"blur {sigma} px, framed"] = framed(blurred(sigma))
    for sigma in (16, 20):  # blurred past finding a nucleus: BLUR_PEAK_MIN's question
        out[f"blur {sigma} px"] = blurred(sigma)
        out[f"blur {sigma} px, JPEG 75"] = jpeg(blurred(sigma))
    out["dim x0.5"] = brightness(0.5)
    for k in (1.5, 2, 3, 4, 6):
        out[f"enlarged x{k}"] = scale(k)
    # No white cell: the field's top-left 120 px (red cells, background), sharp and blurred by 3 px.
    out["corner 120 px"] = lambda rgb: np.ascontiguousarray(rgb[:120, :120])
    out["corner 120 px, blur 3 px"] = lambda rgb: blurred(3)(np.ascontiguousarray(rgb[:120, :120]))
    for d in (11, 15, 19):  # ... with a speck of the nucleus's colour: no white cell, and sharp
        out[f"corner 120 px, {d} px speck"] = speck(d)
    return out


def main(argv: list[str] | None = None) -> int:
    from wbc.cli import whole_number

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--every", type=whole_number(1), default=5, help="every Nth TRAIN file (default: 5)")
    ap.add_argument("--data", default=None, help="data set folder (default: WBC_DATA, else the shared copy)")
    args = ap.parse_args(argv)

    from wbc.data import list_split
    from wbc.decode import load_image
    from wbc.folders import find_images_root
    from wbc.imaging import locate_at_data_scale
    from wbc.photo_checks import NO_NUCLEUS, OUT_OF_FOCUS, SHARPNESS_MIN, SHRUNK_SHARPNESS_MIN, focus_bound, sharpness
    from wbc.screening import screen

    files = [s.path for s in list_split(find_images_root(args.data), "TRAIN")[:: args.every]]
    print(f"{len(files)} TRAIN files (every {args.every}); out of focus below {SHARPNESS_MIN} "
          f"({SHRUNK_SHARPNESS_MIN:.3f} for a shrunk field), the grey measure below {GREY_MIN}")
    print("| variant | out of focus now | grey measure before | median now | screening: out of focus / no stained "
          "nucleus found |")
    print("|---|---|---|---|---|")
    for name, shift in variants().items():
        now, before, values, said = 0, 0, [], Counter()
        for f in files:
            field, loc = locate_at_data_scale(shift(load_image(f)))
            v = sharpness(field, loc)
            values.append(v)
            now += v < focus_bound(loc)
            before += grey_sharpness(field, loc.cy, loc.cx) < GREY_MIN
            said[screen(field, loc).reason] += 1  # all its checks, in their order
        n = len(files)
        print(f"| {name} | {100 * now / n:.1f}% | {100 * before / n:.1f}% | {np.median(values):.3f} | "
              f"{100 * said[OUT_OF_FOCUS] / n:.1f}% / {100 * said[NO_NUCLEUS] / n:.1f}% |")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
