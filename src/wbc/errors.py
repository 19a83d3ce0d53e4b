"""Exceptions the CLI and the app turn into one clear line for the user."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path


class WbcError(Exception):
    """Base of every error a user should see as a message, not a traceback."""


class DataError(WbcError):
    """The data folder is missing, mis-shaped or empty."""


class BadImageError(WbcError):
    """One image file cannot be used; the message names the file and why."""


class ModelFileError(WbcError):
    """A model file or its card is missing, corrupt or does not match."""


class CheckpointError(WbcError):
    """A training checkpoint cannot be resumed from."""


class CheckpointNotPermitted(CheckpointError):
    """A checkpoint the user may not read: the file may be whole, so its permissions, not a new run, are the way on."""


class ConfigError(WbcError, ValueError):
    """A training setting is out of its range; the message names the setting."""


class OutputError(WbcError):
    """An output file or folder cannot be written; found before the work that would fill it."""


def install_command(extra: str) -> str:
    """The command that installs `extra` into the Python running wbc: a bare `pip` may be another Python's (or
    refused outside a virtual environment), and `-e '.[extra]'` works only from the project's folder, so the
    checkout is named where wbc runs from one."""
    root = Path(__file__).resolve().parents[2]
    target = f"{root}[{extra}]" if (root / "pyproject.toml").is_file() else f".[{extra}]"
    return f"{shlex.quote(sys.executable)} -m pip install -e {shlex.quote(target)}"
