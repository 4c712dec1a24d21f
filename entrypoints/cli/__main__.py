"""`python -m entrypoints.cli`: the `expense-tracker` command."""

import sys

from entrypoints.cli import main

sys.exit(main())
