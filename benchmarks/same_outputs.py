"""Does a change to the prediction path leave its outputs as they were? Dump them at two commits, compare.

    PYTHONPATH=<worktree of the old commit>/src python benchmarks/same_outputs.py dump old.npz [--every 7]
    python benchmarks/same_outputs.py dump new.npz [--every 7]
    python benchmarks/same_outputs.py compare old.npz new.npz

`dump` runs the shipped model's `Predictor.analyse` (find the cell, shrink a magnified field, crop,
screen, match the white) and its calibrated 4-view probabilities on every Nth file of TRAIN and
TEST (`--splits`), as photographed and under every shift of `wbc.robustness` (the issue's and the extra ones),
and stores each analysis's crop, screening fields and probabilities. `compare` prints how many
analyses differ in each, and fails (exit 1) if any does; a file that is not a dump is exit 2.

A dump holds its own commit's shifts: `robustness.contrast` keeps black fill black since 0.11.0, so a
dump made before that differs from a later one on the three contrast shifts whatever the path does.
"""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from dataclasses import astuple, fields
from pathlib import Path

import numpy as np


def dump(out: Path, every: int, data: str | None, model: str | None, splits: list[str]) -> None:
    from wbc.progress import bar

    from wbc.data import list_split
    try:
        from wbc.decode import load_image
    except ImportError:  # an earlier commit's src (the old side of a comparison): decoding was in wbc.imaging
        from wbc.imaging import load_image
    try:
        from wbc.folders import find_images_root
        from wbc.photo_checks import Screening
    except ImportError:  # an earlier commit's src: finding the images was in wbc.data, Screening in wbc.screening
        from wbc.data import find_images_root
        from wbc.screening import Screening
    from wbc.io import atomic_write_bytes
    from wbc.predict import Predictor
    from wbc.robustness import EXTRA_SHIFTS, SHIFTS

    pred = Predictor(model)
    root = find_images_root(data)
    samples = [s for split in splits for s in list_split(root, split)[::every]]
    shifts = {**SHIFTS, **EXTRA_SHIFTS}
    crops, screens, keys = [], [], []
    for smp in bar(samples, show=True, desc="analyse"):
        rgb = load_image(smp.path)
        for name, shift in shifts.items():
            x, sc = pred.analyse(shift(rgb))
            crops.append(x)
            screens.append([str(v) for v in astuple(sc)])  # exact: repr of each float, the reason as it reads
            keys.append(f"{smp.path.name} | {name}")
    x = np.stack(crops)
    probs = pred.predict_probs(x)
    buf = io.BytesIO()
    np.savez_compressed(buf, crops=x, screens=np.array(screens, dtype=str), probs=probs, keys=np.array(keys),
                        screen_fields=np.array([f.name for f in fields(Screening)]))
    atomic_write_bytes(out, buf.getvalue())  # no half-written dump for `compare` to read
    print(f"{out}: {len(keys)} analyses ({len(samples)} files x {len(shifts)} ways)")


def read_dump(path: Path) -> dict[str, np.ndarray]:
    """A dump's arrays; ConfigError naming the file where it is no dump (a missing file, a folder, a damaged or
    other file were tracebacks with exit status 1, which reads as "the outputs differ")."""
    from wbc.errors import ConfigError

    names = ("keys", "crops", "probs", "screens", "screen_fields")
    try:
        z = np.load(path)
        if not isinstance(z, np.lib.npyio.NpzFile):  # one array (.npy): not a context manager, a TypeError traceback
            raise ValueError("one array, not the arrays of a dump")
        with z:
            return {k: z[k] for k in names}
    except IsADirectoryError:
        raise ConfigError(f"{path}: a folder; name a file that `same_outputs.py dump` wrote") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read ({e.strerror or e})") from None
    except (ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise ConfigError(f"{path}: not a dump of `same_outputs.py dump` ({type(e).__name__}: {e})") from None


def compare(a: Path, b: Path) -> int:
    za, zb = read_dump(a), read_dump(b)
    if not np.array_equal(za["keys"], zb["keys"]):
        print(f"{a} and {b} hold different analyses (another --every or data set)", file=sys.stderr)
        return 2
    keys = za["keys"]
    crops = (za["crops"] != zb["crops"]).reshape(len(keys), -1).any(1)
    pa, pb = za["probs"], zb["probs"]
    probs = ~((pa == pb) | (np.isnan(pa) & np.isnan(pb))).all(1)  # NaN on both sides counts as the same
    largest = float(np.nanmax(np.abs(pa - pb), initial=0.0))
    screens = za["screens"] != zb["screens"]  # (N, fields)
    names = list(za["screen_fields"])
    print(f"{len(keys)} analyses: crops differ in {int(crops.sum())}, probabilities in {int(probs.sum())} "
          f"(largest difference {largest:.2e})")
    for j, name in enumerate(names):
        print(f"  screening {name}: differs in {int(screens[:, j].sum())}")
    changed = crops | probs | screens.any(1)
    for k in keys[changed][:10]:
        print("  e.g. " + str(k))
    return 1 if changed.any() else 0


def main(argv: list[str] | None = None) -> int:
    from wbc.cli import whole_number

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("out", type=Path)
    d.add_argument("--every", type=whole_number(1), default=7)
    d.add_argument("--data", help="data set folder (default: WBC_DATA, else ../shared/data/blood-cells)")
    d.add_argument("--model", help="model folder (default: WBC_MODEL, else the shipped model)")
    d.add_argument("--splits", nargs="+", default=["TRAIN", "TEST"], help="default: %(default)s")
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "dump":
        try:  # before the minutes of analyses; an old commit's src (the A side) may not have it
            from wbc.io import check_writable_file
        except ImportError:
            check_writable_file = None
        if check_writable_file is not None:
            check_writable_file(args.out)
        dump(args.out, args.every, args.data, args.model, args.splits)
        return 0
    return compare(args.a, args.b)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
