"""Plots (matplotlib) and the markdown report, built from the numbers a run or an evaluation wrote."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from wbc.info import CLASSES
from wbc.io import atomic_write_bytes, atomic_write_text, printable
from wbc.metrics import ECE_BINS, calls_right, cells_read_right, macro_scope, per_class_figure
from wbc.predict import UNREADABLE_VERDICT

if TYPE_CHECKING:  # matplotlib loads only when a figure is drawn
    from types import ModuleType

    from matplotlib.figure import Figure


def _pyplot() -> ModuleType:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Figure, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write_bytes(path, buf.getvalue())


def plot_curves(history: list[dict[str, float]], path: str | Path, best_epoch: int | None = None,
                full_px: int | None = None) -> None:
    """Loss and accuracy per epoch, training beside cell-grouped validation; epochs at an input below
    `full_px` (progressive resizing; default: the largest in the history) shaded, and the epoch kept
    as best.pt marked where one was chosen."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    # The training loss is taken on what the network trains on: augmented crops, with mixup and label
    # smoothing where the recipe has them; so it sits above the validation loss.
    a.plot(ep, [h["train_loss"] for h in history], "o-", label="train (augmented crops)")
    has_val = "val_loss" in history[0]  # a run on every cell (--all-cells) has no validation
    full = full_px or max(h.get("input_px", 0) for h in history)
    low = [h["epoch"] for h in history if h.get("input_px", full) < full]
    for ax in (a, b):
        if low:
            px = min(h["input_px"] for h in history if h["epoch"] in low)
            ax.axvspan(min(low) - 0.5, max(low) + 0.5, color="0.9", zorder=0, label=f"{px:.0f} px input" if ax is a else None)
        if best_epoch is not None and has_val:
            ax.axvline(best_epoch, color="0.4", ls="--", lw=1, label="best.pt" if ax is a else None)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if has_val:
        a.plot(ep, [h["val_loss"] for h in history], "o-", label="validation")
        b.plot(ep, [h["val_accuracy"] for h in history], "o-", label="validation, files")
        b.plot(ep, [h["val_cell_accuracy"] for h in history], "s--", label="validation, cells")
        b.plot(ep, [h["val_macro_f1"] for h in history], "^:", label="validation macro-F1")
        b.legend(loc="lower right")
    else:
        b.text(0.5, 0.5, "no validation cells held out", ha="center", va="center", transform=b.transAxes)
    a.set(xlabel="epoch", ylabel="loss", title="Loss")
    a.legend()
    b.set(xlabel="epoch", ylabel="score", title="Accuracy", ylim=(0, 1.01))
    for ax in (a, b):
        ax.grid(alpha=0.3)
    _save(fig, Path(path))


def plot_confusion(cm: list[list[int]], path: str | Path, title: str = "Confusion matrix") -> None:
    """Counts and row-normalised (recall) side by side."""
    plt = _pyplot()
    m = np.asarray(cm, dtype=float)
    norm = m / np.maximum(m.sum(1, keepdims=True), 1)
    names = [c.title() for c in CLASSES]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    for ax, data, sub, fmt in ((axes[0], m, "counts", "{:.0f}"), (axes[1], norm, "row-normalised", "{:.2f}")):
        ax.imshow(data if sub == "counts" else norm, cmap="Blues", vmin=0)
        ax.set(xticks=range(len(names)), yticks=range(len(names)), xlabel="predicted", ylabel="true",
               title=f"{title} ({sub})")
        ax.set_xticklabels(names, rotation=30, ha="right")
        ax.set_yticklabels(names)
        top = data.max() if data.max() > 0 else 1
        for i in range(len(names)):
            for j in range(len(names)):
                ax.text(j, i, fmt.format(data[i, j]), ha="center", va="center",
                        color="white" if data[i, j] > 0.6 * top else "black")
    fig.tight_layout()
    _save(fig, Path(path))


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.2f}%"


def _ci(v: tuple[float, float] | list[float], pct: bool = True) -> str:
    return f"[{_pct(v[0])}, {_pct(v[1])}]" if pct else f"[{v[0]:.3f}, {v[1]:.3f}]"


# evaluate scores the network alone; the figures must not read as those of `wbc predict`'s verdicts.
SCREENING_NOTE = ("Every file is scored as the network reads it. The screening that `wbc predict` and the app "
                  "apply (a file called *not a white blood cell* gets no type) is not applied here, so a file it "
                  "would set aside counts as an error when the network reads it wrong.")


def screening_note(m: dict[str, Any]) -> str:
    """SCREENING_NOTE, and where the screening was run (`evaluate.screening_summary`, a folder of one's own photos):
    what it would do with them, and the accuracy over the files it would give a type."""
    s = m.get("screening")
    if not s:
        return SCREENING_NOTE
    right = s.get("right_by_verdict", {})
    verdicts = ", ".join(f"{n} *{v}*" + (f" ({right[v]} read right)" if v in right else "")
                         for v, n in s["verdicts"].items())
    out = (f"Every file read is scored as the network reads it. Read as `wbc predict` and the app read them, with the "
           f"screening, the {s['files']} {'file gets' if s['files'] == 1 else 'files get'}: {verdicts}. ")
    if s["typed_files"] == s["files"]:
        return out + ("Every file is given a type, so these figures are also those of the types `wbc predict` and the "
                      "app would give.")
    unreadable = s["verdicts"].get(UNREADABLE_VERDICT, 0)  # left out (--skip-bad): in no figure
    n = s["files"] - s["typed_files"] - unreadable  # read, given no type: scored all the same
    said = []
    if n:
        said.append(f"the {n} {'read but ' if unreadable else ''}given no type {'is' if n == 1 else 'are'} scored here "
                    f"all the same (the network read {s['not_typed_right']} of {n} right)")
    if unreadable:
        said.append(f"the {unreadable} *unreadable* {'is' if unreadable == 1 else 'are'} in no figure (--skip-bad)")
    if s["typed_files"]:
        said.append(f"over the {s['typed_files']} given a type, accuracy is {_pct(s['accuracy_typed'])} "
                    f"{_ci(s['accuracy_typed_ci95'])} (exact 95% limits, each file taken for a cell of its own)")
    text = "; ".join(said)
    out += text[0].upper() + text[1:] + ". Given no type:"
    return "\n".join([out, "", *not_typed_list(s["not_typed"])])


NOT_TYPED_LISTED = 20  # files given no type that a report names, and reasons it lists; predictions.csv names every one


def not_typed_list(not_typed: Sequence[dict[str, str]]) -> list[str]:
    """The files given no type (`evaluate.screening_summary`'s) as Markdown list items, one for each verdict and why,
    with how many and the first of NOT_TYPED_LISTED names in all: another laboratory's stain can set aside most of a
    folder for one reason, which a line for each file repeated."""
    reasons: dict[tuple[str, str], list[str]] = {}
    for f in not_typed:
        reasons.setdefault((f["verdict"], f["why"]), []).append(markdown_name(f["file"]))
    lines, named, unnamed_unreadable = [], 0, 0
    for i, ((verdict, why), names) in enumerate(reasons.items()):
        shown = names[:NOT_TYPED_LISTED - named] if i < NOT_TYPED_LISTED else []
        named += len(shown)
        unnamed_unreadable += (len(names) - len(shown)) * (verdict == UNREADABLE_VERDICT)
        files = ", ".join(shown) + (", ..." if len(shown) < len(names) else "")
        if i < NOT_TYPED_LISTED:
            lines.append(f"- {len(names)} *{verdict}*, {why}" + (f". File{'s' if len(names) > 1 else ''}: {files}"
                                                               if shown else ""))
    if more := len(not_typed) - named:
        # predictions.csv has no row for a file left out (--skip-bad), and the report's *left out* line names 20
        lines.append(f"- {more} not named here: predictions.csv's *verdict* column names each file read"
                     + (", metrics.json's *skipped_files* each unreadable one" if unnamed_unreadable else ""))
    return lines


MIN_CELLS_FOR_INTERVALS = 10  # below this a percentile bootstrap over cells is too narrow to mean much


def interval_caveat(m: dict[str, Any]) -> str:
    """What the intervals are worth where the cells are few, or where every file is its own cell (a
    folder of your own images: the views of one cell cannot be told apart, so the resampling is of files)."""
    out = ""
    if m["n_cells"] == m["n_files"]:
        out += (" Here every file is its own cell (files outside the data set cannot be matched to their "
                "cells), so the resampling is of files: if several files show one cell, the intervals are too narrow.")
    if m["n_cells"] < MIN_CELLS_FOR_INTERVALS:
        out += f" With {m['n_cells']} cell(s), below {MIN_CELLS_FOR_INTERVALS}, the intervals mean little."
    return out


# What the brackets are, as a simulation of TEST's layout measured them (benchmarks/interval_coverage.py).
INTERVALS = ("The figures over files have 95% percentile bootstrap intervals resampling whole cells (views of one cell "
             "are not independent); with a few dozen cells of very unequal views, and errors that come as whole cells, "
             "such intervals are approximate and cover the truth less often than 95%, mostly by a lower end too high "
             "(benchmarks/interval_coverage.py). The cells right have the exact binomial limits of k cells of n.")


def metrics_table(m: dict[str, Any]) -> str:
    """The headline figures as a markdown table."""
    rows = [
        ("Accuracy over files", f"{_pct(m['accuracy'])} {_ci(m['accuracy_ci95'])}", f"{m['n_files']} files"),
        ("Cell-level accuracy", f"{_pct(m['cell_accuracy'])} {_ci(m['cell_accuracy_ci95'])}",
         f"{m['cells_correct']} of {m['n_cells']} cells; a cell's verdict is the class of its views' mean probabilities"),
    ]
    if w := m.get("without_cells_in_train"):
        n = len(w["cells_dropped"])
        rows.append((f"Without the {n} cell{'s' if n != 1 else ''} also in TRAIN",
                     f"{_pct(w['accuracy'])} {_ci(w['accuracy_ci95'])} over files; {w['cells_correct']} of "
                     f"{w['n_cells']} cells", f"{w['files_dropped']} files of {', '.join(w['cells_dropped'])}, which the "
                     "data set put in TRAIN as well: a model trained on all of TRAIN has seen these cells"))
    rows += [
        ("Macro-F1 over files", f"{m['macro_f1']:.4f} {_ci(m['macro_f1_ci95'], False)}", macro_scope(m)),
        ("Cell-level macro-F1", f"{m['cell_macro_f1']:.4f}", "; ".join(filter(None, ["no interval computed", macro_scope(m)]))),
        ("Expected calibration error", f"{m['ece']:.4f}" + (f" {_ci(m['ece_ci95'], False)}" if "ece_ci95" in m else ""),
         f"{ECE_BINS} bins" + ("; the bracket is the spread of the resampled ECEs, not a 95% interval: they lean high "
                               "(a resampled ECE cannot fall below 0), so its lower end is no floor"
                      if "ece_ci95" in m else "")),
        ("Accuracy at 90% coverage", f"{_pct(m['accuracy_at_90_coverage'])}",
         "these files' own least confident 10% set aside (not the card's review threshold)"),
    ]
    if m.get("review"):  # the card's review threshold: how much it marks, and how many errors it catches
        r = m["review"]
        cells = (f"{r['cells_with_errors_marked']} of the {r['cells_with_errors']} cells with a wrong file have one "
                 "marked; " if "cells_with_errors" in r else "")
        rows += [
            ("Marked *needs review*", _pct(r["flagged_share"]), f"confidence below {r['threshold']:.3f}"),
            ("Accuracy of those marked / of the rest", f"{_pct(r['accuracy_flagged'])} / {_pct(r['accuracy_rest'])}", ""),
            ("Wrong files marked *needs review*", _pct(r["errors_flagged_share"]),
             f"{cells}errors come in whole cells, and a cell read wrong in every view with confidence is not marked"),
        ]
    out = ["| metric | value [interval over cells: see above] | note |", "|---|---|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    by_cell = all("cells" in v for v in m["per_class"].values())  # metrics.json of wbc 0.20 and before: none
    by_call = all("cells_called" in v for v in m["per_class"].values())  # wbc 0.27 and before: none
    out += ["", "| class | precision | recall | F1 | files |" + (" cells read right (95% limits) |" if by_cell else "")
            + (" right of the cells read as it (95% limits) |" if by_call else ""),
            "|---|---|---|---|---|" + ("---|" if by_cell else "") + ("---|" if by_call else "")]
    for c, v in m["per_class"].items():
        out.append(f"| {c.title()} | {' | '.join(per_class_figure(v[k]) for k in ('precision', 'recall', 'f1'))} "
                   f"| {v['support']} |" + (f" {cells_read_right(v)} |" if by_cell else "")
                   + (f" {calls_right(v)} |" if by_call else ""))
    if by_cell and any(v["support"] > v["cells"] for v in m["per_class"].values()):  # views of cells, not a file each
        out += ["", "Precision, recall and F1 are over files, and a type's files are views of a few cells: its "
                "recall rests on the cells in the column *cells read right* (a cell read right when its views' mean "
                "probabilities are highest for its type), whose exact binomial limits show how wide a few cells leave it"
                + (", and its precision on the cells read as it, in the last column." if by_call else ".")]
    if m.get("reliability"):
        out += ["", "Calibration, bin by bin (the ECE's bins that hold files): where accuracy is above the mean "
                "confidence the model is underconfident, where below it overconfident.", "",
                "| confidence | files | accuracy | mean confidence |", "|---|---|---|---|"]
        out += [f"| {b['from']:.2f}-{b['to']:.2f} | {b['files']} | {_pct(b['accuracy'])} | {_pct(b['confidence'])} |"
                for b in m["reliability"]]
    if m.get("reliability_by_type"):
        out += ["", "The same bins for the files read as each type: how often a call of that type was right at "
                "each confidence (a type's errors land in the calls of another).", "",
                "| type called | confidence | files | cells | accuracy | mean confidence |", "|---|---|---|---|---|---|"]
        out += [f"| {c.title()} | {b['from']:.2f}-{b['to']:.2f} | {b['files']} | {b.get('cells', '')} | "
                f"{_pct(b['accuracy'])} | {_pct(b['confidence'])} |" for c, bins in m["reliability_by_type"].items()
                for b in bins]
    return "\n".join(out)


def markdown_name(name: str) -> str:
    """A file's name as text in report.md, shown as it is: a control character escaped (a newline in a name ended its
    list item) and the marks Markdown acts on backslash-escaped (a name "[x](url) *b*.jpg" became a link and italics);
    "/" and "." are left, so a plain name reads the same in the raw file."""
    return re.sub(r"([\\`*_\[\]<>|#~!{}])", r"\\\1", printable(name))


def write_report(out: str | Path, m: dict[str, Any], title: str, meta: dict[str, str], report_text: str) -> Path:
    """report.md with the figures, the classification report and the embedded confusion plots."""
    out = Path(out)
    lines = [f"# {title}", ""]
    lines += [f"- **{k}**: {v}" for k, v in meta.items()]
    lines += ["", INTERVALS + interval_caveat(m), "", screening_note(m), "", metrics_table(m), "",
              "## Confusion matrix (files)", "", "![confusion matrix](confusion.png)", "",
              "## Confusion matrix (cells, views pooled)", "", "![cell confusion matrix](confusion_cells.png)", "",
              "## Classification report (files)", "", "```", report_text.rstrip(), "```", ""]
    atomic_write_text(out / "report.md", "\n".join(lines))
    return out / "report.md"
