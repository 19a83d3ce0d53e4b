"""Photos as users edit them before uploading: rotated on a white canvas, cast magenta, marked with an arrow.

    python benchmarks/edited_photos.py [--data PATH] [--every 25]

Every k-th TEST file (320 x 240) as given; rotated 10 and 25 degrees in an editor, the canvas enlarged to
hold it and its corners white (the page's, not clipped light); cast magenta (red x0.92 + 15, green x0.8,
blue + 20) and more so (red x0.9 + 20, green x0.7, blue + 25), as a camera's white balance gone wrong; and
a 4 px arrow drawn in red or yellow ending beside the cell (within the crop the network reads) or in a
corner away from it. Each goes through the shipped model's whole path, one table row per edit, as
`benchmarks/pages.py` prints them. To compare commits, run it with another commit's `src` first on
PYTHONPATH (this file and pages.py from this tree).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from drawn_marks import arrow as arrow_by_cell  # noqa: E402
from pages import Layout, layouts_cli  # noqa: E402


def rotated(angle: int) -> Layout:
    return lambda photo, _: photo.rotate(angle, expand=True, fillcolor=(255, 255, 255), resample=Image.BICUBIC)


def cast(gains: tuple[float, float, float], lift: tuple[int, int, int]) -> Layout:
    def f(photo: Image.Image, _: Image.Image) -> Image.Image:
        return Image.fromarray(np.clip(np.asarray(photo) * np.array(gains) + np.array(lift), 0, 255).astype(np.uint8))
    return f


def arrow(colour: tuple[int, int, int], near: bool) -> Layout:
    def f(photo: Image.Image, _: Image.Image) -> Image.Image:
        from wbc.imaging import locate_cell

        if near:  # from the side with room, ending 30 px from the nucleus's centre
            return arrow_by_cell(photo, colour, 4)
        out = photo.copy()  # along the edge farthest from the cell, outside the crop round it
        y = 4 if locate_cell(np.asarray(photo)).cy > photo.height / 2 else photo.height - 5
        ImageDraw.Draw(out).line([(10, y), (60, y)], fill=colour, width=4)
        return out
    return f


EDITS: dict[str, Layout] = {
    "as given": lambda photo, _: photo,
    "rotated 10 degrees, white canvas": rotated(10),
    "rotated 25 degrees, white canvas": rotated(25),
    "magenta cast (green x0.8)": cast((0.92, 0.8, 1.0), (15, 0, 20)),
    "strong magenta cast (green x0.7)": cast((0.9, 0.7, 1.0), (20, 0, 25)),
    "red arrow by the cell": arrow((230, 20, 20), True),
    "yellow arrow by the cell": arrow((250, 230, 0), True),
    "red arrow away from the cell": arrow((230, 20, 20), False),
}


def main(argv: list[str] | None = None) -> None:
    layouts_cli(EDITS, "edit", __doc__, argv)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
