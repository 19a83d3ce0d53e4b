"""The review table: its rows and reviewed labels, its CSV download, and a review restored from that download."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from wbc.app.analysis import CellResult
from wbc.app.markup import markdown_literal
from wbc.differential import LAB_ORDER, NRBC, OTHER_WHITE, REVIEWED_TYPES
from wbc.info import CLASSES, cell_type
from wbc.io import spreadsheet_text, unquoted
from wbc.predict import NEEDS_REVIEW_VERDICT

EXCLUDED = "Excluded"  # the reviewed label of an image that is not counted
# The review table's tick for a row whose type a reviewer has checked by eye and kept: a *needs review* row ticked
# no longer counts as unchecked. As a downloaded table holds it, "yes"; read back in any of TICKED's words.
CHECKED = "checked"
TICKED = frozenset({"yes", "y", "true", "1", "x", "\u2713"})
# What the review table's "reviewed" column may hold: the types as the page names them elsewhere
# ("Eosinophil"), the cells a reviewer may name that the model does not know (a basophil, another white cell, a
# nucleated red cell: `differential.REVIEWED_TYPES`), then EXCLUDED; `reviewed_classes` reads them back as the
# differential's names.
REVIEW_LABELS = (*(cell_type(c).label for c in LAB_ORDER), *REVIEWED_TYPES.values(), EXCLUDED)  # as the differential's rows
_REVIEWED_NAMES = {**{cell_type(c).label: c for c in CLASSES}, **{v: k for k, v in REVIEWED_TYPES.items()}}
# The reviewed labels a differential counts as white cells: all but a nucleated red cell's and EXCLUDED.
COUNTED_LABELS = frozenset(REVIEW_LABELS) - {REVIEWED_TYPES[NRBC], EXCLUDED}


def reviewed_classes(labels: Sequence[str]) -> list[str]:
    """The review table's labels as the differential's names (CLASSES, then `differential.REVIEWED_TYPES`'
    keys); EXCLUDED (or anything else) as is."""
    return [_REVIEWED_NAMES.get(lab, lab) for lab in labels]


# The review table's columns as the page shows them (main.py says why in this order)
REVIEW_SHOWN = ("reviewed", "file", CHECKED, "predicted", "confidence (%)", "verdict", "cell")
REVIEW_ROW_PX, REVIEW_HEADER_PX = 66, 38  # the review table's rows (its pictures; over 64 px, its text wraps) and header, px


def review_table_height(rows: int) -> int:
    """The review table's height in px: whole rows, up to 8 in view (the default 400 px ended on half a row; 10
    rows of REVIEW_ROW_PX took all of a laptop's 800 px screen)."""
    return REVIEW_HEADER_PX + REVIEW_ROW_PX * min(max(rows, 1), 8) + 2  # + its border


def review_rows(results: Sequence[CellResult], keys: Sequence[str] = (),
                corrections: Mapping[str, str] | None = None,
                checks: Mapping[str, bool] | None = None) -> list[dict[str, object]]:
    """One row per usable image for the review table; images that are not white cells start excluded,
    with no type or confidence (the network's forced reading means nothing there), and so do those whose
    crop may be on a piece of a cell beside a much larger one (`other_larger`). With `keys` (each
    result's `bytes_key`), a row also carries its "key" and starts from the label `corrections` holds
    for it, and ticked CHECKED where `checks` says so: a reviewer's work stays with its image when the
    uploads change."""
    corrections, checks = corrections or {}, checks or {}
    rows = []
    for i, r in enumerate(results):
        p = r.prediction
        if p is None:
            continue
        row: dict[str, object] = {
            "cell": r.thumbnail or None,
            "file": r.name,
            "predicted": cell_type(p.label).label if p.typed else "",
            "confidence (%)": round(100 * p.confidence, 2) if p.typed else None,  # as the page shows it
            "verdict": p.verdict
            + (f": {p.not_wbc}" if p.not_wbc else "") + (" (overexposed)" if p.overexposed else "")
            # The runner-up where the type needs review, as `wbc predict` gives it: what to check it against.
            + (f" (or {cell_type(p.top2[1][0]).label.lower()} {100 * p.top2[1][1]:.1f}%)"
               if p.typed and p.verdict == NEEDS_REVIEW_VERDICT else "")
            + (" (crop on a piece? a larger cell uncounted)" if p.other_larger
               else " (another cell uncounted)" if p.other_cell else ""),
            # A typed piece of a cell is not a cell to count; the larger cell beside it is the user's to crop.
            "reviewed": cell_type(p.label).label if p.typed else EXCLUDED,
            CHECKED: False,
        }
        if keys:
            row["key"] = keys[i]
            if corrections.get(keys[i]) in REVIEW_LABELS:
                row["reviewed"] = corrections[keys[i]]
            row[CHECKED] = bool(checks.get(keys[i], False))
        rows.append(row)
    return rows


def ticked(v: object) -> bool:
    """Whether a CHECKED cell is ticked: True as the table hands it back; NaN (a row the table added blank) is not."""
    return v is True or (isinstance(v, (bool, np.bool_)) and bool(v))


REVIEW_CSV = "wbc-review.csv"  # the review table's download, which `restored_labels` reads back
RESTORE_KEY = "restore"  # the uploader that takes it
REVIEW_COLUMNS = ("file", "predicted", "confidence (%)", "verdict", "reviewed", CHECKED)
IMAGE_ID = "sha256"  # the download's column that names each image by its bytes (`bytes_key`)


def spreadsheet_csv(fieldnames: Sequence[str], rows: Sequence[Mapping[str, object]]) -> bytes:
    """Rows as CSV for a spreadsheet: UTF-8 with a byte-order mark (Excel reads other names garbled without
    it), a blank for a missing value or NaN (the edited table hands a blank back as NaN), and a text that a
    spreadsheet would run as a formula (wbc.io.FORMULA_STARTS first), or that starts with ' itself, quoted with '
    (a lone "-", the differential's blank status, is no formula)."""
    def cell(v: object) -> object:
        if v is None or isinstance(v, float) and math.isnan(v):
            return ""
        return spreadsheet_text(v) if isinstance(v, str) and v != "-" else v

    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=fieldnames)
    w.writeheader()
    for r in rows:
        w.writerow({k: cell(r.get(k)) for k in fieldnames})
    return out.getvalue().encode("utf-8-sig")


def table_csv(rows: Sequence[Mapping[str, object]], unusable_files: Sequence[tuple[str, str]] = (),
              repeats: Sequence[tuple[str, str]] = (), made_with: Sequence[str] = ()) -> bytes:
    """The review table as CSV for a spreadsheet: predicted and reviewed label side by side and, last, the
    image's sha256 (a row's "key": what `restored_labels` finds it again by, whatever its name), then the
    files that could not be used and a line for each upload left out as a repeat, so that every upload
    has a line; last, `made_with` (what made the predictions: the model, its threshold, the date), a line each
    in the file column, with no type for a restore to read."""
    # the message names the file, as the row does already
    extra = [{"file": name, "verdict": f"unreadable: {why.removeprefix(f'{name}: ')}"} for name, why in unusable_files]
    extra += [{"file": name, "verdict": f"the same image as {first}: left out as a repeat"} for name, first in repeats]
    extra += [{"file": line} for line in made_with]
    return spreadsheet_csv([*REVIEW_COLUMNS, IMAGE_ID], [*({**r, CHECKED: "yes" if ticked(r.get(CHECKED)) else "",
                                                             IMAGE_ID: r.get("key")} for r in rows), *extra])


@dataclass(frozen=True)
class Restored:
    """A downloaded review table's reviewed labels: by image sha256 where a row has one (this version's
    downloads), else by file name (an older table's rows, or one added by hand); and the rows whose reviewed column holds something else (a type
    mistyped in a spreadsheet), as (file, what it holds); and the images two rows gave two types (the last
    row's taken), as (the sha256 or name they are found by, file)."""
    by_key: dict[str, str]
    by_name: dict[str, str]
    unknown: tuple[tuple[str, str], ...] = ()
    conflicts: tuple[tuple[str, str], ...] = ()
    checked: frozenset[str] = frozenset()  # the sha256s or names of the rows ticked CHECKED

    def __len__(self) -> int:
        return len(self.by_key) + len(self.by_name)

    def label(self, key: str, name: str) -> str | None:
        """The reviewed label the table gives the image with this sha256 and shown name, if any."""
        return self.by_key.get(key) or self.by_name.get(name)

    def is_checked(self, key: str, name: str) -> bool:
        """Whether the table's row for the image with this sha256 (or, without one, this name) is ticked CHECKED."""
        return (key if key in self.by_key else name) in self.checked


# A laboratory's short names for the types, as a reviewer may type them into the downloaded table's reviewed column
# (its IG and NRBC kept the model's type, and a nucleated red cell was counted as a lymphocyte).
ABBREVIATIONS = {
    **dict.fromkeys(("eos", "eo"), "Eosinophil"), **dict.fromkeys(("lymph", "lym", "ly"), "Lymphocyte"),
    **dict.fromkeys(("mono", "mo"), "Monocyte"), **dict.fromkeys(("neut", "ne", "seg", "band"), "Neutrophil"),
    **dict.fromkeys(("baso", "ba"), "Basophil"),
    # Not "meta" (a metarubricyte is a nucleated red cell) nor "myelo" (a myeloblast is a blast): the whole word.
    **dict.fromkeys(("ig", "metamyelocyte", "myelocyte", "promyelocyte"), "Immature granulocyte"),
    "nrbc": "Nucleated red cell",
}


def restored_labels(data: bytes, name: str) -> Restored:
    """The reviewed labels of a review table this page downloaded (`table_csv`), so that a review survives
    a reload: the images uploaded again, then the table. Read as a spreadsheet may have saved it back too:
    without the byte-order mark, in Windows' encoding, separated by ; or tabs, the types in any case. Rows
    whose reviewed column holds no label of REVIEW_LABELS (a repeat, an unreadable file) give none.
    ValueError naming the file where it is not such a table, or gives no label."""
    try:
        # Excel's "Unicode text" is UTF-16 with its byte-order mark
        text = data.decode("utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")  # Excel's plain "CSV" on Windows
    # Any line ending: Excel's "Macintosh Comma Separated" ends lines with a lone CR, which csv read as one line.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # The delimiter is the header's (its column names hold none of them). csv.Sniffer took the ' that quotes
    # formula-like names (`spreadsheet_text`) for the quote character and merged rows (corrections lost under
    # a note of success), and found no delimiter in some ;-separated re-saves.
    header = text.split("\n", 1)[0]
    reader = csv.DictReader(io.StringIO(text), delimiter=max(",;\t", key=header.count))
    give = f"give the {REVIEW_CSV} that the Download the table button saved"
    not_ours = f"{name}: not a table this page downloaded; {give}"
    labels = {**ABBREVIATIONS, **{lab.lower(): lab for lab in REVIEW_LABELS}}
    by_key: dict[str, str] = {}
    by_name: dict[str, str] = {}
    unknown: list[tuple[str, str]] = []
    conflicts: dict[str, str] = {}
    checked: set[str] = set()
    try:  # a file of another kind (binary, a photo renamed .csv) can stop the reader anywhere
        if reader.fieldnames:  # headers as a spreadsheet may have retyped them ("File", " Reviewed")
            reader.fieldnames = [f.strip().lower() for f in reader.fieldnames]
        fields = set(reader.fieldnames or ())
        if missing := [c for c in ("file", "reviewed") if c not in fields]:
            # `wbc predict`'s table has a file column: named so, the message read as false.
            predict_like = {"file", "class", "verdict"} <= fields
            raise ValueError(f"{name}: not a table this page downloaded (it has no {' and no '.join(missing)} "
                             "column" + ("; it looks like wbc predict's table, which holds the model's types, not "
                                         "a reviewer's" if predict_like else "") + f"); {give}")
        for r in reader:
            held, file = (r.get("reviewed") or "").strip(), unquoted(r.get("file") or "")
            # A plural as a reviewer may type it ("segs", "Blasts"): a label with its final s taken off
            label = labels.get(held.lower()) or labels.get(held.lower().removesuffix("s"))
            if label is None:
                if held:  # blank: a repeat's or an unreadable file's line, which has no type to give
                    unknown.append((file, held))
                continue
            store, key = (by_key, r[IMAGE_ID].strip()) if r.get(IMAGE_ID) else (by_name, file)
            if store.get(key, label) != label:
                conflicts[key] = file
            store[key] = label
            # "yes" as downloaded; a spreadsheet may have retyped it, or ticked it in its own words
            if (r.get(CHECKED) or "").strip().lower() in TICKED:
                checked.add(key)
            else:
                checked.discard(key)
    except csv.Error as e:
        raise ValueError(f"{not_ours} ({e})") from e
    if not by_key and not by_name:
        raise ValueError(f"{name}: no row gives a type in its reviewed column ({', '.join(REVIEW_LABELS)})")
    return Restored(by_key=by_key, by_name=by_name, unknown=tuple(unknown),
                    conflicts=tuple(conflicts.items()), checked=frozenset(checked))


def restore_note(name: str, restored: int, corrected: int, missed: int, unknown: Sequence[tuple[str, str]],
                 conflicts: Sequence[str] = (), excluded: int = 0, ticked: int = 0) -> tuple[str, str]:
    """(kind, text) of what a restore did: how many images took the table's type (and how many of those
    differ from the model's: `corrected` to another type, `excluded` by the reviewer; `ticked` checked), how many
    of its rows name no image shown, the rows whose type it could not read, named, which keep the model's type,
    and the images two rows gave two types. Markdown, its names escaped."""
    name = markdown_literal(name)
    if not restored:
        text = f"No row of {name} names an image shown here: upload the images it was made from."
    else:
        # Each kind of change in words (the exclusions were counted as types other than the model's, the ticks unsaid)
        done = [f"{k} {what}" for k, what in ((corrected, "given a type other than the model's"),
                                              (excluded, "excluded"), (ticked, "ticked checked")) if k]
        text = f"Restored the review of {restored} image(s) from {name}: {', '.join(done) or 'each as the model read it'}."
        if missed > 0:
            text += f" {missed} of its rows name no image shown here: upload those images to restore them too."
    if unknown:
        shown = "; ".join(markdown_literal(f"{f}: {v!r}") for f, v in unknown[:5]) + ("; ..." if len(unknown) > 5 else "")
        text += (f" {len(unknown)} row(s) hold in their reviewed column no type this page knows "
                 f"({', '.join(REVIEW_LABELS)}), and keep the model's type: {shown}")
    if conflicts:
        shown = ", ".join(map(markdown_literal, conflicts[:5])) + (", ..." if len(conflicts) > 5 else "")
        text += (f" {len(conflicts)} image(s) have two rows of different types in the table, and took the last "
                 f"row's: {shown}; check them")
    return ("success" if restored and not unknown and not conflicts else "warning"), text


def restored_other_note(files: Sequence[str]) -> str:
    """What to do about `files`, restored as Other white cell and still so, unticked: before wbc 0.24 that label held
    blasts and immature granulocytes too, and a table saved then cannot be told from one saved since ("" for none).
    Markdown, the names escaped."""
    if not files:
        return ""
    shown = ", ".join(map(markdown_literal, files[:5])) + (", ..." if len(files) > 5 else "")
    return (f"{len(files)} image(s) restored as {REVIEWED_TYPES[OTHER_WHITE]} and not ticked *checked*: a table saved "
            "before wbc 0.24 put blasts and immature granulocytes there too, which now have rows of their own; check "
            f"them: {shown}")
