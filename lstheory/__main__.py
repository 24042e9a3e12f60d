"""``python -m lstheory``: the same as the ``lstheory`` command."""

import sys

from lstheory.cli import main

if __name__ == "__main__":
    sys.exit(main())
