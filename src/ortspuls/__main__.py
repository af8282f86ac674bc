"""`python -m ortspuls …` runs the command line (same as the `ortspuls` script)."""

import sys

from ortspuls.cli import main

sys.exit(main())
