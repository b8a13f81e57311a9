"""`python -m experiments.evaluate RUN_DIR --test-data NAME=PATH`: see `experiments.evaluation.add_sets`."""
from __future__ import annotations

import sys

from .evaluation.add_sets import add_test_sets, main

__all__ = ["add_test_sets", "main"]

if __name__ == "__main__":
    sys.exit(main())
