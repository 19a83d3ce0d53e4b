"""Inference on ONNX Runtime alone: the session under its model card (`wbc.card`), and predictions for files.

This module, `card`, `decode` and `imaging` (with `framing` and `pixels`) are all that `wbc predict` and the app need: no PyTorch.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from wbc.calibration import apply_confidence_map
from wbc.card import calibration_figures, card_spec, check_graph, read_card, resolve_model
from wbc.decode import load_image, read_source
from wbc.errors import BadImageError, ModelFileError, WbcError
from wbc.imaging import dihedral_views, photo_xy, scale_channels, to_input
from wbc.info import CLASSES, IMAGE_SUFFIXES
from wbc.io import atomic_write_text, bytes_key, files_under, spreadsheet_text
from wbc.photo_checks import MIN_SIDE_PX, STAINED_EDGE, TINTED_HEAD, TOO_DARK_HEAD, Screening, photo_at_fault, too_small
from wbc.screening import screen
from wbc.white_balance import field_white, input_gains, is_overexposed, prepared_as_predicted

# px: the length of a strip's middle read when the strip (a side under MIN_SIDE_PX) is longer
STRIP_READ_PX = 4096
BATCH = 64
NOT_A_WBC_VERDICT = "not a white blood cell"
CANNOT_JUDGE_VERDICT = "cannot judge"  # the verdict of a photo the screening finds at fault, rather than showing no white cell
NEEDS_REVIEW_VERDICT = "needs review"  # typed, but below the review threshold or overexposed
CONFIDENT_VERDICT = "confident"
UNREADABLE_VERDICT = "unreadable"  # a file that could not be decoded
VERDICTS = (CONFIDENT_VERDICT, NEEDS_REVIEW_VERDICT, CANNOT_JUDGE_VERDICT, NOT_A_WBC_VERDICT)  # a readable file's, in order
# Why a file taken for a white cell is given no type: its crop may be on a piece of a cell (`Prediction.other_larger`).
OTHER_LARGER_WHY = "typed on what may be a piece of a cell, beside a much larger white cell's nucleus"
NOT_READ = "not read: the run was interrupted first"  # the error of a file `wbc predict` was stopped before
CROP_EACH = "crop each cell into a photo of its own"  # what to do with a photo of two white cells


def _probabilities(p: np.ndarray) -> bool:
    """Whether (N, K) `p` are rows of probabilities: floats from 0 to 1 summing to 1, within 0.001 or, for a type
    coarser than that (float16: eps 0.00098), 8 of its eps."""
    if not np.issubdtype(p.dtype, np.floating):
        return False
    tolerance = max(1e-3, 8 * float(np.finfo(p.dtype).eps))
    return (bool(np.isfinite(p).all()) and bool((p >= 0).all()) and bool((p <= 1 + tolerance).all())
            and bool((np.abs(p.sum(1, dtype=np.float64) - 1) < tolerance).all()))


@dataclass(frozen=True)
class Prediction:
    """One file's result; `error` is set (and the rest empty) when the file could not be used.

    `needs_review`: confidence below the card's review threshold. `not_wbc`: why the image does
    not look like a stained white cell (empty when it does); its class is then not to be trusted.
    `overexposed`: the photo's highlights are clipped (white_balance.OVEREXPOSED_SHARE of it pure white),
    which the network reads poorly however confident it is; the verdict is then "needs review" (or
    "cannot judge" where the screening flagged it too). A second white cell in the photo much larger
    than what was typed (`other_larger`) makes the verdict "cannot judge", as a photo at fault does
    (`photo_checks.photo_at_fault`); such a crop is given no type (`typed`).
    """

    file: str
    label: str = ""
    confidence: float = float("nan")
    probs: tuple[float, ...] = ()
    needs_review: bool = False
    not_wbc: str = ""
    error: str = ""
    reduced_by: float = 1.0  # a magnified photo was shrunk by this before the cell was cropped
    white_balanced: bool = False  # screened as a white cell only once its white was matched to the data set's
    white_matched: bool = False  # the network saw it with its white matched to the data set's (Predictor.match_white)
    clipped: float = 0.0  # share of the field's lit pixels pure white (white_balance.clipped_share; frame cut, shrunk)
    screened: bool = True  # False where no screening ran (wbc evaluate of a split, or of a checkpoint): those columns blank
    cell: tuple[int, int] | None = None  # (x, y) px in the photo of the cell cropped and typed
    other_cell: tuple[int, int] | None = None  # (x, y) px in the photo of a second white cell, which was not typed
    other_larger: bool = False  # that cell's nucleus is much larger than what was typed, perhaps a piece or speck
    no_image: str = ""  # the verdict of a row that names no image to read (`wbc predict`): "no image" or "not followed"
    same_as: str = ""  # `wbc predict`: the file given before with the same bytes; the differential counts it once
    sha256: str = ""  # the bytes read's `wbc.io.bytes_key` ("" where none were read): what `same_as` compares

    @property
    def top2(self) -> list[tuple[str, float]]:
        order = np.argsort(self.probs)[::-1][:2]
        return [(CLASSES[i], float(self.probs[i])) for i in order]

    @property
    def overexposed(self) -> bool:
        return is_overexposed(self.clipped)

    @property
    def shrunk(self) -> bool:
        """Whether to say the photo was shrunk towards the training magnification: it was, for its cell's size,
        and not for a coloured background's read as a huge nucleus, nor where its light or cast is beyond the
        matching (a background read as stain in such colours shrank a magenta photo 8x)."""
        return self.reduced_by > 1 and not self.not_wbc.startswith((STAINED_EDGE, TINTED_HEAD, TOO_DARK_HEAD))

    @property
    def typed(self) -> bool:
        """Whether a type is given for it (and it is counted): read, taken for a white cell, and not a mass
        much smaller than another cell's nucleus beside it (`other_larger`: perhaps a piece or a speck)."""
        return bool(self.label) and not self.not_wbc and not self.other_larger

    @property
    def verdict(self) -> str:
        """What a user should read: the type, or why it should not be taken at face value; blank where
        no screening ran (wbc evaluate of a split or a checkpoint), which could not say whether a white cell is there."""
        if self.error:
            return self.no_image or ("not read" if self.error == NOT_READ else UNREADABLE_VERDICT)
        if not self.screened:
            return ""
        # As the app heads them: the photo at fault (blurred, too dark, ...; or a crop on what may be a piece of
        # a cell beside a larger one, given no type) or no white cell in it.
        if self.not_wbc and not (photo_at_fault(self.not_wbc) or self.overexposed):
            return NOT_A_WBC_VERDICT
        if self.not_wbc or self.other_larger:
            return CANNOT_JUDGE_VERDICT
        return NEEDS_REVIEW_VERDICT if self.needs_review or self.overexposed else CONFIDENT_VERDICT


def shown_digits(confidence: float, threshold: float) -> int:
    """Decimals of a percentage that show a confidence below the review threshold as below it, the threshold
    given to at least two (66.553% showed as 66.6% beside "below 66.58%"): 1 where it is not below. The app and
    `wbc predict` (two more, for a fraction) show confidences so."""
    for digits in (1, 2, 3, 4):
        if confidence >= threshold or round(100 * confidence, digits) < round(100 * threshold, max(digits, 2)):
            return digits
    return 4


class Predictor:
    """An ONNX Runtime session plus the preprocessing its model card states."""

    def __init__(self, model: str | Path | None = None, threads: int | None = None,
                 match_white: bool | None = None, tta_views: int | None = None) -> None:
        """`match_white` and `tta_views` override the card's settings (None: the card's), e.g. for a
        fold model exported without them."""
        import onnxruntime as ort

        self.onnx_path, self.card_path = resolve_model(model)
        self.card = read_card(self.card_path)
        # The bytes hashed are the bytes loaded: a file replaced between the two (an export moving a new
        # model in) cannot run under the other's card.
        try:
            onnx_bytes = self.onnx_path.read_bytes()
        except OSError as e:
            raise ModelFileError(f"{self.onnx_path}: cannot be read ({e.strerror or e})") from e
        digest = hashlib.sha256(onnx_bytes).hexdigest()
        if digest != self.card["onnx_sha256"]:
            raise ModelFileError(
                f"{self.onnx_path}: sha256 {digest[:12]}... does not match its card "
                f"({self.card['onnx_sha256'][:12]}...): the file is corrupt or was replaced"
            )
        self.spec = card_spec(self.card, self.card_path)
        # Calibration figures: checked here, or a wrong one surfaces at the first prediction, or never.
        _, threshold, self.confidence_map = calibration_figures(self.card, self.card_path)
        self._review_threshold = threshold or 0.0
        if tta_views is not None and (type(tta_views) is not int or tta_views not in (1, 4, 8)):
            raise ValueError(f"tta_views is {tta_views!r}: give 1, 4, 8 or None (the card's)")
        if type(match_white) not in (bool, type(None)):
            raise TypeError(f"match_white is {match_white!r}: give True, False or None (the card's)")
        views = self.card.get("tta_views", 1) if tta_views is None else tta_views
        if type(views) is not int or views not in (1, 4, 8):
            raise ModelFileError(f"{self.card_path}: tta_views is {views!r}; this version averages 1, 4 or 8 views")
        self.tta_views: int = views
        match = self.card.get("match_white", False) if match_white is None else match_white
        if type(match) is not bool:
            raise ModelFileError(f"{self.card_path}: match_white is {match!r}; it must be true or false")
        # Match a field's white to the data set's before the network where it lies below the data
        # set's range in some channel (white_balance.input_gains); cards written before this have none, and read as
        # before.
        self.match_white: bool = match
        # Errors only: ONNX Runtime's warnings (a telemetry ID it cannot save under a read-only home, for
        # one) are not the user's to act on, and it colours them even into a file.
        ort.set_default_logger_severity(3)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own untyped errors for a bad graph
            raise ModelFileError(f"{self.onnx_path}: ONNX Runtime cannot load it ({e})") from e
        self.output_names = [o.name for o in self.session.get_outputs()]
        # Models exported since 0.2 take the uint8 crops and normalise inside the graph; earlier ones
        # take float32 (N, 3, h, w) normalised here.
        check_graph(self.spec, self.session.get_inputs(), self.session.get_outputs(), self.onnx_path, self.card_path)
        self.raw_input = self.session.get_inputs()[0].type == "tensor(uint8)"
        h, w = self.spec.input_hw
        if self.tta_views > 1 and h != w:
            if tta_views is not None:
                raise ValueError(f"tta_views={tta_views} asked of a network whose input ({h}x{w} px) is not square, "
                                 "so it cannot be rotated; give 1")
            raise ModelFileError(f"{self.card_path}: tta_views is {self.tta_views}, but the input ({h}x{w} px) is not square, "
                                 "so it cannot be rotated; set tta_views to 1")

    def run(self, prepared: np.ndarray, outputs: Sequence[str] = ("probs",)) -> list[np.ndarray]:
        """uint8 (N, h, w, 3) from `imaging.prepare` -> the named outputs, batched."""
        if len(prepared) <= BATCH:  # one chunk: straight through, without the lists and the copy
            x = np.ascontiguousarray(prepared) if self.raw_input else to_input(prepared, self.spec)
            return self.session.run(list(outputs), {"input": x})
        parts: list[list[np.ndarray]] = [[] for _ in outputs]
        for i in range(0, len(prepared), BATCH):
            chunk = prepared[i : i + BATCH]
            x = np.ascontiguousarray(chunk) if self.raw_input else to_input(chunk, self.spec)
            res = self.session.run(list(outputs), {"input": x})
            for acc, r in zip(parts, res):
                acc.append(r)
        return [np.concatenate(p) for p in parts]

    def predict_probs(self, prepared: np.ndarray, tta: bool = True) -> np.ndarray:
        """uint8 (N, h, w, 3) -> probabilities (N, 4), averaged over the card's test-time views."""
        return self.predict(prepared, tta)[0]

    def predict(self, prepared: np.ndarray, tta: bool = True, cam: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Calibrated probabilities (N, 4) (the graph's temperature, then the card's confidence map) and,
        if asked and exported, class activation maps (N, 4, fh, fw) of the view as given, from one pass
        over all test-time views."""
        outputs = ("probs", "cam") if cam and "cam" in self.output_names else ("probs",)
        n = len(prepared)
        views = self.tta_views if tta else 1
        res = self.run(dihedral_views(prepared, views) if views > 1 else prepared, outputs)  # view-major; view 0 as given
        if res[0].ndim != 2 or res[0].shape[1] != len(CLASSES):  # a dynamic axis, unchecked when loaded
            raise ModelFileError(f"{self.onnx_path}: not a wbc model: its probabilities came out of shape "
                                 f"{list(res[0].shape)}, not (N, {len(CLASSES)}) for the {len(CLASSES)} types")
        if not _probabilities(res[0]):  # NaN was shown as "nan, confident" (a comparison with NaN is False)
            raise ModelFileError(f"{self.onnx_path}: not a wbc model: its outputs are not probabilities (each row "
                                 "must hold 4 numbers from 0 to 1 summing to 1)")
        probs = res[0].reshape(views, n, -1).mean(0) if views > 1 else res[0]
        probs = apply_confidence_map(probs, self.confidence_map)
        return probs, (res[1][:n] if len(res) > 1 else None)

    @property
    def review_threshold(self) -> float:
        return self._review_threshold

    def analyse(self, rgb: np.ndarray) -> tuple[np.ndarray, Screening]:
        """Source RGB (H, W, 3) -> the prepared input (h, w, 3) and the is-it-a-white-cell checks."""
        h, w = rgb.shape[:2]
        if min(h, w) < MIN_SIDE_PX and max(h, w) > STRIP_READ_PX:
            # A strip is too small whatever the magnification (shrinking only narrows it): said without
            # searching all of it for a cell (2 x 24,000,000 px took 45 s and 1.7 GB). The network reads its middle.
            start = (max(h, w) - STRIP_READ_PX) // 2
            middle = rgb[start:start + STRIP_READ_PX] if h > w else rgb[:, start:start + STRIP_READ_PX]
            x, sc = self.analyse(middle)
            dy, dx = (start, 0) if h > w else (0, start)
            return x, replace(sc, is_cell=False, reason=too_small(w, h),
                              offset_yx=(sc.offset_yx[0] + dy, sc.offset_yx[1] + dx))
        x, loc, field = prepared_as_predicted(rgb, self.spec)
        # The field's white serves the matching and, for a field that fails the screening's first
        # look, its second: measured once.
        white = field_white(field) if self.match_white else None
        gains = input_gains(field, white) if self.match_white else None
        x, matched = self.with_gains(x, gains)
        # A mark matters where the network reads: its crop, or the whole field for a "frame" model.
        crop_half = self.spec.window // 2 if self.spec.mode == "cell" else max(field.shape[:2])
        return x, replace(screen(field, loc, white, gains, crop_half=crop_half), white_matched=matched,
                          cell_yx=(loc.cy, loc.cx), offset_yx=loc.offset_yx)

    def with_gains(self, x: np.ndarray, gains: np.ndarray | None) -> tuple[np.ndarray, bool]:
        """The prepared input x (h, w, 3) as the network sees it, and whether it was changed: scaled by
        the field's `white_balance.input_gains` (3,) (None: it has none), e.g. as `cache.load_prepared` kept
        them, where the card matches white."""
        return (scale_channels(x, gains), True) if gains is not None and self.match_white else (x, False)

    def verdicts(self, file: str, probs: np.ndarray, screening: Screening) -> Prediction:
        k = int(probs.argmax())
        return Prediction(file=file, label=CLASSES[k], confidence=float(probs[k]),
                          probs=tuple(float(v) for v in probs),
                          needs_review=float(probs[k]) < self.review_threshold, not_wbc=screening.reason,
                          reduced_by=screening.reduced_by, white_balanced=screening.white_balanced,
                          white_matched=screening.white_matched,
                          clipped=screening.clipped,
                          cell=photo_xy(screening.cell_yx, screening.reduced_by, screening.offset_yx),
                          other_cell=photo_xy(screening.other_cell_yx, screening.reduced_by, screening.offset_yx),
                          other_larger=screening.other_larger)

    def predict_sources(
        self, items: Sequence[tuple[str, str | Path | bytes]], tta: bool = True, cam: bool = False,
        hashed: bool = True,
    ) -> list[tuple[Prediction, np.ndarray | None, np.ndarray | None]]:
        """Decode, screen and classify (name, path or bytes) items in one batch: for each, its
        prediction (or error), the crop the network saw (h, w, 3) and, if asked, its class activation
        maps (4, fh, fw). A bad item gets its error and the rest go on. `hashed`: each prediction's
        sha256 of the bytes read (False: left blank, for a caller that has it, as the app does)."""
        out: list[tuple[Prediction, np.ndarray | None, np.ndarray | None]] = []
        ok: list[tuple[int, np.ndarray, Screening]] = []
        keys: list[str] = []  # each item's bytes_key; read once (a pipe given as a path cannot be read again)
        for i, (name, source) in enumerate(items):
            key = ""
            try:
                raw = read_source(source, name)
                key = bytes_key(raw) if hashed else ""
                ok.append((i, *self.analyse(load_image(raw, name))))
            except BadImageError as e:
                out.append((Prediction(file=name, error=str(e), sha256=key), None, None))
                continue
            finally:
                keys.append(key)
            out.append((Prediction(file=name), None, None))  # filled in below
        if ok:
            probs, cams = self.predict(np.stack([a for _, a, _ in ok]), tta, cam)
            for j, (i, crop, sc) in enumerate(ok):
                pred = replace(self.verdicts(items[i][0], probs[j], sc), sha256=keys[i])
                out[i] = (pred, crop, cams[j] if cams is not None else None)
        return out

    def predict_files(self, paths: Sequence[str | Path], progress: bool = False, tta: bool = True) -> list[Prediction]:
        """Predict every file (over the card's test-time views unless `tta` is False), in batches; a
        bad file gets its error and the rest go on."""
        return list(self.iter_files(paths, progress, tta))

    def iter_files(self, paths: Sequence[str | Path], progress: bool = False, tta: bool = True) -> Iterator[Prediction]:
        """`predict_files`, yielding each batch's predictions as it is done: a caller interrupted midway
        keeps what was read."""
        from wbc.progress import bar

        with bar(total=len(paths), show=progress, desc="predict", unit="image") as done:
            for start in range(0, len(paths), BATCH):
                chunk = paths[start : start + BATCH]
                yield from (p for p, _, _ in self.predict_sources([(str(p), p) for p in chunk], tta))
                done.update(len(chunk))


def iter_image_paths(inputs: Iterable[str | Path], passed_over: list[Path] | None = None,
                     problems: list[tuple[Path, str]] | None = None) -> list[Path]:
    """Files as given and image files found (recursively, sorted) under folders given; the other files
    found under the folders are added to `passed_over` where one is given, and to `problems`, each with
    why, what may hide images: the subfolders that cannot be listed and the links to nothing named as
    an image or as a folder (no suffix). Other links to nothing are passed over."""
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            missed: list[tuple[Path, str]] = []
            for f in sorted(files_under(p, problems=missed)):
                if f.suffix.lower() in IMAGE_SUFFIXES:
                    found.append(f)
                elif passed_over is not None:
                    passed_over.append(f)
            # A folder that cannot be listed may hold images, and so may a linked-in folder whose target is
            # gone (no suffix); a link to nothing with another name is passed over like its kind.
            for f, why in sorted(missed):
                if _may_be_a_folder(f) or f.suffix.lower() in IMAGE_SUFFIXES or not f.suffix:
                    if problems is not None:
                        problems.append((f, why))
                elif passed_over is not None:
                    passed_over.append(f)
        elif p.exists():
            found.append(p)
        else:
            raise WbcError(f"{p}: no such file or folder")
    return found


def _may_be_a_folder(f: Path) -> bool:
    try:
        return f.is_dir()
    except OSError:  # a path too long to look at (ENAMETOOLONG): a folder, for all that is known
        return True


def predictions_csv(preds: Sequence[Prediction]) -> str:
    """The predictions as CSV, a row each; a file name starting as a formula does is quoted with '
    (`wbc.io.spreadsheet_text`; `wbc.io.unquoted` gives it back)."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["file", "class", "confidence", *[f"p_{c.lower()}" for c in CLASSES], "needs_review",
                "not_white_cell", "error", "shrunk_by", "white_balanced", "white_matched", "overexposed",
                "cell_x", "cell_y", "other_cell_x", "other_cell_y", "other_cell_larger", "same_image_as", "verdict"])
    yes_no = {True: "yes", False: "no"}
    for p in preds:
        probs = [f"{v:.6f}" for v in p.probs] if p.probs else [""] * len(CLASSES)
        # No type for what the screening rejected or a typed piece of a cell (a script counting a class
        # must not count it); the four probabilities keep the network's reading.
        located = bool(p.label) and not p.not_wbc  # taken for a white cell: its places are known
        conf = f"{p.confidence:.6f}" if p.typed else ""
        screened = bool(p.label) and p.screened
        flags = ["yes" if p.needs_review else "no", p.not_wbc] if p.typed else ["", p.not_wbc]
        # What the screening found is blank where none ran (wbc evaluate); the matching is known either way. The
        # error goes without the file's name, which the row's first column gives (as the table shows it). Texts
        # that hold file names are quoted where a spreadsheet would run them as a formula.
        w.writerow([spreadsheet_text(str(p.file)), p.label if p.typed else "", conf, *probs, *flags,
                    spreadsheet_text(p.error.removeprefix(f"{p.file}: ")),
                    f"{p.reduced_by:.2f}" if p.label else "",
                    yes_no[p.white_balanced] if screened else "", yes_no[p.white_matched] if p.label else "",
                    yes_no[p.overexposed] if screened else "",
                    *(p.cell if p.cell and located else ("", "")),
                    *(p.other_cell if p.other_cell and located else ("", "")),
                    yes_no[p.other_larger] if p.other_cell and located else "", spreadsheet_text(p.same_as), p.verdict])
    return out.getvalue()


def write_predictions_csv(path: str | Path, preds: Sequence[Prediction]) -> None:
    atomic_write_text(path, predictions_csv(preds))
