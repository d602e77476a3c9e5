"""`python -m cnndsl`: the command line (an editor starts `python -m cnndsl lsp` with the Python it is given)."""

import sys

from cnndsl.cli import main

sys.exit(main())
