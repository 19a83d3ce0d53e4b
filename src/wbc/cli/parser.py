"""The `wbc` command line: its parser, help texts and argument types; each verb's work lives in its own module."""

from __future__ import annotations

import argparse
import os
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from wbc import __version__
from wbc.cli.app import cmd_app
from wbc.cli.data import cmd_data_check, cmd_data_download, cmd_data_sources
from wbc.cli.models import cmd_evaluate, cmd_export
from wbc.cli.predict import cmd_predict
from wbc.cli.train import cmd_train
from wbc.imaging import TEST_TIME_VIEWS


def _usable_cpus() -> int:
    """The CPUs this process may run on (a container's or taskset's share), not the host's count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def whole_number(low: int, high: int | None = None, why: str = "") -> Callable[[str], int]:
    """An argparse type: a whole number in low..high (no upper bound: None), refused by name otherwise
    (`why` says whence the bounds). The benchmark scripts take their counts with it too."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if n < low or (high is not None and n > high):
            bounds = f"{low} or more" if high is None else f"{low} to {high}"
            raise argparse.ArgumentTypeError(f"{n}: choose {bounds}" + (f" ({why})" if why else ""))
        return n
    return parse


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose error names a file given whose name begins with "-": `wbc predict -a.jpg` was
    refused with "the following arguments are required: paths", the file read as an unknown option."""

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        self._given = list(sys.argv[1:] if args is None else args)  # each subcommand's parser: its own part
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        given: list[str] = getattr(self, "_given", [])
        # Only before "--": a name after it was read as a file (`wbc predict --threads 0 -- -a.jpg` was told to put
        # -- before the file names, as it had)
        given = given[:given.index("--")] if "--" in given else given
        dashed = [a for a in given if a.startswith("-") and a.strip("-") and os.path.lexists(a)]
        if dashed:
            # An option's value (`--csv -x.csv`): "--" would not help it, its own form does
            option = re.fullmatch(r"argument (--[\w-]+): expected one argument", message)
            other = f"{option.group(1)}={dashed[0]}" if option else "put -- before the file names"
            message += (f" ({dashed[0]} is a file, read as an option since its name begins with '-': write "
                        f"./{dashed[0]}, or {other})")
        super().error(message)


def named_path(text: str) -> Path:
    """An argparse type: a path, refused where empty (an unset variable in a script, `--out "$OUT"`): as Path("") it
    was the current folder, which `wbc evaluate --out ""` filled with its files."""
    if not text:
        raise argparse.ArgumentTypeError("an empty name: give a file or folder (an unset variable in a script?)")
    return Path(text)


def model_name(text: str) -> str:
    """An argparse type: --model, refused where empty (it was looked for as model.onnx in the current folder)."""
    if not text:
        raise argparse.ArgumentTypeError("an empty name: give a model folder or its .onnx, or leave --model out "
                                         "for the shipped one")
    return text


_DEFAULT_DATA = "WBC_DATA, else ../shared/data/blood-cells from the project's folder, not the current one"
DATA_HELP = f"data set folder (default: {_DEFAULT_DATA})"
# A training run keeps the folder it was trained on: its export, evaluation and resume use it again.
RUN_DATA_HELP = (f"data set folder (default: the one a training run, or a model exported from its maker's own "
                 f"images, was trained on, else {_DEFAULT_DATA})")
DONE_OR_ERROR = "exit status: 0 done; 2 an error, named on stderr; 130 interrupted (Ctrl+C or SIGTERM); 141 the reader of the output went away"


QUIET_HELP = "no progress bars (none is drawn where stderr is not a terminal: a log, a pipe)"


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="wbc", description="White blood cell classification: train, evaluate, export, predict.")
    p.add_argument("--version", action="version", version=f"wbc {__version__}")
    # More threads than CPUs only slow a CPU run, and ONNX Runtime allocates for every thread asked.
    threads = whole_number(1, _usable_cpus(), "the CPUs this process may use")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="get or check the data set")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    dl = dsub.add_parser("download", help="fetch paultimothymooney/blood-cells from Kaggle with kagglehub",
                         epilog=DONE_OR_ERROR)
    dl.add_argument("--out", type=named_path, default=None, help="copy it here (default: kagglehub's cache)")
    dl.set_defaults(func=cmd_data_download)
    ck = dsub.add_parser("check", help="find the images and count files and cells per split",
                         epilog="exit status: 0 done; 1 with --verify, files that cannot be read (named above it), "
                                "or a TRAIN class folder with no images; "
                                "2 an error, named on stderr; 130 interrupted (Ctrl+C or SIGTERM); 141 the reader of the output went away")
    ck.add_argument("--data", type=named_path, help=DATA_HELP)
    ck.add_argument("--verify", action="store_true", help="also decode every image and name the bad ones")
    ck.set_defaults(func=cmd_data_check)
    so = dsub.add_parser("sources", help="match every file to the original field (the real cell) it was made from",
                         epilog=DONE_OR_ERROR)
    so.add_argument("--data", type=named_path, help=DATA_HELP)
    so.add_argument("--out", type=named_path, help="table to write, gzipped: name it .csv.gz (default: the one shipped in "
                    "the package, which a data set lacking some of its files may not replace); linked_fields.csv is "
                    "written beside it (the fields the originals show under two labels), replacing one there. An "
                    "existing file there, at its .partial or at linked_fields.csv beside it, that this command did not write "
                    "is refused")
    so.add_argument("--workers", type=whole_number(1), default=2, help="processes (default: 2)")
    so.add_argument("--reuse", action="store_true", help="keep the fields of files the table at --out already matched, "
                    "and those of an interrupted build (kept beside it as .partial)")
    so.set_defaults(func=cmd_data_sources)

    t = sub.add_parser("train", help="train a network on TRAIN with a cell-grouped validation split",
                       epilog=DONE_OR_ERROR)
    t.add_argument("--model", choices=["wbcnet", "seed"], help="network (default: wbcnet)")
    t.add_argument("--out", type=named_path,
                   help="run folder (default: runs/<model>-seed<seed>, with -fold<K> or -all for those runs)")
    t.add_argument("--data", type=named_path, help=f"{DATA_HELP}; --resume keeps the run's unless given")
    t.add_argument("--epochs", type=int, help="maximum epochs (default: 80 wbcnet, 50 seed)")
    t.add_argument("--lr", type=float, help="peak learning rate (default: 2e-3 wbcnet, 1e-4 seed)")
    t.add_argument("--batch-size", type=int, help="default: 64")
    # recipe.OPTIMIZERS, written out so that the parser needs no torch (a test compares them).
    t.add_argument("--optimizer", choices=["adamw", "adam", "sgd"],
                   help="adamw, adam or sgd (Nesterov momentum 0.9) (default: adamw wbcnet, adam seed)")
    t.add_argument("--seed", type=int, help="seed of the split, shuffling and augmentation (default: 0)")
    t.add_argument("--split-seed", type=int, help="seed of the validation split alone (default: --seed)")
    t.add_argument("--fold", type=int, help="which cell-grouped fold to hold out, 0..k-1 with k = 1/val-fraction "
                   "(default: 0); folds 0..4 under one split seed cross-validate TRAIN")
    t.add_argument("--all-cells", action="store_true",
                   help="hold out no validation cells: train on all of TRAIN for exactly --epochs, for a recipe "
                        "that cross-validation (benchmarks/cv.py) has fixed; export it with --calibration")
    t.add_argument("--teacher", type=named_path, action="append",
                   help="a finished run (folder with best.pt) to distil from; repeat for an ensemble. "
                        "Teachers must hold out the same validation cells (same --split-seed)")
    t.add_argument("--distill", type=float, help="weight of the teachers' soft targets (default: 0.7)")
    t.add_argument("--patience", type=int, help="early stopping patience in epochs (default: 20 wbcnet, 10 seed)")
    t.add_argument("--val-fraction", type=float, help="share of TRAIN's cells held out for validation: one of "
                   "round(1 / share) cell-grouped folds, so 0.2 holds out 1 of 5, 0.34 1 of 3 and 0.4 to 0.49 1 of 2 "
                   "(below 0.5; default: 0.2)")
    t.add_argument("--limit-cells", type=int, help="use only the first N cells of each class (quick runs; at least "
                   "one per fold: 5 with the default --val-fraction)")
    t.add_argument("--threads", type=threads, help="PyTorch CPU threads (default: 2)")
    t.add_argument("--device", help="train on this torch device: cpu (default), or cuda (cuda:N) where a GPU and a "
                   "CUDA build of torch are present; a GPU run differs from a CPU run in the last digits")
    # recipe.AUGMENT's keys and "none", written out so that the parser needs no torch (a test compares them).
    t.add_argument("--augment", choices=["robust", "robust-wide", "robust-erase", "robust-exposure",
                                         "robust-overexposed", "robust-erase-overexposed", "robust-erase-sharp",
                                         "basic", "none"],
                   help="augmentation recipe (default: robust-erase for wbcnet, basic for seed; robust: without "
                        "cutout; robust-wide: twice the "
                        "stain jitter; robust-erase: with cutout; robust-exposure: brightness x0.55-1.45 and 15%% "
                        "white-balance jitter; robust-overexposed: a quarter of the images overexposed x1.15-1.5 "
                        "and clipped; robust-erase-overexposed: robust-erase with that quarter; robust-erase-sharp: "
                        "robust-erase warped bicubic, its edge repeated rather than mirrored)")
    t.add_argument("--mixup", type=float, metavar="ALPHA",
                   help="blend pairs of training images and their labels, weight ~ Beta(ALPHA, ALPHA); 0 is off "
                        "(default: 0.4 for wbcnet, off for seed)")
    t.add_argument("--label-smoothing", type=float, metavar="EPS",
                   help="share of each target spread over the other classes (default: 0.2 for wbcnet, 0 for seed)")
    t.add_argument("--pair-smoothing", type=float, metavar="EPS",
                   help="share of an eosinophil's target moved to neutrophil and back, on top of label smoothing; "
                        "below (1 - label smoothing) / 2 (default: 0)")
    t.add_argument("--weight-decay", type=float, metavar="WD",
                   help="the optimizer's weight decay (AdamW's is decoupled; default: 5e-4 wbcnet, 0 seed)")
    t.add_argument("--ema", type=float, metavar="DECAY",
                   help="keep an exponential moving average of the weights (decay per step, e.g. 0.998) and "
                        "validate and save it as the model (default: off)")
    t.add_argument("--low-res", type=int, nargs=2, metavar=("PX", "EPOCHS"),
                   help="progressive resizing: train the first EPOCHS epochs on PX x PX inputs, the rest at full "
                        "size; an epoch's work shrinks with (PX / input size) squared (default: 64 64 for wbcnet, "
                        "kept at 4/5 of the schedule when --epochs changes; off for seed; 0 0 turns it off)")
    t.add_argument("--low-res-antialias", action="store_true",
                   help="with progressive resizing (wbcnet's default, or --low-res): shrink the crops with an antialiasing filter before the low-resolution "
                        "warp, as a camera of lower resolution would, instead of sampling them sparsely")
    t.add_argument("--context", type=int, metavar="PX",
                   help="cache PX px of field (in the network's input px) around each training crop, so that "
                        "rotations and zoom-outs show real field rather than mirrored; a multiple of 3 for the "
                        "default crop (default: 0)")
    t.add_argument("--window", type=int, metavar="PX",
                   help="crop PX x PX source pixels around the cell (resized to the network's input; default: 160)")
    t.add_argument("--input-size", type=int, metavar="PX",
                   help="resize the crop to PX x PX for the network (default: 96; FLOPs grow with its square)")
    t.add_argument("--widths", type=int, nargs="+", metavar="C",
                   help="wbcnet's channels per stage (default: 24 48 96)")
    t.add_argument("--skip-bad", action="store_true", help="leave out unreadable images instead of stopping")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    t.add_argument("--dry-run", action="store_true",
                   help="one epoch on a few cells per class (5 with the default --val-fraction: one per fold; two "
                        "epochs for progressive resizing, one at each size), to check the set-up; in a temporary folder, "
                        "removed afterwards, unless --out is given")
    t.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="metrics, plots and report.md for a model on TEST or a folder",
                       epilog=DONE_OR_ERROR)
    e.add_argument("--model", type=model_name, help="model folder, .onnx, training checkpoint .pt or a run folder (its best.pt) (default: WBC_MODEL, else the shipped model)")
    e.add_argument("--split", choices=["TEST", "TEST_SIMPLE", "TRAIN"],
                   help="the data set's split to score: TEST (default) is the one published figures use; TEST_SIMPLE "
                        "71 unaugmented files of 66 of TEST's 68 cells; TRAIN the images the model learnt from, so "
                        "it flatters")
    e.add_argument("--folder", type=named_path,
                   help="evaluate this folder of class folders instead of a split; with an exported model, each photo "
                        "is also screened as wbc predict screens it, and the report says how many it would give a "
                        "type and how well it reads those")
    e.add_argument("--data", type=named_path, help=RUN_DATA_HELP)
    e.add_argument("--out", type=named_path, default=Path("evaluation"), help="output folder (default: evaluation)")
    e.add_argument("--skip-bad", action="store_true", help="leave out unreadable images instead of stopping")
    e.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    e.set_defaults(func=cmd_evaluate)

    x = sub.add_parser("export", help="write model.onnx and model.json from a run, checked against PyTorch",
                       epilog=DONE_OR_ERROR)
    x.add_argument("run", type=named_path, help="run folder (its best.pt) or a checkpoint .pt")
    x.add_argument("--out", type=named_path, default=Path("export"), help="output folder (default: export)")
    x.add_argument("--data", type=named_path, help=f"{RUN_DATA_HELP}: its images check the export and --evaluate scores TEST; "
                   "--out may not lie in its splits")
    x.add_argument("--evaluate", action="store_true", help="also evaluate on TEST into the card and report.md (a "
                   "failed export or evaluation leaves the folder's model as it was)")
    x.add_argument("--skip-bad", action="store_true", help="leave out unreadable images (validation, parity check "
                   "and --evaluate's TEST) instead of stopping; for a run trained with --skip-bad, it is on for "
                   "validation and the parity check")
    x.add_argument("--no-tta", action="store_true", help=f"predict from one view instead of the {TEST_TIME_VIEWS} rotations")
    x.add_argument("--no-calibrate", action="store_true", help="keep temperature 1 instead of fitting it on validation")
    x.add_argument("--calibration", type=named_path, metavar="CV_JSON",
                   help="take the temperature and review threshold from a cross-validation of the run's recipe "
                        "(the cv.json of benchmarks/cv.py) instead of the run's validation cells")
    x.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    x.add_argument("--replace-shipped", action="store_true",
                   help="--out may be the shipped model's folder (models/default), which this then replaces")
    x.add_argument("--match-white", action="store_true",
                   help="the card matches a field's white to the data set's before the network where it lies below "
                        "the data set's range (a dimmer or tinted photo)")
    x.set_defaults(func=cmd_export)

    pr = sub.add_parser(
        "predict", help="classify image files or folders with ONNX Runtime",
        formatter_class=argparse.RawDescriptionHelpFormatter,  # the epilog's paragraphs and list as written
        epilog="\n\n".join(textwrap.fill(para, 79) for para in (
            # The verdicts as wbc.predict names them (a test holds them to it; importing it here would slow --help).
            "verdicts (the table's last column): confident: typed at or above the model card's review "
            "threshold; needs review: typed below it, or overexposed: check it by eye (the runner-up type "
            "follows); not a white blood cell, cannot judge: no type given and left out of the count (why "
            "follows).",
            "Only the four types are known: a basophil, a blast or any other cell is read as one of them.",
            "Two or more images end with a differential count: each share with its 95% limits (the counting "
            "error alone), and its place in the adult range from 100 images on.",
            "exit status: 0 every file was read (those called not a white cell included); 1 some file could "
            "not be used, a path names no image, or a link or folder in a folder could not be followed (each "
            "has its row, and the rest are classified); 2 a usage error, no path naming an image at all, a bad "
            "model or a CSV that cannot be written; 130 interrupted, by Ctrl+C or SIGTERM (the files read are reported); 141 the "
            "reader of the output went away")))
    pr.add_argument("paths", nargs="+", help="image files or folders (searched recursively); a name starting with "
                                             "'-' is given as ./-name, or after --")
    pr.add_argument("--model", type=model_name, help="model folder or .onnx (default: WBC_MODEL, else the shipped model)")
    pr.add_argument("--csv", type=named_path,
                    help="also write file, class, confidence, all probabilities, the flags, the cells' places and the "
                         "verdict here (its folder is made if missing)")
    pr.add_argument("--threads", type=threads, help="ONNX Runtime threads (default: all cores)")
    pr.add_argument("--single-view", action="store_true",
                    help="one view instead of the card's test-time views: faster, a little less accurate")
    pr.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    pr.set_defaults(func=cmd_predict)

    a = sub.add_parser("app", help="start the web app (Streamlit) on the shipped model",
                       epilog="exit status: 0 stopped (Ctrl+C, or a service manager's SIGTERM); 2 the model, port "
                              "or address cannot be used, named on stderr before the server starts")
    a.add_argument("--model", type=model_name, help="model folder or .onnx (default: WBC_MODEL, else the shipped model)")
    a.add_argument("--port", type=whole_number(1, 65535, "a TCP port"), default=8501, help="default: 8501")
    a.add_argument("--address", default="localhost", help="default: localhost; 0.0.0.0 to serve the network")
    a.set_defaults(func=cmd_app)
    return p
