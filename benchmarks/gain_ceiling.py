"""`--gain-ceiling`, shared by the benchmarks that compare ceilings on the gains the screening's second
look and the white matching may apply (wbc.white_balance.GAIN_RANGE)."""

from __future__ import annotations

import argparse


def add_option(ap: argparse.ArgumentParser) -> None:
    from wbc.white_balance import GAIN_RANGE

    ap.add_argument("--gain-ceiling", type=float, metavar="G",
                    help="the largest gain the screening's second look and the white matching may apply "
                         f"(default: wbc.white_balance.GAIN_RANGE's, {GAIN_RANGE[1]:g}), for comparing ceilings")


def apply(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Set the ceiling for this process, if --gain-ceiling was given."""
    import wbc.white_balance

    if args.gain_ceiling is None:
        return
    low = wbc.white_balance.GAIN_RANGE[0]
    if not low < args.gain_ceiling <= 16:
        ap.error(f"--gain-ceiling must be above {low:g} and at most 16")
    wbc.white_balance.GAIN_RANGE = (low, args.gain_ceiling)  # read by gains_allowed at each call
