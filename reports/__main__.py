"""`python -m reports RUN_DIR`: write RUN_DIR/report.html."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .build import build_report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reports", description=__doc__)
    p.add_argument("run_dir", help="a run folder written by python -m experiments.run")
    a = p.parse_args(argv)
    run = Path(a.run_dir)
    if not run.is_dir() or not (run / "metrics.json").exists():
        print(f"error: {run}: not a run folder (no metrics.json)", file=sys.stderr)
        return 2
    print(build_report(run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
