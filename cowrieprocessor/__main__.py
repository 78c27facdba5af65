"""``python -m cowrieprocessor``: the command line."""

import sys

from cowrieprocessor.cli import main

if __name__ == "__main__":
    sys.exit(main())
