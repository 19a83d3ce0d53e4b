"""The Streamlit page: upload cells, see type, confidence, why, and a differential count.

Thin on purpose: every decision lives in plain functions in the wbc.app modules beside it. Start it with `wbc app`.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from wbc.app import analysis, images, layout, markup, model_card, review_table, tally, words
from wbc.differential import (
    IMAGES_AS_CELLS, NRBC, OTHER_WHITE, REVIEWED_TYPES, differential_notes, findings_note, misread_figures, nrbc_note)
from wbc.errors import WbcError
from wbc.info import CLASSES, IMAGE_SUFFIXES, cell_type
from wbc.io import bytes_key
from wbc.card import weak_model_note
from wbc.predict import CROP_EACH, Predictor
from wbc.white_balance import OVEREXPOSED_SHARE

st.set_page_config(page_title="wbc - white blood cell classifier", page_icon="🩸", layout="centered")
# The review table's own "Download as CSV" (Streamlit has no option to turn it off) would write it without
# review_table.table_csv's rows and quoting: the page's button is its download.
st.html(f"<style>{layout.HIDE_GRID_DOWNLOAD_CSS}\n{layout.PHONE_RESULT_CSS}\n{layout.TOOLBAR_ROOM_CSS}\n"
        f"{layout.RESULT_HEADINGS_CSS}\n{layout.CAPTION_CONTRAST_CSS}\n{layout.DIFFERENTIAL_CSS}\n"
        f"{layout.PAGES_ANCHOR_CSS}\n{layout.FOCUS_CSS}</style>")


@st.cache_resource(show_spinner="Loading the model...")
def load_predictor() -> Predictor:
    """One ONNX Runtime session for every visitor (WBC_MODEL, else the shipped model)."""
    return Predictor()


@st.cache_data(max_entries=analysis.CACHED_RESULTS, ttl=analysis.CACHED_FOR_S, show_spinner=False)
def analyse_one(_predictor: Predictor, model_key: str, name: str, data: bytes) -> analysis.CellResult:
    """One upload's analysis, kept across reruns: editing the review table reruns the page, and adding or
    removing a photo changes the set, neither of which should decode and classify the other images again
    (keyed by the set, 15 phone photos took 33 s for each one added). Keyed by the model and its card
    (`model_key`: its review threshold and views decide a result too), the name and the bytes."""
    return analysis.analyse_uploads(_predictor, [(name, data)])[0]


def analyse(predictor: Predictor, uploads: list[tuple[str, bytes]]) -> list[analysis.CellResult]:
    """Every upload's analysis, each from the cache where it is there; a count of those done is shown once
    they take a while (not on a rerun, where all come from the cache)."""
    results: list[analysis.CellResult] = []
    start, bar = time.monotonic(), None
    model_key = bytes_key(json.dumps(predictor.card, sort_keys=True).encode())
    for i, (name, data) in enumerate(uploads):
        if bar is None and len(uploads) > 1 and time.monotonic() - start > analysis.PROGRESS_AFTER_S:
            bar = st.progress(0.0)
        if bar is not None:
            bar.progress(i / len(uploads), text=f"Analysing image {i + 1} of {len(uploads)}...")
        results.append(analyse_one(predictor, model_key, name, data))
    if bar is not None:
        bar.empty()
    return results


def show_test_figures(test: dict | None, public: bool) -> None:
    """The card's TEST figures: headline, per class, and how far to trust a confidence."""
    if not test:
        st.markdown(model_card.NO_TEST_FIGURES)
        return
    st.markdown(model_card.test_summary(test, public))
    if caution := test.get("caution"):  # the figures' own warning (TEST copied from TRAIN), as the report gives it
        st.warning(f"Caution: {markup.markdown_literal(str(caution))}.")
    with st.expander("What these figures mean"):
        st.markdown("\n".join(f"- **{term}**: {meaning}" for term, meaning in model_card.figures_glossary(test)))
    st.dataframe(pd.DataFrame(model_card.per_class_rows(test["per_class"])), hide_index=True, width="stretch",
                 column_config={k: st.column_config.NumberColumn(format="%.3f") for k in ("precision", "recall", "f1")})
    if balanced := model_card.balanced_note(test["per_class"]):
        st.caption(balanced)
    if called := model_card.called_note(test["per_class"]):
        st.caption(called)
    if note := model_card.review_note(test.get("review")):
        st.markdown(note)
    if test.get("reliability"):
        st.markdown("**How far to trust a confidence.** The test images grouped by the model's confidence, and "
                    "the share of each group it got right: where *right* is above the confidence the model was "
                    "too modest, where below too sure."
                    + (f" The images show only {test['n_cells']} cells, so a group of a few dozen images may be one or "
                       "two cells." if model_card.shows_views(test) else ""))
        # Short labels: the data's own made the table 419 px wide, and a phone's 356 px cut off the last column.
        one_decimal = {"format": "%.1f"}
        st.dataframe(pd.DataFrame(model_card.trust_rows(test["reliability"])), hide_index=True, width="stretch",
                     column_config={"model's confidence": "confidence", "test images": "images",
                                    "right (%)": st.column_config.NumberColumn(**one_decimal),
                                    "mean confidence (%)": st.column_config.NumberColumn("mean conf. (%)", **one_decimal)})
        if by_type := model_card.trust_rows_by_type(test.get("reliability_by_type")):
            # What a result's caption gives: its type's calls at its confidence (a neutrophil call at 96% was right
            # 70% of the time, where all calls so sure were right 88%). Not in an expander: there a phone's 322 px
            # cut its last column.
            st.markdown("**The same, by the type the model called**, and how many cells those images show: a type's "
                        "errors land in the calls of another, so its calls can be right less often than all calls.")
            st.dataframe(pd.DataFrame(by_type), hide_index=True, width="stretch",
                         column_config={"type called": "type", "model's confidence (%)": "conf. (%)",
                                        "test images": "images", "right (%)": st.column_config.NumberColumn(**one_decimal)})


@st.fragment
def review_section(results: list[analysis.CellResult], keys: list[str], bad: list[tuple[str, str]],
                   repeats: list[tuple[str, str]]) -> None:
    """The review table, the differential, their downloads and the restore of a downloaded review. A
    fragment: a correction reruns this alone, not the page of every image above it (seconds for a few
    hundred images)."""
    # A reviewer's corrections, by image: the table is a new widget whenever its rows change (an upload
    # added or removed), and would otherwise start again from the predictions.
    corrections: dict[str, str] = st.session_state.setdefault("corrections", {})
    checks: dict[str, bool] = st.session_state.setdefault("checks", {})  # the rows ticked checked, by image
    rows = review_table.review_rows(results, keys, corrections, checks)
    shown = tuple((r["key"], r["file"]) for r in rows)  # an image shown under another name is a new row too
    restored = restore_review(rows, corrections, checks)
    if st.session_state.get("review_rows", (None,))[0] != shown or restored:
        # Rebuilt only when the images change or a downloaded table restores a review: the same rows keep
        # the same widget and its edits, and new rows make a new widget that starts from them.
        st.session_state["review_rows"] = (shown, review_table.review_rows(results, keys, corrections, checks))
    if restored:  # new values in the same rows keep the widget, and its edits would stand over them
        st.session_state["review_generation"] = st.session_state.get("review_generation", 0) + 1
    generation = st.session_state.get("review_generation", 0)
    if not rows:
        return
    several = len(rows) > 1  # one image is no differential: its table and download stay
    st.divider()
    st.header("Differential count" if several else "Review", anchor="differential-count")
    st.caption("Correct any prediction in the *reviewed* column" + (
        f"; the counts follow. Basophil, Blast, Immature granulocyte and Other white cell (another abnormal cell) are "
        f"counted in the total in rows of their own, Nucleated red cell per 100 white cells outside it, and {review_table.EXCLUDED} "
        "leaves an image out of the count (platelets, no white cell, or a smudge cell; note smudge cells in the report, "
        "and where most are lymphocytes, as in chronic lymphocytic leukaemia, count them as lymphocytes or make an "
        "albumin film)." if several else "."))
    if bad:
        st.warning(f"{len(bad)} file(s) could not be used and are not in the table or the count: "
                   + "; ".join(markup.markdown_literal(why) for _, why in bad))
    if note := st.session_state.get("restored_note"):  # above the table it changed
        getattr(st, note[0])(note[1])
    edited = st.data_editor(
        pd.DataFrame(st.session_state["review_rows"][1]).set_index("key"),
        column_config={
            "cell": st.column_config.ImageColumn("cell", width=62),
            "reviewed": st.column_config.SelectboxColumn(
                "reviewed", options=list(review_table.REVIEW_LABELS), required=True),
            review_table.CHECKED: st.column_config.CheckboxColumn(  # a word: a screen reader read "✓" as the column's name
                "checked", width=80, help="Tick once you have checked the type by eye and agree: a row marked *needs "
                                    "review* then no longer counts as unchecked"),
            # Two decimals: a row needing review at 66.55% read 66.6 beside a threshold of 66.58%
            "confidence (%)": st.column_config.NumberColumn("conf. (%)", format="%.2f", width=76),
            # Widths set, so that the table fits a desktop's width whole, its picture last (at 858 px it ran 156 px
            # past the page's 702): rows taller than 64 px wrap the text, the verdict's runner-up ("needs review
            # (or eosinophil 31.0%)") on two lines and a camera's long name on two or three.
            "file": st.column_config.TextColumn(width=160),
            "verdict": st.column_config.TextColumn(width=128),
        },
        disabled=["cell", "file", "predicted", "confidence (%)", "verdict"],
        # The one column to edit first, then the file's name: on a phone the rest scroll out of sight (with the
        # name first, a camera's long names, 47 characters, took the screen's width and hid it; a narrower name
        # column cut the names' ends, which tell them apart). The cell's picture last: a screen reader reads it as
        # its data URL, thousands of characters, which stood before the row's verdict where it came third.
        column_order=review_table.REVIEW_SHOWN,
        row_height=review_table.REVIEW_ROW_PX,  # the cell's picture at a size to tell a lobed nucleus from a round one
        height=review_table.review_table_height(len(rows)),
        hide_index=True,
        placeholder="—",  # an untyped row's blank confidence; Streamlit would show "None"
        key=layout.REVIEW_KEY if not generation else f"{layout.REVIEW_KEY}-{generation}",
    )
    corrections.update(zip(edited.index, edited["reviewed"]))
    checks.update(zip(edited.index, map(review_table.ticked, edited[review_table.CHECKED])))
    # After the table's edits and ticks are taken (a row corrected since the restore is no longer to check): the rows a
    # restored table calls Other white cell, still so and unticked.
    restored_as = (st.session_state.get("restored") or (None, {}))[1]
    if other := review_table.restored_other_note(
            [str(f) for k, f in zip(edited.index, edited["file"])
             if restored_as.get(k) == corrections.get(k) == REVIEWED_TYPES[OTHER_WHITE] and not checks.get(k)]):
        st.warning(other)
    records = edited.to_dict("records")
    labels = edited["reviewed"].tolist()
    names = review_table.reviewed_classes(labels)  # as the differential reads them
    diff = tally.reviewed_differential(names, records)
    n = sum(1 for lab in labels if lab in review_table.COUNTED_LABELS)
    if several and n:
        # In a keyed container, which layout.DIFFERENTIAL_CSS and the browser tests find it by.
        # A plain HTML table: it wraps to a phone's width (a data grid of six columns ran 80 px past 356), and
        # a screen reader reads it as a table. Short labels and statuses keep it to a few lines there.
        # The type as each row's header (th scope="row"): a screen reader names the row's type in every cell.
        st.container(key=layout.DIFFERENTIAL_KEY).table(
            pd.DataFrame(tally.differential_shown(diff)).set_index("type").style.format({"percent": "{:.1f}"}))
    if found := findings_note(diff):  # under the table; one image is no differential, but a blast is a finding
        st.error(found)
    if several:  # with nothing counted, the note alone: a table of zeros and its download would be no count
        # Point by point: as one paragraph it ran 12 lines of small print on a desktop, 23 on a phone.
        if nrbc := nrbc_note(names, n):
            st.caption(nrbc)
        first, *rest = differential_notes(n, IMAGES_AS_CELLS, misread_figures(predictor.card),
                                                reviewed=True)
        st.caption("\n".join([first, "", *(f"- {point}" for point in rest)]))
        if unchecked := tally.unchecked_note(records):
            st.warning(unchecked)
        if provisional := tally.provisional_note(records):
            st.info(provisional)
        if uncounted := tally.uncounted_note(results):
            st.warning(uncounted)
    made_with = tally.made_with(predictor.card, predictor.review_threshold,
                                datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    st.download_button("Download the table (CSV)",
                       review_table.table_csv(edited.reset_index().to_dict("records"), bad, repeats, made_with),
                       file_name=review_table.REVIEW_CSV, mime="text/csv")
    if several and n:
        out = [r for r in records if r["reviewed"] == review_table.EXCLUDED]
        st.download_button("Download the differential (CSV)", tally.differential_csv(
                               diff, set_aside=sum(1 for r in out if not r["predicted"]),
                               excluded=sum(1 for r in out if r["predicted"]), unreadable=len(bad), repeats=len(repeats),
                               unchecked=tally.unchecked_count(records), not_checked=tally.unchecked_any_count(records),
                               nrbc=names.count(NRBC), made_with=made_with),
                           file_name="wbc-differential.csv", mime="text/csv")
    # The page keeps the uploads and corrections only while it is open: a reload starts afresh.
    st.caption("Your corrections live in this page only: download the table before you reload or close it. "
               "After a reload, upload the same images, then that table here, and they come back.")
    st.file_uploader(f"Restore a review from a downloaded table ({review_table.REVIEW_CSV})", type=["csv"],
                     key=review_table.RESTORE_KEY)


def restore_review(rows: list[dict[str, object]], corrections: dict[str, str], checks: dict[str, bool]) -> bool:
    """Take the reviewed labels of a table given to the restore uploader into `corrections`, and its ticks
    into `checks`, each image once (a correction made after it stands), also for images uploaded after the
    table; whether any was taken in this run. The uploader's value is read here, before the review table is
    built from `corrections` (the uploader is drawn below the table)."""
    table = st.session_state.get(review_table.RESTORE_KEY)
    if table is None:  # none given, or removed: a table given again is read again
        st.session_state["restored"] = st.session_state["restored_note"] = None
        return False
    data = table.getvalue()
    done, key = st.session_state.get("restored"), bytes_key(data)
    if done is None or done[0] != key:
        # The labels the table gave, by image: a correction made after it is the reviewer's, not the table's
        done = st.session_state["restored"] = (key, {})
    try:
        labels = review_table.restored_labels(data, table.name)
    except ValueError as e:
        st.session_state["restored_note"] = ("error", markup.markdown_literal(str(e)))
        return False
    taken = {str(r["key"]): label for r in rows if str(r["key"]) not in done[1]
             and (label := labels.label(str(r["key"]), str(r["file"]))) is not None}
    corrections.update(taken)
    checks.update((k, labels.is_checked(k, str(r["file"]))) for r in rows if (k := str(r["key"])) in taken)
    done[1].update(taken)
    # The model's own type (or Excluded, where it gave none) against the table's: the corrections restored (those
    # made on the page since are not counted: "7 of them" once a seventh was made by hand).
    model = {str(r["key"]): str(r["predicted"]) or review_table.EXCLUDED for r in rows}
    files = {str(r["key"]): str(r["file"]) for r in rows}
    # Of the images shown now: those restored and then removed (the next patient's uploaded) are no longer said to be
    here = [k for k in done[1] if k in model]
    changed = sum(1 for k in here if done[1][k] not in (model[k], review_table.EXCLUDED))
    excluded = sum(1 for k in here if done[1][k] == review_table.EXCLUDED != model[k])
    shown = {str(r["key"]) for r in rows} | {str(r["file"]) for r in rows}
    note = review_table.restore_note(table.name, len(here), changed, len(labels) - len(here), labels.unknown,
                              [file for found_by, file in labels.conflicts if found_by in shown], excluded=excluded,
                              ticked=sum(1 for k in here if labels.is_checked(k, files[k])))
    st.session_state["restored_note"] = note
    if taken:  # also where the page is scrolled: the box is under the table, the note above it
        st.toast(note[1].split(". ")[0].rstrip(".") + ".")  # its first sentence: the rest is above the table
    return bool(taken)


try:
    predictor = load_predictor()
except WbcError as e:
    st.error(f"The model could not be loaded: {e}")
    st.stop()

st.title("White blood cell classifier")
st.caption(
    "Upload images of single white blood cells from a stained blood smear. The model names the type "
    "(eosinophil, lymphocyte, monocyte or neutrophil), says how sure it is and shows where it looked. "
    "A second opinion for learning and checking, not a diagnosis."
)

if weak := weak_model_note(predictor.card):  # a run of an epoch or two, exported and pointed at by WBC_MODEL
    st.warning(f"{weak[0].upper()}{weak[1:]}.")

classify_tab, model_tab = st.tabs(["Classify", "About the model"])

# The model tab first: the classify tab stops the script while nothing is uploaded, and the
# model tab must render all the same.
with model_tab:
    card = predictor.card
    test = (card.get("metrics") or {}).get("test")
    st.header("How good is it?")
    try:
        show_test_figures(test, model_card.public_data(card))
    except (KeyError, TypeError, ValueError) as e:  # a card from another version: the rest of the page still works
        st.warning(f"The model card's test figures could not be read ({e!r}).")
    confusion = predictor.onnx_path.parent / "confusion.png"
    if confusion.exists():
        matrix = model_card.evaluation_confusion(confusion.parent)
        st.image(str(confusion), caption="Confusion matrix on the test images", alt=model_card.confusion_alt(matrix))
        if rows := model_card.confusion_rows(matrix):  # its figures, readable at a phone's width
            with st.expander("The test images' confusion matrix in figures"):
                st.caption("A row for each true type; its images read as " + ", ".join(
                    f"{short} ({cell_type(c).label.lower()})" for c, short in model_card.SHORT_NAMES.items()) + ".")
                st.table(pd.DataFrame(rows).set_index("true type"))
    st.header("Limits")
    st.markdown(
        f"- {model_card.trained_on(card)}; images from "
        "other microscopes, stains or magnifications may be read less well.\n"
        "- It knows only four types: basophils, blasts, immature granulocytes, abnormal cells, nucleated red cells, "
        "smudge cells and platelet clumps will be called one of them, often with high confidence and not always "
        "marked *needs review*. In the review table, correct them to Basophil, Blast, Immature granulocyte or Other "
        "white cell (counted in the total), Nucleated red cell (per 100 white cells, outside it) or Excluded.\n"
        f"- Below a confidence of {words.threshold_shown(predictor.review_threshold)} (the least confident tenth of "
        f"{words.threshold_basis(card)}) it asks for review. Its confidences were calibrated on held-out cells of "
        f"the data set it learned from ({model_card.ece_note(test)}); "
        + model_card.busiest_band_note((test or {}).get("reliability"), (test or {}).get("reliability_by_type"))
        + "on images from other laboratories they may run high, so read a high confidence as \"likely\", "
        "not \"certain\".\n"
        f"- An overexposed photo ({100 * OVEREXPOSED_SHARE:.0f}% or more of its lit area pure white) is read much "
        "less well; it is marked "
        "*needs review* whatever the confidence.\n"
        "- It types one white cell a photo, the most strongly stained. Where it sees a second, it warns and "
        f"leaves that one uncounted: {CROP_EACH}. Where the other is much larger than what it read (a piece "
        "of a cell or a speck can stain darkest), it gives no type (*Cannot judge this photo*) and "
        "leaves the photo out of the count.\n"
        "- A second opinion for learning and checking, **not a diagnosis**."
    )
    st.caption(f"Model {card.get('name')} · {card.get('parameters', 0):,} parameters · "
               f"sha256 {card['onnx_sha256'][:12]}…")


with classify_tab:
    files = st.file_uploader(
        "Cell images (JPG, PNG, BMP, TIFF, WebP, GIF)",
        # The types listed: Safari on an iPhone then hands over a HEIC photo as JPEG, which it does only
        # where the list leaves HEIC out. A file the box refuses shows its reason only where pointed at or
        # reached with Tab (a screen reader is told it), so say so, without "red" or "hover".
        type=sorted(suffix.lstrip(".") for suffix in IMAGE_SUFFIXES),
        accept_multiple_files=True,
        help=(f"One white cell per image works best. Up to {analysis.MAX_UPLOAD_MB} MB per file. A file the box "
              "refuses (larger, or of another type, such as a HEIC photo: export it as JPEG) is marked with an error "
              "sign and not analysed: point at it, or Tab to it, for why (a phone shows the sign alone: the file is of "
              "another type or over the size)."),
    )
    st.caption(analysis.four_types_only(predictor.review_threshold))  # here, where a student uploads: the Limits in the other tab go unread
    use_samples = st.toggle("Show the built-in sample images instead (two of each type)", value=False)
    uploads = [(f.name, f.getvalue()) for f in files or []]
    if use_samples:  # instead of the uploads, never among them: a demo must not enter a user's count
        samples = analysis.samples()
        if uploads:
            mine = len(analysis.distinct_uploads(uploads).kept)  # as they are shown: a repeat is one image
            st.info(f"Showing the {len(samples)} sample images; your {mine} uploaded image(s) come back, "
                    "with any corrections, when this is switched off.")
        uploads = samples
    if not uploads:
        st.info("Upload one or more cell images, or switch on the sample images, to start. Reloaded the page in "
                "the middle of a review? Upload the same images, then the review table you downloaded in the box "
                "under the table, and your corrections come back.")
        st.stop()
    distinct = analysis.distinct_uploads(uploads)
    uploads, keys = distinct.kept, distinct.keys
    for note in distinct.notes:
        st.info(note)

    results = analyse(predictor, uploads)
    bad = analysis.unusable(results)
    several = len(results) > 1  # each result names its file
    counted = len(results) - len(bad) > 1  # a differential is made (review_section): an image read can be left out
    if several:  # the count is at the end of a long page
        st.markdown(f"{len(results)} image(s) analysed" + (f", {len(bad)} of them could not be used" if bad else "")
                    + (". [The differential count and review table](#differential-count) are at the end."
                       if len(results) - len(bad) > 1 else ". [The review table](#differential-count) is at the end."
                       if len(bad) < len(results) else ": there is nothing to count."))

    pages = layout.result_pages(len(results))
    page = 0
    if len(pages) > 1:  # 110 results took 16 s to draw, and made a page 76,000 px tall
        st.html(f'<span id="{layout.PAGES_ANCHOR}"></span>')  # what the link under a page's last result finds
        # Streamlit forgets a widget's choice over a run that does not draw it (the samples shown instead): kept
        # apart, it comes back with the same number of results.
        kept = st.session_state.get("results_page_kept")
        if "results_page" not in st.session_state and kept and kept[0] == len(results):
            st.session_state["results_page"] = kept[1]
        page = st.selectbox(f"Results shown, {layout.RESULTS_PER_PAGE} at a time (the review table at the end has "
                            "every image read, each with its cell)", range(len(pages)),
                            format_func=lambda k: layout.page_label(pages[k], len(results)), key="results_page")
        st.session_state["results_page_kept"] = (len(results), page)
    for i in pages[page]:
        r = results[i]
        if r.error:
            st.error(markup.markdown_literal(r.error))  # it begins with the file's name, shown as it is
            continue
        p = r.prediction
        assert p is not None and r.crop is not None
        st.divider()
        result = st.container(key=f"{layout.RESULT_KEY}{i}")
        # Above the columns: on a phone they stack, and a name under the images read as the next image's.
        name_anchor, type_anchor = layout.result_anchors(i)
        result.header(markup.heading_name(r.name), anchor=name_anchor)
        left, right = result.columns([1, 2])
        with left:
            pictures = st.container(key=f"{layout.PICTURES_KEY}{i}")
            pictures.image(r.crop, caption=words.crop_caption(p), alt=images.crop_alt(r.name, p), width="stretch")
            if r.heatmap is not None and p.typed:  # no evidence for a type the page does not give
                pictures.image(r.heatmap, caption=images.HEATMAP_CAPTION,
                               alt=images.heatmap_alt(r.name, p, r.evidence_at), width="stretch")
            if r.marked is not None:
                st.image(r.marked, caption=images.MARKED_CAPTION, alt=images.marked_alt(r.name, p), width="stretch")
        with right:
            if not p.typed:
                # No type, confidence, chart or biology: shown large, a forced reading of a blank field
                # reads as a finding. The small print keeps it for whoever wants to see it.
                st.subheader(words.headline(p), anchor=type_anchor)
                st.error(words.about_image(r.name, words.flagged_message(p, counted=counted), several))
                if over := words.overexposure_warning(p, predictor.review_threshold):
                    st.warning(words.about_image(r.name, over, several))
                st.caption(words.forced_reading(p))
                continue
            if over := words.overexposure_warning(p, predictor.review_threshold):
                st.warning(words.about_image(r.name, over, several))
            if other := words.other_cell_warning(p):
                st.warning(words.about_image(r.name, other, several))
            st.subheader(words.headline(p), anchor=type_anchor)
            st.metric("Confidence", words.confidence_shown(p.confidence, predictor.review_threshold),
                      help="The model's probability for this type, calibrated on held-out cells of the data set "
                           "it learned from: not the chance that it is right on your images. *About the model* "
                           "shows how often it was right at each confidence on the test images, for all its calls "
                           "and by the type called.")
            if record := words.confidence_note(test, p):
                st.caption(record)
            if p.needs_review:
                (a, pa), (b, pb) = p.top2
                top = (f" Top two: {cell_type(a).label} {words.confidence_shown(pa, predictor.review_threshold)}, "
                       f"{cell_type(b).label} {100 * pb:.1f}%.")
                st.warning(words.about_image(
                    r.name, "Needs review: this confidence is below "
                    f"{words.threshold_shown(predictor.review_threshold, p.confidence)}, the "
                    f"level of the least sure tenth of {words.threshold_basis(predictor.card)}."
                    + ("" if p.overexposed else top)  # the overexposure warning above gives them
                    + " " + words.tell_apart(a, b), several))
            # One bar per type on a fixed 0-100% scale, its figure in words (a bar chart rescaled to its
            # largest bar made 59% look as full as 99%, and gave a screen reader nothing).
            for c, v in zip(CLASSES, p.probs):  # the type's own as its metric gives it (66.55%, not 66.6%)
                shown = words.confidence_shown(v, predictor.review_threshold) if c == p.label else f"{100 * v:.1f}%"
                st.progress(min(max(float(v), 0.0), 1.0), text=f"{cell_type(c).label}: {shown}")
            with st.expander(f"About the {cell_type(p.label).label.lower()}"):
                for k, v in words.describe(p.label).items():
                    st.markdown(f"**{k}.** {v}")

    if len(pages) > 1:  # the choice is 20 results up: say where, from the end of the page
        st.divider()
        st.markdown(layout.pages_note(pages, page, len(results), table=len(bad) < len(results)))
    review_section(results, keys, bad, distinct.repeats)
