"""`python -m wbc.cli`: the `wbc` command, as `python -m wbc` is."""

import sys

from wbc.cli import main

if __name__ == "__main__":
    sys.exit(main())
