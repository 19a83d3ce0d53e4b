"""`wbc data download`: fetch the Kaggle data set with kagglehub (needs internet and Kaggle access)."""

from __future__ import annotations

import shutil
from pathlib import Path

from wbc.errors import DataError, install_command
from wbc.folders import find_images_root
from wbc.info import DATASET
from wbc.io import check_writable_folder


def download(out: str | Path | None = None) -> Path:
    """Download paultimothymooney/blood-cells; return the folder that `--data` should point at."""
    try:
        import kagglehub
    except ImportError as e:
        raise DataError(f"downloading needs kagglehub: {install_command('download')}") from e
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
        _copy_whole(path, Path(out))
        path = Path(out)
    find_images_root(path)  # fail now, not at training time, if the layout is not what we expect
    return path


def _copy_whole(src: Path, out: Path) -> None:
    """Copy the downloaded folder `src` to `out` through a hidden folder beside it, moved into place once whole:
    a copy that fails (a full disk) leaves nothing half-copied at `out` (a rerun was told "exists and is not
    empty"), and DataError says why in a line, not shutil's list of every file's error."""
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.parent / f".{out.name}.wbc-partial"
    shutil.rmtree(part, ignore_errors=True)  # an earlier copy killed part way
    try:
        shutil.copytree(src, part, copy_function=shutil.copy2)
        if out.is_dir():
            out.rmdir()  # empty, as checked before the download
        part.rename(out)
    except (shutil.Error, OSError) as e:
        shutil.rmtree(part, ignore_errors=True)
        errors = e.args[0] if isinstance(e, shutil.Error) and e.args and isinstance(e.args[0], list) else None
        if errors:  # shutil's list of (source, destination, why), one for each file that failed
            why = f"{len(errors)} file(s) could not be copied, the first {errors[0][0]}: {errors[0][2]}"
        else:
            why = f"{e.filename}: {e.strerror or e}" if e.filename else str(e.strerror or e)
        raise DataError(f"copying the download to {out} failed ({why}); nothing was left there. The download itself "
                        f"is at {src}: point --data at it, or free space and run this again") from e
