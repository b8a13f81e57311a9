"""Test helpers for Ray: the pids of one cluster's own workers (from the cluster object, never a name search over
the host), the processes of one test's own Ray (by a tag: see `marked`), and a real cluster of separate `ray
start` processes (head and worker node), with token authentication, the worker optionally in its own mount
namespace.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MARK = "MASKFER_TEST_RAY"  # in the environment of every process a tagged command starts


def _ppid(pid: str) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def children(parents: set[int], cmd_prefix: bytes) -> list[int]:
    """Processes whose parent is one of `parents` and whose command line starts with `cmd_prefix`."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and _ppid(d.name) in parents:
            try:
                if (d / "cmdline").read_bytes().startswith(cmd_prefix):
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def local_raylets() -> set[int]:
    """The raylet pid of the Ray this process started with `ray.init` (its workers are the raylet's children)."""
    import ray
    node = ray._private.worker._global_node
    return {p.process.pid for p in node.all_processes["raylet"]}


def cluster_raylets(cluster) -> set[int]:
    """The raylet pids of a `ray.cluster_utils.Cluster`'s nodes."""
    return {p.process.pid for n in cluster.list_all_nodes() for p in n.all_processes["raylet"]}


def new_tag() -> str:
    """A tag for one test's Ray: a new short folder, which `clean_env` makes that Ray's RAY_TMPDIR."""
    return tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths live below it


def marked(tag: str) -> list[int]:
    """The processes of the Ray tagged `tag` (other than this one): MARK=tag in their environment, or a file open
    below the tag's folder (every Ray process writes its logs there). Both, because Ray's Python processes
    rename themselves (`ray::IDLE`, `ray::DashboardAgent`) over the memory that /proc shows as their
    environment, which can hide the mark."""
    needle, out = f"{MARK}={tag}".encode(), []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if needle in (d / "environ").read_bytes().split(b"\0") or any(
                    os.readlink(f).startswith(tag + "/") for f in (d / "fd").iterdir()):
                out.append(int(d.name))
        except OSError:
            pass
    return out


def wait_gone(tag: str, seconds: float = 15.0) -> list[int]:
    """Wait until no marked process is left; the ones still there after `seconds`."""
    deadline = time.monotonic() + seconds
    while (left := marked(tag)) and time.monotonic() < deadline:
        time.sleep(0.25)
    return left


def clean_env(tag: str, **extra: str) -> dict:
    """This environment without any Ray address or token, tagged: MARK=tag, and the tag's folder as RAY_TMPDIR
    (where a Ray started with it writes its sessions and `ray start` records its address)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return {MARK: tag, **env, "RAY_TMPDIR": tag, "RAY_USAGE_STATS_ENABLED": "0", **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def can_unshare() -> bool:
    """Whether this machine lets a process have a mount namespace of its own (root, or user namespaces)."""
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class RealCluster:
    """A head node and a worker node started by separate `ray start` commands, as the README's recipe starts
    them: token authentication on, the token generated on the head and handed to the worker and the driver in
    RAY_AUTH_TOKEN, each with a HOME of its own (no shared ~/.ray). The head has no CPUs, so every task runs
    on the worker; with `hide`, the worker runs in its own mount namespace where that folder is an empty
    tmpfs (it cannot see the driver's files there). Its processes are `marked(tag)`."""

    def __init__(self, root: Path, worker_cpus: int = 2, hide: Path | None = None):
        self.root, self.port = Path(root), free_port()
        self.tag = new_tag()  # also where `ray start` records its address: never the machine's /tmp/ray, so no
        self.tmp = Path(self.tag)  # later `ray.init()` there finds a dead cluster
        self.ray = str(Path(sys.executable).parent / "ray")
        homes = {k: self.root / f"home-{k}" for k in ("head", "worker", "driver")}
        for h in homes.values():
            h.mkdir(parents=True, exist_ok=True)
        self.homes = homes
        token_env = clean_env(self.tag, HOME=str(homes["head"]), RAY_AUTH_MODE="token")
        self.token = subprocess.run([self.ray, "get-auth-token", "--generate"], env=token_env, capture_output=True,
                                    text=True, check=True).stdout.strip().splitlines()[-1]
        self.address = f"127.0.0.1:{self.port}"
        # the README's recipe as typed (another port than 6379, so as not to meet a cluster of the machine's);
        # `ray start` returns once its node runs, leaving the node's processes behind, as for a user
        self._start("head", [self.ray, "start", "--head", "--port", str(self.port), "--num-cpus", "0"], token_env)
        worker = [self.ray, "start", "--address", self.address, "--num-cpus", str(worker_cpus)]
        if hide is not None:
            worker = ["unshare", "-m", "sh", "-c", f'mount -t tmpfs none "{hide}" && exec "$@"', "sh", *worker]
        self._start("worker", worker, self.env("worker"))

    def env(self, who: str = "driver", token: bool = True) -> dict:
        """The environment of a node or of the driver: its own HOME, with or without the cluster's token."""
        extra = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token} if token else {}
        return clean_env(self.tag, HOME=str(self.homes[who]), **extra)

    def _start(self, name: str, cmd: list[str], env: dict) -> None:
        with open(self.root / f"{name}.log", "wb") as log:
            r = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: " + (self.root / f"{name}.log").read_text()[-2000:])

    def wait_ready(self, nodes: int = 2, timeout: float = 90.0) -> None:
        """Wait until `nodes` nodes are alive (asked by a driver with the token)."""
        probe = ("import ray; ray.init(address='%s', log_to_driver=False); "
                 "print(sum(n['Alive'] for n in ray.nodes())); ray.shutdown()" % self.address)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = subprocess.run([sys.executable, "-c", probe], env=self.env(), capture_output=True, text=True)
            if r.returncode == 0 and r.stdout.strip().splitlines()[-1:] == [str(nodes)]:
                return
            time.sleep(1)
        raise TimeoutError(f"the cluster at {self.address} did not come up with {nodes} nodes: "
                           + (self.root / "worker.log").read_text()[-2000:])

    def stop(self) -> list[int]:
        """Stop both nodes: what `ray stop` does, but only to this cluster's processes (found by their mark;
        `ray stop` would stop every Ray on the machine): SIGTERM, then SIGKILL for any left after 10 s. Returns
        the marked pids still alive afterwards (none, when all went well)."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in marked(self.tag):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            if not wait_gone(self.tag, 10):
                break
        left = wait_gone(self.tag, 5)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return left
