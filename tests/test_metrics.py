from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from wbc.metrics import bootstrap_over_cells, compute_metrics, expected_calibration_error, pool_cells  # noqa: E402
from wbc.differential import counting_limits  # noqa: E402

# Six files of four cells; see the hand computation in each test.
PROBS = np.array([
    [0.9, 0.1, 0.0, 0.0],  # cell A, eosinophil, right
    [0.4, 0.6, 0.0, 0.0],  # cell A, eosinophil, called lymphocyte
    [0.2, 0.8, 0.0, 0.0],  # cell B, lymphocyte, right
    [0.0, 0.0, 0.3, 0.7],  # cell C, monocyte, called neutrophil
    [0.0, 0.0, 0.0, 1.0],  # cell D, neutrophil, right
    [0.0, 0.0, 0.1, 0.9],  # cell D, neutrophil, right
])
Y = np.array([0, 0, 1, 2, 3, 3])
CELLS = ["E/A", "E/A", "L/B", "M/C", "N/D", "N/D"]


class TestMetrics:
    def test_file_level(self) -> None:
        """Accuracy 4/6; per-class P/R/F1 and macro-F1 (2/3 + 2/3 + 0 + 0.8) / 4."""
        m = compute_metrics(PROBS, Y, CELLS, n_boot=200)
        assert m["accuracy"] == pytest.approx(4 / 6)
        pc = m["per_class"]
        assert (pc["EOSINOPHIL"]["precision"], pc["EOSINOPHIL"]["recall"]) == (1.0, 0.5)
        assert (pc["LYMPHOCYTE"]["precision"], pc["LYMPHOCYTE"]["recall"]) == (0.5, 1.0)
        assert pc["MONOCYTE"]["f1"] == 0.0
        assert pc["NEUTROPHIL"]["precision"] == pytest.approx(2 / 3)
        assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 0 + 0.8) / 4)
        assert m["confusion"][2] == [0, 0, 0, 1]

    def test_undefined_per_class_figures_are_none(self) -> None:
        """A class with no files has no recall and, when never predicted, no precision or F1: None, printed
        as a dash, where 0 read as a class the model got all wrong. Monocyte above: never predicted, so
        no precision, yet recall and F1 0. Macro-F1 averages the classes with files."""
        from wbc.metrics import per_class_figure

        assert compute_metrics(PROBS, Y, CELLS, n_boot=50)["per_class"]["MONOCYTE"] == {
            "precision": None, "recall": 0.0, "f1": 0.0, "support": 1, "cells": 1, "cells_right": 0,
            "cell_recall_ci95": (0.0, pytest.approx(0.975)), "cells_called": 0, "cell_precision_ci95": None}
        m = compute_metrics(PROBS[:3], Y[:3], CELLS[:3], n_boot=50)  # eosinophils and a lymphocyte only
        assert m["per_class"]["MONOCYTE"] == m["per_class"]["NEUTROPHIL"] == {
            "precision": None, "recall": None, "f1": None, "support": 0, "cells": 0, "cells_right": 0,
            "cell_recall_ci95": None, "cells_called": 0, "cell_precision_ci95": None}
        assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3) / 2)
        # over cells too: both cells read right, so 1 over the two types with cells (0.5 with the absent two as 0)
        assert m["cell_macro_f1"] == 1.0
        assert [per_class_figure(v) for v in (None, 0.5)] == ["—", "0.5000"]

    def test_cell_level_pools_views(self) -> None:
        """Cell A's views average to eosinophil (0.65): 3 of 4 cells right."""
        probs, labels, names = pool_cells(PROBS, Y, CELLS)
        assert names == ["E/A", "L/B", "M/C", "N/D"]
        assert probs[0] == pytest.approx([0.65, 0.35, 0, 0])
        m = compute_metrics(PROBS, Y, CELLS, n_boot=200)
        assert (m["cells_correct"], m["n_cells"], m["cell_accuracy"]) == (3, 4, 0.75)

    def test_each_type_says_its_cells_read_right_with_exact_limits(self) -> None:
        """A type's recall over files rests on its few cells: the cells of each type and those read right
        (views pooled), with the Clopper-Pearson limits of that share (scipy's beta quantiles, the
        textbook form: 1 of 1 cell is 2.5-100%, 0 of 1 is 0-97.5%)."""
        from wbc.metrics import cells_read_right

        pc = compute_metrics(PROBS, Y, CELLS, n_boot=50)["per_class"]
        assert [(v["cells"], v["cells_right"]) for v in pc.values()] == [(1, 1), (1, 1), (1, 0), (1, 1)]
        assert pc["EOSINOPHIL"]["cell_recall_ci95"] == (pytest.approx(0.025), 1.0)
        assert cells_read_right(pc["MONOCYTE"]) == "0 of 1 (0\u201398%)"
        # Views of three cells of one type, two read right: 2 of 3, limits from the beta quantiles.
        stats = pytest.importorskip("scipy.stats")
        probs = np.array([[0.9, 0.1, 0, 0], [0.8, 0.2, 0, 0], [0.1, 0.9, 0, 0], [0.7, 0.3, 0, 0]])
        v = compute_metrics(probs, np.zeros(4, int), ["E/a", "E/a", "E/b", "E/c"], n_boot=20)["per_class"]["EOSINOPHIL"]
        assert (v["cells"], v["cells_right"], v["recall"]) == (3, 2, 0.75)
        assert v["cell_recall_ci95"] == (pytest.approx(stats.beta.ppf(0.025, 2, 2), abs=1e-9),
                                         pytest.approx(stats.beta.ppf(0.975, 3, 1), abs=1e-9))
        assert cells_read_right({"support": 3}) == ""  # a metrics.json of wbc 0.20 or before

    def test_each_type_says_how_many_of_the_cells_read_as_it_are_of_it(self) -> None:
        """A type's precision over cells, with exact limits: how far a call of it can be trusted (the neutrophil
        precision the issue names had no interval). Monocyte cell C is read as a neutrophil: of the 2 cells read
        as neutrophils 1 is one; monocyte is read for no cell, so it has no such share (a blank, not 0 of 0)."""
        from wbc.metrics import calls_right

        stats = pytest.importorskip("scipy.stats")
        pc = compute_metrics(PROBS, Y, CELLS, n_boot=50)["per_class"]
        assert [(v["cells_called"], v["cells_right"]) for v in pc.values()] == [(1, 1), (1, 1), (0, 0), (2, 1)]
        assert pc["NEUTROPHIL"]["cell_precision_ci95"] == (pytest.approx(stats.beta.ppf(0.025, 1, 2), abs=1e-9),
                                                           pytest.approx(stats.beta.ppf(0.975, 2, 1), abs=1e-9))
        assert calls_right(pc["NEUTROPHIL"]) == "1 of 2 (1\u201399%)"
        assert calls_right(pc["MONOCYTE"]) == "" and calls_right({"cells": 1, "cells_right": 1}) == ""  # wbc 0.27

    def test_a_cell_with_two_labels_is_refused(self) -> None:
        """A cell's verdict is scored against its label: views of one cell under two labels would be
        scored against whichever came last, without a word."""
        with pytest.raises(ValueError, match="two labels: E/A"):
            pool_cells(PROBS, np.array([0, 1, 1, 2, 3, 3]), CELLS)

    def test_accuracy_at_90_coverage(self) -> None:
        """The report's accuracy at 90% coverage: the 9 most confident of 10 files, of which the 9th is wrong
        (8 of 9), where 80% gives 1 and all 10 give 0.8."""
        conf = np.linspace(0.95, 0.5, 10)
        probs = np.stack([conf, 1 - conf, np.zeros(10), np.zeros(10)], 1)
        y = np.zeros(10, dtype=int)
        y[[8, 9]] = 1
        m = compute_metrics(probs, y, [f"c{i}" for i in range(10)], n_boot=20)
        assert m["accuracy_at_90_coverage"] == pytest.approx(8 / 9)
        # Over files, as the report says, also where they are views of fewer cells (over the 5 cells: 4 of 4)
        m = compute_metrics(probs, y, [f"c{i // 2}" for i in range(10)], n_boot=20)
        assert m["accuracy_at_90_coverage"] == pytest.approx(8 / 9)

    def test_ece(self) -> None:
        """Each file sits in its own confidence bin but the two at 0.9: (0.2+0.6+0.2+0.7)/6."""
        assert expected_calibration_error(PROBS, Y) == pytest.approx(1.7 / 6)

    def test_bootstrap_brackets_estimate(self) -> None:
        """The 95% interval over cells contains the point estimate and lies in [0, 1]."""
        m = compute_metrics(PROBS, Y, CELLS, n_boot=500)
        lo, hi = m["accuracy_ci95"]
        assert 0 <= lo <= m["accuracy"] <= hi <= 1 and lo < hi

    def test_reliability_bins_make_the_ece(self) -> None:
        """The bins' files, accuracies and confidences weigh up to the ECE, and cover every file."""
        bins = compute_metrics(PROBS, Y, CELLS, n_boot=50)["reliability"]
        n = sum(b["files"] for b in bins)
        assert n == len(Y) and all(b["from"] < b["to"] for b in bins)
        # each bin is one fifteenth wide and holds its files' confidences: 0.6, 0.7, 0.8, 0.9 (two) and 1.0 (the last)
        assert [(round(15 * b["from"]), round(15 * b["to"]), b["files"]) for b in bins] == [
            (9, 10, 1), (10, 11, 1), (12, 13, 1), (13, 14, 2), (14, 15, 1)]
        assert sum(b["files"] / n * abs(b["accuracy"] - b["confidence"]) for b in bins) == pytest.approx(1.7 / 6)

    def test_reliability_by_type_bins_each_types_calls(self) -> None:
        """Each type's bins hold the files read as that type, and their accuracy is how often those calls were
        right: a type whose calls are all wrong at 0.9 reads 0 there, where the pooled bin reads higher."""
        probs = np.array([[0.9, 0.05, 0.03, 0.02]] * 4 + [[0.02, 0.03, 0.05, 0.9]] * 4)
        y = np.array([0, 0, 0, 0, 3, 3, 2, 2])  # the eosinophil calls right, two of four neutrophil calls wrong
        by_type = compute_metrics(probs, y, [f"c{i}" for i in range(8)], n_boot=20)["reliability_by_type"]
        assert set(by_type) == {"EOSINOPHIL", "NEUTROPHIL"}  # no file read as a lymphocyte or monocyte
        (eos,), (neu,) = by_type["EOSINOPHIL"], by_type["NEUTROPHIL"]
        assert eos["files"] == 4 and eos["accuracy"] == 1.0 and neu["files"] == 4 and neu["accuracy"] == 0.5
        (pooled,) = compute_metrics(probs, y, [f"c{i}" for i in range(8)], n_boot=20)["reliability"]
        assert pooled["accuracy"] == 0.75 and neu["from"] == pooled["from"]
        # Each bin says how many cells its files are views of: errors come in whole cells
        views = ["a", "a", "b", "b", "c", "c", "d", "e"]
        m = compute_metrics(probs, y, views, n_boot=20)
        assert m["reliability"][0]["cells"] == 5
        assert m["reliability_by_type"]["EOSINOPHIL"][0]["cells"] == 2 and m["reliability_by_type"]["NEUTROPHIL"][0]["cells"] == 3

    def test_card_keeps_the_figures_the_app_shows(self) -> None:
        """A model card's metrics keep the ECE's interval and its bins, and the caution of a TEST that copies TRAIN
        images (the app's model tab reads them)."""
        from wbc.ship import card_metrics

        m = compute_metrics(PROBS, Y, CELLS, n_boot=50)
        kept = card_metrics(m)
        assert {"ece", "ece_ci95", "reliability", "reliability_by_type", "accuracy_ci95", "per_class"} <= set(kept)
        assert "confusion" not in kept
        caution = "2 of the 8 TEST images are byte-for-byte copies of TRAIN images"
        assert card_metrics({**m, "caution": caution})["caution"] == caution

    def test_ece_interval_of_one_cell(self) -> None:
        """One cell: every resample is the data itself, so the ECE interval is the ECE, read from the
        per-cell bin sums the bootstrap uses."""
        ece = expected_calibration_error(PROBS, Y)
        lo, hi = bootstrap_over_cells(Y, PROBS.argmax(1), ["one"] * len(Y), n=50, probs=PROBS)["ece"]
        assert lo == pytest.approx(ece) and hi == pytest.approx(ece)

    def test_ece_interval_over_cells(self) -> None:
        """Two cells, one right and sure, one wrong and sure: resamples of both, only the first (ECE 0.01)
        or only the second (0.99) give an interval spanning nearly 0..1."""
        probs = np.tile([[0.99, 0.01, 0, 0]], (20, 1))
        y = np.r_[np.zeros(10, dtype=int), np.ones(10, dtype=int)]
        m = compute_metrics(probs, y, ["a"] * 10 + ["b"] * 10, n_boot=500)
        assert m["ece"] == pytest.approx(0.49)
        assert m["ece_ci95"][0] == pytest.approx(0.01) and m["ece_ci95"][1] == pytest.approx(0.99)

    def test_cell_interval_is_exact(self) -> None:
        """The cell-level interval is the exact (Clopper-Pearson) binomial one of k cells right of n: a percentile
        bootstrap of so few right-or-wrong cells covered less than 95%; 62 of 68 reads 81.8-96.7%."""
        rng = np.random.default_rng(3)
        cells = [f"c{i % 17}" for i in range(170)]
        y = np.array([i % 17 % 4 for i in range(170)])
        probs = rng.dirichlet(np.ones(4), size=170)
        m = compute_metrics(probs, y, cells, n_boot=300, seed=5)
        cell_probs, cell_y, _ = pool_cells(probs, y, cells)
        k = int((cell_probs.argmax(1) == cell_y).sum())
        assert m["cells_correct"] == k and m["cell_accuracy_ci95"] == counting_limits(k, 17)
        assert m["cell_accuracy_ci95"][0] < k / 17 < m["cell_accuracy_ci95"][1]
        assert tuple(round(100 * x, 1) for x in counting_limits(62, 68)) == (81.8, 96.7)

    def test_bootstrap_interval_is_the_resamples_2_5_to_97_5_percentiles(self) -> None:
        """The accuracy interval is the 2.5th-97.5th percentile of the accuracies over the cell resamples, each the
        files right over the files drawn (a 5th-95th was a 90% interval under a "95%" label)."""
        from wbc.metrics import cell_resamples

        rng = np.random.default_rng(4)
        cells = [f"c{i % 30:02d}" for i in range(90)]  # sorted order is the resamples' column order
        y = np.array([i % 30 % 4 for i in range(90)])
        pred = np.where(rng.random(90) < 0.7, y, (y + 1) % 4)
        w = cell_resamples(30, 400, seed=2)
        right = np.array([sum(pred[i] == y[i] for i in range(90) if cells[i] == f"c{c:02d}") for c in range(30)])
        acc = (w @ right) / (w @ np.full(30, 3))
        lo, hi = bootstrap_over_cells(y, pred, cells, n=400, seed=2)["accuracy"]
        assert (lo, hi) == (pytest.approx(np.percentile(acc, 2.5)), pytest.approx(np.percentile(acc, 97.5)))

    def test_bootstrap_of_perfect_predictions(self) -> None:
        """All right: every resample is perfect, so the interval is [1, 1]."""
        ci = bootstrap_over_cells(Y, Y, CELLS, n=100)
        assert ci["accuracy"] == (1.0, 1.0) and ci["macro_f1"] == (1.0, 1.0)

    def test_bootstrap_resamples_cells_not_files(self) -> None:
        """Two cells of many views each, one all right and one all wrong: the interval spans 0..1
        (a file-level bootstrap would give a narrow interval around 0.5)."""
        y = np.zeros(200, dtype=int)
        pred = np.r_[np.zeros(100, dtype=int), np.ones(100, dtype=int)]
        cells = ["a"] * 100 + ["b"] * 100
        lo, hi = bootstrap_over_cells(y, pred, cells, n=500)["accuracy"]
        assert lo == 0.0 and hi == 1.0


def test_confidence_map_keeps_its_ceiling_and_rows_that_sum_to_one() -> None:
    """remap_top on a float32 row whose top reads as 1.0 (a logit gap of 20) keeps the map's value
    rather than pushing it to certainty; a one-hot row shares the rest evenly; every row sums to 1 and
    keeps its decision, also where the map asks for less than the runner-up has."""
    from scipy.special import softmax

    from wbc.calibration import remap_top

    near_one = softmax(np.array([[20, 0, 0, 0]], dtype=np.float32), axis=1).astype(np.float32)
    assert near_one[0, 0] == 1.0  # what float32 gives: the bug's input
    rows = [near_one, np.array([[1.0, 0, 0, 0]]), np.array([[1 - 1e-14, 1e-14, 0, 0]]), np.array([[0.5, 0.3, 0.1, 0.1]])]
    for row, target in zip(rows, [0.995, 0.99, 0.99, 0.2]):
        out = remap_top(row, np.array([target]))
        assert out.sum() == pytest.approx(1.0, abs=1e-12)
        assert out.argmax() == 0 and out.max() < 1
    assert remap_top(near_one, np.array([0.995]))[0, 0] == pytest.approx(0.995)
    assert remap_top(np.array([[1.0, 0, 0, 0]]), np.array([0.99]))[0, 1:] == pytest.approx([0.01 / 3] * 3)


class TestCalibration:
    def test_softmax_of_large_logits_is_finite(self) -> None:
        """A logit of 1000, or one of 300 at the smallest temperature searched, gives probabilities, not NaN."""
        from wbc.calibration import T_MIN, softmax, tta_probs

        assert softmax(np.array([[1000.0, 0, 0, 0]]))[0] == pytest.approx([1, 0, 0, 0])
        assert tta_probs(np.array([[[300.0, 299.0, 0, 0]]]), T_MIN)[0] == pytest.approx([1 / (1 + np.exp(-5)),
                                                                                        1 / (1 + np.exp(5)), 0, 0])

    def test_nll_counts_a_confident_wrong_answer_in_full(self) -> None:
        """The NLL of an answer that gave the truth a millionth is -log(1e-6), not capped far above it."""
        from wbc.calibration import nll

        assert nll(np.array([[1 - 1e-6, 1e-6, 0, 0]]), np.array([1])) == pytest.approx(-np.log(1e-6))

    def test_accuracy_at_a_small_coverage_of_few_cases_keeps_the_most_confident(self) -> None:
        """40% of one case rounds to none: the most confident case is kept rather than a NaN given."""
        from wbc.calibration import accuracy_at_coverage

        assert accuracy_at_coverage(np.array([[0.7, 0.3, 0, 0]]), np.array([0]), 0.4) == 1.0

    def test_confidence_map_never_says_less_than_chance(self) -> None:
        """Where the least confident answers were all wrong, the map gives them 1 in 4 (a top class is never less
        likely than chance), not 0."""
        from wbc.calibration import fit_confidence_map

        conf = np.linspace(0.3, 0.95, 20)
        probs = np.stack([conf, *[(1 - conf) / 3] * 3], 1)
        y = (np.arange(20) < 5).astype(int)  # the 5 least confident read wrong
        assert min(fit_confidence_map(probs, y)["y"]) == pytest.approx(0.25)

    def test_mapped_calibrator_maps_the_tempered_probabilities(self) -> None:
        """The confidence map is fitted on the probabilities at the fitted temperature, the ones it is applied to."""
        from wbc.calibration import (apply_confidence_map, fit_confidence_map, fit_mapped_calibrator, fit_temperature,
                                     tta_probs)

        rng = np.random.default_rng(0)
        y = rng.integers(0, 4, 200)
        logits = rng.normal(0, 1, (2, 200, 4))
        logits[:, np.arange(200), y] += rng.normal(1.5, 1.5, 200)  # right more often than not
        logits *= 4  # overconfident: a temperature well above 1
        t = fit_temperature(logits, y)
        assert t > 2
        tempered = tta_probs(logits, t)
        want = apply_confidence_map(tempered, fit_confidence_map(tempered, y))
        assert fit_mapped_calibrator(logits, y)(logits) == pytest.approx(want)
