"""A study: the same experiment over several seeds (and models), one ordinary run folder each, summarised.

  STUDY/<model>/seed<k>/   a run folder, as `python -m experiments.run` writes it (with its own report)
  STUDY/study.json         runs, cells and effects with their spread over seeds (`summary`)
  STUDY/report.html        the study report (`reports.study`)

The driver loads and masks the data once (`run.prepare`, cached as for a run) and hands it to every run.
A finished run folder whose models match the study's settings is never run again, so rerunning a study
resumes it; on the local engine a run stopped midway resumes too (from its work folder, `.seed<k>.partial`).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import RunConfig
from ..provenance import check_resume, fingerprint
from ..masks import run_mask_keys
from ..pipeline import prepare
from ..runfolder import RunError, atomic_json, read_json
from ..training.config import MODEL_NAMES, TrainConfig, check, check_choice
from . import summary
from .engines import ENGINES, Failed, Finished, RunSpec, unpack
from .placing import replace_folder


DEFAULT_CPUS_PER_RUN = 1


class RunFailed(RuntimeError):
    """Runs of a study that raised (each reported when it failed); the command exits 1."""


@dataclass(frozen=True)
class StudyConfig:
    """seeds: training seeds (each a run); models: architectures (each with every seed); base: the RunConfig
    every run shares (its seed and model are replaced per run); engine "local" or "ray"; parallel: local
    runs at once (0: this machine's cores divided by cpus_per_run); address: a Ray cluster (None: this
    machine); cpus_per_run, gpus_per_run: each run's share. A run's TensorFlow thread pools are pinned to
    cpus_per_run, and its default (0) is 1 on both engines: float32 sums depend on the thread count, so one
    default for both makes a study's figures the same whichever engine ran it (and any Ray node takes a run)."""

    out: str
    base: RunConfig
    seeds: tuple[int, ...] = (0,)
    models: tuple[str, ...] = (TrainConfig.model,)
    engine: str = "local"
    parallel: int = 0
    address: str | None = None
    cpus_per_run: int = 0
    gpus_per_run: float = 0.0

    def __post_init__(self):
        check(len(self.seeds) > 0, "seeds", "needs at least one seed")
        check(len(set(self.seeds)) == len(self.seeds), "seeds", f"are repeated: {' '.join(map(str, self.seeds))}")
        check(len(self.models) > 0, "models", "needs at least one model")
        check(len(set(self.models)) == len(self.models), "models", f"are repeated: {' '.join(self.models)}")
        for m in self.models:
            check_choice(m, MODEL_NAMES, "models")
        check_choice(self.engine, tuple(ENGINES), "engine")
        check(self.parallel >= 0, "parallel", f"must be 0 (one run per cpus_per_run cores) or more, got {self.parallel}")
        check(self.cpus_per_run >= 0, "cpus_per_run", f"must be 0 or more, got {self.cpus_per_run}")
        check(self.gpus_per_run >= 0, "gpus_per_run", f"must be 0 or more, got {self.gpus_per_run}")
        check(self.address is None or self.engine == "ray", "address", "needs --engine ray")
        if not self.cpus_per_run:  # the same on both engines (the numerics depend on it)
            object.__setattr__(self, "cpus_per_run", DEFAULT_CPUS_PER_RUN)
        if not self.parallel:
            object.__setattr__(self, "parallel", max(1, (os.cpu_count() or 1) // self.cpus_per_run))

    def folder(self, model: str, seed: int) -> Path:
        return Path(self.out) / model / f"seed{seed}"

    def run_config(self, model: str, seed: int) -> RunConfig:
        return replace(self.base, train=replace(self.base.train, model=model, seed=seed),
                       out=str(self.folder(model, seed)), threads=self.cpus_per_run)


def finished(cfg: RunConfig, dataset_sha256: str) -> bool:
    """Whether cfg.out holds a finished run whose every model was trained with cfg's settings."""
    out = Path(cfg.out)
    if not (out / "metrics.json").is_file():
        return False
    prints = {v: fingerprint(cfg, v, dataset_sha256) for v in cfg.variants}
    try:
        if check_resume(cfg, out, prints) != []:
            return False
    except RunError:  # trained with other settings
        return False
    # scored under today's conditions and renderers (a run scored by older code is run again, its models reused);
    # a run that also scored more (another variant's conditions) is finished for a study that asks for fewer
    recorded = json.loads((out / "metrics.json").read_text()).get("mask_keys") or {}
    return all(recorded.get(c) == k for c, k in run_mask_keys(cfg).items())


def _place(result: Finished, folder: Path) -> None:
    """Put a finished run folder at `folder` with one atomic rename: the local engine's work folder as it is,
    or a worker's archive unpacked under a hidden name first. An older folder there (unfinished, or run with
    other settings) is swapped out in the same rename (`replace_folder`) and then deleted, so `folder` is never
    missing and never half-written."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    if result.folder is not None:
        incoming = Path(result.folder)
    else:
        incoming = folder.with_name(f".{folder.name}.incoming")
        shutil.rmtree(incoming, ignore_errors=True)
        unpack(result.archive, incoming)
    replace_folder(incoming, folder)


def run_study(study: StudyConfig, command: str = "") -> dict:
    """Run every model x seed not finished yet, on the study's engine; write study.json. A run that fails is
    reported at once and the others go on; if any failed, RunFailed names them all at the end (study.json is
    written only for a complete study; rerunning resumes). Returns study.json's content."""
    out = Path(study.out)
    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    prepared = prepare(study.base)
    sha = prepared.fer.source_hash
    record = read_json(out / "study.json") or {}
    # runs finished in an earlier invocation keep the wall time and node recorded then
    walls = {(r["model"], r["seed"]): {"seconds": r.get("wall_seconds"), "node": r.get("node")}
             for r in record.get("runs", [])}
    todo = []
    for model in study.models:
        for seed in study.seeds:
            cfg = study.run_config(model, seed)
            if finished(cfg, sha):
                print(f"study: {model} seed {seed}: finished earlier with the same settings", flush=True)
            else:
                todo.append(RunSpec(model, seed, Path(cfg.out), cfg, f"{command} [{model}, seed {seed}]"))
    print(f"study: {len(todo)} run(s) to do on the {study.engine} engine", flush=True)
    engine = ENGINES[study.engine]
    kwargs = ({"parallel": study.parallel} if study.engine == "local" else
              {"address": study.address, "cpus": study.cpus_per_run, "gpus": study.gpus_per_run})
    failed = []
    for spec, result in engine(todo, prepared, **kwargs):
        if isinstance(result, Failed):
            failed.append(f"{spec.model} seed {spec.seed}")
            print(f"study: {spec.model} seed {spec.seed} FAILED{' on ' + result.node if result.node else ''}: "
                  f"{type(result.error).__name__}: {result.error}", file=sys.stderr, flush=True)
            continue
        _place(result, spec.folder)
        walls[(spec.model, spec.seed)] = {"model": spec.model, "seed": spec.seed, "seconds": result.seconds,
                                          "node": result.node}
        print(f"study: {spec.model} seed {spec.seed} done in {result.seconds / 60:.1f} min on {result.node}",
              flush=True)
    if failed:
        raise RunFailed(f"{len(failed)} of {len(todo)} run(s) failed ({', '.join(failed)}); the others are in "
                        f"place, and rerunning the study resumes it")
    return write_summary(study, walls, command, time.perf_counter() - t)


def write_summary(study: StudyConfig, walls: dict, command: str, seconds: float) -> dict:
    runs = {}
    for model in study.models:
        for seed in study.seeds:
            runs[(model, seed)] = json.loads((study.folder(model, seed) / "metrics.json").read_text())
    listing = []
    for model in study.models:
        for seed in study.seeds:
            wall = walls.get((model, seed), {})
            listing.append({"model": model, "seed": seed, "folder": f"{model}/seed{seed}",
                            "wall_seconds": wall.get("seconds") or runs[(model, seed)].get("wall_seconds"),
                            "node": wall.get("node")})
    content = {"command": command, "engine": study.engine, "seeds": list(study.seeds), "models": list(study.models),
               "variants": list(study.base.variants), "cpus_per_run": study.cpus_per_run,
               "driver_seconds": seconds, "runs": listing, "cells": summary.cells(runs),
               "effects": summary.effects(runs), "validation": summary.cells(runs, "validation"),
               "ranking_rule": summary.RANKING_RULE}
    content["ranking"] = summary.ranking(content["validation"])
    content["roles"] = next((m["roles"] for m in runs.values() if m.get("roles")), None)
    atomic_json(Path(study.out) / "study.json", content)
    return content
