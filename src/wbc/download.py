"""`wbc data download`: fetch the Kaggle data set with kagglehub (needs internet and Kaggle access)."""

from __future__ import annotations

import shutil
from pathlib import Path

from wbc.data import find_images_root
from wbc.errors import DataError
from wbc.info import DATASET
from wbc.io import check_writable_folder


def download(out: str | Path | None = None) -> Path:
    """Download paultimothymooney/blood-cells; return the folder that `--data` should point at."""
    try:
        import kagglehub
    except ImportError as e:
        raise DataError("downloading needs kagglehub: pip install -e '.[download]'") from e
    if out is not None:  # before the download, not after it
        if Path(out).is_dir() and any(Path(out).iterdir()):
            raise DataError(f"{out}: exists and is not empty; choose an empty or new folder")
        check_writable_folder(out)
    try:
        path = Path(kagglehub.dataset_download(DATASET["kaggle_handle"]))
    except Exception as e:  # kagglehub surfaces network and auth failures as assorted types
        raise DataError(f"download of {DATASET['kaggle_handle']} failed: {type(e).__name__}: {e}. Check the "
                        "network connection (and Kaggle credentials, if asked for), or download the data set "
                        "elsewhere and point the tools at it with --data PATH or WBC_DATA") from e
    if out is not None:
        shutil.copytree(path, out, dirs_exist_ok=True)
        path = Path(out)
    find_images_root(path)  # fail now, not at training time, if the layout is not what we expect
    return path
