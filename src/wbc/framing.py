"""A photo's flat frame (a page's margin, a viewer's border): `frame_margins` finds it, `unframed` cuts it off."""

from __future__ import annotations

import numpy as np

from wbc.pixels import LIT_MIN, STAIN_LEVEL, edge_ring, stain_map


# A flat frame round a photo: a screenshot's or a page's margin, a viewer's border, maybe with a caption, a
# title or a page's text in it. JPEG leaves a flat area within a few levels of its colour.
FRAME_TOL = 8  # uint8 levels a frame's pixels may stray from its colour (`_frame_colour`)
FRAME_SIDE_SHARE = 0.9  # a side is a frame's where its outermost line is this much one colour (a smear's: red cells, ground)
MIN_FRAME_PX = 4  # thinner flat edges are left: a clipped row or two of an overexposed field
# The box's own edge must be mostly unlike the frame: a photo against a page, not a photo's ground that happens
# to be the page's colour, or an overexposed field's clipped white round its cells.
BOX_EDGE_SHARE = 0.9
MIN_PHOTO_SIDE = 32  # px: a box smaller than this is no photo
# px: a frame on some sides only is not cut off where less than this would be left: the screening's smallest
# photo (photo_checks.MIN_SIDE_PX). A crop padded out to its size with a flat fill where the photo ends is read whole,
# as before: cut, 242 of TEST's 2,487 files cropped to 110 px round their cell (those near the photo's edge)
# were refused as too small. A small photo with a page all round it is cut, and told that it is too small.
MIN_UNFRAMED_SIDE = 80
FRAME_STEP_PX = 1000  # the page's mask is read every (longest side // this)-th px: a 12 MP photo's took 0.3 s
BLEND_PX = 3  # px a page enlarged with its photo (a HiDPI screenshot) blends the two over, each side of the edge
FRAME_PASSES = 3  # frames within frames: a browser's grey bar, then its white page


def _longest_run(on: np.ndarray) -> tuple[int, int]:
    """(start, stop) of the longest run of True in a 1-D bool array ((0, 0) where none is)."""
    padded = np.concatenate([[False], on, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    if not len(edges):
        return 0, 0
    starts, stops = edges[::2], edges[1::2]
    i = int(np.argmax(stops - starts))
    return int(starts[i]), int(stops[i])


def frame_margins(rgb: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) px of a lit, flat frame round the photo (H, W, 3), or zeros: on one side
    or more, whose outermost line is FRAME_SIDE_SHARE one lit colour (the first such side gives it). The photo
    is a box whose edge is all unlike the frame's colour and whose inside is not flat (a solid title bar
    is no photo): the longest band of rows at least half unlike the frame, then of columns in it, then of
    rows again within those (a caption's or a page's text is thinner than half the photo, and apart from it
    by a line of page), or the same from the columns first; the larger of the two. Black (unlit) fill is
    left: it is the data set's own, which the crops were trained with; so is a stained colour (a slide's
    blue or purple: `photo_checks.STAINED_EDGE` says what to do)."""
    h, w, _ = rgb.shape
    colour = next((c for c in map(_frame_colour, (rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1])) if c is not None), None)
    if colour is None:
        return 0, 0, 0, 0
    # A large photo's page is read on a grid (`step` px; exact up to 1999 px a side): its box then lies within a
    # step of the photo's edge, a few px of 4000.
    step = max(1, max(h, w) // FRAME_STEP_PX)
    grid = rgb[::step, ::step]
    off = np.zeros(grid.shape[:2], bool)  # (h, w) of the grid: True off the frame's colour
    for c in range(3):  # channel by channel, in uint8: no int16 copy of the photo (a 720 x 560 one took 18 ms)
        lo, hi = max(0, int(colour[c]) - FRAME_TOL), min(255, int(colour[c]) + FRAME_TOL)
        off |= (grid[..., c] < lo) | (grid[..., c] > hi)
    box = _largest_photo(grid, off, MIN_PHOTO_SIDE / step)
    if box is None:
        return 0, 0, 0, 0
    y0, y1, x0, x1 = box
    # One photo on a page, not one of several (an atlas plate's panels: cut to one, the others went unseen); a
    # box a quarter of its size or less is a page's furniture (a browser's address box at 2x, 48 px tall).
    rest = off.copy()
    rest[y0:y1, x0:x1] = False
    other = _largest_photo(grid, rest, MIN_PHOTO_SIDE / step)
    if other is not None and _area(other) > _area(box) / 4:
        return 0, 0, 0, 0
    y0, x0, y1, x1 = y0 * step, x0 * step, min(h, y1 * step), min(w, x1 * step)
    margins = (y0, h - y1, x0, w - x1)
    if not all(margins) and min(y1 - y0, x1 - x0) < MIN_UNFRAMED_SIDE:
        return 0, 0, 0, 0
    return tuple(m if m >= MIN_FRAME_PX else 0 for m in margins)  # type: ignore[return-value]


def near_colour(pixels: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Which pixels (..., 3) lie within FRAME_TOL of `colour` (..., 3; broadcast) in every channel."""
    return np.abs(pixels.astype(np.int16) - colour.astype(np.int16)).max(axis=-1) <= FRAME_TOL


def _frame_colour(line: np.ndarray) -> np.ndarray | None:
    """The colour (3,) int16 of a frame whose side's outermost line (L, 3) this is, where FRAME_SIDE_SHARE of
    the line lies within FRAME_TOL of it and it is lit and not a stain's; else None."""
    near = line[::4].astype(np.int16)  # every 4th pixel tells a flat line from a photo's, at a fraction of the time
    n = len(near)
    # A line FRAME_SIDE_SHARE one colour has it at one of three pixels spread along it (a median costs 6x as much);
    # the three tried at once.
    candidates = near[[n // 4, n // 2, 3 * n // 4]]  # (3, 3)
    shares = near_colour(near[None], candidates[:, None]).mean(axis=1)
    if shares.max() < FRAME_SIDE_SHARE:
        return None
    colour = candidates[int(shares.argmax())]
    stained = int(stain_map(colour.astype(np.uint8)[None, None])[0, 0]) > STAIN_LEVEL
    return colour if colour.max() >= LIT_MIN and not stained else None


def _largest_photo(rgb: np.ndarray, off: np.ndarray, least: float) -> tuple[int, int, int, int] | None:
    """The larger of the two boxes (y0, y1, x0, x1) `_photo_box` reads off `off` (H, W), rows or columns
    first, that is a photo (`_is_photo`, `least` px a side or more); None where neither is."""
    x0, x1, y0, y1 = _photo_box(off.T)  # the columns first
    boxes = [box for box in (_photo_box(off), (y0, y1, x0, x1)) if _is_photo(rgb, off, box, least)]
    return max(boxes, key=_area) if boxes else None


def _blended_edge(off: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """Whether the box's edge is a photo's blended into its page: the ring BLEND_PX inside it is BOX_EDGE_SHARE
    off the page's colour, and the line BLEND_PX outside each side that has room is as much the page's (a
    cell's blob in a clipped field, its box cut through it, has it off on both sides)."""
    y0, y1, x0, x1 = box
    b = BLEND_PX
    if min(y1 - y0, x1 - x0) <= 4 * b or edge_ring(off[y0 + b : y1 - b, x0 + b : x1 - b]).mean() < BOX_EDGE_SHARE:
        return False
    h, w = off.shape
    outside = [line for line, room in ((off[y0 - b, x0:x1], y0 >= b), (off[min(y1 + b - 1, h - 1), x0:x1], y1 + b <= h),
                                       (off[y0:y1, x0 - b], x0 >= b), (off[y0:y1, min(x1 + b - 1, w - 1)], x1 + b <= w))
               if room]
    return bool(outside) and all(line.mean() <= 1 - BOX_EDGE_SHARE for line in outside)


def _area(box: tuple[int, int, int, int]) -> int:
    return (box[1] - box[0]) * (box[3] - box[2])


def _photo_box(off: np.ndarray) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of the box `frame_margins` reads off the mask `off` (H, W), rows first."""
    rows = off.sum(axis=1)
    y0, y1 = _longest_run(rows >= 0.5 * rows.max())
    x0, x1 = _longest_run(off[y0:y1].sum(axis=0) >= 0.5 * (y1 - y0))
    y0, y1 = _longest_run(off[:, x0:x1].sum(axis=1) >= 0.5 * (x1 - x0))
    return y0, y1, x0, x1


def _is_photo(rgb: np.ndarray, off: np.ndarray, box: tuple[int, int, int, int], least: float) -> bool:
    y0, y1, x0, x1 = box
    if min(y1 - y0, x1 - x0) < least:
        return False
    if edge_ring(off[y0:y1, x0:x1]).mean() < BOX_EDGE_SHARE and not _blended_edge(off, box):
        return False
    inside = rgb[y0:y1:2, x0:x1:2]  # every 4th pixel: a photo's spread shows in it as well
    return any(int(inside[..., c].max()) - int(inside[..., c].min()) > 2 * FRAME_TOL for c in range(3))


def unframed(rgb: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """The photo (H, W, 3) without its flat frames (`frame_margins`, cut again from what is left, up to
    FRAME_PASSES times; itself where it has none) and the (top, left) px cut off in all."""
    oy = ox = 0
    for _ in range(FRAME_PASSES):
        top, bottom, left, right = frame_margins(rgb)
        if not (top or bottom or left or right):
            break
        h, w, _ = rgb.shape
        rgb, oy, ox = rgb[top : h - bottom, left : w - right], oy + top, ox + left
    return rgb, (oy, ox)
