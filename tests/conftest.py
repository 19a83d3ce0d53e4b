"""Shared fixtures: the committed fixture images, the full data set when present, a tiny trained run."""

from __future__ import annotations

import errno
import importlib.util
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_IMAGES = FIXTURES / "blood-cells" / "images"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str) -> ModuleType:
    """benchmarks/<name>.py as a module (the folder is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # a script's dataclasses look their module up there as they are made
    spec.loader.exec_module(mod)
    return mod


def pytest_configure(config: pytest.Config) -> None:
    # Keep the decoded-image cache of the tests away from the user's.
    cache = Path(config.rootpath) / ".pytest_cache" / "wbc-cache"
    os.environ.setdefault("WBC_CACHE", str(cache))


@pytest.fixture(scope="session")
def fixture_root() -> Path:
    return FIXTURE_IMAGES


@pytest.fixture(scope="session")
def full_data() -> Path:
    """The images root of the full data set; skips the test where it is absent (a fresh clone)."""
    from wbc.errors import DataError
    from wbc.folders import default_data_path, find_images_root

    path = default_data_path()
    if path is None:
        pytest.skip("full data set absent: set WBC_DATA or place it at ../shared/data/blood-cells")
    try:
        return find_images_root(path)
    except DataError as e:
        pytest.skip(f"full data set unusable here: {e}")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two epochs of wbcnet on the fixture images (3 cells per class): a real run folder."""
    pytest.importorskip("torch")
    from wbc.recipe import TrainConfig
    from wbc.train import fit

    run = tmp_path_factory.mktemp("tiny") / "run"
    cfg = TrainConfig(epochs=2, batch_size=8, val_fraction=0.34, data=str(FIXTURE_IMAGES.parent), threads=1)
    fit(cfg, run, progress=False)
    return run


@pytest.fixture()
def data_copy(tmp_path: Path) -> Path:
    """A writable copy of the fixture images root."""
    dst = tmp_path / "images"
    shutil.copytree(FIXTURE_IMAGES, dst)
    return dst


def shut_folder(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """`folder` as if it could be listed but not entered (chmod 644), which root's override hides: looking at a file
    in it (Path.is_file, and wbc.io's lstat) fails with EACCES."""
    real_is_file = Path.is_file

    def is_file(self: Path) -> bool:
        if self.parent == folder:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_is_file(self)

    monkeypatch.setattr(Path, "is_file", is_file)
    monkeypatch.setattr("wbc.io._can_look_at", lambda p: p.parent != folder)
