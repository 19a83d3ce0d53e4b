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
