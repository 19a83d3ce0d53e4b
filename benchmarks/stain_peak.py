"""Does `wbc.imaging.stain_peak` (the full-size blur only around the shrunk field's peak) find the
peak of the whole field's blur? And how much faster is it?

    python benchmarks/stain_peak.py [--data PATH] [--splits TRAIN TEST] [--every 1] [--magnified 2]

For every file: the row, column and value of `stain_peak` against `whole_stain_peak` (the maximum of
the whole stain map's blur); how far below the peak's value its cell reads on `coarse_stain` (what
COARSE_MARGIN must exceed); and how many files `stain_peak` searched twice. With
`--magnified F` each file is also enlarged F times first, as another microscope's field would be
before `locate_at_data_scale` shrinks it. Then both ways timed in alternation on the files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import time_interleaved  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    from wbc.progress import bar

    from wbc.data import list_split
    from wbc.decode import load_image
    from wbc.folders import find_images_root
    from wbc.imaging import COARSE_MARGIN, COARSE_REDUCE, coarse_stain, stain_peak, whole_stain_peak
    from wbc.pixels import stain_map
    from wbc.robustness import scale as enlarge

    from wbc.cli import whole_number

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="data set folder (default: WBC_DATA, else ../shared/data/blood-cells)")
    ap.add_argument("--splits", nargs="+", choices=["TRAIN", "TEST", "TEST_SIMPLE"], default=["TRAIN", "TEST"],
                    help="default: TRAIN TEST")
    ap.add_argument("--every", type=whole_number(1), default=1, help="every k-th file (default: 1)")
    ap.add_argument("--magnified", type=float, nargs="*", default=[], help="also each file enlarged this many times (above 1; default: none)")
    ap.add_argument("--timed", type=whole_number(0), default=300,
                    help="files timed, each way in alternation (0: no timing; default: 300)")
    args = ap.parse_args(argv)
    if bad := [m for m in args.magnified if not 1 < m < float("inf")]:  # 0 or -2 was a ValueError traceback
        ap.error(f"--magnified {' '.join(f'{m:g}' for m in bad)}: an enlargement is a number above 1")
    root = find_images_root(args.data)
    samples = [s for split in args.splits for s in list_split(root, split)[:: args.every]]

    def margins(s: np.ndarray, peak: tuple[int, int, float]) -> tuple[int, int]:
        """How far below the whole blur's peak value its cell reads on the coarse map (what
        COARSE_MARGIN must exceed), and whether `stain_peak` had to search a second time (the
        coarse maximum above the peak's value)."""
        coarse = coarse_stain(s)
        return int(peak[2]) - int(coarse[peak[0] // COARSE_REDUCE, peak[1] // COARSE_REDUCE]), int(coarse.max() > peak[2])

    for scale in [1.0, *args.magnified]:
        same, errors, differ, maps = 0, [], [], []  # errors: the margin each file needs
        for smp in bar(samples, show=True, desc=f"x{scale:g}"):
            rgb = load_image(smp.path)
            if scale != 1.0:
                rgb = enlarge(scale)(rgb)
            s = stain_map(rgb)
            if len(maps) < args.timed:
                maps.append(s)
            a, b = whole_stain_peak(s), stain_peak(s)
            same += a == b
            if a != b:
                differ.append(f"{smp.path.name}: whole field {a}, stain_peak {b}")
            errors.append(margins(s, a))
        below, again = np.array(errors).T
        print(f"x{scale:g}: {len(samples)} files of {' + '.join(args.splits)} (every {args.every}): "
              f"stain_peak equals the whole field's peak on {same} ({same / len(samples):.2%}); the peak's cell "
              f"reads at most {below.max()} levels below the peak on the coarse map (99th pct "
              f"{np.percentile(below, 99):.0f}; margin {COARSE_MARGIN}); searched twice in {int(again.sum())}")
        for line in differ[:10]:
            print("  " + line)
        if not maps:
            continue
        # Each way over all the fields, in turn round after round, so the machine's drift falls on both.
        med = time_interleaved({"whole field": lambda: [whole_stain_peak(s) for s in maps],
                                "stain_peak": lambda: [stain_peak(s) for s in maps]}, rounds=5, seconds_per_round=0.0)
        full, fast = (1e3 * med[name] / len(maps) for name in ("whole field", "stain_peak"))
        print(f"x{scale:g}: over {len(maps)} fields, median of 5 rounds: whole field {full:.3f} ms, "
              f"stain_peak {fast:.3f} ms ({full / fast:.2f}x)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
