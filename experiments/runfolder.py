"""The run folder's bookkeeping: where the data comes from, whether the folder can be written, what
determines each model (its fingerprint), JSON written atomically, and stage timings."""
from __future__ import annotations

import json
import os
import platform
import time
from contextlib import contextmanager
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

from datasets import default_cache_dir, make_synthetic, write_fer_csv
from datasets.atomic import atomic_path
from masking import MaskConfig
from masking.pipeline import CACHE_VERSION as MASK_VERSION

from . import conditions as C

# The libraries whose version changes what a trained model is.
MODEL_LIBRARIES = ("tensorflow", "tensorflow-cpu", "keras", "numpy", "dlib-bin", "opencv-python-headless")


class RunError(ValueError):
    """Bad run input: reported on stderr with exit code 2."""


class Timer:
    """Seconds per named stage (`with timer.stage("load"): ...`) and since creation."""

    def __init__(self):
        self.start = time.perf_counter()
        self.durations: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.durations[name] = time.perf_counter() - t

    def total(self) -> float:
        return time.perf_counter() - self.start


def atomic_json(path: Path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2))


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict:
    names = MODEL_LIBRARIES + ("scikit-learn", "scipy", "maskfer")
    out = {"python": platform.python_version(), "platform": platform.platform()}
    out.update({n: v for n in names if (v := _version(n))})
    return out


def fingerprint(cfg, variant: str, dataset_sha256: str) -> dict:
    """What determines `variant`'s model: the training recipe, the rows, the training masks (for variants
    that see masks) and the library versions. JSON-ready."""
    from .machine import resolve_precision
    from .transfer import method_of
    fp = {"train": asdict(cfg.train), "precision": resolve_precision(cfg.train.precision),
          "dataset_sha256": dataset_sha256, "limit_rows": cfg.limit_rows, "sources": list(C.sources(variant)),
          "versions": {n: v for n in MODEL_LIBRARIES if (v := _version(n))}}
    if C.uses_masks(variant):
        fp["train_masks"] = {**asdict(MaskConfig(mask_types=cfg.train_mask_types, seed=cfg.mask_seed)),
                             "masking_version": MASK_VERSION}
        method = method_of(cfg, variant)
        fp["transfer"] = asdict(cfg.transfer) if method != "scratch" else {"method": "scratch"}
        if method != "scratch":  # the clean model it starts from (and learns from) is part of it
            fp["teacher"] = fingerprint(cfg, C.CLEAN, dataset_sha256)
    return json.loads(json.dumps(fp))  # tuples as lists, as they read back


def fingerprint_diff(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted names of the fields that differ between two fingerprints."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += fingerprint_diff(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}")
    return out


def check_writable(out: Path) -> None:
    """RunError unless `out` is (or can be made) a folder this process can write."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / ".write-check") as tmp:
            tmp.write_text("")
        (out / ".write-check").unlink()
    except OSError as e:
        raise RunError(f"--out {out}: cannot write there ({e.strerror or e})") from None


def resolve_data(cfg) -> str:
    """The data path: --data, synthetic faces for the smoke profile, or $FER2013_CSV."""
    if cfg.data:
        if not Path(cfg.data).exists():
            raise RunError(f"--data {cfg.data}: no such file or folder")
        return cfg.data
    if cfg.profile == "smoke":  # synthetic faces, made here
        path = Path(cfg.cache_dir or default_cache_dir()) / "synthetic-700-seed0.csv"
        if not path.exists():
            write_fer_csv(path, *make_synthetic(700, 0))
        return str(path)
    env = os.environ.get("FER2013_CSV")
    if env and Path(env).is_file():
        return env
    raise RunError("no data: pass --data PATH to FER2013 (.csv, .csv.gz or image folders), or set FER2013_CSV")
