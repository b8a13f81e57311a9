"""One engine for the heavy maps (face crops, landmarks, masks): a function mapped over chunks of rows, in
order, on this machine's processes or on Ray, with a progress bar (rows per second and time left, quiet when
the output is no terminal).

  local  a process pool on this machine (forkserver: safe after TensorFlow has started threads here)
  ray    Ray tasks, on this machine or a cluster (`address`); each worker process runs `init` once (dlib's
         models load once per worker, not per chunk), results come back through Ray's object store (no shared
         disk), and a chunk whose worker dies is recomputed (`RETRIES`)
"""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence

from tqdm.auto import tqdm

from .checks import check, check_choice

ENGINES = ("local", "ray")
RETRIES = 3


@dataclass(frozen=True)
class Engine:
    """Where a map runs: kind "local" (`workers` processes; 0 = one per core) or "ray" (`address`: a cluster,
    None = Ray on this machine, or the Ray this process is connected to already)."""

    kind: str = "local"
    workers: int = 0
    address: str | None = None

    def __post_init__(self):
        check_choice(self.kind, ENGINES, "engine")
        check(self.workers >= 0, "workers", f"must be 0 or more, got {self.workers}")

    @property
    def processes(self) -> int:
        return self.workers or max(1, os.cpu_count() or 1)


_READY: set = set()  # the inits this worker process has run (a Ray worker runs many chunks)


def _call(fn: Callable, init: Callable | None, initargs: tuple, task):
    key = (init, initargs) if init else None
    if key is not None and key not in _READY:
        init(*initargs)
        _READY.add(key)
    return fn(task)


def map_chunks(fn: Callable, tasks: Sequence, rows: Callable[[object], int], engine: Engine | None = None,
               desc: str = "", init: Callable | None = None, initargs: tuple = (), total: int | None = None) -> list:
    """[fn(task) for task in tasks], in order, on `engine`; `rows(result)` counts a result's rows for the
    progress bar (`total` rows in all gives it the time left); `init(*initargs)` runs once in each worker process before its first task. fn, init and the
    tasks must be picklable (module-level functions)."""
    engine = engine or Engine()
    with tqdm(total=total, desc=desc, unit="row", disable=None, leave=False, smoothing=0.1) as bar:
        if engine.kind == "ray":
            return _ray_map(fn, tasks, rows, engine, init, initargs, bar)
        if engine.processes <= 1 or len(tasks) <= 1:
            out = []
            for t in tasks:
                out.append(_call(fn, init, initargs, t))
                bar.update(rows(out[-1]))
            return out
        method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        out = []
        with ProcessPoolExecutor(min(engine.processes, len(tasks)), mp_context=mp.get_context(method),
                                 initializer=init, initargs=initargs) as pool:
            for r in pool.map(fn, tasks):
                out.append(r)
                bar.update(rows(r))
        return out


def _ray_map(fn, tasks, rows, engine: Engine, init, initargs, bar) -> list:
    import ray
    if not ray.is_initialized():
        ray.init(address=engine.address) if engine.address else ray.init()
    remote = ray.remote(max_retries=RETRIES)(_call)
    refs = [remote.remote(fn, init, initargs, t) for t in tasks]
    results, pending = {}, {ref: i for i, ref in enumerate(refs)}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            i = pending.pop(ref)
            results[i] = ray.get(ref)
            bar.update(rows(results[i]))
    return [results[i] for i in range(len(tasks))]
