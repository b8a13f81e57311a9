"""`python -m reports FOLDER [FOLDER ...]`: write each folder's report.html, from the folder alone (no
TensorFlow, no inference). A run folder (metrics.json) gets the run report, a study folder (study.json) the
study report."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from datasets.cli import InputError, exit_code

from .build import build_report
from .study import build_study_report


def report(folder: Path) -> Path:
    """The report of a run or study folder; InputError for any other folder."""
    if (folder / "metrics.json").is_file():
        return build_report(folder)
    if (folder / "study.json").is_file():
        return build_study_report(folder)
    raise InputError(f"{folder}: not a run folder (no metrics.json) nor a study folder (no study.json)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reports", description=__doc__)
    p.add_argument("folders", nargs="+", metavar="FOLDER",
                   help="a run folder (python -m experiments.run) or a study folder (python -m experiments.study)")
    a = p.parse_args(argv)

    def body():
        for folder in map(Path, a.folders):
            print(report(folder), flush=True)
    return exit_code(body)


if __name__ == "__main__":
    sys.exit(main())
