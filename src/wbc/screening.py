"""Is this a stained white blood cell at all? Checks made before the network is trusted.

The network always answers with one of four types; these checks catch what it was never shown:
a blank field, red cells only, an out-of-focus image or a picture that is not a stained smear.
A white cell in an overexposed photo passes, but is marked: the network reads those poorly.
Thresholds were read off TRAIN images and red-cell-only regions of the original fields in
dataset-master; benchmarks/screening.py counts the errors both ways (0.3% of the data set's files
flagged, 98% of red-cell-only corners) and tests/test_app.py checks both sides.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from wbc.imaging import CellLocation, locate_cell, scale_channels
from wbc.other_cell import other_cell
from wbc.photo_checks import (
    BLACK_AND_WHITE,
    CROP_HALF_PX,
    STAINED_EDGE,
    TINTED_HEAD,
    TOO_DARK_HEAD,
    TOO_SMALL_HEAD,
    Screening,
    checks_of,
    drawn_mark,
    photo_unfit,
    too_magnified,
)
from wbc.pixels import DATA_WHITE
from wbc.white_balance import (
    GAIN_SPREAD_MAX,
    cast_gains,
    clipped_share,
    field_white,
    gains_allowed,
    gains_to_data_white,
    is_warm,
    match_data_white,
    spread,
    too_dark,
)

SECOND_LOOK_MAX_MOVE = 24.0  # px: the balanced field must point at the same cell


def screen(rgb: np.ndarray, loc: CellLocation, white: np.ndarray | None = None,
           gains: np.ndarray | None = None, floor: int | None = None, crop_half: int = CROP_HALF_PX) -> Screening:
    """Decide whether `rgb` (H, W, 3) shows a stained white cell at `loc`, and where a second one is.

    A field that fails is looked at once more with its white matched to the data set's: the stain
    thresholds are in the data set's colours, and another camera's white balance or exposure moves
    a nucleus's (blue - green) across them. Red-cell-only fields fail both looks. A field that needs
    gains outside GAIN_RANGE (nearly black, or one hue) is not passed on a second look: it is told that
    it is too dark, or that its cast is beyond the matching where the cast is warm or where undoing it
    in full shows a white cell (else it keeps the first look's reason). `clipped` is measured on
    the field as given. `white`: `field_white(rgb)` where the caller has it. `gains`: the channel
    gains the network's input is scaled by (`input_gains`, where the model card matches white); the
    search for a second cell reads the field in those colours, in which the stain thresholds hold
    (in a warm or dim photo as given, the lobes of one nucleus fall apart); for such a photo it costs
    about 1 ms more, the field scaled and its stain maps made again. `floor`: `other_cell`'s. `crop_half`:
    half the side of the square the model's crop reads (px, data scale), in which a drawn mark matters.
    Before any look, what is wrong with the photo itself (`photo_unfit`, `too_magnified`, `drawn_mark`): a
    stained edge is judged again in the data set's colours where a cast the matching undoes may be why.
    """
    white = field_white(rgb) if white is None else white
    to_white = gains_to_data_white(white)
    unfit = photo_unfit(rgb, loc.reduced_by, loc.photo_hw)
    if unfit == STAINED_EDGE and (cast := cast_gains(white)) is not None:
        # A cast (magenta) lifts the background's (blue - green) to a stain's: its edge is judged in the data
        # set's colours, and the looks below read the cell (the second in those colours).
        unfit = photo_unfit(match_data_white(rgb, cast), loc.reduced_by, loc.photo_hw)
    elif loc.reduced_by > 1 and unfit.startswith((TOO_SMALL_HEAD, STAINED_EDGE)) and not gains_allowed(to_white):
        # Shrunk for a nucleus that is the background, read as stain under a cast past the matching: the cast,
        # not the size, is what to mend (green x0.7 told 65 of 71 TEST_SIMPLE cells they were too small; x0.45,
        # a gain past the range, 11 of 11 every 7th).
        unfit = _beyond_matching(to_white)
    unfit = unfit or too_magnified(loc) or drawn_mark(rgb, loc, white, crop_half)
    if unfit:  # no look at the stain can help: say what is wrong with the photo itself
        # A black-and-white picture's white is not clipped light: it is not called overexposed.
        clipped = 0.0 if unfit == BLACK_AND_WHITE else clipped_share(rgb)
        return Screening(is_cell=False, reason=unfit, peak=loc.peak, nucleus_px=0, sharpness=0.0,
                         reduced_by=loc.reduced_by, clipped=clipped)
    first = replace(checks_of(rgb, loc), clipped=clipped_share(rgb))
    if first.is_cell and not gains_allowed(to_white):
        # A cell found through a cast the matching cannot undo reads as the cast: every 20th TRAIN file cast magenta
        # past the bound (white gains 1.5 apart or more) was typed 224 times, 36% right (95-97% below it). So does
        # one too dim or too cast for a gain within the range (green x0.4, blue x0.6: 12 of 71 TEST_SIMPLE right).
        return replace(first, is_cell=False, reason=_beyond_matching(to_white))
    if first.is_cell:
        if gains is None:
            return _with_other_cell(first, rgb, loc, floor)
        return _with_other_cell(first, scale_channels(rgb, gains), replace(loc, coarse=None), floor)
    # Warm past the spread other casts keep: refused for its spread or a gain past the range, or matched only by
    # the warm cast's wider bound.
    warm = is_warm(to_white) and spread(to_white) > GAIN_SPREAD_MAX
    if not gains_allowed(to_white):
        # What is wrong with the light first: "no stained nucleus found" alone would say no cell is there.
        if too_dark(to_white):
            return replace(first, reason=f"{_beyond_matching(to_white)}; as photographed, {first.reason}")
        # Another cast (an LED's light under a camera set for tungsten, a green filter) is called one only
        # where undoing it in full shows a white cell: a blue sky's or a green leaf's photo is no smear.
        if warm or _balanced_look(rgb, loc, to_white) is not None:
            return replace(first, reason=_tinted(to_white, warm))
        return first
    look = _balanced_look(rgb, loc, to_white)
    if look is None:
        # A warm cast only the wider spread lets matched, still without a cell: told of its cast, as before it was
        # matched, rather than that no white cell is there (in 19 of 399 TRAIN files cast R x1.2, G x0.95, B x0.65).
        if warm:
            return replace(first, reason=_tinted(to_white, True))
        return first
    second, balanced, again = look
    return _with_other_cell(replace(second, white_balanced=True, clipped=first.clipped), balanced, again, floor)


def _beyond_matching(to_white: np.ndarray) -> str:
    """Why a field that matching its white (gains `to_white`, (3,), not allowed) cannot bring to the training
    images' colours cannot be judged: too dark (take it with more light; dim and warm, as a halogen lamp turned
    down, also its white balance, without a daylight filter, which takes more light), or cast."""
    warm = is_warm(to_white) and spread(to_white) > GAIN_SPREAD_MAX
    if not too_dark(to_white):
        return _tinted(to_white, warm)
    cast = " and correct its white balance, which is cast warm" if warm else ""
    return f"{TOO_DARK_HEAD} (its white at {100 / to_white.mean():.0f}% of theirs): take it with more light{cast}"


def _tinted(to_white: np.ndarray, warm: bool) -> str:
    """Why a field cast beyond what matching its white (gains `to_white`, (3,)) undoes cannot be judged."""
    cast = DATA_WHITE / to_white  # the field's white (3,), as measured
    # No "as photographed, no stained nucleus found": in such colours the stain checks cannot tell.
    return (f"{TINTED_HEAD} (its white at R {cast[0]:.0f}, G {cast[1]:.0f}, B {cast[2]:.0f}; theirs "
            f"{DATA_WHITE[0]:.0f}, {DATA_WHITE[1]:.0f}, {DATA_WHITE[2]:.0f}), beyond what matching its white undoes: "
            "correct the white balance" + (" (or use a daylight filter)" if warm else "") + " and take it again")


def _balanced_look(rgb: np.ndarray, loc: CellLocation,
                   to_white: np.ndarray) -> tuple[Screening, np.ndarray, CellLocation] | None:
    """The checks of the field with its channels scaled by `to_white` (3,), where they pass on a cell
    within SECOND_LOOK_MAX_MOVE of `loc`: (their screening, the scaled field, its cell); else None."""
    balanced = match_data_white(rgb, to_white)
    again = locate_cell(balanced)
    if np.hypot(again.cy - loc.cy, again.cx - loc.cx) > SECOND_LOOK_MAX_MOVE:
        return None
    second = checks_of(balanced, replace(again, reduced_by=loc.reduced_by))
    return (second, balanced, again) if second.is_cell else None


def _with_other_cell(sc: Screening, rgb: np.ndarray, loc: CellLocation, floor: int | None) -> Screening:
    """`sc` of a white cell with the search for a second one in `rgb`, the field in the colours to read."""
    found = other_cell(rgb, loc, floor)
    return sc if found is None else replace(sc, other_cell_yx=(found.y, found.x), other_larger=found.larger)
