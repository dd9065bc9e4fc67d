"""``python -m parkstream.projector``: the same as ``parkstream projector``."""

from __future__ import annotations

import sys

from parkstream.cli.projector import main

if __name__ == "__main__":
    sys.exit(main())
