"""Joining or starting Ray, and leaving it as it was found: the one place every maskfer command connects to Ray.

  no address      a fresh Ray on this machine (`ray.init(address="local")`): never the cluster that an earlier
                  `ray start` recorded (a stale record would make `ray.init()` retry a dead address for minutes)
  an address      that cluster (`HOST:PORT`, or `auto` for the one `ray start` recorded on this machine), after
                  checking within `CONNECT_TIMEOUT` seconds that something answers there
  connected       a process connected to Ray already (a notebook, a test) keeps its connection

`session` shuts down only what it started: a local Ray it started is stopped (also after an error or Ctrl-C), a
cluster it joined is left running and only this driver disconnects. Problems a user can fix (nothing at the
address, a cluster that wants a token the driver lacks) raise `ClusterError` with one line saying what to do.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from .cli import InputError

METRICS_ENV = "RAY_enable_metrics_collection"
CONNECT_TIMEOUT = 20.0  # seconds to wait for an address to answer
TOKEN_HELP = ("set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN to the head's token (`ray get-auth-token` on the head "
              "prints it), or copy it to ~/.ray/auth_token")


class ClusterError(InputError):
    """Ray could not be reached or joined; the message names the address and what to do."""


def _recorded_address() -> str | None:
    """The address `ray start` recorded on this machine (RAY_ADDRESS first), or None."""
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"]
    from ray._private.utils import read_ray_address  # Ray's own reader of its ray_current_cluster file
    try:
        return read_ray_address() or None
    except OSError:
        return None


def wait_for(address: str, timeout: float) -> str:
    """The GCS address `HOST:PORT` behind `address` (`auto`: the recorded one) once a TCP connection to it
    succeeds; ClusterError naming the address when nothing answers within `timeout` seconds."""
    target = _recorded_address() if address == "auto" else address
    if not target:
        raise ClusterError("--address auto: no Ray cluster was started on this machine (`ray start --head`); "
                           "give HEAD:PORT, or leave --address out to run Ray on this machine")
    if target.startswith(("ray://", "http://", "https://")):
        raise ClusterError(f"--address {address}: give the head's HOST:PORT (`ray start --head` prints it), "
                           "not a Ray Client or dashboard URL")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"--address {address}: expected HOST:PORT, as `ray start --head` prints it")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=min(2.0, timeout)):
                return target
        except OSError as e:
            if time.monotonic() >= deadline:
                raise ClusterError(f"--address {address}: no Ray cluster answers at {target} after "
                                   f"{timeout:.0f} s ({e.strerror or e}); start one with `ray start --head`, or "
                                   "leave --address out to run Ray on this machine") from None
            time.sleep(0.5)


def _has_token() -> bool:
    """Whether this driver would present a token: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token."""
    return bool(os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
                or os.path.isfile(os.path.expanduser("~/.ray/auth_token")))


def _join(address: str, timeout: float) -> None:
    import ray
    from ray.exceptions import AuthenticationError
    target = wait_for(address, timeout)
    try:
        with _env("RAY_BACKEND_LOG_LEVEL", os.environ.get("RAY_BACKEND_LOG_LEVEL", "error")):  # Ray's retry
            ray.init(address=target, logging_level=logging.WARNING)  # warnings: the one line below says it
    except AuthenticationError:
        raise ClusterError(f"--address {address}: the cluster at {target} wants a token this driver does not "
                           f"have: {TOKEN_HELP}") from None
    except ConnectionError as e:
        hint = (f"; a cluster with token authentication (Ray's default once a head has a token) turns away a "
                f"driver without one: {TOKEN_HELP}" if not _has_token() else "")
        raise ClusterError(f"--address {address}: could not join the Ray cluster at {target} ({e}){hint}") from None


@contextmanager
def session(address: str | None = None, timeout: float | None = None) -> Iterator[bool]:
    """Ray for the length of the block (see the module docstring). Yields whether this block started it."""
    try:
        import ray
    except ImportError:
        raise ClusterError("--engine ray needs Ray: pip install -e '.[cluster]' (or pip install 'ray>=2.52')") from None
    if ray.is_initialized():
        yield False
        return
    try:
        if address:
            _join(address, CONNECT_TIMEOUT if timeout is None else timeout)
        else:
            _start_local()
        yield True
    finally:  # also when ray.init itself was interrupted (Ctrl-C during start-up): what it started so far stops
        if not address:
            _stop_monitor()
        ray.shutdown()  # a local Ray stops; a joined cluster keeps running, this driver leaves it


def _start_local() -> None:
    """A fresh Ray on this machine, without the dashboard and without metrics collection (maskfer reads
    neither; the raylet waits most of a second for a metrics agent at start-up otherwise: BENCHMARKS.md
    section 15)."""
    import ray
    with _env(METRICS_ENV, "0"), _ctrl_c_after():
        ray.init(address="local", include_dashboard=False)


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    """`name`=`value` in this process's environment for the block (the processes Ray starts in it read it),
    then as it was."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


@contextmanager
def _ctrl_c_after() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) that comes during the block and raise it when the block is done: interrupted
    half-way, `ray.init` would leave processes it had started that `ray.shutdown` does not know of yet."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = []
    previous = signal.signal(signal.SIGINT, lambda *_: held.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if held:
        raise KeyboardInterrupt


def _stop_monitor() -> None:
    """Stop the autoscaler monitor of the local Ray this process started, at once: `ray.shutdown` gives it a
    second to end on SIGTERM, which it does not take, and the monitor of a Ray about to stop has nothing to
    save (a second of every command's wall time on a small machine; BENCHMARKS.md section 15)."""
    node = getattr(__import__("ray")._private.worker, "_global_node", None)
    try:
        node.kill_monitor(check_alive=False)
    except (AttributeError, OSError):  # another Ray version, or the monitor is gone already
        pass
