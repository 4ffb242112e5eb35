"""``python -m pwflow ...``: the same as the ``pwflow`` console script."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
