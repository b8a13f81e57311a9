"""Shared fixtures: a small synthetic FER-format CSV the tests make themselves, and the real file if given."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from datasets import make_synthetic, write_fer_csv


@pytest.fixture(scope="session")
def synth_arrays():
    return make_synthetic(rows=210, seed=0)


@pytest.fixture(scope="session")
def synth_csv(tmp_path_factory, synth_arrays) -> Path:
    path = tmp_path_factory.mktemp("synth") / "synth.csv"
    write_fer_csv(path, *synth_arrays)
    return path


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("MASKFER_CACHE_DIR", str(d))
    return d


@pytest.fixture(scope="session")
def real_csv() -> Path:
    path = os.environ.get("FER2013_CSV")
    if not path or not Path(path).is_file():
        pytest.skip("FER2013_CSV is not set to the real FER2013 file")
    return Path(path)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One cache folder for the session: the synthetic CSV's parse, landmarks and masks are found once (the
    cache is keyed by content) and reused by every test that does not test the cache itself."""
    return tmp_path_factory.mktemp("shared-cache")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, synth_csv, shared_cache) -> Path:
    """A real smoke run (1 epoch, synthetic rows) of clean + masked, shared by the experiment and report tests."""
    from experiments.run import main
    root = tmp_path_factory.mktemp("smoke")
    assert main(["clean", "masked", "--profile", "smoke", "--data", str(synth_csv), "--out", str(root / "run"),
                 "--cache-dir", str(shared_cache), "--workers", "1"]) == 0
    return root / "run"


@pytest.fixture
def ray_session():
    """Ray on this machine (2 CPUs), started once and shared by every test that needs it; shut down at the end
    of the session, or before a test that starts a cluster of its own (`no_ray_session`)."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False)  # never a cluster recorded on this machine
    return ray


@pytest.fixture
def no_ray_session():
    """No Ray connection before this test (it starts its own cluster), nor after it."""
    _shutdown_ray()
    yield
    _shutdown_ray()


def _shutdown_ray():
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


@pytest.fixture(scope="session", autouse=True)
def _ray_is_shut_down_at_the_end():
    yield
    _shutdown_ray()
