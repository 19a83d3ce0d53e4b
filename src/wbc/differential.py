"""A differential count: how many of each white cell type, as shares, beside adult reference ranges.
Both the app's review table and `wbc predict` on several images print it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from wbc.info import CELL_TYPES, CLASSES

MIN_CELLS_FOR_RANGES = 100  # a manual differential counts 100 cells; fewer give wide percentages


def differential(labels: Sequence[str]) -> list[dict[str, object]]:
    """Count and share of each type among `labels` (EXCLUDED ignored) beside adult reference ranges."""
    counted = [lab for lab in labels if lab in CLASSES]
    n = len(counted)
    counts = Counter(counted)
    rows = []
    for t in CELL_TYPES:
        k = counts.get(t.name, 0)
        pct = 100.0 * k / n if n else 0.0
        lo, hi = t.normal_range_pct
        status = "low" if pct < lo else "high" if pct > hi else "within range"
        rows.append({"type": t.label, "count": k, "percent": round(pct, 1),
                     "adult range (%)": f"{lo:g}-{hi:g}", "status": status if n else "-"})
    return rows


def differential_note(n: int, counted: str = "cell(s)") -> str:
    """What `n` counted items are worth as a differential (`counted`: what they are called)."""
    if n == 0:
        return "No white cells counted yet."
    if n < MIN_CELLS_FOR_RANGES:
        return (f"{n} {counted} counted. A differential is normally read over at least "
                f"{MIN_CELLS_FOR_RANGES} cells; with fewer, the percentages are too uncertain to compare "
                "with reference ranges.")
    return f"{n} {counted} counted."


def differential_lines(labels: Sequence[str]) -> list[str]:
    """The differential of images' labels as text lines for a terminal, each image taken as one cell:
    the note, then a line per type (with its place in the adult range from MIN_CELLS_FOR_RANGES on)."""
    rows = differential(labels)
    n = sum(int(r["count"]) for r in rows)
    if not n:
        return ["No image was read as a white cell: no differential."]
    lines = [differential_note(n, "image(s), each taken as one cell,")]
    lines += [f"  {r['type']:11s} {r['count']:4d}  {r['percent']:5.1f}%   adult range {r['adult range (%)']}%"
              + (f" ({r['status']})" if n >= MIN_CELLS_FOR_RANGES else "") for r in rows]
    return lines
