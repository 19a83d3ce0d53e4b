"""A differential count: how many of each white cell type, as shares, beside adult reference ranges.
Both the app's review table and `wbc predict` on several images print it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from wbc.info import CELL_TYPES, CLASSES

MIN_CELLS_FOR_RANGES = 100  # a manual differential counts 100 cells; fewer give wide percentages


def differential(labels: Sequence[str]) -> list[dict[str, object]]:
    """Count and share of each type among `labels` (EXCLUDED ignored) beside adult reference ranges.
    Its place in the range ("status") only from MIN_CELLS_FOR_RANGES cells on ("-" below), and read off
    the share as shown (one decimal), so that 4.0% is never "high" against 1-4%."""
    counted = [lab for lab in labels if lab in CLASSES]
    n = len(counted)
    counts = Counter(counted)
    rows = []
    for t in CELL_TYPES:
        k = counts.get(t.name, 0)
        pct = round(100.0 * k / n, 1) if n else 0.0
        lo, hi = t.normal_range_pct
        status = "low" if pct < lo else "high" if pct > hi else "within range"
        rows.append({"type": t.label, "count": k, "percent": pct,
                     "adult range (%)": f"{lo:g}-{hi:g}", "status": status if n >= MIN_CELLS_FOR_RANGES else "-"})
    return rows


# What a count of images is: one cell each (two photographs of one cell are two), said alike by the app and the CLI.
IMAGES_AS_CELLS = "image(s), each taken as one cell,"


def differential_note(n: int, counted: str = "cell(s)") -> str:
    """What `n` counted items are worth as a differential (`counted`: what they are called)."""
    if n == 0:
        return "No white cells counted yet."
    if n < MIN_CELLS_FOR_RANGES:
        return (f"{n} {counted} counted. A differential is normally read over at least "
                f"{MIN_CELLS_FOR_RANGES} cells; with fewer, the percentages are too uncertain to compare "
                "with reference ranges.")
    return f"{n} {counted} counted. " + MISREADS_SKEW + " " + SHARES_NOT_COUNTS


# Why a count's small shares deserve a look by eye: the shipped model's errors on the test cells (a
# neutrophil read as an eosinophil, a monocyte as a neutrophil; README, *The shipped model*) weigh on
# the small classes' shares, since neutrophils are most of a smear: the same error rate both ways
# moves many neutrophils into the eosinophils and few back.
MISREADS_SKEW = ("Unchecked readings need not cancel out: in a smear of mostly neutrophils, the few read as "
                 "eosinophils can lift the eosinophil share above its range, and monocytes read as neutrophils "
                 "lower theirs. Check a high or low share by eye.")


# The ranges are of shares: a share outside them is not yet a finding (a high lymphocyte share is often a low
# neutrophil count).
SHARES_NOT_COUNTS = ("The ranges are of shares: eosinophilia, neutropenia and the like are judged on absolute counts "
                     "(the share times the total white count), which a blood count gives.")


def differential_lines(labels: Sequence[str]) -> list[str]:
    """The differential of images' labels as text lines for a terminal, each image taken as one cell:
    the note, then a line per type (with its place in the adult range from MIN_CELLS_FOR_RANGES on)."""
    rows = differential(labels)
    n = sum(int(r["count"]) for r in rows)
    if not n:
        return ["No image was read as a white cell: no differential."]
    lines = [differential_note(n, IMAGES_AS_CELLS)]
    lines += [f"  {r['type']:11s} {r['count']:4d}  {r['percent']:5.1f}%   adult range {r['adult range (%)']}%"
              + (f" ({r['status']})" if r["status"] != "-" else "") for r in rows]
    return lines
