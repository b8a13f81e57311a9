"""One engine for the heavy maps (face crops, landmarks, masks): a function mapped over chunks of rows on this
machine's processes or on Ray, streaming, with a progress bar (rows per second and time left, quiet when the
output is no terminal).

  local  a process pool on this machine (forkserver: safe after TensorFlow has started threads here)
  ray    Ray tasks, on this machine or a cluster (`address`, joined through `datasets.raycluster`); tasks and
         results travel through Ray's object store (no shared disk), and a chunk whose worker dies is recomputed
         (`RETRIES`)

Either way a worker process runs many chunks and loads dlib's models once (each map function keeps them in a
per-process cache).

`stream` keeps every worker busy from the first chunk to the last: chunks are taken from an iterable as room
frees up (at most `in_flight` at once, the memory bound: a lazy iterable reads its inputs only when a chunk is
sent), and each result is handed back as soon as it is done, with its index, so a caller can write what is
complete (a shard) while the rest is still computing. `map_chunks` is the ordered list of the same results.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import time
from contextlib import nullcontext
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, NamedTuple

from tqdm.auto import tqdm

from .checks import check, check_choice
from .fer2013 import DatasetError
from .raycluster import session

ENGINES = ("local", "ray")
RETRIES = 3
IN_FLIGHT_PER_CPU = 2  # chunks sent per worker CPU: one computing, one queued, so no worker waits for the driver


@dataclass(frozen=True)
class Engine:
    """Where a map runs: kind "local" (`workers` processes; 0 = one per core) or "ray" (`address`: a cluster,
    None = a fresh Ray on this machine, or the Ray this process is connected to already)."""

    kind: str = "local"
    workers: int = 0
    address: str | None = None

    def __post_init__(self):
        check_choice(self.kind, ENGINES, "engine")
        check(self.workers >= 0, "workers", f"must be 0 or more, got {self.workers}")
        check(self.address is None or self.kind == "ray", "address", "needs --engine ray")

    @property
    def processes(self) -> int:
        return self.workers or max(1, os.cpu_count() or 1)

    def session(self):
        """A context for a command's maps: Ray (started or joined, and left as found, `raycluster.session`) for
        the ray engine, so that several maps share one Ray; nothing for the local engine."""
        if self.kind != "ray":
            return nullcontext(False)
        return session(self.address)


class Done(NamedTuple):
    """A finished chunk: its index in the input, its result and the seconds its worker spent on it."""

    index: int
    result: object
    seconds: float


def _call(fn: Callable, task) -> tuple[object, float]:
    t = time.perf_counter()
    return fn(task), time.perf_counter() - t


def stream(fn: Callable, tasks: Iterable, engine: Engine | None = None, in_flight: int | None = None) -> Iterator[Done]:
    """fn(task) for each task, yielded as each finishes (`Done`, in completion order). At most `in_flight`
    tasks are out at once (default: IN_FLIGHT_PER_CPU per worker CPU). fn and the tasks must be picklable (fn a
    module-level function); what a worker loads once (dlib's models) fn keeps in a per-process cache."""
    engine = engine or Engine()
    if engine.kind == "ray":
        yield from _ray_stream(fn, iter(tasks), engine, in_flight)
        return
    if engine.processes <= 1:
        for i, t in enumerate(tasks):
            yield Done(i, *_call(fn, t))
        return
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(engine.processes, mp_context=mp.get_context(method))
    try:
        submit = lambda t: pool.submit(_call, fn, t)  # noqa: E731
        yield from _drain(submit, iter(tasks), in_flight or IN_FLIGHT_PER_CPU * engine.processes,
                          lambda pending: wait(pending, return_when=FIRST_COMPLETED)[0], lambda f: f.result())
        pool.shutdown()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # after an error or Ctrl-C: queued chunks never start


def _drain(submit, tasks: Iterator, limit: int, wait_some, result) -> Iterator[Done]:
    """Keep `limit` tasks out, hand back each as it finishes: the loop both engines share."""
    pending, i = {}, 0
    for t in tasks:
        pending[submit(t)] = i
        i += 1
        if len(pending) >= limit:
            break
    while pending:
        for ref in wait_some(list(pending)):
            index = pending.pop(ref)
            yield Done(index, *result(ref))
            t = next(tasks, None)
            if t is not None:
                pending[submit(t)] = i
                i += 1


def _ray_stream(fn, tasks: Iterator, engine: Engine, in_flight) -> Iterator[Done]:
    with session(engine.address):
        import ray
        from ray.exceptions import RayTaskError
        remote = ray.remote(max_retries=RETRIES)(_call)
        limit = in_flight or IN_FLIGHT_PER_CPU * max(1, int(ray.cluster_resources().get("CPU", 1)))

        def result(ref):
            try:
                return ray.get(ref)
            except RayTaskError as e:  # bad input found on a worker: the same one line as here
                if isinstance(e.cause, DatasetError):
                    raise e.cause from None
                raise
        out: dict = {}

        def submit(t):
            ref = remote.remote(fn, t)
            out[ref] = None
            return ref

        def wait_some(pending):
            done = ray.wait(pending, num_returns=1)[0]
            for ref in done:
                out.pop(ref, None)
            return done
        try:
            yield from _drain(submit, tasks, limit, wait_some, result)
        finally:
            for ref in out:  # after an error or Ctrl-C: nothing left computing for nobody
                ray.cancel(ref)


def map_chunks(fn: Callable, tasks: Iterable, rows: Callable[[object], int], engine: Engine | None = None,
               desc: str = "", total: int | None = None, note: Callable[[list], str] | None = None) -> list:
    """[fn(task) for task in tasks], in order, computed by `stream` on `engine` (a lazy iterable is read only
    as its chunks are sent); `rows(result)` counts a result's rows for the progress bar (`total` rows in all
    gives it the time left). note(results so far) -> a short text shown beside the bar (and, where stderr is no
    terminal and the bar is hidden, printed with the row count each tenth of `total`)."""
    out = {}
    done_rows, next_line = 0, (total or 0) / 10
    with progress(total, desc) as bar:
        for done in stream(fn, tasks, engine):
            out[done.index] = done.result
            n = rows(done.result)
            done_rows += n
            bar.update(n)
            if note is not None:
                text = note(list(out.values()))
                bar.set_postfix_str(text, refresh=False)
                if bar.disable and total and (done_rows >= next_line or done_rows == total):
                    print(f"      {desc}: {done_rows}/{total} rows, {text}", flush=True)
                    next_line = done_rows + total / 10
    return [out[i] for i in range(len(out))]


def progress(total: int | None, desc: str) -> tqdm:
    """The progress bar every map shows: rows per second and the time left, quiet when stderr is no terminal."""
    return tqdm(total=total, desc=desc, unit="row", disable=None, leave=False, smoothing=0.1)
