"""`python -m experiments.predict`: see `experiments.deploy.predict`."""
from __future__ import annotations

import sys

from .deploy.predict import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
