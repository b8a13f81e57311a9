"""Where a study's runs execute. The unit of scale-out is the run: each run trains in a fresh process of its
own (so one run's TensorFlow and Keras state never meets another's) and comes back finished, or as a `Failed`
the moment it fails; the driver puts its folder in place with one atomic rename.

  local  this machine: `concurrent.futures` processes, one run after another or `parallel` at once. A run
         trains in a work folder beside its final one (`work_folder`), which is renamed into place when the run
         is done (nothing copied), so a study stopped mid-run resumes it where it stopped; a worker ends itself
         when the driver is gone.
  ray    Ray tasks with their declared CPUs and GPUs, on this machine or on a cluster (`address`), each in a
         temporary folder of its node, sent back as tar bytes. The prepared data goes through Ray's object
         store once, so workers need no shared disk and no data file; a task whose worker dies is retried
         (`max_retries`).
"""
from __future__ import annotations

import io
import multiprocessing as mp
import os
import shutil
import socket
import tarfile
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

from datasets.raycluster import session

from ..config import RunConfig
from ..provenance import check_resume, fingerprint
from ..pipeline import Prepared, run
from ..runfolder import RunError
from .watch import exit_with_driver

RETRIES = 3  # attempts after a Ray worker dies


@dataclass(frozen=True)
class RunSpec:
    """One run of a study: its model, seed, final folder and configuration (cfg.out is set per attempt)."""

    model: str
    seed: int
    folder: Path
    cfg: RunConfig
    command: str


@dataclass(frozen=True)
class Finished:
    """What a run sends back: its folder (`folder`, on the driver's disk: the local engine's work folder, moved
    into place) or its folder as tar bytes (`archive`, from a node that shares no disk), its wall seconds and
    where it ran."""

    archive: bytes | None
    seconds: float
    node: str
    folder: Path | None = None


@dataclass(frozen=True)
class Failed:
    """A run that raised: the error as its worker reported it (the study goes on with its other runs)."""

    error: BaseException
    node: str = ""


def _pack(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(folder, arcname=".")
    return buf.getvalue()


def unpack(archive: bytes, folder: Path) -> None:
    """Write a run folder from its tar bytes into `folder` (which must not exist yet)."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r") as tar:
        tar.extractall(folder, filter="data")


def work_folder(folder: Path) -> Path:
    """Where the local engine trains the run of `folder`: the hidden `.<name>.partial` beside it."""
    return folder.with_name(f".{folder.name}.partial")


def _clear_if_stale(cfg: RunConfig, work: Path, dataset_sha256: str) -> None:
    """Delete a work folder left by a run with other settings (it cannot be resumed, only redone)."""
    if work.exists():
        try:
            check_resume(cfg, work, {v: fingerprint(cfg, v, dataset_sha256) for v in cfg.variants})
        except RunError:
            shutil.rmtree(work)


def _seed_from_final(cfg: RunConfig, final: Path, work: Path, dataset_sha256: str) -> None:
    """Start a work folder from the run already in place at `final` (a run that needs only a variant more, or
    to be scored again under today's conditions) when its finished variants were trained with cfg's settings:
    their folders are hard-linked in (copied where links fail), so they are reused, not retrained."""
    if work.exists() or not final.is_dir():
        return
    prints = {v: fingerprint(cfg, v, dataset_sha256) for v in cfg.variants}
    try:
        check_resume(replace(cfg, out=str(final)), final, prints)
    except RunError:  # trained with other settings: nothing to reuse
        return
    for v in cfg.variants:
        if (final / v / "done.json").is_file():
            shutil.copytree(final / v, work / v, copy_function=_link_or_copy)


def _link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def execute(spec: RunSpec, prepared: Prepared, node: str = "", work: Path | None = None) -> Finished:
    """Run one spec (in a worker). work: a folder on the driver's disk to train in and resume from (an
    interrupted run's finished variants are reused, its interrupted one resumes at its last epoch), returned as
    it is; None: a temporary folder of this process, returned as tar bytes."""
    t = time.perf_counter()
    if work is not None:
        cfg = replace(spec.cfg, out=str(work))
        _clear_if_stale(cfg, work, prepared.fer.source_hash)
        _seed_from_final(cfg, spec.folder, work, prepared.fer.source_hash)
        run(cfg, spec.command, prepared)
        return Finished(None, time.perf_counter() - t, node or socket.gethostname(), work)
    with tempfile.TemporaryDirectory(prefix="maskfer-run-") as tmp:
        cfg = replace(spec.cfg, out=str(Path(tmp) / "run"))
        run(cfg, spec.command, prepared)
        archive = _pack(Path(cfg.out))
    return Finished(archive, time.perf_counter() - t, node or socket.gethostname())


def _local_execute(spec: RunSpec, prepared: Prepared, driver: int) -> Finished:
    exit_with_driver(driver)
    return execute(spec, prepared, work=work_folder(spec.folder))


def local(specs: list[RunSpec], prepared: Prepared, parallel: int = 1) -> Iterator[tuple[RunSpec, Finished | Failed]]:
    """Each run in a fresh spawned process, `parallel` at once, in its `work_folder`; yields each as it
    finishes or fails."""
    ctx = mp.get_context("spawn")
    pool = ProcessPoolExecutor(parallel, mp_context=ctx, max_tasks_per_child=1)
    try:
        futures = {pool.submit(_local_execute, spec, prepared, os.getpid()): spec for spec in specs}
        for f in as_completed(futures):
            error = f.exception()
            yield futures[f], Failed(error, socket.gethostname()) if error else f.result()
        pool.shutdown()
    finally:  # after Ctrl-C or an error here: queued runs never start, running ones end with the driver
        pool.shutdown(wait=False, cancel_futures=True)


def _ray_execute(spec: RunSpec, prepared: Prepared) -> Finished:
    import ray
    return execute(spec, prepared, ray.get_runtime_context().get_node_id())


def ray_engine(specs: list[RunSpec], prepared: Prepared, address: str | None = None, cpus: int = 1,
               gpus: float = 0) -> Iterator[tuple[RunSpec, Finished | Failed]]:
    """Each run as a Ray task with `cpus` CPUs and `gpus` GPUs in a fresh worker process (max_calls=1),
    retried when its worker dies; yields each as it finishes or fails. Joins `address`, or starts a fresh Ray on
    this machine (stopped at the end), unless this process is connected already (`datasets.raycluster`)."""
    with session(address):
        import ray
        from ray.exceptions import RayError
        task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=RETRIES, max_calls=1)(_ray_execute)
        data = ray.put(prepared)
        pending = {task.remote(spec, data): spec for spec in specs}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    spec = pending.pop(ref)
                    try:
                        yield spec, ray.get(ref)
                    except RayError as e:
                        yield spec, Failed(getattr(e, "cause", None) or e)
        finally:
            for ref in pending:  # after Ctrl-C or an error here: nothing keeps training for nobody
                ray.cancel(ref, force=True)


ENGINES: dict[str, Callable] = {"local": local, "ray": ray_engine}
