"""The model card's figures as the About tab gives them: its test figures in words and tables, and what they mean."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wbc.differential import DASH, balanced_test, counting_limits
from wbc.info import CLASS_INDEX, CLASSES, DATASET, cell_type
from wbc.io import read_json

NO_TEST_FIGURES = ("This model card holds no TEST figures: the model was exported without `--evaluate`. "
                   "Measure them with `wbc evaluate --model DIR --out REPORTS` (a report in REPORTS; the card "
                   "stays as it is), or export the run again with `wbc export RUN --out DIR --evaluate` to put "
                   "them in the card.")


def _finite(v: object) -> bool:
    """A card's number: an int or float, not NaN or infinite (a hand-edited card may hold anything)."""
    return type(v) in (int, float) and math.isfinite(v)  # type: ignore[arg-type]


def ece_note(test: dict[str, object] | None) -> str:
    """The calibration clause of the page's limits: the card's TEST expected calibration error (and its
    spread over resampled cells where the card has one), or that the card holds none."""
    ece = (test or {}).get("ece")
    if not _finite(ece):
        return "this model card holds no TEST figures to say how well"
    ci = (test or {}).get("ece_ci95")
    # Not a 95% interval (report.md and `wbc evaluate` say so): a student read it as one beside the glossary's.
    spread = (f"; resampling the cells moves it over {ci[0]:.3f}-{ci[1]:.3f}, a spread that leans high, not a 95% "
              "interval" if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(map(_finite, ci)) else "")
    # What the figure means, in the page's own unit: points of confidence, on average.
    return (f"expected calibration error on the test images {ece:.3f}, its confidence off by about "
            f"{100 * float(ece):.0f} points on average{spread}")


def public_data(card: Mapping[str, object]) -> bool:
    """Whether the card's model was made from the public data set (BCCD, as the shipped one was), not from
    a user's own images: what the page may say of its cells and test set."""
    data = card.get("data")
    return isinstance(data, Mapping) and data.get("source") == DATASET["kaggle_handle"]


def trained_on(card: Mapping[str, object]) -> str:
    """The Limits' first words: how many cells, and whose."""
    data = card.get("data")
    data = data if isinstance(data, Mapping) else {}
    n, public = data.get("training_cells", "the"), data.get("public_cells")
    if public_data(card):
        # BCCD names no laboratory; its photos show one stain and one camera.
        return (f"Trained from scratch on **{n} cells of one public data set** (BCCD: one stain and one camera, "
                "as far as its photos show), its labels taken as given: a 2024 re-annotation of BCCD (TXL-PBC, "
                "arXiv 2407.13214) reports labelling errors in it")
    return (f"Trained from scratch on **{n} cells** of its maker's own images"
            + (f", {public} of them from the public BCCD data set" if public else " (not the public BCCD data set)"))


def shows_views(test: Mapping[str, Any]) -> bool:
    """Whether the card's test images are views of fewer cells (the public data set's), not a cell each (a maker's
    own photos may be): where the page may speak of a cell's views."""
    n_files, n_cells = test.get("n_files"), test.get("n_cells")
    return isinstance(n_files, int) and isinstance(n_cells, int) and n_files > n_cells


def test_summary(test: dict, public: bool = True) -> str:
    """The card's headline TEST figures in words, saying what each is over (`public`: the public data
    set's test set, else the model maker's own)."""
    lo, hi = test["accuracy_ci95"]
    views = shows_views(test)  # a maker's own test set may be a cell an image: no views to pool
    cells = (f"**{test['cells_correct']} of {test['n_cells']}** cells right"
             + (" when a cell's views are pooled (their probabilities averaged)" if views else ""))
    if test.get("cell_accuracy_ci95"):
        clo, chi = test["cell_accuracy_ci95"]
        cells += f" ({'exact 95% limits' if _exact(test) else '95% interval'} {100 * clo:.1f}-{100 * chi:.1f}%)"
    shows = f"views of **{test['n_cells']} cells**" if views else f"a cell each, **{test['n_cells']} cells**"
    return (f"On the {'public test set' if public else 'test set of its maker'} ({test['n_files']:,} images, {shows}): "
            "accuracy "
            f"**{100 * test['accuracy']:.1f}%** of the images (95% interval {100 * lo:.1f}-{100 * hi:.1f}%, from "
            f"resampling whole cells), {cells}, macro-F1 {test['macro_f1']:.3f}. With so few cells the intervals "
            f"are wide: one cell more or fewer right moves the cells' accuracy by {100 / test['n_cells']:.1f} points."
            + _also_in_train(test))


def _exact(test: dict) -> bool:
    """Whether the card's cell-level interval is the exact binomial one (`wbc evaluate` from 0.25), not a card's
    bootstrap from before: told by its figures, since a card re-evaluated keeps its exporter's version."""
    k, n = test.get("cells_correct"), test.get("n_cells")
    if type(k) is not int or type(n) is not int or not 0 <= k <= n or not 0 < n <= MAX_EXACT_CELLS:
        return False  # a hand-edited card's Infinity or 10**9 cells: no limits computed for it
    try:
        return bool(np.allclose(test["cell_accuracy_ci95"], counting_limits(k, n), rtol=0, atol=1e-9))
    except (KeyError, TypeError, ValueError):
        return False


MAX_EXACT_CELLS = 100_000  # counting_limits' tables grow with the cells: beyond this, no card is checked for them


def _also_in_train(test: dict) -> str:
    """The figures without the test cells its training set holds too (the public data set puts 2 of TEST's cells
    in TRAIN as well), in a sentence; "" for a card without them."""
    w = test.get("without_cells_in_train")
    if not w:
        return ""
    n = len(w["cells_dropped"])
    lo, hi = w["accuracy_ci95"]
    return (f" {n} of the test cells {'is' if n == 1 else 'are'} in the training set too, so the model has seen "
            f"{'it' if n == 1 else 'them'}; without {'it' if n == 1 else 'them'}: **{100 * w['accuracy']:.1f}%** of "
            f"the images (95% interval {100 * lo:.1f}-{100 * hi:.1f}%), {w['cells_correct']} of {w['n_cells']} cells.")


def balanced_note(per_class: dict[str, dict]) -> str:
    """Under the per-type table: where the test images are about as many for each type (`balanced_test`), unlike a
    smear, that the rarer types' precision there would be lower (more of the common type's errors land on them);
    else how many there are of each."""
    n = [int(v["support"]) for v in per_class.values() if isinstance(v, dict) and "support" in v]
    if not n:
        return ""
    cells = [v.get("cells") for v in per_class.values() if isinstance(v, dict)]
    of_cells = (f", but they are views of {_listed_counts(cells, per_class)} cells: a type's figures rest on "
                "its few cells" if _views_per_type(per_class) else "")
    if not balanced_test(per_class):  # a maker's own test set may hold mostly neutrophils, as a smear does
        counts = _listed_counts([int(v.get("support", 0)) for v in per_class.values()], per_class)
        return (f"The test images are {counts}{of_cells}; a type's precision depends on how many of the others "
                "there are, whose errors land on it.")
    return (f"The test images are about as many for each type ({min(n):,}-{max(n):,}){of_cells}; in a smear, where "
            "neutrophils are most of the cells, the rarer types' precision would be lower.")


def _views_per_type(per_class: dict[str, dict]) -> bool:
    """Whether the card gives each type's cells, and its test images are views of fewer cells than images."""
    cells = [v.get("cells") for v in per_class.values() if isinstance(v, dict)]
    # A card of wbc 0.20 or before has no cells per type; a maker's own photos may be a cell each.
    return bool(cells) and all(isinstance(c, int) for c in cells) and any(
        int(v["support"]) > c for v, c in zip(per_class.values(), cells))


def called_note(per_class: dict[str, dict]) -> str:
    """How often a type called was right over cells (its precision over cells, as the CLI and the report give it),
    for the table's caption: the images' precision mixes a type's few cells with another's many views, and a
    neutrophil call, right for 73% of the images called so, was right for 42 of the 45 cells. "" where the card has
    no cells called per type (wbc 0.27 or before) or its test images are a cell each."""
    rows = [(cell_type(c).label.lower(), v.get("cells_right"), v.get("cells_called")) for c, v in per_class.items()
            if isinstance(v, dict)]
    if not rows or not _views_per_type(per_class) or not all(
            type(k) is int and type(n) is int and 0 <= k <= n for _, k, n in rows):
        return ""
    called = [f"{k} of the {n} called {name}" for name, k, n in rows if n]
    if not called:
        return ""
    listed = ", ".join(called[:-1]) + f" and {called[-1]}" if len(called) > 1 else called[0]
    # TEST shows a rare type's cell in many more views (a monocyte in 155, a neutrophil in 14): one such cell read
    # wrong is that many images called wrong.
    return (f"Over whole cells the calls were right for {listed}: the images' precision counts a rarer type's cell, "
            "shown in many more views, many times over.")


def _listed_counts(counts: list[int], per_class: dict[str, dict]) -> str:
    """ "13 eosinophil, 6 lymphocyte, 4 monocyte and 45 neutrophil": counts in the per-type order, the
    types with none left out."""
    parts = [f"{k} {cell_type(c).label.lower()}" for k, c in zip(counts, per_class) if k]
    return ", ".join(parts[:-1]) + f" and {parts[-1]}" if len(parts) > 1 else parts[0]


def per_class_rows(per_class: dict[str, dict]) -> list[dict[str, object]]:
    """The card's per-type TEST figures as the page shows them: three decimals, None where undefined,
    and what each rests on: its cells read right of its cells (the images, views of a few cells each,
    on a card of wbc 0.20 or before, which has no cells per type; `balanced_note` gives them otherwise:
    both columns ran a phone's table 33 px past its 356)."""
    by_cell = all(isinstance(v.get("cells"), int) and isinstance(v.get("cells_right"), int) for v in per_class.values())
    return [{"type": cell_type(c).label,
             **{k: None if v.get(k) is None else round(float(v[k]), 3) for k in ("precision", "recall", "f1")},
             # None (blank) for a type with no cells, as the report and the CLI leave it.
             **({"cells right": f"{v['cells_right']} of {v['cells']}" if v["cells"] else None} if by_cell
                else {"images": int(v["support"])})}
            for c, v in per_class.items()]


def review_note(review: dict | None) -> str:
    """What the *needs review* mark did on the test images: how many it marked, how well those and the
    rest were read, and how many of the errors it caught."""
    marked = (review or {}).get("flagged_share")
    if not _finite(marked):
        return ""
    right, rest, caught = review.get("accuracy_flagged"), review.get("accuracy_rest"), review.get("errors_flagged_share")
    out = f"**What *needs review* catches.** It marked {100 * marked:.1f}% of the test images"
    if _finite(right) and _finite(rest):
        out += f"; those were right {100 * right:.1f}% of the time, the rest {100 * rest:.1f}%"
    if all(not _finite(v) or v == 1 for v in (right, rest)):
        return out + ", and the model made no error on them."
    if not _finite(caught):
        return out + "."
    if caught < 0.5:
        out += (f". It caught only {100 * caught:.0f}% of the wrong images: errors come in whole cells, and a cell "
                "read wrong in every view with confidence is not marked, so a confident answer is not a checked one")
    else:
        out += f". It caught {100 * caught:.0f}% of the wrong images; the rest were confident"
    cells, marked_cells = review.get("cells_with_errors"), review.get("cells_with_errors_marked")
    if type(cells) is int and type(marked_cells) is int and cells:
        out += f" ({marked_cells} of the {cells} cells with a wrong image had one marked)"
    return out + "."


def busiest_band_note(reliability: Sequence[dict[str, float]] | None,
                      by_type: Mapping[str, Sequence[dict[str, float]]] | None = None) -> str:
    """How the card's test confidences held where the largest group of test images fell (the fullest reliability bin),
    as a clause for the page's limits, with each type's calls in that bin (`reliability_by_type`, where the
    card keeps it and the type's calls there are MIN_RECORD_FILES or more); "" where the card has no bins, or the
    fullest holds fewer than MIN_RECORD_FILES images.
    The gap is that of the figures as shown (95.6 and 87.6 read "too sure by 8.1")."""
    bins = [b for b in reliability or () if b.get("files")]
    if not bins:
        return ""
    b = max(bins, key=lambda b: b["files"])
    if b["files"] < MIN_RECORD_FILES:  # 2 images "too modest by 56 points", where a result's caption reads none
        return ""
    accuracy, confidence = round(100 * b["accuracy"], 1), round(100 * b["confidence"], 1)
    gap = confidence - accuracy
    how = "too sure by" if gap > 0 else "too modest by" if gap < 0 else "as sure as it was right"
    calls = []
    for c, kept in (by_type or {}).items():
        same = [t for t in kept if isinstance(t, Mapping) and t.get("from") == b["from"]
                and int(t.get("files", 0)) >= MIN_RECORD_FILES]
        if same and c in CLASS_INDEX:
            calls.append(f"{100 * float(same[0]['accuracy']):.1f}% of its {int(same[0]['files']):,} "
                         f"{cell_type(c).label.lower()} calls")
    return (f"where the largest group of its test images fell ({int(b['files']):,} at {100 * b['from']:.1f}{DASH}{100 * b['to']:.1f}%) "
            f"it was right on {accuracy:.1f}% at a mean confidence of {confidence:.1f}%, {how}"
            + (f" {abs(gap):.1f} points" if gap else "")
            + (f" (there it was right on {', '.join(calls)}: a type's errors land in another's calls)" if calls else "")
            + "; ")


# The About tab's figures in plain words, for a student who has not met them (a user test found none explained).
FIGURES_GLOSSARY = (
    ("Accuracy over files", "the share of the test images typed right. The test set's images are several views "
     "(turned, flipped, shifted) of only a few dozen cells, so they are not independent."),
    ("Cell-level accuracy", "the share of the test cells typed right, a cell's answer being the type its views "
     "agree on most strongly (their probabilities averaged)."),
    ("Precision of a type", "of the images the model called this type, the share that were."),
    ("Recall of a type", "of the images of this type, the share the model found."),
    ("Cells right", "of the test cells of a type, how many the model typed right, a cell's answer being the type "
     "its views agree on most strongly. Recall is over images, which are views of a few cells: where a type has 4 "
     "cells, one cell moves its share by 25 points."),
    ("F1 and macro-F1", "F1 joins precision and recall in one figure; macro-F1 is its mean over the four types, "
     "so that each type counts alike however many images it has."),
    ("95% interval", "how far the figure could move with other cells like these: the test cells were drawn again "
     "at random, with replacement, many times, and the figure's middle 95% kept. With so few cells it is wide, and "
     "for the figures over images still too narrow: in a simulation of this test set it held the true figure about "
     "85% of the time, not 95%."),
    ("Exact 95% limits", "for the share of cells right (62 of 68, say): each cell is right or wrong, so the limits "
     "follow from counting, as for a coin's tosses, and hold the true share at least 95% of the time. They can be "
     "narrower than the images' interval and still be the surer of the two."),
    ("Calibration error (ECE)", "how far the model's confidence lies from the share it gets right, on average "
     "over the test images (0 is perfect: of the answers given 80%, four in five right)."),
    ("Held-out", "images kept out of training, so that the model is judged on cells it has not seen."),
)
# The same terms where each test image is a cell of its own (a maker's own photos): no views to speak of.
_OWN_CELLS_GLOSSARY = {
    "Accuracy over files": "the share of the test images typed right; here each image is a cell of its own.",
    "Cell-level accuracy": "the share of the test cells typed right; here each image is a cell, so it is the same.",
    "Cells right": "of the test cells of a type, how many the model typed right; here each image is a cell.",
    # The simulation's figure is of the public test set's views (benchmarks/interval_coverage.py), not of these.
    "95% interval": "how far the figure could move with other images like these: the test images were drawn again at "
                    "random, with replacement, many times, and the figure's middle 95% kept. With few images it is "
                    "wide, and an approximation all the same.",
}


def figures_glossary(test: Mapping[str, Any]) -> list[tuple[str, str]]:
    """FIGURES_GLOSSARY for the card's test figures: where its images are no views of fewer cells (each a cell of
    its own, as a maker's own photos may be), its entries that speak of views say so instead."""
    views = shows_views(test)
    return [(term, meaning if views else _OWN_CELLS_GLOSSARY.get(term, meaning)) for term, meaning in FIGURES_GLOSSARY]


MIN_RECORD_FILES = 20  # a reliability bin of fewer test images tells nothing of a confidence (2 images read 0%)
TOO_FEW_RECORD = "Too few of the test images"  # how `confidence_record` begins for such a bin


def confidence_record(test: Mapping[str, Any] | None, confidence: float, label: str | None = None) -> str:
    """How often the test images given about this confidence were right: the card's reliability bin that holds
    it, in a sentence; where the bin holds fewer than MIN_RECORD_FILES test images, that they are too few to
    say; "" where it holds none or the card has no such figures. With the type called (`label`) and a card that
    keeps them (`reliability_by_type`), the bin of that type's calls: pooled, a neutrophil call at 96% read "answers given 93.3-100.0% were right 87.6%", where
    neutrophil calls so sure were right 70% (the monocytes read wrong land there). The bin is found by the
    confidence as the page shows it (one decimal), against the bins' edges as the sentence shows them, so that
    two results both shown as 93.3% get one sentence. Beside a result, what a bare 93.9% does not say: on TEST
    the top bin was right less often than the two below it (a monocyte's 155 views, all read wrong)."""
    by_type = (test or {}).get("reliability_by_type") if isinstance(test, Mapping) else None
    typed = isinstance(by_type, Mapping) and label is not None
    try:
        kept = by_type.get(label) or () if typed else (test or {}).get("reliability") or ()
        bins = [(round(100 * float(b["from"]), 1), round(100 * float(b["to"]), 1), int(b["files"]),
                 float(b["accuracy"]), int(b["cells"]) if "cells" in b else None) for b in kept]
        cells = int((test or {})["n_cells"])
    except (KeyError, TypeError, ValueError, AttributeError):  # a card from another version: no sentence, not a wrong one
        return ""
    shown = float(f"{100 * confidence:.1f}")  # as the page's metric writes it
    answers = f"{cell_type(label).label} answers" if typed else "answers"
    for lo, hi, files, accuracy, of_cells in bins:
        if lo <= shown < hi or (hi >= 100.0 and shown >= lo):  # [from, to), the last closed, as metrics bins
            if files < MIN_RECORD_FILES:  # said, not left blank: a blank read as nothing to say (18 images, 56% right)
                return (f"{TOO_FEW_RECORD} got {answers} at {lo:.1f}{DASH}{hi:.1f}% ({files}) to say how "
                        "often such answers are right.")
            # The cells behind the figure where the card has them: 100% of 338 images read as far stronger than
            # the 6 lymphocytes they are views of.
            behind = (f"{files:,} images, {'views of ' if files > of_cells else 'a cell each, '}{of_cells} "
                      f"cell{'s' if of_cells != 1 else ''}" if of_cells is not None
                      else f"{files:,} images; the test set has {cells} cells")
            return (f"On the test images, {answers} given {lo:.1f}{DASH}{hi:.1f}% were right {100 * accuracy:.1f}% "
                    f"of the time ({behind}, and errors come in whole cells, so this is rough).")
    return ""


def trust_rows(reliability: Sequence[dict[str, float]]) -> list[dict[str, object]]:
    """The card's test-set calibration bins (metrics.reliability) as the page shows them: for each
    range of the model's confidence (%, one decimal so that neighbours do not share an edge), how many
    test images fell in it and the percentage of those it got right."""
    return [{"model's confidence": f"{100 * b['from']:.1f}{DASH}{100 * b['to']:.1f}%", "test images": int(b["files"]),
             "right (%)": round(100 * b["accuracy"], 1), "mean confidence (%)": round(100 * b["confidence"], 1)}
            for b in reliability]


def trust_rows_by_type(by_type: Mapping[str, Sequence[Mapping[str, Any]]] | None) -> list[dict[str, object]]:
    """The card's bins of each type's calls (metrics.reliability_by_type) as the page shows them: for each type
    called and range of confidence, its test images (and the cells they show, where the card has them) and the
    percentage right; [] where the card has none or another version's."""
    rows = []
    try:
        for c, bins in (by_type or {}).items():
            for b in bins:
                rows.append({"type called": cell_type(c).label,  # the range without "%": the table fits a phone's width
                             "model's confidence (%)": f"{100 * b['from']:.1f}{DASH}{100 * b['to']:.1f}",
                             "test images": int(b["files"]), **({"cells": int(b["cells"])} if "cells" in b else {}),
                             "right (%)": round(100 * float(b["accuracy"]), 1)})
    except (KeyError, TypeError, ValueError, AttributeError):
        return []
    return rows


def evaluation_confusion(model_dir: Path) -> object:
    """The test images' confusion matrix from the metrics.json beside the model (which `wbc evaluate` writes
    with confusion.png), or None where there is none to read."""
    try:
        return read_json(model_dir / "metrics.json").get("confusion")
    except (OSError, ValueError, AttributeError):
        return None


def confusion_alt(confusion: object) -> str:
    """The confusion matrix picture's alt text: for each true type, how many test images were read right and
    what the rest were read as; without a 4 x 4 matrix of counts, what the picture is."""
    head = "Confusion matrix of the test images: each true type against the type the model read"
    try:
        m = np.asarray(confusion, dtype=np.int64)
    except (TypeError, ValueError):
        return head
    if m.shape != (len(CLASSES), len(CLASSES)):
        return head
    parts = []
    for i, c in enumerate(CLASSES):
        wrong = ", ".join(f"{m[i, j]} as {cell_type(d).label.lower()}" for j, d in enumerate(CLASSES) if j != i and m[i, j])
        parts.append(f"{cell_type(c).label}: {m[i, i]} of {m[i].sum()} right" + (f" ({wrong})" if wrong else ""))
    return f"{head}. " + "; ".join(parts)


def confusion_rows(confusion: object) -> list[dict[str, object]]:
    """The test images' confusion matrix as a table's rows (a true type each, then how many of its images were
    read as each type), for the page beside its picture, whose figures a phone shows 4 px tall; [] without a
    4 x 4 matrix of counts."""
    try:
        m = np.asarray(confusion, dtype=np.int64)
    except (TypeError, ValueError):
        return []
    if m.shape != (len(CLASSES), len(CLASSES)):
        return []
    return [{"true type": cell_type(c).label, **{f"read as {SHORT_NAMES[d]}": int(m[i, j])
                                                 for j, d in enumerate(CLASSES)}} for i, c in enumerate(CLASSES)]


# A differential's usual short names: a phone's width holds four columns of them (of the full names, 109 px ran past
# a 322 px table, the column of the misread monocytes among them)
SHORT_NAMES = {"EOSINOPHIL": "Eos", "LYMPHOCYTE": "Lymph", "MONOCYTE": "Mono", "NEUTROPHIL": "Neut"}
