"""`python -m shequn.cli`: the `shequn` command."""

import sys

from shequn.cli import main

if __name__ == "__main__":
    sys.exit(main())
