"""Progress bars: on a terminal only, and counting what a user counts."""

from __future__ import annotations

import io
import sys

import pytest

from wbc.progress import bar

from conftest import FIXTURE_IMAGES


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_only_on_a_terminal() -> None:
    """Shown where asked for and the output is a terminal; in a log (a file, a pipe) none, as where not
    asked for: a bar's redraws filled training logs line after line."""
    assert bar(range(3), show=True, file=io.StringIO()).disable
    assert bar(range(3), show=False, file=Terminal()).disable
    term = Terminal()
    shown = bar(range(3), show=True, file=term)
    assert not shown.disable
    assert list(shown) == [0, 1, 2] and "3/3" in term.getvalue()


def test_predict_counts_images(monkeypatch: pytest.MonkeyPatch) -> None:
    """`wbc predict`'s bar counts images, not batches (it read "2/2 batch" over 120 images)."""
    from wbc.predict import Predictor

    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    files = sorted(FIXTURE_IMAGES.joinpath("TEST_SIMPLE").rglob("*.jpeg"))
    assert len(Predictor().predict_files(files, progress=True)) == len(files) == 8
    assert "8/8" in term.getvalue() and "image" in term.getvalue() and "batch" not in term.getvalue()


@pytest.mark.parametrize("on_terminal", [True, False])
def test_training_draws_its_bar(on_terminal: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """An epoch of training with its bar asked for (`wbc train` without --quiet), on a terminal and in a log:
    the bar shows the running loss there, and nothing here (a renamed bar once failed the first batch)."""
    import torch

    from wbc.imaging import PreprocessSpec
    from wbc.recipe import TrainConfig
    from wbc.train import train_one_epoch

    out = Terminal() if on_terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    x, y = torch.randint(0, 255, (4, 3, 8, 8), dtype=torch.uint8), torch.tensor([0, 1, 2, 3])
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0)
    loss = train_one_epoch(net, x, y, opt, sched, TrainConfig(augment="none", batch_size=2, mixup=0.0),
                           PreprocessSpec(size=8, window=8), None, torch.Generator().manual_seed(0), progress=True)
    assert loss > 0 and ("loss=" in out.getvalue()) is on_terminal
