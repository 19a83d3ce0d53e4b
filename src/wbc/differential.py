"""A differential count: how many of each white cell type, as shares, beside adult reference ranges.
Both the app's review table and `wbc predict` on several images print it."""

from __future__ import annotations

import math
import textwrap
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from wbc.info import CELL_TYPES, cell_type

MIN_CELLS_FOR_RANGES = 100  # a manual differential counts 100 cells; fewer give wide percentages
LIMITS_COLUMN = "95% limits (%)"
# Between a range's ends: an en dash, as typeset, which also keeps a spreadsheet from reading "1-4" or "2-8"
# in the downloaded CSV as a date (4 January, 8 February).
DASH = "\u2013"


def counting_limits(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) binomial limits of the share k/n, as fractions: the counting error
    alone, as Rümke's table gives it for a manual differential. Found by bisection: the page needs no SciPy."""
    if not 0 <= k <= n or n < 1:
        raise ValueError(f"a share of {k} in {n} cells")
    tail = (1.0 - level) / 2
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1)))])
    i = np.arange(n + 1)
    log_choose = log_fact[n] - log_fact - log_fact[::-1]  # log C(n, i), (n + 1,)

    def cdf(m: int, p: float) -> float:  # P(X <= m), X ~ Binomial(n, p), 0 < p < 1; falls as p rises
        j = i[: m + 1]
        return float(np.exp(log_choose[: m + 1] + j * math.log(p) + (n - j) * math.log1p(-p)).sum())

    def solve(m: int, target: float) -> float:  # the p in (0, 1) where cdf(m, p) = target
        lo, hi = 0.0, 1.0
        for _ in range(50):  # to 1e-15
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if cdf(m, mid) > target else (lo, mid)
        return (lo + hi) / 2

    lower = 0.0 if k == 0 else solve(k - 1, 1.0 - tail)  # P(X >= k) = tail
    upper = 1.0 if k == n else solve(k, tail)  # P(X <= k) = tail
    return lower, upper


# What a reviewer may call an image besides the model's four types: a white cell counted in the total, in a row of its
# own (a basophil; a blast; an immature granulocyte; another abnormal cell, named in the report: a laboratory reports
# blasts and immature granulocytes apart), or a nucleated red cell, given per 100 white cells outside the total
# (CLSI H20-A2; ICSH 2014). Names as the differential reads them.
BASOPHIL, BLAST, IMMATURE, OTHER_WHITE, NRBC = "BASOPHIL", "BLAST", "IMMATURE_GRANULOCYTE", "OTHER_WHITE_CELL", "NRBC"
REVIEWED_TYPES = {BASOPHIL: "Basophil", BLAST: "Blast", IMMATURE: "Immature granulocyte", OTHER_WHITE: "Other white cell",
                  NRBC: "Nucleated red cell"}
NOT_IN_HEALTHY_BLOOD = (BLAST, IMMATURE, OTHER_WHITE)  # rows with no range: any one counted is a finding
BASOPHIL_RANGE_PCT = (0.0, 1.0)  # adults, Davis's Lab and Diagnostic Tests, as the four types' (wbc.info)


# The rows in the order a laboratory's report gives them (neutrophils first), not the model's class index order.
LAB_ORDER = ("NEUTROPHIL", "LYMPHOCYTE", "MONOCYTE", "EOSINOPHIL")


def _status(pct: float, low: float, high: float, lo: float, hi: float) -> str:
    return ("low" if high < lo else LOW_BY_CHANCE if pct < lo else "high" if low > hi
            else HIGH_BY_CHANCE if pct > hi else "within range")


# Blasts are not seen in a healthy adult's blood, and immature granulocytes few if any (analysers' reference
# limits are under about 0.5% of white cells): any one counted is a finding, whatever the number of cells counted
# (ISLH consensus rules for smear review); their rows have no range to flag by. A blast or an abnormal cell is
# referred (to a pathologist); a few immature granulocytes are common in infection and pregnancy, and call for a
# review of the film.
OTHER_PRESENT = "present: refer for review"
IMMATURE_PRESENT = "present: review the film"


# A share outside its range whose limits reach into it: flagged as any share outside is (a laboratory flags it H or
# L), and said to be within the counting error ("below range" beside "low" read as one flag to a technologist).
LOW_BY_CHANCE, HIGH_BY_CHANCE = "low, may be chance", "high, may be chance"


def differential(labels: Sequence[str], reviewed: bool = False) -> list[dict[str, object]]:
    """Count and share of each type among `labels` (EXCLUDED ignored), its counting error (95% limits)
    and adult reference ranges. Its place in the range ("status") only from MIN_CELLS_FOR_RANGES cells on
    ("-" below): "low" or "high" where the limits lie wholly outside the range, LOW_BY_CHANCE or
    HIGH_BY_CHANCE where the share does but its limits reach into it, "within range" else. All read off the
    figures as shown (one decimal), so that 9.0% (9.04) is never above 4–9%. `reviewed`
    (a reviewer's labels, as the app's review table gives them): also a basophil row and those of
    NOT_IN_HEALTHY_BLOOD (no range; where any is counted, IMMATURE_PRESENT for immature granulocytes and
    OTHER_PRESENT else), all in the total; a nucleated red cell (NRBC) is in none (`nrbc_note`)."""
    kinds: list[tuple[str, str, tuple[float, float] | None]] = sorted(
        ((t.name, t.label, t.normal_range_pct) for t in CELL_TYPES), key=lambda kind: LAB_ORDER.index(kind[0]))
    if reviewed:
        kinds += [(BASOPHIL, REVIEWED_TYPES[BASOPHIL], BASOPHIL_RANGE_PCT),
                  *((k, REVIEWED_TYPES[k], None) for k in NOT_IN_HEALTHY_BLOOD)]
    names = {name for name, _, _ in kinds}
    counted = [lab for lab in labels if lab in names]
    n = len(counted)
    counts = Counter(counted)
    rows = []
    for name, label, normal in kinds:
        k = counts.get(name, 0)
        pct = round(100.0 * k / n, 1) if n else 0.0
        low, high = (round(100.0 * x, 1) for x in counting_limits(k, n)) if n else (0.0, 0.0)
        status = (("-" if n < MIN_CELLS_FOR_RANGES else _status(pct, low, high, *normal)) if normal
                  else "" if not k else IMMATURE_PRESENT if name == IMMATURE else OTHER_PRESENT)
        rows.append({"type": label, "count": k, "percent": pct, LIMITS_COLUMN: f"{low:.1f}{DASH}{high:.1f}" if n else "",
                     "adult range (%)": f"{normal[0]:g}{DASH}{normal[1]:g}" if normal else "",
                     "status": status})
    return rows


UNSEEN_NAMES = {REVIEWED_TYPES[BLAST]: "blasts", REVIEWED_TYPES[OTHER_WHITE]: "abnormal white cells"}  # in a sentence


def findings_note(diff: Sequence[Mapping[str, object]]) -> str:
    """What a reviewed differential's rows of NOT_IN_HEALTHY_BLOOD hold, as an alert ("" where none is counted): a
    blast in the last column of a long table was easy to pass over."""
    rows = {REVIEWED_TYPES[k] for k in NOT_IN_HEALTHY_BLOOD}
    found = {str(r["type"]): int(str(r["count"])) for r in diff if r["type"] in rows and int(str(r["count"]))}
    if not found:
        return ""
    counted = ", ".join(f"{k} {v}" for k, v in found.items())
    refer = [k for k in found if k != REVIEWED_TYPES[IMMATURE]]
    blast = " (a pathologist's, where a blast is new)" if REVIEWED_TYPES[BLAST] in found else ""
    # Immature granulocytes are few, not none, in health: "not seen in a healthy adult's blood" beside "or pregnancy"
    # contradicted itself.
    if not refer:
        return (f"Counted: {counted}. Few if any are seen in a healthy adult's blood, more in pregnancy, infection or "
                "inflammation: review the film.")
    if len(found) == 1:
        unseen = "It is not seen in a healthy adult's blood"
    elif REVIEWED_TYPES[IMMATURE] in found:
        unseen = (f"{' and '.join(UNSEEN_NAMES[k] for k in refer).capitalize()} are not seen in a healthy adult's "
                  "blood, immature granulocytes few if any")
    else:
        unseen = "None of these is seen in a healthy adult's blood"
    return f"Counted: {counted}. {unseen}: refer the film for review{blast}."


def per_100(k: int, white_cells: int) -> float | None:
    """`k` cells (nucleated red cells) per 100 of the `white_cells` counted, to one decimal, as a differential
    reports them apart from its total; None where no white cell is counted."""
    return round(100.0 * k / white_cells, 1) if white_cells else None


def nrbc_note(labels: Sequence[str], white_cells: int) -> str:
    """What a reviewer's nucleated red cells (NRBC among `labels`) come to beside the `white_cells` counted: how
    many, and per 100 white cells where any is counted ("" where none is marked)."""
    k = sum(1 for lab in labels if lab == NRBC)
    if not k:
        return ""
    rate = per_100(k, white_cells)
    return (f"Nucleated red cells: {k} marked, not in the total"
            + (f" ({rate:.1f} per 100 white cells)." if rate is not None
               else "; no white cell is counted to give them per 100 white cells.") + NRBC_SEEN)


# What nucleated red cells mean and do to a white count (ICSH; CLSI H20-A2): a student read a rate and no more.
NRBC_SEEN = (" They are not normally seen in the blood after the first days of life. Where an analyser counted them as "
             "white cells, correct its white count: WBC x 100 / (100 + nucleated red cells per 100 white cells).")


# What a count of images is: one cell each (two photographs of one cell are two), said alike by the app and the CLI.
IMAGES_AS_CELLS = "image(s), each taken as one cell,"


def differential_notes(n: int, counted: str = "cell(s)", figures: str = "", reviewed: bool = False) -> list[str]:
    """What `n` counted items are worth as a differential, point by point: how many (`counted`: what they are
    called), then what to read the figures with (`figures`: the model's own misreads, `misread_figures`,
    after MISREADS_SKEW). `reviewed`: a reviewer may correct the labels (the app), so the cells the model
    does not know are told how; else that they stay counted."""
    if n == 0:
        return ["No white cells counted yet."]
    # What is counted and how the model's misreads lean hold for a few cells too: 47 chosen examples read 21%
    # eosinophils against a range of 0-5.5%, with only "too few" beside it.
    misreads = " ".join(filter(None, (MISREADS_SKEW, figures)))
    counted_as = f"{WHAT_IS_COUNTED} {OTHER_CELLS_REVIEWED if reviewed else OTHER_CELLS_UNREVIEWED}"
    if n < MIN_CELLS_FOR_RANGES:
        return [f"{n} {counted} counted.",
                f"A differential is normally read over at least {MIN_CELLS_FOR_RANGES} cells; with fewer, the "
                "percentages are too uncertain to compare with reference ranges, so no share is compared with "
                "its range (their 95% limits show how far each may be off by chance)"
                + ("; a blast, an immature granulocyte or another white cell counted is a finding all the same." if
                   reviewed else "."), counted_as, misreads]
    return [f"{n} {counted} counted.", COUNTING_ERROR_SHOWN if reviewed else COUNTING_ERROR, counted_as, misreads,
            SHARES_NOT_COUNTS]


def differential_note(n: int, counted: str = "cell(s)", figures: str = "", reviewed: bool = False) -> str:
    """`differential_notes` as one paragraph."""
    return " ".join(differential_notes(n, counted, figures, reviewed))


# What the limits and the statuses mean (`differential`). "Within range" is no surer than "may be chance": at 100
# cells a monocyte share of 5% has limits wider than the monocytes' whole range, which the note said nowhere.
_MONO_LOW, _MONO_HIGH = cell_type("MONOCYTE").normal_range_pct
_FIVE_LOW, _FIVE_HIGH = counting_limits(5 * MIN_CELLS_FOR_RANGES // 100, MIN_CELLS_FOR_RANGES)
COUNTING_ERROR = ("The 95% limits are each share's counting error alone (exact binomial limits, as in Rümke's "
                  "table): a share outside its range is flagged low or high, and \"may be chance\" where its limits "
                  "reach into the range, so that the count alone could put it there: counting 200 cells or more "
                  "narrows the limits. A share called within range may still come from blood outside it: at "
                  f"{MIN_CELLS_FOR_RANGES} cells a small share's limits are wider than the monocytes' whole range "
                  f"(5% gives {100 * _FIVE_LOW:.1f}-{100 * _FIVE_HIGH:.1f}%, against {_MONO_LOW:g}-{_MONO_HIGH:g}%).")
COUNTING_ERROR_SHOWN = COUNTING_ERROR.replace('"may be chance"', '"may be chance" (in the table, a ?)') + (  # the app's
    " The basophils read *to check* where they would be in range until every counted image is checked: the model "
    "never calls a basophil, so only the review finds them. Any blast or other white cell counted reads *refer*, "
    "any immature granulocyte *review*.")


# What makes a set of images a differential, and what the four rows hold (CLSI H20-A2's counting procedure;
# the pediatric ranges of Davis's Lab and Diagnostic Tests).
WHAT_IS_COUNTED = ("The shares mean something only for every white cell met in a systematic scan of one "
                   "patient's film, not for chosen examples or several films pooled. The ranges are for adults and "
                   "children from 11 years (Davis's Lab and Diagnostic Tests); they vary by laboratory, method, age, "
                   "ancestry and pregnancy: use your laboratory's. From about one week to about 5 years of age, "
                   "children normally have more lymphocytes than neutrophils. Band forms belong in the neutrophil "
                   "row and reactive lymphocytes in the lymphocyte row. The model knows only its four types and "
                   "puts any other cell in one of them: a basophil, an immature granulocyte (metamyelocyte, "
                   "myelocyte, promyelocyte), a blast or another abnormal cell, a nucleated red cell, a smudge cell "
                   "or a clump of platelets.")
# What to do about those, where a reviewer can (the app's review table) and where no one can (`wbc predict`).
OTHER_CELLS_REVIEWED = ("Correct such a cell in the reviewed column: a basophil to Basophil, a blast to Blast, a "
                        "metamyelocyte, myelocyte or promyelocyte to Immature granulocyte, and another abnormal white "
                        "cell to Other white cell, named in the report (all stay in the total, in rows of their own; "
                        "blasts and other abnormal cells are not seen in a healthy adult's blood, immature "
                        "granulocytes few if any: a blast or other white cell is a finding to refer, immature "
                        "granulocytes one to review the film for), a nucleated red cell to Nucleated red "
                        "cell (given per 100 white cells, outside the total), platelets or anything else that is no "
                        "white cell to Excluded, and a smudge cell (a broken white cell) to Excluded too, noted in the report: where most are lymphocytes, as in chronic "
                        "lymphocytic leukaemia, count them as lymphocytes instead, or make an albumin film.")
OTHER_CELLS_UNREVIEWED = ("Here they stay counted in the four rows: correct them in the app's review table, or refer "
                          "the film for a manual count.")


# Why a count's small shares deserve a look by eye: the shipped model's errors on the test cells (a
# neutrophil read as an eosinophil, a monocyte as a neutrophil; README, *The shipped model*) weigh on
# the small classes' shares, since neutrophils are most of a smear: the same error rate both ways
# moves many neutrophils into the eosinophils and few back.
MISREADS_SKEW = ("Unchecked readings need not cancel out: in a smear of mostly neutrophils, the few read as "
                 "eosinophils can lift the eosinophil share above its range, and monocytes read as neutrophils "
                 "lower theirs. Check any share out of its range by eye.")


BALANCE_RATIO = 1.5  # the most test images of a type over the fewest, for a test set "about as many of each type"


def balanced_test(per_class: Mapping[str, Any]) -> bool:
    """Whether a card's TEST holds about as many images of each of the four types (BALANCE_RATIO), as the public
    data set's does (620-624): a maker's own may hold mostly neutrophils, like a smear."""
    n = [v.get("support") for v in per_class.values() if isinstance(v, Mapping)]
    return (len(n) == len(CELL_TYPES) and all(isinstance(k, int) and k > 0 for k in n)
            and max(n) <= BALANCE_RATIO * min(n))


def misread_figures(card: Mapping[str, Any]) -> str:
    """The model card's TEST figures behind MISREADS_SKEW, in a sentence: how many of the images it calls
    eosinophils are, and how many of the monocytes' images it finds ("" where the card has no such figures)."""
    per_class = ((card.get("metrics") or {}).get("test") or {}).get("per_class") or {}
    eos, mono = per_class.get("EOSINOPHIL") or {}, per_class.get("MONOCYTE") or {}
    precision, recall = eos.get("precision"), mono.get("recall")
    if not isinstance(precision, float) or not isinstance(recall, float):  # None where undefined, or a hand-edited card
        return ""
    cells, right = mono.get("cells"), mono.get("cells_right")
    # A card of wbc 0.21 on has the cells each recall rests on: TEST's monocytes are 4 cells.
    views = isinstance(cells, int) and isinstance(mono.get("support"), int) and mono["support"] > cells
    of_cells = (f", {'views of only ' if views else ''}{cells} monocyte cell{'s' if cells != 1 else ''} ({right} read "
                "right)" if isinstance(cells, int) and isinstance(right, int) else "")
    if not balanced_test(per_class):  # how a smear's shares would move the figure: said only of a balanced test set
        return (f"On its test images, {100 * precision:.0f}% of those this model called eosinophils were eosinophils, "
                f"and it found {100 * recall:.0f}% of the monocytes' images{of_cells}.")
    return (f"On its test images, {100 * precision:.0f}% of those this model called eosinophils were eosinophils, "
            f"and it found {100 * recall:.0f}% of the monocytes' images{of_cells}; the test set holds about as many "
            "images of each type, and in a smear of mostly neutrophils far fewer of those called eosinophils would be "
            "eosinophils.")


# The ranges are of shares: a share outside them is not yet a finding (a high lymphocyte share is often a low
# neutrophil count).
SHARES_NOT_COUNTS = ("The ranges are of shares: eosinophilia, neutropenia and the like are judged on absolute counts "
                     "(the share times the total white count), which a blood count gives.")


def hyphenated(text: str) -> str:
    """`text` with its en dashes as hyphens, for a terminal: one in latin-1 or ASCII showed the dash escaped
    (no spreadsheet reads what a terminal shows)."""
    return text.replace(DASH, "-")


NOTE_WIDTH = 100  # columns: the note's lines in a terminal or a log (one line of ~1,100 characters was unread)


def differential_lines(labels: Sequence[str], figures: str = "") -> list[str]:
    """The differential of images' labels as text lines for a terminal, each image taken as one cell: a line
    per type (with its place in the adult range from MIN_CELLS_FOR_RANGES on), then the note (with the
    model's `figures`, `misread_figures`), wrapped."""
    rows = differential(labels)
    n = sum(int(r["count"]) for r in rows)
    if not n:
        return ["No image was read as a white cell: no differential."]
    limits = [hyphenated(str(r[LIMITS_COLUMN])) for r in rows]
    width = max(map(len, limits))
    lines = [f"  {r['type']:11s} {r['count']:4d}  {r['percent']:5.1f}% (95% limits {lim:>{width}s})"
             f"   adult range {hyphenated(str(r['adult range (%)']))}%"
             + (f" ({r['status']})" if r["status"] != "-" else "") for r, lim in zip(rows, limits)]
    return lines + textwrap.wrap(differential_note(n, IMAGES_AS_CELLS, figures), NOTE_WIDTH, break_on_hyphens=False)
