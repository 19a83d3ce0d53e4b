"""How every benchmark script starts: its errors as one line, as the `wbc` command gives them."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn


def run_script(main: Callable[[], int | None]) -> NoReturn:
    """Run a script's main() and exit with its status. A WbcError (a data set, model or run folder
    that is missing or wrong) is one line naming the script and exits 2; Ctrl+C or SIGTERM exits 130."""
    from wbc.errors import WbcError

    try:  # SIGTERM (`timeout`, `kill`) as Ctrl+C: a script's clean-up runs (cv.py --dry-run's folder was left)
        from wbc.cli import terminate_as_interrupt
    except ImportError:  # an earlier commit's src (the A/B scripts) from before it
        terminate_as_interrupt = contextlib.nullcontext

    name = Path(sys.argv[0]).name
    try:
        with terminate_as_interrupt():
            code = main()
    except WbcError as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # `script | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
    sys.exit(code or 0)
