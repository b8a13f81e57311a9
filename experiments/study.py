"""`python -m experiments.study clean masked --seeds 0 1 2 [--models ...] [any experiments.run option] --out STUDY
[--engine local|ray] [--parallel N] [--address ADDR] [--cpus-per-run N] [--gpus-per-run N]`

Runs the experiment once per model and seed (ordinary run folders, STUDY/<model>/seed<k>/), then writes
STUDY/study.json and STUDY/report.html: every cell and the headline's effects as mean +- sd over seeds with
t intervals. Rerunning resumes: finished runs with the same settings are not run again.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from datasets.cli import build_or_exit, exit_code, folder, seed

from .options import OPTIONS, parse_run_args
from .reporting import write_reports
from .runfolder import RunError
from .studies.study import RunFailed, StudyConfig, run_study
from .training.config import MODEL_NAMES, TrainConfig


class MissingExtra(RunError):
    """An engine whose optional dependency is not installed."""


def parse_args(argv: list[str] | None) -> StudyConfig:
    p = argparse.ArgumentParser(prog="python -m experiments.study", description=__doc__, allow_abbrev=False,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=seed, nargs="*", default=None, help="training seeds, one run each (default 0)")
    p.add_argument("--models", nargs="+", default=[TrainConfig.model], metavar="MODEL",
                   help=f"architectures, each with every seed: {', '.join(MODEL_NAMES)}")
    p.add_argument("--out", type=folder, required=True, help="the study folder; rerunning into it resumes")
    p.add_argument("--engine", default="local", help="local (default) or ray")
    p.add_argument("--parallel", type=int, default=0, help="local engine: runs at once (default: this machine's "
                   "cores divided by --cpus-per-run)")
    p.add_argument("--address", help="ray engine: a running cluster's address (default: Ray on this machine)")
    p.add_argument("--cpus-per-run", type=int, default=0, help="CPUs each run takes and pins TensorFlow's "
                   "threads to (default 1 on both engines, so that a study's figures do not depend on the engine)")
    p.add_argument("--gpus-per-run", type=float, default=0.0, help="ray engine: GPUs each run takes (default 0)")
    a, rest = p.parse_known_args(argv)
    for opt in ("--seed", "--model", "--out", "--threads"):
        if any(r == opt or r.startswith(opt + "=") for r in rest):
            p.error(f"{opt} is the study's to set per run (use --seeds, --models, the study's --out, --cpus-per-run)")
    base = parse_run_args(rest + ["--out", a.out])  # any experiments.run option, checked as a run checks it
    return build_or_exit(p, lambda: StudyConfig(
        out=a.out, base=base, seeds=tuple(a.seeds if a.seeds is not None else (0,)), models=tuple(a.models),
        engine=a.engine, parallel=a.parallel, address=a.address, cpus_per_run=a.cpus_per_run,
        gpus_per_run=a.gpus_per_run), OPTIONS)


def main(argv: list[str] | None = None) -> int:
    study = parse_args(argv)
    command = "python -m experiments.study " + " ".join(sys.argv[1:] if argv is None else argv)

    def body():
        if study.engine == "ray" and importlib.util.find_spec("ray") is None:
            raise MissingExtra("--engine ray needs Ray: pip install -e '.[cluster]' (or pip install 'ray>=2.52')")
        try:
            record = run_study(study, command)
        except RunFailed as e:  # each failure was reported when it happened
            print(f"error: {e}", file=sys.stderr)
            return 1
        placed = [Path(study.out) / r["folder"] for r in record["runs"]]  # runs placed now have no report yet
        runs = [f for f in placed if not (f / "report.html").exists()] if study.base.report else []
        write_reports(*runs, Path(study.out))
    return exit_code(body)


if __name__ == "__main__":
    sys.exit(main())
