"""The search for a second white cell in the field: a stained mass apart from the typed cell's, large enough to
be a nucleus (`other_cell`), and whether it dwarfs the typed one."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from wbc.imaging import COARSE_REDUCE, CellLocation, coarse_stain
from wbc.photo_checks import PEAK_MIN
from wbc.pixels import STAIN_LEVEL, dilated, stain_map

# A second white cell: a stained mass apart from the typed cell's (the coarse blurred stain map falls
# below OTHER_LEVEL between them, which the lobes of one nucleus never do), peaking at PEAK_MIN or more,
# with OTHER_NUCLEUS_PX stained px or more, at the data set's magnification. The floor is the smallest
# that warns on at most 1% of TRAIN's files from fields BCCD boxes one white cell in (0.99%) and 3% of
# those fields' originals (1.2%); each of those warnings points at a real second cell the boxes leave
# out, mostly a piece cut by the edge. It finds 11 of 14 two-cell originals' second cells (not cells
# that touch) and warns on none of TEST's 622 files (benchmarks/other_cells.py).
OTHER_LEVEL = 40
OTHER_NUCLEUS_PX = 400
OTHER_TRIES = 3  # stained masses looked at, strongest first, before the search gives up
# The other nucleus holds this many times the typed mass's stained px or more: the crop is on a piece of
# a cell or a speck (3.6-8.5x where it was, in BloodImage_00040 and 00242 and TRAIN MONOCYTE _3_9992),
# not on a whole cell beside a larger one (1.15-1.7x in two-cell photographs).
OTHER_LARGER = 2.0
# A mass most of whose stained px lie within STROKE_PX of its edge is thin strokes: a label's letters or a drawn line
# in a stain's colour (blue, navy, violet), not a nucleus. Of a blue, navy or violet label (DejaVu Sans Bold, 18-34 px)
# in the far corner of TEST_SIMPLE photos, called another white cell, at most 19% of the stained px are left eroded
# by STROKE_PX; of the second nuclei of dataset-master's fields that warn, 35% or more (a ring round a hole 8 px
# wide, 37%). The warnings on those fields and on the data set's files (benchmarks/other_cells.py) are unchanged.
STROKE_PX = 2
SOLID_MIN = 0.27
# A field photographed at a lower magnification than the data set's shows smaller nuclei: at 0.3x a second cell's
# holds 100-300 stained px, under OTHER_NUCLEUS_PX, and fields of nine cells were typed without a warning. Where the
# typed mass lies whole in the field (not cut by its edge) and holds fewer than OTHER_NUCLEUS_PX / OTHER_SHARE px, a
# second mass needs OTHER_SHARE of its px (OTHER_MIN_PX at least) instead. The smallest typed mass that lies whole
# among every 4th file of the data set holds 1,133 px, so none of them is searched with a lower floor; of 40 fields
# of nine cells at 0.3x, 19 are warned (5 before), at 0.35x 36 (29) (benchmarks/other_cells.py --mosaics 40).
OTHER_SHARE = 0.5
OTHER_MIN_PX = 100


class OtherCell(NamedTuple):
    y: float  # px of the searched field: the centroid of the other nucleus's stained px
    x: float
    larger: bool  # it holds OTHER_LARGER times the typed mass's stained px or more


def _grown(seed: np.ndarray, within: np.ndarray) -> np.ndarray:
    """The cells of `within` (bool, 2-D) connected to `seed` (bool, the same shape) through 8-neighbours."""
    comp = seed & within
    g = np.empty_like(comp)
    while True:
        np.copyto(g, comp)
        g[1:] |= comp[:-1]
        g[:-1] |= comp[1:]
        rows = g.copy()
        g[:, 1:] |= rows[:, :-1]
        g[:, :-1] |= rows[:, 1:]
        g &= within
        if np.array_equal(g, comp):
            return comp
        comp, g = g, comp


def other_cell(rgb: np.ndarray, loc: CellLocation, floor: int | None = None) -> OtherCell | None:
    """The nucleus of a second white cell in the field (H, W, 3) at the data set's magnification, whose
    typed cell is at `loc` (found in this very field); None where there is none. `floor`: stained px a
    second mass needs (default OTHER_NUCLEUS_PX), lowered where the typed mass is small and whole (`_floor_for`)."""
    floor = OTHER_NUCLEUS_PX if floor is None else floor
    coarse, sm, masses, typed = _typed_mass(rgb, loc)
    left = masses & ~typed  # all but the typed cell's mass
    s = None
    for _ in range(OTHER_TRIES):
        strongest = np.where(left, coarse, 0)
        k = int(np.argmax(strongest))
        if strongest.flat[k] < PEAK_MIN:
            return None
        one = np.zeros_like(left)
        one.flat[k] = True
        mass = _grown(one, left)
        left &= ~mass
        if s is None:
            s = (stain_map(rgb) if sm is None else sm) > STAIN_LEVEL
        full = _full_size(mass, s)
        n = np.count_nonzero(full)
        if n < floor:  # the typed mass measured only here: most fields' masses clear the floor or there are none
            floor = _floor_for(*_size_and_whole(_full_size(typed, s)), floor)
        if n >= floor and np.count_nonzero(_eroded(full, STROKE_PX)) >= SOLID_MIN * n:
            py, px = np.nonzero(full)
            return OtherCell(float(py.mean()), float(px.mean()),
                             bool(n >= OTHER_LARGER * np.count_nonzero(_full_size(typed, s))))
    return None


def _eroded(mask: np.ndarray, r: int) -> np.ndarray:
    """`mask` (bool, 2-D) less the px within `r` of its edge (an erosion by a square of side 2r + 1; the
    photo's border counts as inside, so a nucleus cut by the edge keeps its body)."""
    return ~dilated(~mask, r)


def _full_size(cells: np.ndarray, stained: np.ndarray) -> np.ndarray:
    """The stained px (bool, H x W) that lie in the coarse grid's `cells` (bool, COARSE_REDUCE times coarser)."""
    f = COARSE_REDUCE
    return cells.repeat(f, 0).repeat(f, 1)[: stained.shape[0], : stained.shape[1]] & stained


def _typed_mass(rgb: np.ndarray, loc: CellLocation) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
    """The field's coarse stain map, its stain map where it had to be made for that (else None), the coarse cells
    of masses (bool), and the typed cell's mass among them (bool): grown from the coarse cells round its peak."""
    f = COARSE_REDUCE
    h, w = rgb.shape[:2]
    kept = loc.coarse is not None and loc.coarse.shape == (-(-h // f), -(-w // f))
    sm = None if kept else stain_map(rgb)  # made once, and only where a mass is measured or no coarse map came
    coarse = loc.coarse if kept else coarse_stain(sm)
    masses = coarse >= OTHER_LEVEL
    seed = np.zeros_like(masses)
    y, x = loc.peak_yx or (int(loc.cy), int(loc.cx))
    iy, ix = min(y // f, seed.shape[0] - 1), min(x // f, seed.shape[1] - 1)
    seed[max(0, iy - 1) : iy + 2, max(0, ix - 1) : ix + 2] = True  # the coarse cells round the typed cell's peak
    return coarse, sm, masses, _grown(seed, masses)


def typed_nucleus(rgb: np.ndarray, loc: CellLocation) -> tuple[int, bool]:
    """The stained px of the typed cell's mass in the field (H, W, 3) at `loc`, and whether it lies whole in the
    field (touches none of its edges), as `other_cell` measures them to lower its floor."""
    _, sm, _, typed = _typed_mass(rgb, loc)
    return _size_and_whole(_full_size(typed, (stain_map(rgb) if sm is None else sm) > STAIN_LEVEL))


def _size_and_whole(stained: np.ndarray) -> tuple[int, bool]:
    """The px of a mass's stained px `stained` (bool, H x W), and whether none lies on the field's edge."""
    ys, xs = np.nonzero(stained)
    h, w = stained.shape
    return len(ys), bool(len(ys)) and not (ys.min() == 0 or xs.min() == 0 or ys.max() == h - 1 or xs.max() == w - 1)


def _floor_for(px: int, whole: bool, floor: int) -> int:
    """The stained px a second mass needs beside a typed mass of `px` stained px: OTHER_SHARE of them (OTHER_MIN_PX
    at least) where that is under `floor` and the mass lies `whole` in the field (a nucleus cut by the edge tells
    nothing of the magnification), else `floor`."""
    return min(floor, max(OTHER_MIN_PX, round(OTHER_SHARE * px))) if whole else floor
