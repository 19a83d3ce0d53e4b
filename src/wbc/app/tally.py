"""The reviewed differential count: as the page shows it and downloads it, and the notes under it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from wbc import __version__
from wbc.app.analysis import CellResult
from wbc.app.review_table import CHECKED, COUNTED_LABELS, spreadsheet_csv, ticked
from wbc.app.words import threshold_shown
from wbc.differential import (
    DASH, HIGH_BY_CHANCE, IMMATURE_PRESENT, LIMITS_COLUMN, LOW_BY_CHANCE, OTHER_PRESENT, REVIEWED_TYPES, differential,
    per_100)
from wbc.predict import CROP_EACH, NEEDS_REVIEW_VERDICT


def unchecked_count(rows: Sequence[Mapping[str, object]]) -> int:
    """How many counted rows were marked *needs review* and still hold the model's type, neither corrected nor
    ticked CHECKED."""
    return sum(1 for r in rows if str(r["verdict"]).startswith(NEEDS_REVIEW_VERDICT) and r["reviewed"] == r["predicted"]
               and not ticked(r.get(CHECKED)))


def unchecked_note(rows: Sequence[Mapping[str, object]]) -> str:
    """Under the differential: how many counted rows were marked *needs review* and still hold the model's
    type, neither corrected nor ticked CHECKED, so the count may still move (empty for none)."""
    n = unchecked_count(rows)
    if not n:
        return ""
    return (f"{n} of the counted image(s) {'is' if n == 1 else 'are'} marked *needs review* in the verdict column and "
            f"{'keeps' if n == 1 else 'keep'} the model's type unchecked: check {'it' if n == 1 else 'them'} before "
            f"using the count, and tick the *{CHECKED}* column where you agree (a corrected or excluded one is "
            "not in this number).")


def unchecked_any_count(rows: Sequence[Mapping[str, object]]) -> int:
    """How many counted rows no reviewer has looked at, whatever their verdict: the model's type kept and not
    ticked CHECKED (a confident reading may be wrong: a basophil read as a neutrophil at 69%)."""
    return sum(1 for r in rows if r["reviewed"] in COUNTED_LABELS and r["reviewed"] == r["predicted"]
               and not ticked(r.get(CHECKED)))


def provisional_note(rows: Sequence[Mapping[str, object]]) -> str:
    """Under the differential: how many of the counted rows no reviewer has checked (`unchecked_any_count`),
    so that the count is the model's own and provisional (empty where every one was)."""
    n = unchecked_any_count(rows)
    counted = sum(1 for r in rows if r["reviewed"] in COUNTED_LABELS)
    if not n:
        return ""
    return (f"Provisional: {n} of the {counted} counted image(s) keep the model's type unchecked, whatever their "
            "verdict. A *confident* reading can be wrong, and a cell the model does not know (a basophil, a blast) "
            "is read as one of its four: check each by eye, correcting it or ticking it *checked*, before the "
            "count is used.")


def uncounted_note(results: Sequence[CellResult]) -> str:
    """Under the differential: how many photos hold a white cell that no row counts (empty for none)."""
    preds = [r.prediction for r in results if r.prediction is not None and r.prediction.other_cell is not None]
    if not preds:
        return ""
    pieces = sum(p.other_larger for p in preds)
    return (f"{len(preds)} photo(s) show a white cell that is not counted (each is marked in its verdict)"
            + (f"; in {pieces} of them the model typed what may be a piece of a cell beside it, so "
               + ("it starts" if pieces == 1 else "they start") + " excluded" if pieces else "")
            + f": {CROP_EACH} and upload them, to count every cell.")


# The basophils' status while a counted image keeps the model's type unchecked (`reviewed_differential`)
BASOPHILS_UNCHECKED = "to check: the model never calls a basophil"
# The differential's statuses as the page's narrow column shows them (its caption names them in full); "in
# range" kept on one line on a phone (a no-break space), and "to check" no wider.
SHORT_STATUS = {"within range": "in\u00a0range", LOW_BY_CHANCE: "low?", HIGH_BY_CHANCE: "high?",
                BASOPHILS_UNCHECKED: "to\u00a0check", OTHER_PRESENT: "refer", IMMATURE_PRESENT: "review"}


def reviewed_differential(names: Sequence[str], records: Sequence[Mapping[str, object]]) -> list[dict[str, object]]:
    """The review table's differential (`differential` of the reviewed `names`, reviewed=True), its basophils
    not called within range while any counted row (`records`) keeps the model's type unchecked: the model never
    calls a basophil, so their count is only the reviewer's corrections so far ("0, within range" stood beside
    96 of 106 images unchecked). A high share stands: the images still to check can only add to it."""
    diff = differential(names, reviewed=True)
    if unchecked_any_count(records):
        for r in diff:
            if r["type"] == REVIEWED_TYPES["BASOPHIL"] and r["status"] == "within range":
                r["status"] = BASOPHILS_UNCHECKED
    return diff


# Word joiners around a range's dash: on a phone "18.4–35.6" broke after the dash and read as two numbers.
UNBROKEN_DASH = f"\u2060{DASH}\u2060"


def differential_shown(diff: Sequence[Mapping[str, object]]) -> list[dict[str, object]]:
    """The differential as the page's table shows it, its Total row last as the download's (`total_row`; the
    page's ended at the last type): short headings and statuses, ranges that do not break, and a long dash for
    no status or range (the table reads its cells as Markdown, where a lone "-" is a list's bullet)."""
    heading = {LIMITS_COLUMN: "95% limits (%)", "adult range (%)": "range (%)"}
    # "": no other white cell counted, or the total's; the total's reason for none is said under the table
    status = {**SHORT_STATUS, "-": "\u2014", "": "\u2014", NO_STATUS_BELOW: "\u2014"}

    def shown(k: str, v: object) -> object:
        if k == "status":
            return status.get(str(v), v)
        if k in (LIMITS_COLUMN, "adult range (%)") and v == "":
            return "\u2014"
        return v.replace(DASH, UNBROKEN_DASH) if k in (LIMITS_COLUMN, "adult range (%)") and isinstance(v, str) else v

    rows = [*diff, total_row(diff, short=True)] if diff else []
    return [{heading.get(k, k): shown(k, v) for k, v in r.items()} for r in rows]


NO_STATUS_BELOW = "no range compared below 100 cells"  # the total's status where the types' are "-"


def total_row(diff: Sequence[Mapping[str, object]], short: bool = False) -> dict[str, object]:
    """The differential's Total row, its columns those of `diff`'s rows: the cells counted, 100%, and what the
    shares, each rounded to one decimal, add to where that shows (a spreadsheet's sum of the column read 100.2
    beside a total of 100.0; `short`: in a few words, for the page's narrow table); its status says why none is
    compared where the types' is "-"."""
    n = sum(int(str(r["count"])) for r in diff)
    added = round(sum(float(str(r["percent"])) for r in diff), 1)
    total: dict[str, object] = {k: "" for k in (diff[0] if diff else ())}
    said = f"shares add to {added:.1f}" if short else f"the shares, each rounded to one decimal, add to {added:.1f}"
    return {**total, "type": "Total" + (f" ({said})" if n and added != 100.0 else ""),
            "count": n, "percent": 100.0 if n else 0.0,
            "status": NO_STATUS_BELOW if any(r.get("status") == "-" for r in diff) else ""}


def differential_csv(diff: Sequence[Mapping[str, object]], set_aside: int = 0, excluded: int = 0,
                     unreadable: int = 0, unchecked: int = 0, not_checked: int = 0, nrbc: int = 0,
                     made_with: Sequence[str] = (), repeats: int = 0) -> bytes:
    """The differential as the page shows it (a row per type, its statuses in full), then its total, then what
    the page says beside it: the nucleated red cells marked (`nrbc`, where any; per 100 white cells in the percent
    column), the images left out
    (`set_aside` by the screening and still excluded, `excluded` by the reviewer, `unreadable`, `repeats` of an
    image given before, so that the rows add up to the images given), the counted ones
    still marked *needs review* and unchecked, and those no reviewer checked at all (`not_checked`) (the download
    had the counts alone: 9 unchecked, 3 left out, unsaid); last, `made_with`: what made it (the model, its
    review threshold, the date), each line a row of its own."""
    if not diff:
        return b""
    total = total_row(diff)
    n = int(str(total["count"]))
    beside = [*([{"type": "Nucleated red cells (not in the total; percent: per 100 white cells)", "count": nrbc,
                  "percent": per_100(nrbc, n)}] if nrbc else []),
              {"type": "Not counted: set aside by the screening", "count": set_aside},
              {"type": "Not counted: excluded in review", "count": excluded},
              {"type": "Not counted: unreadable files", "count": unreadable},
              {"type": "Not counted: repeats of an image given before", "count": repeats},
              {"type": "Counted, marked needs review, unchecked", "count": unchecked},
              {"type": "Counted, not checked by a reviewer (any verdict)", "count": not_checked},
              *({"type": line} for line in made_with)]
    return spreadsheet_csv(list(diff[0]), [*diff, total, *beside])


# The downloads' last lines: what the figures are, whatever is done with the file.
NOT_A_DIAGNOSIS = ("Each image is taken as one cell. A second opinion for learning and checking by a qualified "
                   "person, not a diagnosis.")


def made_with(card: Mapping[str, Any], threshold: float, when: str) -> list[str]:
    """The downloads' provenance lines (the differential's and the review table's): the model (its name and the
    sha256 of its ONNX file), its review threshold, when it was made (`when`, e.g. an ISO date), and NOT_A_DIAGNOSIS."""
    sha = str(card.get("onnx_sha256") or "unknown")
    return [f"Model: {card.get('name') or 'unnamed'}, ONNX sha256 {sha}",
            f"Review threshold: {threshold_shown(threshold)}", f"Made: {when} by wbc {__version__}", NOT_A_DIAGNOSIS]
