"""The report stage, run as its own command: `python -m reports FOLDER...` in a child process.

The report reads nothing but the run (or study) folder, so the experiments stage hands over the folder and
never imports `reports`: data and imports flow one way, datasets -> masking -> experiments -> reports.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from .runfolder import atomic_json


def write_reports(*folders: Path) -> float:
    """Write each folder's report.html (a run folder's or a study folder's) with `python -m reports`; returns
    the seconds it took. Its output is this process's; a failure raises CalledProcessError (a bug: the
    folders were just written)."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "reports", *map(str, folders)], check=True)
    return time.perf_counter() - t


def report_run(out: Path) -> None:
    """The run's report, its time added to metrics.json's durations and wall time."""
    print("[5/5] writing report", flush=True)
    seconds = write_reports(out)
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["durations"]["report"] = seconds
    metrics["wall_seconds"] += seconds
    atomic_json(out / "metrics.json", metrics)
