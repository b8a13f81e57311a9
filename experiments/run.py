"""`python -m experiments.run clean masked [mixed]`: the main job.

1. load FER2013 (Training / PublicTest / PrivateTest), 2. make the masked variant of the same rows,
3. train one shared recipe per variant (validation on PublicTest), 4. evaluate every model on every
test condition of PrivateTest (clean, masked, one per mask type and geometry) plus the majority-class
baseline, and compute the occlusion maps, 5. write the run folder and report.html.

Rerunning into a run folder reuses each finished variant whose fingerprint (training recipe, training
masks, dataset, library versions) matches; any difference stops the run before work, naming the fields
(exit 2), unless --overwrite retrains those variants.
"""
from __future__ import annotations

import sys
from pathlib import Path

from datasets.cli import exit_code

from .config import RunConfig
from .options import parse_run_args
from .pipeline import run
from .reporting import report_run
from .runfolder import RunError, read_json


def parse_args(argv: list[str] | None) -> RunConfig:
    return parse_run_args(argv, __doc__)


def run_and_report(cfg: RunConfig, command: str = "") -> Path:
    """The run (`pipeline.run`), then its report unless cfg.report is off."""
    out = run(cfg, command)
    if cfg.report:
        report_run(out)
    print(f"run folder: {out} ({read_json(out / 'metrics.json')['wall_seconds'] / 60:.1f} min)", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    command = "python -m experiments.run " + " ".join(sys.argv[1:] if argv is None else argv)
    return exit_code(lambda: run_and_report(cfg, command) and None, RunError)


if __name__ == "__main__":
    sys.exit(main())
