"""Shared fixtures: a small synthetic FER-format CSV the tests make themselves, and the real file if given."""
from __future__ import annotations

import os
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
def smoke_run(tmp_path_factory, synth_csv) -> Path:
    """A real smoke run (1 epoch, synthetic rows) of clean + masked, shared by the experiment and report tests."""
    from experiments.run import parse_args, run
    root = tmp_path_factory.mktemp("smoke")
    cfg = parse_args(["clean", "masked", "--profile", "smoke", "--data", str(synth_csv), "--out", str(root / "run"),
                      "--cache-dir", str(root / "cache"), "--workers", "1"])
    return run(cfg, "python -m experiments.run clean masked --profile smoke")
