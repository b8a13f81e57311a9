"""`python -m experiments.export`: see `experiments.deploy.export`."""
from __future__ import annotations

import sys

from .deploy.export import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
