"""What the page says of one result: its heading, captions, warnings and confidence beside the review threshold."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wbc.app.markup import markdown_literal
from wbc.app.model_card import TOO_FEW_RECORD, confidence_record
from wbc.differential import DASH, balanced_test
from wbc.info import cell_type
from wbc.predict import CANNOT_JUDGE_VERDICT, CROP_EACH, Prediction, shown_digits


def crop_caption(p: Prediction) -> str:
    """The caption under the crop; says when a magnified photo was shrunk to the training scale and
    when the photo's colours (white balance, exposure) are unlike the training images'."""
    notes = []
    if p.shrunk:
        # Towards, not to: a magnified cell ends somewhat larger than a typical one of theirs (imaging.EXTENT_MAX).
        notes.append(f"the photo was shrunk {p.reduced_by:.1f}x towards the training images' magnification")
    how = {(True, True): "the cell was found with its colours matched, and the model saw them matched to theirs",
           (True, False): "the cell was found with its colours matched, but the model saw them as photographed",
           (False, True): "the model saw its colours matched to theirs"}.get((p.white_balanced, p.white_matched))
    if how:
        notes.append(f"its white balance or exposure is unlike the training images': {how}")
    return "What the model saw" + (f" ({'; '.join(notes)})" if notes else "")


def overexposure_warning(p: Prediction, threshold: float = 0.0) -> str:
    """What the page says about an overexposed photo (empty when it is not): for an image given a type
    (`Prediction.typed`), that it needs review, as the review table's verdict says, and its top two types,
    the first shown as the confidence beside it is against the review `threshold` (`confidence_shown`)."""
    if not p.overexposed:
        return ""
    clipped = f"{100 * p.clipped:.0f}% of the lit area is pure white (clipped)"
    if not p.typed:  # no type or confidence shown: "check the type by eye, however confident" named neither
        return f"Overexposed: {clipped}, which can wash out a cell's nucleus: photograph the cell again with less light."
    text = (f"{clipped}, and detail in the palest parts of "
            "the cell may be lost with it. Such photos are read much less well, however confident the model is: "
            "check the type by eye, or photograph the cell again with less light.")
    (a, pa), (b, pb) = p.top2
    return (f"{OVEREXPOSED_REVIEW}: {text} Top two: {cell_type(a).label} {confidence_shown(pa, threshold)}, "
            f"{cell_type(b).label} {100 * pb:.1f}%.")


OVEREXPOSED_REVIEW = "Needs review, overexposed"  # how the warning over a typed, overexposed photo begins


def other_cell_warning(p: Prediction) -> str:
    """What the page says when the photo shows a second white cell, which was neither typed nor counted
    (empty when it shows none; the screening looks for one only in a photo it takes for a white cell)."""
    if p.other_cell is None:
        return ""
    x, y = p.other_cell
    typed = f" at x={p.cell[0]}, y={p.cell[1]} px" if p.cell else ""
    if p.other_larger:
        return (f"No type given, and left out of the count: the model read a small stained mass{typed} (solid "
                f"blue ring; the crop shown), which may be a piece of a cell cut by the photo's edge or a speck, "
                f"while a much larger nucleus lies at x={x}, y={y} px (dashed orange ring), from the photo's top "
                f"left. Do not take the network's reading (small print) for that cell: {CROP_EACH} and upload each.")
    return (f"Another white cell: the photo shows a second stained nucleus (at least one) at x={x}, y={y} px from "
            f"its top left (dashed orange ring), which was neither typed nor counted; the type here is of the "
            f"cell{typed} (solid blue ring; the crop shown). {CROP_EACH.capitalize()} and upload each.")


def about_image(name: str, text: str, several: bool) -> str:
    """A warning or error about one image as the page shows it: where the page shows `several`, the file's
    name on a line of its own first, since a screen reader reads each out as it comes, away from the heading that names the
    file ("Needs review: ..." twice said not which)."""
    return f"**{markdown_literal(name)}**  \n{text}" if several else text  # the name a line of its own


NOT_A_WBC = "Not a white blood cell"  # the heading of an image the screening flags


# The heading of an image given no type for the photo's sake: too small, colourless, blurred, too dark or
# overexposed, or its crop on what may be a piece of a cell beside a much larger one.
CANNOT_JUDGE = "Cannot judge this photo"


def cannot_judge(p: Prediction) -> bool:
    """Whether an image given no type is so for the photo's sake (too small, colourless, blurred, too
    dark, cast warm, magnified past the shrinking or overexposed, or its crop on what may be a piece of
    a cell), not for showing no white cell: the verdict `wbc predict` gives it too."""
    return p.verdict == CANNOT_JUDGE_VERDICT


def headline(p: Prediction) -> str:
    """The result's heading: the type, or, for an image given none, that it is not a white cell or that
    the photo cannot be judged; the network names one of four types for any image, so there its type
    means nothing."""
    if p.typed:
        return cell_type(p.label).label
    return CANNOT_JUDGE if cannot_judge(p) else NOT_A_WBC


def flagged_message(p: Prediction, counted: bool = True) -> str:
    """The error box over an image given no type: why, and, where the page counts (`counted`: two images
    or more), that it is left out of the count."""
    if p.other_larger:
        return other_cell_warning(p)
    # Under the heading ("Not a white blood cell" or "Cannot judge this photo"): why, not the heading again.
    return f"Why: {p.not_wbc}." + (" It is left out of the differential count unless you include it below."
                                   if counted else "")


def forced_reading(p: Prediction) -> str:
    """The small print under the heading of an image given no type: what the network said anyway, marked
    as meaningless."""
    return (f"The network has to name one of the four types for any image; for this one it said "
            f"{cell_type(p.label).label} ({100 * p.confidence:.1f}%), which means nothing here.")


# Under an overexposed photo's confidence, instead of the test images' record at it (`confidence_note`).
OVEREXPOSED_RECORD = ("The test images' record at this confidence is for photos exposed as the training images "
                      "were; it does not hold for an overexposed one, which the model reads much less well.")


def threshold_shown(threshold: float, confidence: float = 1.0) -> str:
    """The review threshold as a percentage, to two decimals or as many as `confidence` is shown with."""
    return f"{100 * threshold:.{max(2, shown_digits(confidence, threshold))}f}%"


def threshold_basis(card: Mapping[str, Any]) -> str:
    """Whose answers the card's review threshold is the least sure tenth of, as its `review_rule` says: cells kept
    out of training in cross-validation (an export with --calibration) or the run's own validation cells."""
    rule = str(card.get("review_rule") or "")
    return ("its answers on cells kept out of its training, in cross-validation" if "out-of-fold" in rule
            else "its answers on the cells kept out of its training to validate it")


def confidence_shown(confidence: float, threshold: float) -> str:
    """A confidence as a percentage, to one decimal or to as many as it takes to read below the threshold."""
    return f"{100 * confidence:.{shown_digits(confidence, threshold)}f}%"


# Beside a record of the few types' calls: the test images hold about as many of each type, a smear far fewer of
# them, so that more of such calls are misread neutrophils there (a hematologist's review: the record read as the
# chance that an eosinophil call in a smear is right).
FEW_IN_A_SMEAR = {"EOSINOPHIL": "eosinophils", "MONOCYTE": "monocytes"}


def confidence_note(test: Mapping[str, Any] | None, p: Prediction) -> str:
    """The caption under a typed result's confidence: the test images' record at it (`confidence_record`),
    except for an overexposed photo, which that record does not describe; for a type few in a smear
    (FEW_IN_A_SMEAR), that such calls are right less often there than on a test set of as many of each type
    (`balanced_test`)."""
    record = confidence_record(test, p.confidence, p.label)
    given = bool(record) and not record.startswith(TOO_FEW_RECORD)  # a record with a figure, not "too few"
    if p.overexposed:  # no record to set aside where the card has none to give, or too few images for one
        return OVEREXPOSED_RECORD if given else ""
    if given and (few := FEW_IN_A_SMEAR.get(p.label)) and balanced_test((test or {}).get("per_class") or {}):
        record += (f" The test images hold about as many of each type; in a smear, where {few} are few, fewer such "
                   "calls are right.")
    return record


def tell_apart(first: str, second: str) -> str:
    """What tells two types apart, for a result that needs review: each one's morphology (class names)."""
    return "What tells them apart:" + "".join(f"  \n**{cell_type(c).label}**: {cell_type(c).morphology}"
                                               for c in (first, second))


def describe(label: str) -> dict[str, str]:
    """The biology the app shows for a predicted type, from the one source of truth in wbc.info."""
    t = cell_type(label)
    lo, hi = t.normal_range_pct
    return {
        "What it is": t.summary,
        "Role in immunity": t.immunity,
        "Typical morphology": t.morphology,
        "Typical adult share of white cells (ranges vary by laboratory)": f"{lo:g}{DASH}{hi:g}%",
        # Eosinophilia, neutropenia and the like are defined on absolute counts, not on shares.
        "A high absolute count can point to": t.high_count,
        "A low absolute count can point to": t.low_count,
    }
