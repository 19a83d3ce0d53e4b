"""`python -m wbc`: the `wbc` command."""

import sys

from wbc.cli import main

sys.exit(main())
