"""`python -m reports RUN_DIR`: write RUN_DIR/report.html."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from datasets.cli import exit_code

from .build import build_report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reports", description=__doc__)
    p.add_argument("run_dir", help="a run folder written by python -m experiments.run")
    a = p.parse_args(argv)
    run = Path(a.run_dir)

    def body():
        if not run.is_dir() or not (run / "metrics.json").exists():
            raise NotARunFolder(f"{run}: not a run folder (no metrics.json)")
        print(build_report(run))
    return exit_code(body, NotARunFolder)


class NotARunFolder(ValueError):
    """RUN_DIR is no run folder: exit code 2."""


if __name__ == "__main__":
    sys.exit(main())
