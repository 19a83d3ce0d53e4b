"""Photos as pages, slides and screenshots show them: does the tool read the photo, and say what it cannot?

    python benchmarks/pages.py [--data PATH] [--every 25]

Every k-th TEST file (320 x 240), as given and laid out as a user's upload shows it: in a white page
margin, on a grey page with a caption, among paragraphs of text, on a white lecture slide (enlarged 2x,
with a title and a footer), under a browser's grey bar, on a purple or a blue slide with a white title,
and beside the next file (an atlas plate of two). Each goes through the shipped model's whole path
(`Predictor.predict_sources`: the frame cut, the screening, the card's views); per layout it prints how many
are typed, how many of those right, how many *confident* and wrong, marked overexposed, cannot be judged,
and carry a second-cell warning. Text is drawn with Pillow's built-in font, so the pages need no font file
(a FreeType font from Pillow 10.1 where FreeType is built in, a bitmap one otherwise: the glyphs may differ
by machine). "browser at 2x" is the browser's screenshot as a HiDPI screen takes it.
To compare commits, run it with another commit's `src` first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

Layout = Callable[[Image.Image, Image.Image], Image.Image]
WORDS = "The neutrophil is the most numerous leukocyte in adult blood; its nucleus has three to five lobes. "


def _page(photo: Image.Image, size: tuple[int, int], at: tuple[int, int], colour: tuple[int, int, int]) -> Image.Image:
    page = Image.new("RGB", size, colour)
    page.paste(photo, at)
    return page


def margin(photo: Image.Image, _: Image.Image) -> Image.Image:
    return _page(photo, (photo.width + 80, photo.height + 80), (40, 40), (255, 255, 255))


def caption(photo: Image.Image, _: Image.Image) -> Image.Image:
    page = _page(photo, (photo.width + 100, photo.height + 110), (50, 40), (240, 240, 240))
    ImageDraw.Draw(page).text((50, photo.height + 55), "Figure 3. Peripheral blood, Wright stain, x1000.", fill=(0, 0, 0))
    return page


def paragraphs(photo: Image.Image, _: Image.Image) -> Image.Image:
    page = _page(photo, (820, 900), (250, 220), (255, 255, 255))
    draw = ImageDraw.Draw(page)
    for y in [*range(30, 190, 16), *range(500, 720, 16)]:
        draw.text((40, y), (WORDS * 2)[(y % 7) * 5 :][:120], fill=(0, 0, 0))
    return page


def white_slide(photo: Image.Image, _: Image.Image) -> Image.Image:
    big = photo.resize((photo.width * 2, photo.height * 2), Image.BILINEAR)
    page = _page(big, (1280, 720), (320, 120), (255, 255, 255))
    draw = ImageDraw.Draw(page)
    draw.text((40, 40), "Leukocytes in peripheral blood", fill=(0, 0, 0))
    draw.text((40, 690), "Lecture 7 - Hematology I", fill=(0, 0, 0))
    return page


def browser(photo: Image.Image, _: Image.Image) -> Image.Image:
    page = _page(photo, (900, 500), (290, 130), (255, 255, 255))
    draw = ImageDraw.Draw(page)
    draw.rectangle((0, 0, 899, 70), fill=(222, 225, 230))
    draw.rectangle((10, 40, 880, 64), fill=(242, 243, 245))
    draw.text((20, 46), "https://atlas.example.edu/hematology/wbc", fill=(60, 60, 60))
    draw.text((40, 90), "Normal leukocytes", fill=(20, 20, 20))
    return page


def slide(colour: tuple[int, int, int]) -> Layout:
    def f(photo: Image.Image, _: Image.Image) -> Image.Image:
        page = _page(photo, (1280, 720), (480, 260), colour)
        draw = ImageDraw.Draw(page)
        draw.rectangle((200, 40, 1080, 110), fill=(255, 255, 255))
        draw.text((220, 65), "Leukocytes", fill=(0, 0, 0))
        return page
    return f


def plate(photo: Image.Image, other: Image.Image) -> Image.Image:
    page = _page(photo, (photo.width * 2 + 120, photo.height + 80), (40, 40), (255, 255, 255))
    page.paste(other, (photo.width + 80, 40))
    return page


LAYOUTS: dict[str, Layout] = {
    "as given": lambda photo, _: photo,
    "white page margin (40 px)": margin,
    "grey page with a caption": caption,
    "among paragraphs of text": paragraphs,
    "white slide, title and footer, 2x": white_slide,
    "browser: grey bar, white page": browser,
    "browser at 2x": lambda photo, other: (lambda page: page.resize((page.width * 2, page.height * 2)))(browser(photo, other)),
    "purple slide, white title": slide((112, 48, 160)),
    "blue slide, white title": slide((68, 114, 196)),
    "plate of two photos": plate,
}


def read_layouts(layouts: dict[str, Layout], every: int, data: str | None, what: str) -> None:
    """Every `every`-th TEST file laid out each way, through the shipped model's whole path: a markdown table
    row per layout (`what` heads its first column)."""
    from wbc.data import list_split
    from wbc.folders import find_images_root
    from wbc.info import CLASSES
    from wbc.predict import Predictor

    samples = list_split(find_images_root(data), "TEST")[::every]
    photos = [Image.open(s.path).convert("RGB") for s in samples]
    pred = Predictor()
    print(f"TEST, every {every}th file ({len(samples)}); model {pred.onnx_path}")
    print(f"| {what} | typed | right of those | confident and wrong | marked overexposed | cannot judge | "
          "second-cell warning |\n|---|---|---|---|---|---|---|")
    for name, layout in layouts.items():
        items = []
        for i, photo in enumerate(photos):
            buf = io.BytesIO()
            layout(photo, photos[(i + 1) % len(photos)]).save(buf, format="PNG")
            items.append((samples[i].path.name, buf.getvalue()))
        preds = [p for p, _, _ in pred.predict_sources(items)]
        truth = [CLASSES[s.label] for s in samples]
        typed = [(p, t) for p, t in zip(preds, truth) if p.verdict in ("confident", "needs review")]
        right = sum(p.label == t for p, t in typed)
        wrong = sum(p.label != t and p.verdict == "confident" for p, t in typed)
        print(f"| {name} | {len(typed)} / {len(preds)} | {right} | {wrong} | {sum(p.overexposed for p in preds)} | "
              f"{sum(p.verdict == 'cannot judge' for p in preds)} | {sum(bool(p.other_cell) for p in preds)} |", flush=True)


def layouts_cli(layouts: dict[str, Layout], what: str, doc: str | None, argv: list[str] | None = None) -> None:
    """The command line of a benchmark of `layouts` (this one's, or another's with its `doc`): --data, --every."""
    from wbc.cli import whole_number

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="data set folder (default: WBC_DATA, else ../shared/data/blood-cells)")
    ap.add_argument("--every", type=whole_number(1), default=25)
    args = ap.parse_args(argv)
    read_layouts(layouts, args.every, args.data, what)


def main(argv: list[str] | None = None) -> None:
    layouts_cli(LAYOUTS, "layout", __doc__, argv)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
