"""`wbc predict`: each file's row of the table, the differential count, the CSV, and text fitted to terminal columns."""

from __future__ import annotations

import argparse
import sys
import unicodedata
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from wbc.cli.predict_files import check_csv_target, csv_destination, passed_over_note, predict_inputs
from wbc.errors import OutputError, WbcError
from wbc.io import lines_shown, printable

if TYPE_CHECKING:  # wbc.predict loads only when the command runs: importing it here would slow --help
    from wbc.predict import Prediction


def _repeats(preds: list[Prediction]) -> dict[int, str]:
    """Index in `preds` -> the file it repeats, for each image read that has the bytes of one read before it,
    whatever the names (the bytes as read for the prediction: a pipe given as a path reads empty a second
    time). Rows with no image read repeat nothing."""
    from wbc.io import first_copies

    keys = [None if p.error or not p.sha256 else p.sha256 for p in preds]
    return {i: str(preds[j].file) for i, j in first_copies(keys).items()}


def cmd_predict(args: argparse.Namespace) -> int:
    from wbc.card import weak_model_note
    from wbc.predict import (CANNOT_JUDGE_VERDICT, NEEDS_REVIEW_VERDICT, NOT_A_WBC_VERDICT, NOT_READ, Prediction,
                             Predictor, shown_digits, write_predictions_csv)

    entries, repeats, others, unfollowed = predict_inputs(args.paths)
    paths = [e for e in entries if isinstance(e, Path)]
    if not paths:
        missing = [f"{item}: {why}" for item, why, _ in (e for e in entries if isinstance(e, tuple))]
        raise WbcError("; ".join(missing) if missing else f"no image files found in {' '.join(map(str, args.paths))}")
    if args.csv:
        check_csv_target(args.csv, paths)
    pred = Predictor(args.model, threads=args.threads)
    if weak := weak_model_note(pred.card):
        print(f"wbc: note: {weak}", file=sys.stderr)
    read: list[Prediction] = []
    try:
        for r in pred.iter_files(paths, progress=len(paths) > 1 and not args.quiet, tta=not args.single_view):
            read.append(r)
    except KeyboardInterrupt:  # keep what was read: the table, the count and the CSV cover those files
        print(f"\nwbc: interrupted after {len(read)} of {len(paths)} file(s); reporting those", file=sys.stderr)
    unread = len(paths) - len(read)
    by_path = iter(read)
    results = [(next(by_path, None) or Prediction(file=e, error=NOT_READ)) if isinstance(e, Path)
               else Prediction(file=e[0], error=e[1], no_image=e[2]) for e in entries]
    named_nothing = len(entries) - len(paths) - unfollowed
    bad = sum(1 for r in results if r.error) - named_nothing - unfollowed - unread  # files that could not be used
    # A typed piece of a cell beside a much larger one is not a cell to count, as in the app; nor, as there,
    # a second copy of an image read (the same bytes under another name: one cell photographed once), whose
    # row and CSV line name the file it repeats (a spreadsheet's total would count it again).
    copies = _repeats(results) if len(paths) > 1 else {}
    results = [replace(r, same_as=copies[i]) if i in copies else r for i, r in enumerate(results)]
    counted = [r for r in results if r.typed and not r.same_as]
    csv_path, kept = csv_destination(args.csv, interrupted=bool(unread))
    unwritten: OutputError | None = None  # the table below still shows what was read
    if csv_path:  # first: a reader of the table that goes away (`| head`) must not cost the file
        replaced = csv_path.is_file()
        try:
            write_predictions_csv(csv_path, results)
        except OutputError as e:  # a full disk found only now: the work is not lost with the file
            unwritten = e
    if repeats:
        print(f"wbc: note: {repeats} file(s) given more than once, each classified and counted once", file=sys.stderr)
    if others and paths:
        print(f"wbc: note: in the folders given, {passed_over_note(others)}", file=sys.stderr)
    names = [printable(str(r.file)) for r in results]
    width = min(60, max(len("file"), *map(columns, names)))  # its heading's width at least: names may be "1"
    print(f"{'file':{width}s}  {'class':11s}  confidence  verdict")
    for r, name in zip(results, names):
        name = fit(name, width)
        if r.error:  # the verdict as the CSV gives it; the row names the file, so the reason need not again
            why = r.error.removeprefix(f"{r.file}: ")
            said = why if why.startswith(f"{r.verdict}:") else f"{r.verdict}: {why}"  # NOT_READ says it already
            print(f"{name}  {'-':11s}  {'-':>10s}  {said}")
            continue
        note = f"{r.verdict}" + (f": {r.not_wbc}" if r.not_wbc else "")
        if r.typed and (r.needs_review or r.overexposed):  # the runner-up type is no help for the other reasons
            note += " (or " + r.top2[1][0].lower() + f" {r.top2[1][1]:.3f})"  # as the confidence column
        if r.shrunk:
            note += f" [photo shrunk {r.reduced_by:.1f}x towards the training magnification]"
        matched = [w for w, on in (("found only", r.white_balanced), ("read", r.white_matched)) if on]
        if matched:
            # In the app's words ("the white matched" was the code's, which a student does not know).
            note += (f" [white balance or exposure unlike the training images': {' and '.join(matched)} with its "
                     "colours matched to theirs]")
        if r.overexposed:
            note += f" [overexposed: {100 * r.clipped:.0f}% of the lit pixels white (clipped); such photos are read poorly]"
        if r.other_cell:  # set only where the screening took the photo for a white cell
            note += f" [{other_cell_note(r)}]"
        if r.same_as:
            note += f" [the same image as {printable(r.same_as)}: " + ("counted once]" if r.typed else "left out once]")
        # No type is given for what the screening rejected or a typed piece of a cell, as in the app.
        # A confidence just below the threshold read 0.666, as one just above it did: as many digits as tell them
        # apart (the app's, two more for a fraction).
        kind, conf = ((r.label, f"{r.confidence:.{shown_digits(r.confidence, pred.review_threshold) + 2}f}")
                      if r.typed else ("-", "-"))
        print(f"{name}  {kind:11s}  {conf:>10s}  {note}")
    # A count of one image read is no differential, whatever else was named (copies of it too); of none, it
    # says there is none.
    if len(paths) > 1 and sum(not r.error for r in results) - len(copies) != 1:
        from wbc.differential import differential_lines, misread_figures

        once = [r for r in results if not r.same_as]  # a repeat is left out as such, whatever it was read as
        left_out = [f"{k} {what}" for k, what in ((sum(r.verdict == NOT_A_WBC_VERDICT for r in once),
                                                   "not a white cell"),
                                                  (sum(r.verdict == CANNOT_JUDGE_VERDICT and not r.other_larger
                                                       for r in once), "that cannot be judged"),
                                                  (sum(r.other_larger for r in once),
                                                   "typed on what may be a piece of a cell"),
                                                  (len(copies), "repeat(s) of an image given before"),
                                                  (bad, "unreadable"),
                                                  (named_nothing, "naming no image"),
                                                  (unfollowed, "link(s) or folder(s) not followed"),
                                                  (unread, "not read before the interruption")) if k]
        left = f" (left out: {', '.join(left_out)})" if left_out else ""
        if not counted:  # "Differential of the 0 image(s) read as white cells" headed a line saying there was none
            print(f"\nNo image was read as a white cell{left}: no differential.")
        else:
            review = sum(r.verdict == NEEDS_REVIEW_VERDICT for r in counted)
            two = sum(bool(r.other_cell) for r in counted)  # counted photos with a second white cell
            print(f"\nDifferential of the {len(counted)} image(s) read as white cells"
                  + left
                  # Not "check those and the count stands": half of a 110-image smear's errors were confident.
                  + (f"; {review} {'needs' if review == 1 else 'need'} review: check "
                     f"{'it' if review == 1 else 'them'} by eye, and any share out of its range, before using the count"
                     if review else "")
                  + (f"; {two} of the {len(counted)} {'shows' if two == 1 else 'show'} a second white cell that is not "
                     f"in the count (marked in {'its row' if two == 1 else 'their rows'})" if two else "")
                  + ":")
            print("\n".join(differential_lines([r.label for r in counted], misread_figures(pred.card))))
    if unwritten:
        print(f"wbc: error: {lines_shown(str(unwritten))}; the table above is all there is of this run",
              file=sys.stderr)
    elif csv_path:
        why = (f" (interrupted, so the table at {printable(str(args.csv))} was kept)" if kept
               else " (it replaced the table there)" if replaced else "")
        print(f"wrote {printable(str(csv_path))}{why}")
    elif kept:
        print(f"wbc: interrupted: the table at {printable(str(args.csv))} was kept, and {printable(str(kept))}, "
              "where the part read would go, is a file of another kind: no table written", file=sys.stderr)
    if bad:
        print(f"wbc: {bad} of {len(paths)} file(s) could not be used", file=sys.stderr)
    if named_nothing:  # a mistyped path is the user's to fix: scripts see it in the exit status
        print(f"wbc: {named_nothing} row(s) name no image file (each says why)", file=sys.stderr)
    if unfollowed:  # images may be behind them: the count above may lack them
        print(f"wbc: {unfollowed} link(s) or folder(s) in the folders given could not be followed (each named in its row)",
              file=sys.stderr)
    if unread:
        print(f"wbc: interrupted: {unread} of {len(paths)} file(s) not read", file=sys.stderr)
    if unwritten or (args.csv and csv_path is None):  # before an interruption: the file asked for is not there
        return 2
    if unread:
        return 130
    return 1 if named_nothing or unfollowed or bad else 0


def _columns(c: str) -> int:
    """Terminal columns of one character: two where wide (Chinese, Japanese, Korean), none for a mark
    that joins the one before (accents, Thai vowels, a decomposed Hangul syllable's vowel and final
    consonant) or an invisible format character (a zero-width space), else one."""
    if unicodedata.category(c) in ("Mn", "Me", "Cf") or "\u1160" <= c <= "\u11ff":
        return 0
    return 2 if unicodedata.east_asian_width(c) in "WF" else 1


def columns(text: str) -> int:
    """How many terminal columns `text` takes."""
    return len(text) if text.isascii() else sum(map(_columns, text))


def fit(name: str, width: int) -> str:
    """`name` in exactly `width` columns: padded with spaces, or its start cut and shown as "..." (the end
    of a path tells files apart)."""
    used = columns(name)
    if used > width:
        start, used = len(name), 0
        while start and used + _columns(name[start - 1]) <= width - 3:
            start -= 1
            used += _columns(name[start])
        while start < len(name) and not _columns(name[start]):  # a mark cut from its letter would join the dots
            start += 1
        name, used = "..." + name[start:], used + 3
    return name + " " * (width - used)


def other_cell_note(r: Prediction) -> str:
    """A row's words on a second white cell in its photo (positions in the photo's own px)."""
    from wbc.predict import CROP_EACH

    assert r.other_cell is not None
    ox, oy = r.other_cell
    at = f"x={r.cell[0]}, y={r.cell[1]} px" if r.cell else "the crop's centre"
    if r.other_larger:
        return (f"typed the stained mass at {at}, much smaller than the nucleus of another white cell at x={ox}, "
                f"y={oy} px: the crop may be on a piece of a cell or a speck, so it cannot be judged and is left out "
                f"of the count; {CROP_EACH}")
    return f"typed the cell at {at}; another white cell (at least one) at x={ox}, y={oy} px, not typed: {CROP_EACH}"
