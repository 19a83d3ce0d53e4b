"""How often the 95% intervals that `wbc evaluate` prints contain the true value, on TEST's layout: a simulation.

    python benchmarks/interval_coverage.py [--sims 6000] [--seed 0] [--layout {test,synthetic}] [--data DIR]

TEST's 2,487 files are views of only 68 cells (EOSINOPHIL 13, LYMPHOCYTE 6, MONOCYTE 4, NEUTROPHIL 45), with 12 to
156 views a cell, and a model's errors on it come in whole cells. `wbc evaluate` gives accuracy and macro-F1 over
files 95% percentile intervals from resampling whole cells (`wbc.metrics.bootstrap_over_cells`, 2,000 resamples of
seed 0), the same for ECE, and (since wbc 0.25, after this script's first run; a bootstrap before) the exact
Clopper-Pearson limits for the share of cells read right. This script draws SIMS data sets of TEST's layout
from a known truth, computes each interval as the shipped code does (the resamples of `cell_resamples(68, 2000, 0)`,
`bootstrap_over_cells`, `pool_cells`, `expected_calibration_error`, and `counting_limits` for the exact Clopper-Pearson
limits of k of n cells; checked against `compute_metrics` on the first data set) and counts how often each contains
the truth, and on which side it misses. Nominal: 95%, 2.5% each side.

Layout. `--layout test` (default): the views of each cell of TEST (`list_split`, grouped by `Sample.cell`), from
--data, else WBC_DATA, else the shared copy beside the project; where no data set is found it says so and uses the
synthetic layout. `--layout synthetic`: the same cells per class (13/6/4/45) with 620 files per class split as evenly
as they go (47-48, 103-104, 155, 13-14 views a cell); TEST's own has three neutrophils of 26 views.

Truth model (one data set; CLASSES in their index order, `q`, `p`, `lam` from --accuracy, --view-error, --ece):
  - Each cell c draws a wrongness w_c = 0.7 * Beta(k q / 0.7, k (1 - q / 0.7)) (mean q, in [0, 0.7]; k from
    --concentration, 5: the calibrated confidences' quartiles are then 0.84, 0.92, 0.97, the shipped model's on TEST
    0.88, 0.93, 0.95); it is a wrong cell with probability w_c: every one of its views is read as one other class
    (drawn uniformly of the three).
    Otherwise each of its views is read wrong with probability p, as a class drawn uniformly of the three others.
    Marginally each cell is wrong with probability q, independently: whole-cell errors, as TEST's mostly are.
    q = 1 - accuracy / (1 - p), so that the expected accuracy over files is --accuracy (0.89, near the shipped
    model's 0.896); p = 0.01.
  - Each view's probability of being right is r_c = (1 - w_c)(1 - p), the same for all views of cell c. The
    probabilities (4,) of a view give the class it is read as the confidence s and (1 - s) / 3 to each other class:
    calibrated, s = r_c (P(right | s) = s: true ECE 0); overconfident, s = r_c + lam (1 - r_c), every bin's
    confidence above its accuracy, so that the true ECE is lam (1 - E[accuracy]) = --ece (0.03) whatever the bins.
    Which views are right does not depend on s: the two settings share every other figure.

Truths (the population values for this layout: cells drawn as above, every cell of the layout's views):
  - accuracy over files: (1 - q)(1 - p) exactly. With the views per cell fixed, the expectation of the accuracy
    statistic and the population's view-weighted accuracy (right views / views over cells of this class mix) are
    one number: the denominator, 2,487 files, does not vary.
  - macro-F1 over files: not linear in the confusion matrix, so the two differ and both are rows: the expectation of
    the statistic on a data set of this layout (a Monte Carlo of TRUTH_DRAWS data sets, drawn by a separate,
    vectorized path of the same model), and the population macro-F1, that of the expected confusion matrix (exact),
    which the statistic tends to with ever more cells of the same class mix: the value a percentile bootstrap's
    interval is meant to hold.
  - share of cells read right (the pooled probabilities' argmax, `pool_cells`): (1 - q) times the chance that a cell
    that is not a wrong cell keeps its plurality of right views (by the same Monte Carlo; 1 unless p is large).
    k of the 68 is then binomial, as the Clopper-Pearson limits assume.
  - ECE: 0 (calibrated) and --ece (overconfident): the binned ECE of the population, 15 equal bins.
The mean estimate column is each figure's mean over the simulated data sets (for ECE its bias: it is never below 0).

Coverage is the share of data sets whose interval holds the truth (ends included), with its exact 95% binomial
limits (`counting_limits`); below: the truth lay below the interval's lower end, above: over its upper end.
`--accuracy 1 --view-error 0 --ece 0` is the degenerate truth (every view right, confidence 1): every interval covers.
Trains nothing and reads no image: with --layout test only the file names of TEST.

Found on TEST's layout (6000 data sets, defaults; 39 s on 2 idle cores, 161 s beside other work): accuracy's interval held the truth in 84% of data sets,
macro-F1's in 86%, the truth lying below the interval's lower end in 15% and 13% (a data set whose few big cells,
monocytes of 155 views and lymphocytes of 104, are all right cannot resample the loss of one); the share of cells,
95% by the bootstrap (3.0% below, 1.8% above) and 97.7% by Clopper-Pearson. Both turn with the truth: at --accuracy
0.94 the bootstrap held the share of cells in 86%, at 0.97 in 75% (Clopper-Pearson 98-99%), accuracy's in 72% and
62%. ECE's interval never held a calibrated model's 0 (the figure averaged 0.092), and held a true 0.03 in 40% at
--concentration 5, 77% at 20 and 94% at 100 (600 data sets each): how far it leans high depends on how spread the
confidences are, which this model only approximates.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

N_BOOT, BOOT_SEED = 2000, 0  # as `wbc evaluate` resamples (`compute_metrics`' defaults)
CHUNK = 25  # data sets a task: each chunk has its own random stream, the figures do not depend on --workers
TRUTH_DRAWS = 100_000
WRONGNESS_SPAN = 0.7  # a cell's wrongness lies in [0, 0.7]: its views' confidence stays above 1/4 (the argmax)
CONCENTRATION = 5.0  # the Beta's a + b (module docstring)
SYNTHETIC_FILES = 620  # files per class, about TEST's (620-624)
SYNTHETIC_CELLS = (13, 6, 4, 45)  # TEST's cells per class, in CLASSES order

# (figure, interval, truth): the table's rows, in the order `figures` returns their (estimate, low, high).
ROWS = (
    ("accuracy over files", "bootstrap over cells (accuracy_ci95)", "E[accuracy] = population accuracy"),
    ("macro-F1 over files", "bootstrap over cells (macro_f1_ci95)", "E[macro-F1 statistic]"),
    ("macro-F1 over files", "bootstrap over cells (macro_f1_ci95)", "population macro-F1 (of E[confusion])"),
    ("cells read right", "bootstrap over cells (wbc 0.24's cell_accuracy_ci95)", "P(cell right)"),
    ("cells read right", "Clopper-Pearson (counting_limits: cell_accuracy_ci95)", "P(cell right)"),
    ("ECE, calibrated", "bootstrap over cells (ece_ci95)", "population ECE, 0"),
    ("ECE, overconfident", "bootstrap over cells (ece_ci95)", "population ECE (--ece)"),
)


@dataclass(frozen=True)
class Layout:
    """Cells in the order of their names (`names`), each one's class index and views; `source` says whence."""

    classes: np.ndarray  # (C,) int
    views: np.ndarray  # (C,) int
    source: str

    @property
    def names(self) -> list[str]:
        from wbc.info import CLASSES

        return [f"{CLASSES[k]}/{i:03d}" for i, k in enumerate(self.classes.tolist())]

    def describe(self) -> str:
        from wbc.info import CLASSES

        per = ", ".join(f"{CLASSES[k]} {int((self.classes == k).sum())} cells/{int(self.views[self.classes == k].sum())} "
                        "files" for k in range(len(CLASSES)))
        return (f"{self.source}: {int(self.views.sum())} files, {len(self.views)} cells ({per}); "
                f"views per cell {int(self.views.min())}-{int(self.views.max())}")


def layout_of(counts: dict[tuple[int, str], int], source: str) -> Layout:
    """A Layout from views per (class index, cell), the cells sorted by class, then by name."""
    keys = sorted(counts)
    return Layout(np.array([k for k, _ in keys]), np.array([counts[key] for key in keys]), source)


def split_layout(data: str | None) -> Layout:
    """The views of each cell of TEST (`Sample.cell`). DataError where the data set is not found."""
    from collections import Counter

    from wbc.data import list_split
    from wbc.folders import find_images_root

    samples = list_split(find_images_root(data), "TEST")
    return layout_of(dict(Counter((s.label, s.cell) for s in samples)), "TEST's layout")


def synthetic_layout() -> Layout:
    """TEST's cells per class, SYNTHETIC_FILES files per class split as evenly as they go."""
    counts = {}
    for k, n in enumerate(SYNTHETIC_CELLS):
        for i in range(n):
            counts[(k, f"{i:03d}")] = SYNTHETIC_FILES // n + (i < SYNTHETIC_FILES % n)
    return layout_of(counts, "synthetic layout")


@dataclass(frozen=True)
class Truth:
    """The truth model's parameters (module docstring): cell wrongness q, view error p, overconfidence lam."""

    q: float
    p: float
    lam: float
    concentration: float = CONCENTRATION

    @property
    def accuracy(self) -> float:
        return (1 - self.q) * (1 - self.p)

    def describe(self) -> str:
        return (f"each cell wrong as a whole with probability q = {self.q:.4f} (its wrongness w ~ "
                f"{WRONGNESS_SPAN} Beta, mean q, a + b = {self.concentration:g}), else each view wrong with probability "
                f"p = {self.p:g}; views right with probability r = (1 - w)(1 - p), stated as the confidence "
                f"(calibrated) or as r + {self.lam:.4f} (1 - r) (overconfident)")


def truth_for(accuracy: float, view_error: float, ece: float, concentration: float = CONCENTRATION) -> Truth:
    """The Truth whose expected accuracy over files is `accuracy` and overconfident ECE `ece`. ValueError
    where there is none."""
    if not 0 <= view_error <= 0.1:
        raise ValueError(f"--view-error {view_error}: choose 0 to 0.1 (a view's confidence must stay above 1/4)")
    q = 1 - accuracy / (1 - view_error)
    if not 0 <= q < WRONGNESS_SPAN:
        raise ValueError(f"--accuracy {accuracy}: choose {(1 - WRONGNESS_SPAN) * (1 - view_error):.3f} to "
                         f"{1 - view_error:g} (1 - --view-error) ")
    if not 0 <= ece <= 1 - accuracy:
        raise ValueError(f"--ece {ece}: choose 0 to {1 - accuracy:.4f} (1 - --accuracy: the confidence cannot "
                         "pass 1)")
    if not concentration > 0:
        raise ValueError(f"--concentration {concentration}: choose above 0")
    return Truth(q, view_error, ece / (1 - accuracy) if accuracy < 1 else 0.0, concentration)


def wrongness(truth: Truth, rng: np.random.Generator, size: int | tuple[int, ...]) -> np.ndarray:
    """Each cell's probability of being a wrong cell (mean q)."""
    if truth.q == 0:
        return np.zeros(size)
    mean = truth.q / WRONGNESS_SPAN
    return WRONGNESS_SPAN * rng.beta(mean * truth.concentration, (1 - mean) * truth.concentration, size)


def draw_data_set(lay: Layout, truth: Truth, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One data set: true labels (N,), the class each file is read as (N,), each file's chance of being right (N,);
    files in the order of their cells."""
    from wbc.info import NUM_CLASSES

    idx = np.repeat(np.arange(len(lay.views)), lay.views)
    y = lay.classes[idx]
    w = wrongness(truth, rng, len(lay.views))
    wrong_cell = rng.random(len(w)) < w
    wrong_to = (lay.classes + rng.integers(1, NUM_CLASSES, len(w))) % NUM_CLASSES
    view_to = (y + rng.integers(1, NUM_CLASSES, len(y))) % NUM_CLASSES
    pred = np.where(wrong_cell[idx], wrong_to[idx], np.where(rng.random(len(y)) < truth.p, view_to, y))
    return y, pred, ((1 - w) * (1 - truth.p))[idx]


def probabilities(pred: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """(N, 4): the confidence on the class read, the rest shared evenly by the other three."""
    from wbc.info import NUM_CLASSES

    probs = np.repeat(((1 - confidence) / (NUM_CLASSES - 1))[:, None], NUM_CLASSES, 1)
    probs[np.arange(len(pred)), pred] = confidence
    return probs


@functools.lru_cache(maxsize=None)
def exact_limits(k: int, n: int) -> tuple[float, float]:
    """`counting_limits(k, n)`, each (k, n) worked out once."""
    from wbc.differential import counting_limits

    return counting_limits(k, n)


def figures(y: np.ndarray, pred: np.ndarray, right: np.ndarray, lam: float, cells: list[str],
            weights: np.ndarray) -> np.ndarray:
    """(len(ROWS), 3): each row's estimate and interval on one data set, as `compute_metrics` computes them."""
    from wbc.info import NUM_CLASSES
    from wbc.metrics import (
        bootstrap_over_cells,
        ci95,
        expected_calibration_error,
        pool_cells,
        scores_from_confusion,
    )

    calibrated, overconfident = probabilities(pred, right), probabilities(pred, right + lam * (1 - right))
    boot = bootstrap_over_cells(y, pred, cells, probs=calibrated, weights=weights)
    over = bootstrap_over_cells(y, pred, cells, probs=overconfident, weights=weights)["ece"]
    cm = np.zeros((1, NUM_CLASSES, NUM_CLASSES))
    np.add.at(cm, (0, y, pred), 1)
    acc, macro = (float(v[0]) for v in scores_from_confusion(cm))
    cell_probs, cell_y, _ = pool_cells(calibrated, y, cells)
    cell_ok = (cell_probs.argmax(1) == cell_y).astype(float)
    cell_acc = float(cell_ok.mean())
    return np.array([
        (acc, *boot["accuracy"]),
        (macro, *boot["macro_f1"]),
        (macro, *boot["macro_f1"]),
        (cell_acc, *ci95(weights @ cell_ok / len(cell_ok))),
        (cell_acc, *exact_limits(int(cell_ok.sum()), len(cell_ok))),
        (expected_calibration_error(calibrated, y), *boot["ece"]),
        (expected_calibration_error(overconfident, y), *over),
    ])


def check_against_compute_metrics(y: np.ndarray, pred: np.ndarray, right: np.ndarray, cells: list[str],
                                  got: np.ndarray) -> None:
    """RuntimeError unless `figures` gives what `compute_metrics` (what `wbc evaluate` prints) does."""
    from wbc.metrics import compute_metrics

    m = compute_metrics(probabilities(pred, right), y, cells, n_boot=N_BOOT, seed=BOOT_SEED)
    want = [(m["accuracy"], *m["accuracy_ci95"]), (m["macro_f1"], *m["macro_f1_ci95"]),
            (m["cell_accuracy"], *m["cell_accuracy_ci95"]), (m["ece"], *m["ece_ci95"])]
    if not np.allclose(got[[0, 1, 4, 5]], np.array(want), rtol=0, atol=1e-12):
        raise RuntimeError(f"the simulation's intervals {got[[0, 1, 4, 5]].tolist()} are not compute_metrics' {want}: "
                           "the script no longer measures what wbc evaluate prints")


def simulate_chunk(job: tuple[Layout, Truth, int, np.random.SeedSequence, bool]) -> np.ndarray:
    """(n, len(ROWS), 3): `figures` of n data sets drawn from one random stream; the first one checked against
    `compute_metrics` where `check`."""
    from wbc.metrics import cell_resamples

    lay, truth, n, seq, check = job
    rng = np.random.default_rng(seq)
    names = lay.names
    if names != sorted(names):  # the resamples' columns are the cells in sorted order
        raise RuntimeError("the layout's cells are not in the order of their names")
    cells = [names[i] for i in np.repeat(np.arange(len(lay.views)), lay.views)]
    weights = cell_resamples(len(names), N_BOOT, BOOT_SEED)  # compute_metrics': the same for every data set
    out = np.empty((n, len(ROWS), 3))
    for i in range(n):
        y, pred, right = draw_data_set(lay, truth, rng)
        out[i] = figures(y, pred, right, truth.lam, cells, weights)
        if check and i == 0:
            check_against_compute_metrics(y, pred, right, cells, out[i])
    return out


def truths(lay: Layout, truth: Truth, draws: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Each row's true value (len(ROWS),), and the Monte Carlo's mean accuracy (a check of its path: the exact
    value is truth.accuracy). Counts per cell and class are drawn at once for `draws` data sets."""
    from wbc.info import NUM_CLASSES
    from wbc.metrics import scores_from_confusion

    K, cls, m = NUM_CLASSES, lay.classes, lay.views
    starts = np.flatnonzero(np.r_[True, cls[1:] != cls[:-1]])  # the cells come sorted by class
    block_class = cls[starts]
    macro_sum = acc_sum = 0.0
    kept_right = kept_cells = 0
    done = 0
    while done < draws:
        s = min(20_000, draws - done)
        wrong = rng.random((s, len(m))) < truth.q
        to = rng.integers(1, K, (s, len(m)))
        e = rng.binomial(m, truth.p, (s, len(m)))
        e1 = rng.binomial(e, 1 / 3)
        e2 = rng.binomial(e - e1, 1 / 2)
        # (s, C, K): each cell's views read as the class o after its own, (class + o) % K, o = 0..3
        by_offset = np.empty((s, len(m), K), dtype=np.int32)
        for o, v in enumerate((m - e, e1, e2, e - e1 - e2)):
            by_offset[..., o] = v
        by_offset[wrong] = 0
        by_offset[wrong, to[wrong]] = np.broadcast_to(m, wrong.shape)[wrong]
        # The confusion matrices (s, K, K): a class's cells summed, their offsets turned into classes.
        sums = np.add.reduceat(by_offset, starts, axis=1)  # (s, classes present, K)
        cm = np.zeros((s, K, K))
        for b, k in enumerate(block_class.tolist()):
            cm[:, k] = np.roll(sums[:, b], k, -1)
        acc, macro = scores_from_confusion(cm)
        acc_sum, macro_sum = acc_sum + acc.sum(), macro_sum + macro.sum()
        # The pooled argmax of a cell whose views state one confidence is its plurality, the first class on a tie:
        # a cell that is not wrong stays right unless a class o after its own has more views, or as many and
        # comes first ((class + o) % K below its class).
        own = by_offset[..., :1]
        first = (cls[:, None] + np.arange(1, K)) >= K  # (C, K - 1)
        lost = ((by_offset[..., 1:] > own) | ((by_offset[..., 1:] == own) & first)).any(-1)
        kept_right, kept_cells = kept_right + int((~lost & ~wrong).sum()), kept_cells + int((~wrong).sum())
        done += s
    # The expected confusion matrix: a class's files right with probability (1 - q)(1 - p), the rest evenly wrong.
    files = np.bincount(cls, weights=m, minlength=K)
    expected = files[:, None] * (1 - truth.accuracy) / (K - 1) * (1 - np.eye(K)) + np.diag(files * truth.accuracy)
    population_f1 = float(scores_from_confusion(expected[None])[1][0])
    cell_right = (1 - truth.q) * (kept_right / kept_cells if kept_cells else 1.0)
    ece_over = truth.lam * (1 - truth.accuracy)
    return (np.array([truth.accuracy, macro_sum / draws, population_f1, cell_right, cell_right, 0.0, ece_over]),
            acc_sum / draws)


def single_threaded() -> None:
    """One BLAS thread in this process: the resamples' small products ran 4 times slower on 2 threads each, their
    processes sharing 2 cores."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def worker_start() -> None:
    """A worker's start: Ctrl+C is its parent's to act on (`wbc.cache.ignore_interrupts`), one BLAS thread."""
    from wbc.cache import ignore_interrupts

    ignore_interrupts()
    single_threaded()


def table(results: np.ndarray, true: np.ndarray) -> list[str]:
    """The markdown table: per row, truth, mean estimate, coverage with its exact limits, misses each side, width."""
    n = len(results)
    lines = ["| figure | interval | truth | true value | mean estimate | coverage (95% limits) | truth below its lower end "
             "| truth above its upper end | mean width |", "|---|---|---|---|---|---|---|---|---|"]
    for r, (figure, interval, name) in enumerate(ROWS):
        est, lo, hi = results[:, r].T
        covered = int(((lo <= true[r]) & (true[r] <= hi)).sum())
        c_lo, c_hi = exact_limits(covered, n)
        lines.append(f"| {figure} | {interval} | {name} | {true[r]:.4f} | {est.mean():.4f} | "
                     f"{covered / n:.3f} ({c_lo:.3f}-{c_hi:.3f}) | {(true[r] < lo).mean():.3f} | "
                     f"{(true[r] > hi).mean():.3f} | {(hi - lo).mean():.4f} |")
    return lines


def main() -> int:
    from wbc.cli import whole_number
    from wbc.errors import DataError

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sims", type=whole_number(1), default=6000,
                    help="simulated data sets (default: 6000, about 3 minutes on 2 shared cores)")
    ap.add_argument("--seed", type=whole_number(0), default=0, help="the simulation's seed (default: 0); the bootstrap's is "
                    "wbc evaluate's, 0, whatever this is")
    ap.add_argument("--layout", choices=("test", "synthetic"), default="test",
                    help="TEST's cells and views (default; synthetic where no data set is found), or the synthetic one")
    ap.add_argument("--data", help="data set folder (default: WBC_DATA, else ../shared/data/blood-cells)")
    ap.add_argument("--accuracy", type=float, default=0.89, help="expected accuracy over files (default: 0.89)")
    ap.add_argument("--view-error", type=float, default=0.01,
                    help="a view's chance of being read wrong in a cell that is not (default: 0.01)")
    ap.add_argument("--ece", type=float, default=0.03, help="the overconfident setting's true ECE (default: 0.03)")
    ap.add_argument("--concentration", type=float, default=CONCENTRATION,
                    help=f"a + b of the cells' wrongness Beta: higher, the cells' confidences closer together "
                         f"(default: {CONCENTRATION:g})")
    ap.add_argument("--truth-draws", type=whole_number(1), default=TRUTH_DRAWS,
                    help=f"data sets of the Monte Carlo of the truths (default: {TRUTH_DRAWS})")
    ap.add_argument("--workers", type=whole_number(1), default=min(2, os.cpu_count() or 1),
                    help="processes (default: 2, or fewer CPUs); the figures do not depend on it")
    args = ap.parse_args()
    try:
        truth = truth_for(args.accuracy, args.view_error, args.ece, args.concentration)
    except ValueError as e:
        ap.error(str(e))

    start = time.perf_counter()
    single_threaded()
    if args.layout == "synthetic":
        lay = synthetic_layout()
    else:
        try:
            lay = split_layout(args.data)
        except DataError as e:
            if args.data is not None:
                raise
            print(f"note: {e}\nnote: so the synthetic layout is used", file=sys.stderr)
            lay = replace(synthetic_layout(), source="synthetic layout (no data set found for TEST's)")
    seqs = np.random.SeedSequence(args.seed).spawn(math.ceil(args.sims / CHUNK) + 1)
    true, mc_accuracy = truths(lay, truth, args.truth_draws, np.random.default_rng(seqs[0]))
    jobs = [(lay, truth, min(CHUNK, args.sims - i * CHUNK), seq, i == 0) for i, seq in enumerate(seqs[1:])]
    if args.workers > 1 and len(jobs) > 1:
        ex = ProcessPoolExecutor(args.workers, initializer=worker_start)
        try:
            parts = list(ex.map(simulate_chunk, jobs))
        except BaseException:
            ex.shutdown(wait=False, cancel_futures=True)
            raise
        ex.shutdown()
    else:
        parts = [simulate_chunk(job) for job in jobs]
    results = np.concatenate(parts)
    took = time.perf_counter() - start

    print(f"`{shlex.join(['python', 'benchmarks/interval_coverage.py', *sys.argv[1:]])}`: {args.sims} data sets, "
          f"seed {args.seed}, {args.workers} process(es); intervals as wbc evaluate's ({N_BOOT} resamples of whole "
          f"cells, seed {BOOT_SEED}; checked against compute_metrics on the first data set)\n")
    print(f"Layout: {lay.describe()}.")
    print(f"Truth model: {truth.describe()}. Expected accuracy over files {truth.accuracy:.4f} (the truths' Monte "
          f"Carlo of {args.truth_draws} data sets: {mc_accuracy:.4f}); true ECE 0 calibrated, "
          f"{true[-1]:.4f} overconfident.\n")
    print("\n".join(table(results, true)))
    print(f"\nNominal: coverage 0.95, 0.025 each side. Run time {took:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from entry import run_script

    run_script(main)
