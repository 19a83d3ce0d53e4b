from __future__ import annotations

import io
import re
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from wbc.decode import MAX_PIXELS, load_image
from wbc.errors import BadImageError
from wbc.framing import frame_margins, unframed
from wbc.imaging import (
    EXTENT_MAX,
    MIN_REDUCED_SIDE,
    PreprocessSpec,
    background_colour,
    blurred_stain,
    crop_square,
    edge_padded,
    locate_at_data_scale,
    locate_cell,
    median_colour,
    prepare,
    prepare_located,
    stain_peak,
    to_input,
    whole_stain_peak,
)
from wbc.pixels import stain_map


def _png(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def smear(h: int = 240, w: int = 320, cy: int = 150, cx: int = 90) -> np.ndarray:
    """A synthetic field: light background, pink discs (red cells) and one purple nucleus."""
    rgb = np.full((h, w, 3), (225, 215, 215), np.uint8)
    yy, xx = np.mgrid[:h, :w]
    for ry, rx in ((40, 40), (60, 250), (200, 260)):
        rgb[(yy - ry) ** 2 + (xx - rx) ** 2 < 20**2] = (215, 150, 160)
    rgb[(yy - cy) ** 2 + (xx - cx) ** 2 < 18**2] = (110, 60, 190)
    return rgb


def enlarged(rgb: np.ndarray, k: int, resample: int = Image.NEAREST) -> np.ndarray:
    h, w, _ = rgb.shape
    return np.asarray(Image.fromarray(rgb).resize((w * k, h * k), resample))


def framed(rgb: np.ndarray, colour: int, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    h, w, _ = rgb.shape
    out = np.full((h + top + bottom, w + left + right, 3), colour, np.uint8)
    out[top : top + h, left : left + w] = rgb
    return out


class TestFrame:
    """A flat frame round a photo (a screenshot's or a page's margin) is cut off before the cell is
    looked for: a white one read as 44% clipped highlights, "overexposed", and filled the crop's edge."""

    @pytest.mark.parametrize("colour", [255, 240, 128])
    def test_a_flat_frame_is_cut_off_and_the_crop_is_the_photos(self, colour: int) -> None:
        rgb = smear(cy=150, cx=40)  # near the left edge: the crop reaches past it
        photo = framed(rgb, colour, 30, 50, 70, 20)
        assert frame_margins(photo) == (30, 50, 70, 20)
        inner, offset = unframed(photo)
        assert offset == (30, 70) and np.array_equal(inner, rgb)
        spec = PreprocessSpec(mode="cell", window=160, size=96)
        x, loc, field = prepare_located(photo, spec)
        want, want_loc, _ = prepare_located(rgb, spec)
        assert np.array_equal(x, want) and np.array_equal(field, rgb)
        assert loc.offset_yx == (30, 70) and (loc.cy, loc.cx) == (want_loc.cy, want_loc.cx)
        assert np.array_equal(prepare(photo, replace(spec, mode="frame")), prepare(rgb, replace(spec, mode="frame")))

    @pytest.mark.parametrize("margins", [(0, 0, 80, 80), (60, 60, 0, 0), (0, 50, 0, 70), (45, 0, 0, 0)])
    def test_a_frame_on_some_sides_is_cut_off(self, margins: tuple[int, int, int, int]) -> None:
        """Pillarboxed, letterboxed, the photo in a corner of the page, a bar above it: a frame need not go
        all round (one that had to left these whole, their white read as clipped)."""
        rgb = smear()
        assert frame_margins(framed(rgb, 255, *margins)) == margins

    def test_a_jpeg_frame_is_cut_off_despite_its_ringing(self) -> None:
        """JPEG rings over the 8-16 px block at the frame's edge, off the frame's colour: the cut is still
        at the photo's edge, within a pixel."""
        photo = load_image(_png(Image.fromarray(framed(smear(), 255, 30, 48, 70, 48)), "JPEG"))
        assert np.abs(np.subtract(frame_margins(photo), (30, 48, 70, 48))).max() <= 1

    def test_text_in_the_margin_is_cut_off_with_it(self) -> None:
        """A page's title above the photo, a caption under it and a watermark in a corner (dark strokes, a
        line of page apart from the photo) kept a line-by-line cut from every side they touch: the white
        page then read as clipped highlights, "overexposed"."""
        rgb = smear()
        page = framed(rgb, 255, 90, 80, 120, 60)
        for y in (20, 26, 32, 50, 56):  # two lines of a title, wider than the photo: strokes 2 px high
            page[y : y + 2, 40:460:3] = 20
        for y in (340, 346):  # a caption under it, 6 px below the photo
            page[y : y + 2, 120:380:4] = 60
        page[395:405, 450:490:2] = 150  # a faint watermark in the corner
        assert frame_margins(page) == (90, 80, 120, 60)
        assert np.array_equal(unframed(page)[0], rgb)

    def test_an_atlas_plate_is_not_cut_to_one_panel(self) -> None:
        """Two photos side by side on a page (an atlas plate): cut to one, the other went unseen (its
        second-cell warning with it). Left whole; one photo with paragraphs of text round it is cut."""
        rgb = smear()
        plate = np.full((320, 760, 3), 255, np.uint8)
        plate[40:280, 40:360] = rgb
        plate[40:280, 400:720] = rgb[:, ::-1]
        assert frame_margins(plate) == (0, 0, 0, 0)
        page = framed(rgb, 255, 220, 220, 200, 200)
        for y in [*range(20, 200, 12), *range(480, 660, 12)]:  # paragraphs above and below, as dense as print
            page[y : y + 7, 40:680] = np.where(np.arange(640) % 5 < 2, 0, 255)[:, None]
        assert frame_margins(page) == (220, 220, 200, 200)
        # A box a quarter of the photo's size or less (a browser's address box at 2x, with its text; a logo) is
        # the page's: the photo is still cut out.
        page[30:78, 20:300] = 245
        page[50:58, 30:290:3] = 40
        assert frame_margins(page) == (220, 220, 200, 200)
        page[30:190, 20:300] = rgb[:160, :280]  # a second photo, over half the first's size: a plate
        assert frame_margins(page) == (0, 0, 0, 0)
        # A panel a third of the photo's size is past the quarter: a plate still, not furniture to cut off.
        third = framed(rgb, 255, 220, 220, 200, 200)
        third[20:160, 20:200] = rgb[:140, :180]
        assert frame_margins(third) == (0, 0, 0, 0)

    @pytest.mark.parametrize("k", [2, 4])
    def test_a_page_enlarged_with_its_photo_is_cut(self, k: int) -> None:
        """A screenshot on a HiDPI screen: page and photo enlarged together, their edge blended over a few px,
        which kept the photo's box from reading as a photo (4x: 71% of its edge off the page's white, against
        90%). Cut within that blend."""
        from conftest import FIXTURE_IMAGES

        for path in sorted(FIXTURE_IMAGES.rglob("*.jpeg"))[::4]:  # 2 and 3 of these 8 were left whole at 2x and 4x
            page = Image.fromarray(framed(load_image(path), 255, 40, 40, 40, 40))
            shot = np.asarray(page.resize((page.width * k, page.height * k)))  # Pillow's default, bicubic
            assert np.abs(np.subtract(frame_margins(shot), (40 * k,) * 4)).max() <= 3, path

    def test_a_small_photo_on_a_page_is_cut_and_a_large_one_read_on_a_grid(self) -> None:
        """A 60 px crop on a page is cut out of it (left whole, the page was typed with it, where the crop
        alone is too small); a 4,000 px wide photo's page is read every 4th px, its edge found within 4 px."""
        rgb = smear()
        small = framed(rgb[120:180, 60:120], 240, 50, 50, 50, 50)
        assert frame_margins(small) == (50, 50, 50, 50)
        big = framed(np.asarray(Image.fromarray(rgb).resize((3600, 2700))), 255, 150, 151, 201, 199)
        assert np.abs(np.subtract(frame_margins(big), (150, 151, 201, 199))).max() < 4

    def test_a_frame_within_a_frame_is_cut_too(self) -> None:
        """A browser's screenshot: a grey bar with a white address box above a white page that holds the
        photo. The bar is cut first, then the page (the bar, of another colour, left the page whole)."""
        rgb = smear()
        page = framed(rgb, 255, 60, 120, 290, 290)
        shot = np.concatenate([np.full((70, page.shape[1], 3), (198, 200, 206), np.uint8), page])
        shot[40:64, 10:880] = 248  # the address box
        inner, offset = unframed(shot)
        assert offset == (130, 290) and np.array_equal(inner, rgb)
        # Three deep (FRAME_PASSES): a grey mat inside a white page inside a dark viewer's border.
        nested = framed(framed(framed(rgb, 128, 20, 20, 20, 20), 255, 40, 40, 40, 40), 60, 30, 30, 30, 30)
        inner, offset = unframed(nested)
        assert offset == (90, 90) and np.array_equal(inner, rgb)

    def test_a_mark_on_the_frames_edge_does_not_set_its_colour(self) -> None:
        """A grey mark where the frame's outermost line is sampled (its middle) is one of the three colours tried:
        the frame's is the one most of the line holds, not the mark's (taken, the whole page read as the photo)."""
        page = framed(smear(), 255, 30, 30, 30, 30)
        middle = 4 * (len(page[0, ::4]) // 2)  # the line is read every 4th px; its middle one is a candidate
        page[0, middle - 6 : middle + 6] = 120
        assert frame_margins(page) == (30, 30, 30, 30)

    def test_a_solid_title_bar_is_no_photo(self) -> None:
        """A slide's solid title bar, wider than the photo and as unlike the page: flat inside, so the photo
        is cut out, not the bar (rows first found the bar; the photo is found from the columns first)."""
        rgb = smear()
        page = framed(rgb, 255, 200, 40, 300, 300)
        page[20:120, 20:900] = (40, 40, 90)  # 880 x 100 px: larger than the photo
        assert frame_margins(page) == (200, 40, 300, 300)

    def test_a_stained_page_is_left_for_the_screening(self) -> None:
        """A slide's purple or blue reads as stain: it is not cut as a frame (with a white title on it the
        title was taken for the photo); `photo_checks.STAINED_EDGE` is for it (tests/test_app.py)."""
        assert frame_margins(framed(smear(), 255, 40, 40, 40, 40)) == (40, 40, 40, 40)
        purple = framed(smear(), 0, 40, 40, 40, 40)
        purple[:40] = purple[-40:] = purple[:, :40] = purple[:, -40:] = (112, 48, 160)
        assert frame_margins(purple) == (0, 0, 0, 0)

    def test_a_clipped_edge_of_an_overexposed_field_is_not_a_frame(self) -> None:
        """Clipped white rows and columns that run on into a mostly clipped field are the field's own."""
        over = np.clip(smear().astype(np.float32) * 1.4, 0, 255).astype(np.uint8)
        over[:10] = 255  # a clipped band at the top, and the background beyond it clipped too
        assert frame_margins(over) == (0, 0, 0, 0)
        assert unframed(over)[1] == (0, 0)

    def test_background_flat_to_the_edge_is_not_a_frame(self) -> None:
        """The synthetic field's background is flat for 20 px at every edge, where the line 16 px further
        in is still mostly background: it is field."""
        assert frame_margins(smear()) == (0, 0, 0, 0)

    def test_black_fill_and_thin_or_overwhelming_frames_are_left(self) -> None:
        """Black (unlit) fill is the data set's own, and its crops were trained with it; a frame of 3 px is
        left; a photo that would keep less than 80 px (the screening's least) is left whole, as is a crop
        filled out to its size; a blob in a clipped white field (a
        cell in an overexposed one) is no photo on a page: its box's edge is not all unlike the white."""
        rgb = smear()
        assert frame_margins(framed(rgb, 0, 30, 30, 30, 30)) == (0, 0, 0, 0)
        assert frame_margins(framed(rgb, 255, 3, 3, 3, 3)) == (0, 0, 0, 0)
        assert frame_margins(framed(rgb, 255, 4, 4, 4, 4)) == (4, 4, 4, 4)  # MIN_FRAME_PX, and cut
        tiny = framed(rgb[100:120, 80:100], 255, 40, 40, 40, 40)
        assert unframed(tiny)[1] == (0, 0) and unframed(tiny)[0] is tiny
        # A 110 px crop round a cell near the photo's edge, filled flat where the photo ends: read whole, as
        # before (the robustness test's tight crops; cut, they were too small).
        for field_px, cut in ((60, 0), (95, 15)):
            edge = np.full((110, 110, 3), 205, np.uint8)
            edge[:, 110 - field_px :] = rgb[95:205, 90 - field_px // 2 : 90 - field_px // 2 + field_px]
            assert frame_margins(edge) == (0, 0, 110 - field_px if cut else 0, 0), field_px
        blob = np.full((240, 320, 3), 255, np.uint8)
        yy, xx = np.mgrid[:240, :320]
        blob[(yy - 120) ** 2 + (xx - 160) ** 2 < 60**2] = (110, 60, 190)
        assert frame_margins(blob) == (0, 0, 0, 0)


class TestMagnification:
    def test_magnified_field_is_shrunk_until_the_nucleus_fits(self) -> None:
        """The synthetic field at 5x (nucleus radius 90 px, extent 160) is shrunk by 2 (radius 45, extent
        80): the sqrt(2) step leaves it at 113 > 90. The cell is found in the shrunk field, on the nucleus
        (within a quarter of its radius: the centroid window of `locate_cell` clips a nucleus this large)."""
        big = enlarged(smear(cy=150, cx=90), 5)
        assert locate_cell(big).extent > EXTENT_MAX
        field, loc = locate_at_data_scale(big)
        assert loc.reduced_by == 2.0 and field.shape == (600, 800, 3)
        assert loc.extent <= EXTENT_MAX
        assert abs(loc.cy - 375) < 11 and abs(loc.cx - 225) < 11

    def test_rescale_off_keeps_the_field(self) -> None:
        """`rescale=False` searches the field as given (the benchmark's other side)."""
        big = enlarged(smear(), 5)
        _, loc, field = prepare_located(big, PreprocessSpec(), rescale=False)
        assert loc.reduced_by == 1.0 and field is big

    def test_frame_mode_shrinks_nothing(self) -> None:
        """A frame-mode model (the seed replica) sees the whole field as it is, so nothing reports a
        shrink it did not make."""
        big = enlarged(smear(), 5)
        x, loc, field = prepare_located(big, PreprocessSpec(mode="frame", size=120))
        assert field is big and loc.reduced_by == 1.0 and x.shape == (120, 160, 3)
        # Its nucleus too large, the screening says the photo is read unshrunk, not that it is too small to shrink
        from wbc.imaging import EXTENT_MAX
        from wbc.photo_checks import MAGNIFIED_HEAD
        from wbc.screening import screen

        assert loc.extent > EXTENT_MAX
        reason = screen(field, loc).reason
        assert reason.startswith(MAGNIFIED_HEAD) and "not shrunk" in reason and "too small" not in reason, reason

    def test_data_set_files_are_left_alone(self, fixture_root: Path) -> None:
        """Every fixture file (real data set files) is searched and cropped as it is, so training crops
        do not change; the same file enlarged 4x is shrunk."""
        files = sorted(fixture_root.parent.rglob("*.jpeg"))
        assert len(files) > 20
        for f in files:
            rgb = load_image(f)
            field, loc = locate_at_data_scale(rgb)
            assert field is rgb and loc.reduced_by == 1.0, f
        assert sum(locate_at_data_scale(enlarged(load_image(f), 4, Image.BILINEAR))[1].reduced_by > 1
                   for f in files) >= len(files) - 2

    def test_never_shrunk_below_the_minimum_side(self) -> None:
        """A 66 px strip with a 400 px stained block reads 92.6 but stays as it is: one sqrt(2) step
        would take it below MIN_REDUCED_SIDE. A taller strip is shrunk."""
        def strip(h: int) -> np.ndarray:
            rgb = np.full((h, 1000, 3), (225, 215, 215), np.uint8)
            rgb[:, 300:700] = (110, 60, 190)
            return rgb

        rgb = strip(66)
        assert locate_cell(rgb).extent > EXTENT_MAX and 66 / 2**0.5 < MIN_REDUCED_SIDE
        field, loc = locate_at_data_scale(rgb)
        assert field is rgb and loc.reduced_by == 1.0
        assert locate_at_data_scale(strip(80))[1].reduced_by > 1

    def test_predictor_screens_the_shrunk_field(self) -> None:
        """The screening judges the field the cell was found in: the synthetic 5x field passes as a
        white cell (screened at 5x it would read as no stained nucleus)."""
        from wbc.predict import Predictor

        x, sc = Predictor().analyse(enlarged(smear(cy=190, cx=260), 5))
        assert sc.reduced_by == 2.0 and sc.is_cell, sc.reason
        assert x.shape == (96, 96, 3)


def icc_profile(gamma: float, primaries: tuple[tuple[float, float, float], ...]) -> bytes:
    """A minimal ICC v2 RGB display profile: a gamma curve and the primaries' XYZ (D50), as cameras and phones embed."""
    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(v: tuple[float, float, float]) -> bytes:
        return b"XYZ " + b"\0" * 4 + b"".join(s15(c) for c in v)

    text = b"test profile\0"
    curve = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    tags = [(b"desc", b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + b"\0" * 78),
            (b"wtpt", xyz((0.9642, 1.0, 0.8249))), *((sig, xyz(p)) for sig, p in zip((b"rXYZ", b"gXYZ", b"bXYZ"), primaries)),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve), (b"cprt", b"text" + b"\0" * 4 + b"none\0")]
    table, data, start = b"", b"", 128 + 4 + 12 * len(tags)
    for sig, body in tags:
        data += b"\0" * (-(start + len(data)) % 4)
        table += sig + struct.pack(">II", start + len(data), len(body))
        data += body
    body = struct.pack(">I", len(tags)) + table + data
    header = (struct.pack(">I", 128 + len(body)) + b"\0" * 4 + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + b"\0" * 12 + b"acsp" + b"\0" * 28 + s15(0.9642) + s15(1.0) + s15(0.8249) + b"\0" * 48)
    return header + body


SRGB_PRIMARIES = ((0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141))  # D50
P3_PRIMARIES = ((0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419), (0.1571, 0.0666, 0.7841))


class TestColourProfiles:
    def test_a_photo_with_a_colour_profile_is_read_in_srgb(self) -> None:
        """A photo carrying an ICC profile (a phone's Display P3, a camera's linear data) was read as if its numbers
        were sRGB, as the training images' are: its stain's colours shifted. It is converted to sRGB, as a browser
        shows it; without a profile, or with one that cannot be read, its numbers are read as they are."""
        from PIL import ImageCms

        a = smear()
        srgb = ImageCms.createProfile("sRGB")
        for gamma, primaries in ((1.0, SRGB_PRIMARIES), (2.2, P3_PRIMARIES)):
            icc = icc_profile(gamma, primaries)
            buf = io.BytesIO()
            Image.fromarray(a).save(buf, "PNG", icc_profile=icc)
            want = np.asarray(ImageCms.profileToProfile(Image.fromarray(a), ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                                        srgb, renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC))
            got = load_image(buf.getvalue())
            assert np.array_equal(got, want) and np.abs(got.astype(int) - a).max() >= 8, gamma
        plain, broken = io.BytesIO(), io.BytesIO()
        Image.fromarray(a).save(plain, "PNG")
        Image.fromarray(a).save(broken, "PNG", icc_profile=b"not a profile" * 20)
        assert np.array_equal(load_image(plain.getvalue()), a) and np.array_equal(load_image(broken.getvalue()), a)

    def test_an_srgb_profile_costs_no_conversion_and_other_modes_convert(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Most cameras embed an sRGB profile: the photo is read as it is, without converting every pixel (0.35 s
        for 12 MP); a palette image with a profile converts as an RGB one does; a Pillow without littlecms (its
        error raised at the first call) reads the numbers as sRGB rather than refusing the photo."""
        from PIL import ImageCms

        from wbc import decode

        decode._to_srgb.cache_clear()  # the probe is converted once per profile
        a = smear()
        seen: list[tuple[int, int]] = []
        real = ImageCms.applyTransform
        monkeypatch.setattr(ImageCms, "applyTransform", lambda im, *x, **k: seen.append(im.size) or real(im, *x, **k))
        srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, "PNG", icc_profile=srgb)
        assert np.array_equal(load_image(buf.getvalue()), a)
        assert seen == [(64, 64)]  # the probe of 4,096 colours alone was converted
        p3 = icc_profile(2.2, P3_PRIMARIES)
        rgb, pal = io.BytesIO(), io.BytesIO()
        Image.fromarray(a).quantize(64).convert("RGB").save(rgb, "PNG", icc_profile=p3)
        Image.fromarray(a).quantize(64).save(pal, "PNG", icc_profile=p3)
        assert np.array_equal(load_image(pal.getvalue()), load_image(rgb.getvalue()))
        assert not np.array_equal(load_image(pal.getvalue()), np.asarray(Image.fromarray(a).quantize(64).convert("RGB")))
        monkeypatch.setattr(ImageCms, "buildTransform", lambda *x, **k: (_ for _ in ()).throw(
            ImportError("The _imagingcms C module is not installed")))
        decode._to_srgb.cache_clear()
        raw = np.asarray(Image.open(io.BytesIO(rgb.getvalue())).convert("RGB"))
        assert np.array_equal(load_image(rgb.getvalue()), raw)
        decode._to_srgb.cache_clear()


class TestLoadImage:
    def test_rgb_jpeg(self, fixture_root: Path) -> None:
        """A data set JPEG decodes to RGB uint8 (240, 320, 3)."""
        f = next((fixture_root / "TRAIN" / "MONOCYTE").iterdir())
        a = load_image(f)
        assert a.shape == (240, 320, 3) and a.dtype == np.uint8

    @pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "LA"])
    def test_modes_become_rgb(self, mode: str) -> None:
        """Grayscale, alpha, palette and CMYK inputs all come out as RGB."""
        img = Image.fromarray(smear()).convert(mode)
        fmt = "JPEG" if mode == "CMYK" else "PNG"
        a = load_image(_png(img, fmt), "x")
        assert a.shape == (240, 320, 3) and a.dtype == np.uint8
        # the picture's colours, not only its shape: Pillow's RGB of the image (the JPEG's loss aside)
        assert np.abs(a.astype(int) - np.asarray(img.convert("RGB"), dtype=int)).mean() < 1

    def test_transparent_pixels_become_the_data_sets_white(self) -> None:
        """RGBA is composited on the data set's white: not on black, and not on pure white, which a cell
        cut out on a transparent ground would have marked overexposed."""
        from wbc.pixels import DATA_WHITE
        from wbc.white_balance import clipped_share

        img = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
        assert (load_image(_png(img), "x") == np.round(DATA_WHITE)).all()
        cell = np.dstack([smear(), np.full((240, 320), 255, np.uint8)])
        cell[:40, :, 3] = cell[:, :40, 3] = 0  # a transparent border around the field
        rgb = load_image(_png(Image.fromarray(cell, "RGBA")), "cutout.png")
        assert clipped_share(rgb) == 0.0

    def test_pillows_warnings_do_not_reach_the_user(self, recwarn: pytest.WarningsRecorder) -> None:
        """A corrupt EXIF block decodes without Pillow's stray warning line (which names no file)."""
        buf = io.BytesIO()
        Image.fromarray(smear()).save(buf, "JPEG", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01\x12\x00\x03"
                                                        b"\xff\xff\xff\xff\x00\x06")
        assert load_image(buf.getvalue(), "x.jpg").shape == (240, 320, 3)
        assert not [w for w in recwarn if "EXIF" in str(w.message)], [str(w.message) for w in recwarn]

    @pytest.mark.parametrize("fmt", ["PNG", "WEBP"])  # (a JPEG's damaged block was read before: no case here)
    def test_a_damaged_exif_block_leaves_the_photo_as_stored(self, fmt: str) -> None:
        """An EXIF block cut short at any length, or with a header Pillow cannot parse, costs only the turn it
        would give: the pixels are read as stored. It raised struct.error (a traceback, and the batch lost) or was
        refused as a damaged image ("not a TIFF file") for a photo whose pixels decode."""
        exif = Image.Exif()
        exif[0x0112] = 6
        block = exif.tobytes()  # b"Exif\0\0" and the TIFF-style block after it
        stored = Image.fromarray(smear())
        blocks = [block[:n] for n in range(7, len(block))] + [b"Exif\x82\x00M\xfd" + bytes(20)]
        for raw_exif in blocks:
            buf = io.BytesIO()
            stored.save(buf, fmt, exif=raw_exif, **({"lossless": True} if fmt == "WEBP" else {}))
            rgb = load_image(buf.getvalue(), f"x.{fmt.lower()}")  # cut past the turn's tag: turned
            turned = np.asarray(stored.transpose(Image.Transpose.ROTATE_270))
            assert rgb.shape in (smear().shape, turned.shape), raw_exif
            assert (rgb == smear()).all() if rgb.shape == smear().shape else (rgb == turned).all(), raw_exif

    def test_only_a_damaged_exif_block_is_passed_over(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The turn's guard passed over any error: out of memory the photo was read unturned, unsaid, and a fault of
        this code's own was hidden. Now only Pillow's are (a damaged block); memory is said, a fault raised."""
        from wbc import decode

        buf = io.BytesIO()
        Image.fromarray(smear()).save(buf, "PNG")

        def out_of_memory(*a: object, **k: object) -> None:
            raise MemoryError

        monkeypatch.setattr(decode.ImageOps, "exif_transpose", out_of_memory)
        with pytest.raises(BadImageError, match="x.png: not enough memory to decode it"):
            load_image(buf.getvalue(), "x.png")

        def ours(*a: object, **k: object) -> None:
            raise RuntimeError("a fault of this code's")

        monkeypatch.setattr(decode.ImageOps, "exif_transpose", ours)
        with pytest.raises(RuntimeError, match="a fault of this code's"):
            load_image(buf.getvalue(), "x.png")

    def test_a_damaged_tiff_is_refused_naming_it(self) -> None:
        """A TIFF whose strip offsets (tag 273) are stored as text, a fraction, bytes or a float gives BadImageError
        naming the file: Pillow's decoder raised TypeError, past the handler (a traceback, and the batch lost)."""
        buf = io.BytesIO()
        Image.fromarray(smear()).save(buf, "TIFF")
        raw = buf.getvalue()
        ifd = struct.unpack("<I", raw[4:8])[0]
        entries = [ifd + 2 + 12 * k for k in range(struct.unpack("<H", raw[ifd : ifd + 2])[0])]
        offsets = next(e for e in entries if struct.unpack("<H", raw[e : e + 2])[0] == 273)
        for kind in (2, 5, 7, 11, 12):  # ASCII, RATIONAL, UNDEFINED, FLOAT, DOUBLE
            bad = bytearray(raw)
            bad[offsets + 2 : offsets + 4] = struct.pack("<H", kind)
            with pytest.raises(BadImageError, match=r"^fuzzed\.tif: damaged or truncated image"):
                load_image(bytes(bad), "fuzzed.tif")

    def test_a_float_tiff_with_nan_or_inf_keeps_its_picture(self, recwarn: pytest.WarningsRecorder) -> None:
        """One NaN or inf pixel in a float grayscale image does not set its range: the picture is stretched over its
        finite values (a NaN made all of it black, an inf warned of a division on the user's terminal)."""
        gray = smear().mean(2).astype(np.float32) / 255
        buf = io.BytesIO()
        Image.fromarray(gray, "F").save(buf, "TIFF")
        clean = load_image(buf.getvalue(), "clean.tif")
        for bad in (np.nan, np.inf, -np.inf):
            g = gray.copy()
            g[5, 5] = bad
            buf = io.BytesIO()
            Image.fromarray(g, "F").save(buf, "TIFF")
            rgb = load_image(buf.getvalue(), "bad.tif")
            assert rgb[5, 5].tolist() == [0, 0, 0]
            rgb[5, 5] = clean[5, 5]
            assert (rgb == clean).all(), bad
        assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]

    @pytest.mark.parametrize("fmt,says", [("TIFF", "holds 2 images (pages)"), ("GIF", "holds 2 frames (an animation)"),
                                          ("PNG", "holds 2 frames"), ("WEBP", "holds 2 frames")])
    def test_several_images_in_one_file_are_refused(self, fmt: str, says: str) -> None:
        """A multi-page TIFF or an animation is refused with its count (the first alone was read, the
        others dropped from a count unsaid); one image in the same format, and a TIFF whose second page
        is a smaller thumbnail, are read."""
        cell = Image.fromarray(smear())

        def saved(frames: list[Image.Image]) -> bytes:
            buf = io.BytesIO()
            frames[0].save(buf, fmt, save_all=True, append_images=frames[1:])
            return buf.getvalue()

        with pytest.raises(BadImageError, match=rf"^stack\.x: {re.escape(says)}.*save each as its own file"):
            load_image(saved([cell, cell.rotate(180)]), "stack.x")
        assert load_image(saved([cell]), "one.x").shape == (240, 320, 3)
        if fmt == "TIFF":
            assert load_image(saved([cell, cell.resize((80, 60))]), "thumb.tif").shape == (240, 320, 3)
            # A thumbnail first: the full page is read. Pages of other sizes (other cells) are counted.
            assert load_image(saved([cell.resize((80, 60)), cell]), "thumb-first.tif").shape == (240, 320, 3)
            with pytest.raises(BadImageError, match=r"holds 3 images \(pages\)"):
                load_image(saved([cell, cell.resize((300, 220)), cell.resize((400, 300))]), "sizes.tif")
            # A copy at half the sides is a preview, as in pyramids.
            assert load_image(saved([cell, cell.resize((160, 120))]), "half.tif").shape == (240, 320, 3)
            # Cut short: a later page cannot be read. Named as damaged, not a traceback (Pillow's TypeError).
            whole = saved([cell, cell.rotate(180), cell])
            with pytest.raises(BadImageError, match=r"^cut\.tif: damaged or truncated image \(a page after the first is "
                                                    r"damaged or cut short\)$"):
                load_image(whole[: len(whole) // 2], "cut.tif")

    def test_a_cameras_mpo_is_read_as_its_first_picture(self) -> None:
        """A camera's MPO (a JPEG with a second picture after it: a preview or a depth map) is the photo it
        shows first, not refused as a file of several images."""
        cell, preview = Image.fromarray(smear()), Image.fromarray(smear()).resize((80, 60))
        buf = io.BytesIO()
        cell.save(buf, "MPO", save_all=True, append_images=[preview])
        assert Image.open(io.BytesIO(buf.getvalue())).n_frames == 2
        rgb = load_image(buf.getvalue(), "camera.mpo")
        assert rgb.shape == (240, 320, 3) and np.abs(rgb.astype(int) - smear()).mean() < 3

    def test_16_bit_colour_of_a_12_bit_camera_is_named(self) -> None:
        """A 16-bit colour PNG holding 12-bit data (here below 3,840) is refused with what it is and
        what to do: Pillow keeps the top 8 bits, which read as a black photo. The full range is read."""
        cv2 = pytest.importorskip("cv2")
        bgr = smear()[..., ::-1].astype(np.uint16)
        with pytest.raises(BadImageError, match=r"cam\.png: a 16-bit colour image whose values stay below 3,840 of "
                                                r"65,535 \(a 10-, 12- or 14-bit camera's data saved without scaling"):
            load_image(cv2.imencode(".png", bgr * 16)[1].tobytes(), "cam.png")
        full = load_image(cv2.imencode(".png", bgr * 257)[1].tobytes(), "full.png")
        assert np.abs(full.astype(int) - smear()).max() <= 1
        # with alpha: the values under the opaque pixels decide, not the ground composited around them (here
        # white under its transparent pixels, which no one sees)
        bgra = np.dstack([np.full_like(bgr, 65535), np.zeros((240, 320), np.uint16)])
        bgra[60:180, 60:260] = np.dstack([bgr[60:180, 60:260] * 16, np.full((120, 200), 65535, np.uint16)])
        with pytest.raises(BadImageError, match=r"cut\.png: a 16-bit colour image"):
            load_image(cv2.imencode(".png", bgra)[1].tobytes(), "cut.png")

    def test_a_dim_16_bit_a_pixel_bmp_is_not_taken_for_16_bits_a_channel(self) -> None:
        """A BMP of 5-6 bits a channel (Pillow's raw mode "BGR;16"), dim, is read, not refused as a
        10-14-bit camera's 16-bit colour."""
        import struct

        w, h = 32, 24
        px = np.full((h, w), (7 << 11) | (14 << 5) | 7, dtype="<u2")  # RGB565, about a quarter of full scale
        header = struct.pack("<2sIHHI", b"BM", 14 + 40 + 12 + px.nbytes, 0, 0, 14 + 40 + 12)
        info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 16, 3, px.nbytes, 2835, 2835, 0, 0)
        masks = struct.pack("<III", 0xF800, 0x07E0, 0x001F)
        rgb = load_image(header + info + masks + px.tobytes(), "dim565.bmp")
        assert rgb.shape == (h, w, 3) and 40 < rgb.max() < 64

    def test_a_gray_cut_out_stays_gray(self) -> None:
        """A gray photo with a transparent ground is composited on gray: the data set's slightly blue
        white would give it colour, and it would no longer be called a grayscale photo."""
        from wbc.photo_checks import GRAY_SPREAD_MAX

        a = np.zeros((120, 120, 2), np.uint8)
        a[..., 0] = 150
        a[30:90, 30:90, 1] = 255
        rgb = load_image(_png(Image.fromarray(a, "LA")), "la.png").astype(int)
        assert (rgb.max(2) - rgb.min(2)).max() <= GRAY_SPREAD_MAX
        # On the data set's white's gray, not on pure white, which would mark the cut-out overexposed.
        from wbc.pixels import DATA_WHITE
        from wbc.white_balance import clipped_share

        assert (rgb[0, 0] == round(DATA_WHITE[1])).all() and (rgb[60, 60] == 150).all()
        assert clipped_share(rgb.astype(np.uint8)) == 0.0

    def test_unreadable_kinds_are_named(self) -> None:
        """A TIFF Pillow cannot decode (32-bit float) and a HEIC photo say what they are, not "not a
        picture in a format this tool reads: ... TIFF"."""
        cv2 = pytest.importorskip("cv2")
        tiff = cv2.imencode(".tiff", smear()[..., ::-1].astype(np.float32) / 255)[1].tobytes()
        with pytest.raises(BadImageError, match=r"f\.tif: a TIFF this tool cannot decode \(32-bit floating-point"):
            load_image(tiff, "f.tif")
        heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
        with pytest.raises(BadImageError, match=r"p\.heic: a HEIC/HEIF photo \(as phones save them\)"):
            load_image(heic, "p.heic")

    def test_only_the_formats_named_are_decoded(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A file Pillow would open by its bytes in another format (a DDS, whose plugin raised NotImplementedError)
        is named and refused, whatever its name; a plain raster format named (a TGA, a PPM) is read. An error Pillow
        raises for one file is the file's; a MemoryError says so; an error of this tool's own is not hidden as a
        damaged file. A file or stream over MAX_FILE_BYTES is refused (read whole, a 6 GB scan ended a batch with
        a MemoryError)."""
        import types

        import PIL.ImageFile

        from wbc import decode

        dds = b"DDS " + (124).to_bytes(4, "little") + bytes(72) + (32).to_bytes(4, "little") + bytes(124)
        with pytest.raises(BadImageError, match=r"^cell\.jpg: not a readable image"):
            load_image(dds, "cell.jpg")
        for fmt in ("TGA", "PPM"):
            buf = io.BytesIO()
            Image.fromarray(smear()).save(buf, fmt)
            assert np.array_equal(load_image(buf.getvalue(), "cell.jpg"), smear())
        png = _png(Image.fromarray(smear()))

        def odd(self: object) -> None:
            raise AttributeError("'SpiderImageFile' object has no attribute 'stkoffset'")

        # As a plugin's own code raises it: the function run with Pillow's module as its globals
        monkeypatch.setattr(PIL.ImageFile.ImageFile, "load", types.FunctionType(odd.__code__, vars(PIL.ImageFile)))
        with pytest.raises(BadImageError, match=r"^x\.png: damaged image, which the decoder cannot read \(AttributeError"):
            load_image(png, "x.png")

        def short(self: object) -> None:
            raise MemoryError

        monkeypatch.setattr(PIL.ImageFile.ImageFile, "load", short)
        with pytest.raises(BadImageError, match=r"^x\.png: not enough memory to decode it"):
            load_image(png, "x.png")
        monkeypatch.undo()
        f = tmp_path / "x.png"
        f.write_bytes(png)
        monkeypatch.setattr(Path, "read_bytes", short)  # too large to read into this machine's memory
        with pytest.raises(BadImageError, match=r"x\.png: not enough memory to read it"):
            load_image(f)
        monkeypatch.undo()
        pages = io.BytesIO()  # a second page's seek out of memory is no damaged page
        Image.fromarray(smear()).save(pages, "TIFF", save_all=True, append_images=[Image.fromarray(smear())])
        import PIL.TiffImagePlugin

        def short_seek(self: object, frame: int) -> None:
            raise MemoryError

        monkeypatch.setattr(PIL.TiffImagePlugin.TiffImageFile, "seek", short_seek)
        with pytest.raises(BadImageError, match=r"^two\.tif: not enough memory to decode it"):
            load_image(pages.getvalue(), "two.tif")
        monkeypatch.undo()
        monkeypatch.setattr(decode, "_to_rgb", odd)  # a fault of this tool's own
        with pytest.raises(AttributeError):
            load_image(png, "x.png")
        monkeypatch.undo()
        big = tmp_path / "slide.tif"
        big.write_bytes(png)
        monkeypatch.setattr(decode, "MAX_FILE_BYTES", 1000)
        with pytest.raises(BadImageError, match=r"slide\.tif: larger than any image this tool reads \(limit 0 MB\): "
                                                r"crop the field around the cell first \(0\.0 GB\)"):
            load_image(big)
        # A stream is read no further than the limit: /dev/zero never ends.
        with pytest.raises(BadImageError, match=r"^/dev/zero: larger than any image this tool reads"):
            load_image("/dev/zero")

    def test_a_file_read_reserves_no_more_than_it_holds(self, tmp_path: Path) -> None:
        """Reading a 12 KB photo reserved the 450 MB limit (read(n) allocates n first): a process under a memory
        cap failed on every file."""
        import tracemalloc

        from wbc.decode import read_source

        f = tmp_path / "x.png"
        f.write_bytes(_png(Image.fromarray(smear())))
        tracemalloc.start()
        try:
            assert read_source(f, "x.png") == f.read_bytes()
            assert read_source("/dev/null", "null") == b""
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 8 << 20, peak

    def test_16_bit_is_stretched(self) -> None:
        """16-bit grayscale keeps its contrast on 0..255."""
        a16 = (np.arange(100, dtype=np.uint16).reshape(10, 10) * 600).astype(np.uint16)
        a = load_image(_png(Image.fromarray(a16)), "x")
        assert a.min() == 0 and a.max() == 255
        # stretched linearly, every level kept apart: level k of 0..99 at floor(255 k / 99), in all three channels
        want = (np.arange(100) * 255 // 99).reshape(10, 10)
        assert all(np.array_equal(a[..., c], want) for c in range(3))
        # from its darkest level, not from 0: a camera's black level above 0 leaves the contrast as it is
        offset = load_image(_png(Image.fromarray((a16 + 5000).astype(np.uint16))), "x")
        assert np.array_equal(offset, a)

    def test_empty_file(self, tmp_path: Path) -> None:
        """An empty file is named and called empty."""
        f = tmp_path / "empty.jpg"
        f.write_bytes(b"")
        with pytest.raises(BadImageError, match=r"empty\.jpg: the file is empty"):
            load_image(f)

    def test_not_an_image(self, tmp_path: Path) -> None:
        """A text file with an image suffix is refused by name."""
        f = tmp_path / "notes.png"
        f.write_text("hello")
        with pytest.raises(BadImageError, match=r"notes\.png: not a readable image"):
            load_image(f)

    def test_truncated(self, tmp_path: Path, fixture_root: Path) -> None:
        """A JPEG cut in half is reported as damaged or truncated."""
        src = next((fixture_root / "TRAIN" / "EOSINOPHIL").iterdir()).read_bytes()
        f = tmp_path / "half.jpeg"
        f.write_bytes(src[: len(src) // 2])
        with pytest.raises(BadImageError, match=r"half\.jpeg: damaged or truncated"):
            load_image(f)

    def test_too_many_pixels(self) -> None:
        """A huge image is refused before it is decoded, as too large for the 50 MP limit, whether over that
        limit or over Pillow's own (its "decompression bomb" error, at 180 MP, named nothing a user could act on)."""
        side = int(MAX_PIXELS**0.5) + 10
        with pytest.raises(BadImageError, match=r"big\.png: \d+x\d+ pixels is too large \(limit 50 MP\); crop"):
            load_image(_png(Image.new("1", (side, side))), "big.png")
        with pytest.raises(BadImageError, match=r"huge\.png: 210 MP is too large \(limit 50 MP\); crop the field"):
            load_image(_png(Image.new("1", (15_000, 14_000))), "huge.png")

    def test_missing_file(self, tmp_path: Path) -> None:
        """A path that does not exist is named."""
        with pytest.raises(BadImageError, match="nope.jpg: cannot be read"):
            load_image(tmp_path / "nope.jpg")


class TestCell:
    def test_locates_the_nucleus_not_red_cells(self) -> None:
        """The crop centre is the purple nucleus, within a few pixels."""
        loc = locate_cell(smear(cy=150, cx=90))
        assert abs(loc.cy - 150) < 4 and abs(loc.cx - 90) < 4
        assert loc.peak > 60

    def test_blank_field_has_low_peak(self) -> None:
        """A field without a stained nucleus reads as such (for the 'not a white cell' flag)."""
        rgb = smear()
        rgb[rgb[..., 2] > 180] = (225, 215, 215)
        assert locate_cell(rgb).peak < 30

    def test_crop_at_edge_fills_with_background(self) -> None:
        """Outside the image the crop holds the background colour, and the inside is copied."""
        rgb = smear()
        c = crop_square(rgb, 0, 0, 40)
        assert c.shape == (40, 40, 3)
        assert (c[0, 0] == (225, 215, 215)).all()
        assert (c[20:, 20:] == rgb[:20, :20]).all()

    def test_crop_inside_is_a_copy_of_the_square(self) -> None:
        """A window wholly inside the image is that square, a copy; one pixel over an edge is filled."""
        rgb = smear()
        h, w, _ = rgb.shape
        c = crop_square(rgb, 20, 20, 40)  # rows and columns 0-39
        assert np.array_equal(c, rgb[:40, :40]) and not np.shares_memory(c, rgb)
        edge = crop_square(rgb, h - 20 + 1, w - 20 + 1, 40)  # one past the bottom-right edge
        assert np.array_equal(edge[:-1, :-1], rgb[h - 39 :, w - 39 :]) and (edge[-1, -1] == (225, 215, 215)).all()

    def test_background_of_a_tight_crop(self) -> None:
        """A crop that is mostly cell still pads with the background at its border, not the cell's colour;
        black rotation fill at the border is left out."""
        rgb = smear(cy=150, cx=90)[130:170, 70:110].copy()  # 40 px around the nucleus
        rgb[0, :20] = 0  # a black corner, as the data set's rotated views have
        assert (background_colour(rgb) == (225, 215, 215)).all()
        assert not (median_colour(rgb) == (225, 215, 215)).all()

    def test_stain_peak_is_the_whole_blur_peak_on_data_set_files(self, fixture_root: Path) -> None:
        """On the fixtures' files, as they are and flipped, the blur around the shrunk field's peak
        finds the peak of the whole field's blur: the same pixel and value."""
        paths = sorted(fixture_root.rglob("*.jpeg"))
        assert len(paths) >= 8
        for path in paths:
            s = stain_map(load_image(path))
            for view in (s, s[::-1], s[:, ::-1].copy()):
                assert stain_peak(np.ascontiguousarray(view)) == whole_stain_peak(np.ascontiguousarray(view)), path

    def test_blur_reach(self) -> None:
        """A crop of the stain map blurs exactly as the whole map BLUR_REACH px inside its edges, and
        not one pixel nearer: the reach stain_peak leaves around the pixels it searches."""
        from wbc.imaging import BLUR_REACH

        rng = np.random.default_rng(0)
        maps = [rng.integers(0, 256, (120, 160), dtype=np.uint8) for _ in range(50)]

        def exact_inside(r: int) -> bool:
            return all(np.array_equal(blurred_stain(s[30:90, 40:120])[r : 60 - r, r : 80 - r],
                                      blurred_stain(s)[30 + r : 90 - r, 40 + r : 120 - r]) for s in maps)

        assert exact_inside(BLUR_REACH) and not exact_inside(BLUR_REACH - 1)

    def test_stain_peak_on_hard_fields(self) -> None:
        """Equal nuclei far apart (the first in raster order wins, as argmax does), nuclei on the
        edges and corners, odd and tiny sizes, a blank map and noise."""
        rng = np.random.default_rng(1)
        fields = [np.zeros((240, 320), np.uint8), rng.integers(0, 256, (61, 83), dtype=np.uint8),
                  np.full((1, 1), 200, np.uint8), rng.integers(0, 120, (3, 5), dtype=np.uint8)]
        for centres in (((60, 60), (180, 260)), ((180, 60), (60, 260)), ((0, 0),), ((239, 319),), ((120, 0), (0, 160)),
                        ((5, 300), (230, 10), (120, 160))):
            s = np.zeros((240, 320), np.uint8)
            yy, xx = np.mgrid[:240, :320]
            for cy, cx in centres:
                s[(yy - cy) ** 2 + (xx - cx) ** 2 < 15**2] = 150
            fields += [s, s[:, :319].copy(), s[:239].copy()]
        yy, xx = np.mgrid[:240, :320]
        for value in (80, 90):  # a thin stained line along an edge, which a shrunk map reads weaker
            for edge in ((slice(None), 0), (slice(None), -1), (0, slice(None)), (-1, slice(None))):
                s = np.zeros((240, 320), np.uint8)
                s[(yy - 120) ** 2 + (xx - 200) ** 2 < 400] = value
                s[edge] = 255
                fields.append(s)
        # 1 mod 4 wide, the coarse cells on the right edge are three quarters edge line: it reads stronger
        # there than at full size, above the nucleus's cell, and the search must go on from the nucleus.
        y3, x3 = np.mgrid[:240, :321]
        s = np.zeros((240, 321), np.uint8)
        s[(y3 - 120) ** 2 + (x3 - 160) ** 2 < 400] = 100
        s[:, -1] = 255
        fields += [s, np.array([[0, 0, 0, 0, 255]], np.uint8), *(rng.integers(0, 256, shape, dtype=np.uint8)
                                                                 for shape in ((1, 50), (50, 1), (7, 5)) for _ in range(20))]
        for s in fields:
            assert stain_peak(s) == whole_stain_peak(s), s.shape
        two = fields[4]  # equal nuclei at (60, 60) and (180, 260): the upper one, as np.argmax gives
        assert stain_peak(two)[0] < 120
        assert stain_peak(fields[-8])[1] == 0  # the line on the left edge outweighs the nucleus

    def test_coarse_margin_covers_the_coarse_maps_error(self, fixture_root: Path) -> None:
        """On the fixtures' fields the coarse map reads the cell of the whole blur's peak less than
        COARSE_MARGIN below the peak's value, which is all stain_peak needs to find it."""
        from wbc.imaging import COARSE_MARGIN, COARSE_REDUCE, coarse_stain

        below = []
        for path in sorted(fixture_root.rglob("*.jpeg")):
            s = stain_map(load_image(path))
            y, x, value = whole_stain_peak(s)
            below.append(value - int(coarse_stain(s)[y // COARSE_REDUCE, x // COARSE_REDUCE]))
        assert max(below) < COARSE_MARGIN and max(below) > -COARSE_MARGIN

    def test_stain_map_is_blue_minus_green_clipped(self) -> None:
        """uint8 (blue - green), 0 wherever green is at least blue, over every pair of levels (red at green's
        level: purple enough); and 0 wherever green exceeds red by more than NOT_PURPLE_MARGIN, over every
        pair of red and green levels (a screen's blue, not a stain)."""
        from wbc.pixels import NOT_PURPLE_MARGIN

        b, g = np.meshgrid(np.arange(256, dtype=np.uint8), np.arange(256, dtype=np.uint8))
        rgb = np.stack([g, g, b], axis=-1)
        want = np.clip(b.astype(np.int16) - g.astype(np.int16), 0, 255).astype(np.uint8)
        got = stain_map(rgb)
        assert got.dtype == np.uint8 and np.array_equal(got, want)
        r, g = np.meshgrid(np.arange(256, dtype=np.uint8), np.arange(256, dtype=np.uint8))
        rgb = np.stack([r, g, np.full_like(r, 255)], axis=-1)
        blue = g.astype(np.int16) - r.astype(np.int16) > NOT_PURPLE_MARGIN
        assert np.array_equal(stain_map(rgb), np.where(blue, 0, 255 - g).astype(np.uint8))

    def test_edge_ring_is_each_border_pixel_once(self) -> None:
        """edge_ring holds the four sides' pixels, each once (the corners too), of a mask or of colours: a photo's
        box whose right side was left out read as unlike its page however much of that side was the page."""
        from wbc.pixels import edge_ring

        ids = np.arange(5 * 7).reshape(5, 7)
        border = np.ones((5, 7), bool)
        border[1:-1, 1:-1] = False
        assert sorted(edge_ring(ids).tolist()) == sorted(ids[border].tolist())
        rgb = np.stack([ids] * 3, -1)
        assert edge_ring(rgb).shape == (2 * (5 + 7) - 4, 3)

    def test_the_data_sets_stain_maps_are_blue_minus_green_alone(self, full_data: Path) -> None:
        """Over every file of the data set, the blue margin leaves the stain map as (blue - green) alone
        gives it: no pixel with any (blue - green) has green above red by NOT_PURPLE_MARGIN, so crops,
        screening and readings of its files are as before the margin."""
        from wbc.data import list_split
        from wbc.info import SPLITS

        files = [s.path for split in SPLITS for s in list_split(full_data, split)]
        assert len(files) == 12515
        for path in files:
            rgb = load_image(path)
            assert np.array_equal(stain_map(rgb), np.maximum(rgb[..., 2], rgb[..., 1]) - rgb[..., 1]), path

    def test_a_screens_blue_button_is_not_taken_for_the_nucleus(self, fixture_root: Path) -> None:
        """A cell pasted into a grey window beside a bright blue button (a screenshot): the cell is found
        and typed as without the button (the button was taken for the nucleus, and the photo called not
        the purple of a stain); the fixture cells' stain maps are as (blue - green) alone gives them."""
        from wbc.predict import Predictor

        cell = load_image(fixture_root / "TEST_SIMPLE" / "NEUTROPHIL" / "_7_8956.jpeg")
        window = np.full((400, 560, 3), 236, np.uint8)
        window[40:280, 40:360] = cell
        plain = window.copy()
        window[330:370, 420:520] = (30, 90, 200)  # a "Save" button
        pred = Predictor()
        a, b = (pred.predict_sources([(n, _png(Image.fromarray(x)))])[0][0] for n, x in (("plain", plain), ("button", window)))
        assert not b.not_wbc and b.label == a.label and b.cell == a.cell and b.other_cell is None, (a, b)
        for path in sorted(fixture_root.parent.rglob("*.jpeg")):
            rgb = load_image(path)
            assert np.array_equal(stain_map(rgb), np.maximum(rgb[..., 2], rgb[..., 1]) - rgb[..., 1]), path

    def test_edge_padded_is_numpys_edge_pad(self) -> None:
        rng = np.random.default_rng(0)
        for h, w, pad in ((1, 1, 3), (1, 9, 24), (7, 1, 24), (5, 6, 0), (30, 41, 24), (3, 4, 10)):
            a = rng.integers(0, 256, (h, w), dtype=np.uint8)
            assert np.array_equal(edge_padded(a, pad), np.pad(a, pad, mode="edge")), (h, w, pad)

    @pytest.mark.parametrize("mode, fmt, orientation", [("RGB", "JPEG", 6), ("RGB", "JPEG", 3), ("P", "PNG", 8),
                                                         ("LA", "PNG", 5), ("I;16", "PNG", 6), ("L", "PNG", 2)])
    def test_exif_orientation_is_applied(self, mode: str, fmt: str, orientation: int) -> None:
        """A photo whose EXIF orientation says it is turned or mirrored is read upright, as Pillow's
        exif_transpose (a copy) then the mode's conversion gives it; one without the tag as stored."""
        from wbc.decode import _to_rgb

        rng = np.random.default_rng(0)
        img = Image.fromarray(rng.integers(0, 256, (40, 64, 3), dtype=np.uint8))
        img = img.convert(mode) if mode != "I;16" else Image.fromarray(
            rng.integers(0, 65536, (40, 64), dtype=np.uint16))
        exif = Image.Exif()
        exif[0x0112] = orientation
        buf = io.BytesIO()
        img.save(buf, format=fmt, exif=exif, **({"quality": 95} if fmt == "JPEG" else {}))
        raw = buf.getvalue()
        got = load_image(raw)
        upright = _to_rgb(ImageOps.exif_transpose(Image.open(io.BytesIO(raw))))
        assert got.shape == ((64, 40, 3) if orientation >= 5 else (40, 64, 3)) and np.array_equal(got, upright)
        if orientation != 1:
            stored = _to_rgb(Image.open(io.BytesIO(_png(img, fmt))))
            assert not np.array_equal(got, stored) or got.shape != stored.shape
        plain = load_image(_png(img, fmt))
        assert plain.shape == (40, 64, 3)

    def test_exif_orientation_turns_the_pixels(self) -> None:
        """By hand: orientation 6 (the camera turned a quarter clockwise) shows the stored top-left corner at
        the top right, upright; orientation 3 (upside down) at the bottom right."""
        stored = np.zeros((40, 64, 3), np.uint8)
        stored[:8, :8] = 255
        for orientation, corner in ((6, (slice(0, 8), slice(32, 40))), (3, (slice(32, 40), slice(56, 64)))):
            exif = Image.Exif()
            exif[0x0112] = orientation
            buf = io.BytesIO()
            Image.fromarray(stored).save(buf, format="PNG", exif=exif)
            got = load_image(buf.getvalue())
            assert got.shape == ((64, 40, 3) if orientation == 6 else (40, 64, 3))
            assert got[corner].min() == 255 and int(got.sum()) == 255 * 8 * 8 * 3

    def test_median_colour_matches_numpy(self) -> None:
        """The histogram median equals np.median(...).astype(uint8), odd and even counts."""
        rng = np.random.default_rng(0)
        for shape in ((3, 5, 3), (4, 4, 3), (1, 1, 3), (7, 2, 3)):
            a = rng.integers(0, 256, shape, dtype=np.uint8)
            assert (median_colour(a) == np.median(a.reshape(-1, 3), axis=0).astype(np.uint8)).all()

    def test_prepare_and_input_shapes(self) -> None:
        """prepare gives the spec's size; to_input gives normalised NCHW float32."""
        spec = PreprocessSpec(window=160, size=80, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
        p = prepare(smear(), spec)
        assert p.shape == (80, 80, 3)
        x = to_input(np.stack([p, p]), spec)
        assert x.shape == (2, 3, 80, 80) and x.dtype == np.float32
        assert np.isclose(x[0, 0, 0, 0], (p[0, 0, 0] / 255 - 0.5) / 0.25, atol=1e-6)
        # Each pixel in its row and column, each channel by its own mean and std: the layout the network was trained
        # on, and the one its activation map is drawn over the crop in (a transposed input reads a mirrored view)
        per_channel = replace(spec, mean=(0.1, 0.2, 0.3), std=(0.5, 1.0, 2.0))
        want = (p.astype(np.float32) / 255 - np.float32([0.1, 0.2, 0.3])) / np.float32([0.5, 1.0, 2.0])
        assert np.allclose(to_input(p[None], per_channel)[0], want.transpose(2, 0, 1), atol=1e-6)
        frame = prepare(smear(), PreprocessSpec(mode="frame", size=120))
        assert frame.shape == (120, 160, 3)

    def test_spec_round_trip(self) -> None:
        """A spec survives the model card's JSON."""
        spec = PreprocessSpec(mode="cell", window=128, size=64, mean=(0.1, 0.2, 0.3), std=(1.0, 2.0, 3.0))
        assert PreprocessSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.slow
def test_no_data_set_photo_is_called_grayscale_or_tiny(full_data: Path) -> None:
    """The screening's photo-level checks (too small, no colour, a coloured background at its edge) never
    fire on the data set's stained photos: all 12,515 files of its three splits (about 10 s)."""
    from wbc.data import list_split
    from wbc.decode import load_image
    from wbc.photo_checks import photo_unfit

    for split in ("TRAIN", "TEST", "TEST_SIMPLE"):
        flagged = [s.path.name for s in list_split(full_data, split) if photo_unfit(load_image(s.path))]
        assert flagged == [], (split, flagged[:5])


@pytest.mark.slow
def test_no_data_set_photo_is_shrunk(full_data: Path) -> None:
    """Every nucleus of the data set's 12,515 files reads within EXTENT_MAX (at most 85.7 px), so none is shrunk
    as a magnified photo: the crops the shipped model was trained on, and its TEST figures, are what `wbc predict`
    and `wbc evaluate` read (about 25 s)."""
    from wbc.data import list_split

    for split in ("TRAIN", "TEST", "TEST_SIMPLE"):
        shrunk = [s.path.name for s in list_split(full_data, split) if locate_cell(load_image(s.path)).extent > EXTENT_MAX]
        assert shrunk == [], (split, shrunk[:5])


@pytest.mark.slow
def test_no_data_set_photo_has_a_frame_cut_off(full_data: Path) -> None:
    """`framing.unframed` leaves all 12,515 files of the data set's three splits as they are, as the
    crops the network was trained on were made before it, and every fifth brightened x1.4 and x2: an
    overexposed field's clipped white round its cells is no page (about 25 s)."""
    from wbc.data import list_split

    for split in ("TRAIN", "TEST", "TEST_SIMPLE"):
        cut = []
        for i, s in enumerate(list_split(full_data, split)):
            rgb = load_image(s.path)
            looks = [rgb] + ([np.clip(rgb * k, 0, 255).astype(np.uint8) for k in (1.4, 2.0)] if i % 5 == 0 else [])
            cut += [s.path.name for x in looks if any(frame_margins(x))]
        assert cut == [], (split, cut[:5])


def test_a_warm_cast_is_matched_further_than_a_cool_one() -> None:
    """A field whose white is short of blue most, red near green (halogen light without a daylight filter), is matched
    with gains up to WARM_SPREAD_MAX apart; the same spread cool (red short most), or with red well above green, is
    past GAIN_SPREAD_MAX and not matched: a cool cast clips blue, the stain's channel."""
    from wbc.pixels import DATA_WHITE
    from wbc.white_balance import GAIN_SPREAD_MAX, WARM_SPREAD_MAX, input_gains

    field = np.zeros((8, 8, 3), np.uint8)  # not read: the white is given
    for gains, matched in (((0.95, 1.0, 1.6), True), ((1.6, 1.0, 0.95), False), ((1.4, 1.0, 1.6), False)):
        assert GAIN_SPREAD_MAX < max(gains) / min(gains) < WARM_SPREAD_MAX
        got = input_gains(field, np.asarray(DATA_WHITE) / np.asarray(gains))
        assert (got is not None) == matched, gains
        if matched:
            assert np.allclose(got, gains)


def test_only_a_cast_field_is_matched_to_judge_its_magnification() -> None:
    """A field whose white lies below the data set's range with its channels' gains CAST_SPREAD apart or more (green
    x0.8) is cast, and its magnification judged in matched colours; an even dim exposure (x0.8 in every channel) is
    not: matching cannot lift (blue - green) over its background, and only costs the time."""
    from wbc.pixels import DATA_WHITE
    from wbc.white_balance import cast_gains

    white = np.asarray(DATA_WHITE)
    assert cast_gains(white * (1.0, 0.8, 1.0)) is not None
    assert cast_gains(white * 0.8) is None


def test_a_field_past_the_matching_is_too_dark_only_where_every_channel_is_dim() -> None:
    """Gains past what the matching undoes call a field too dark (take it with more light) where every channel is
    beyond GAIN_RANGE, or every one well below the data set's white and one beyond; with one channel at nearly full
    light it is a cast, for which more light is the wrong advice."""
    from wbc.white_balance import too_dark

    assert too_dark(np.array([2.2, 2.3, 2.4])) and too_dark(np.array([1.5, 1.5, 2.3]))
    assert not too_dark(np.array([1.0, 1.1, 2.3])) and not too_dark(np.array([1.2, 1.5, 2.3]))
