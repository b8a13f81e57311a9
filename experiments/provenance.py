"""What a trained model depends on, and whether a run folder's finished model can be reused: the data a run
reads, library versions, each variant's fingerprint, and the resume check."""
from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

from datasets import default_cache_dir, make_synthetic, write_fer_csv
from masking.pipeline import CACHE_VERSION as MASK_VERSION

from . import conditions as C
from .config import RunConfig
from .runfolder import RunError
from .training.config import OCCLUDER_VERSION
from .training.precision import resolve_precision
from .training.transfer import method_of

# The libraries whose version changes what a trained model is.
MODEL_LIBRARIES = ("tensorflow", "tensorflow-cpu", "keras", "numpy", "dlib-bin", "opencv-python-headless")


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


# TrainConfig fields added after runs were made; those runs had them at 0 (off), so a 0 is left out of a
# fingerprint and an old run's fingerprint still matches.
LATER_FIELDS = (("augment", "erasing"), ("train", "validate_from"))


def fingerprint(cfg: RunConfig, variant: str, dataset_sha256: str) -> dict:
    """What determines `variant`'s model: the training recipe, the rows, the training masks (for variants
    that see masks) and the library versions. JSON-ready."""
    train = asdict(cfg.train)
    for owner, key in LATER_FIELDS:  # at the value runs made before they existed had, they are not recorded
        fields = train["augment"] if owner == "augment" else train
        if not fields[key]:
            del fields[key]
    fp = {"train": train, "precision": resolve_precision(cfg.train.precision),
          "dataset_sha256": dataset_sha256, "limit_rows": cfg.limit_rows, "sources": list(C.sources(variant)),
          "versions": {n: v for n in MODEL_LIBRARIES if (v := _version(n))}}
    if C.uses_masks(variant):
        masks = cfg.flat_config if variant == C.FLAT else cfg.mask_config
        fp["train_masks"] = {**masks.identity(), "masking_version": MASK_VERSION}
        if cfg.train_occlusion and C.MASKED in C.sources(variant):  # left out at 0 (as runs made before it had)
            fp["train_masks"]["occlusion"] = cfg.train_occlusion
            fp["train_masks"]["occluder_version"] = OCCLUDER_VERSION
        method = method_of(cfg, variant)
        fp["transfer"] = asdict(cfg.transfer) if method != "scratch" else {"method": "scratch"}
        if fp["transfer"].get("seed", 0) is None:  # the training seed: left out, as runs made before it recorded
            del fp["transfer"]["seed"]
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


def recorded(vdir: Path) -> dict | None:
    """The fingerprint a variant folder records (finished: done.json; interrupted: fingerprint.json)."""
    for name in ("done.json", "fingerprint.json"):
        if (vdir / name).is_file():
            try:
                return json.loads((vdir / name).read_text()).get("fingerprint")
            except ValueError:
                return {"unreadable": name}
    return None


def check_resume(cfg: RunConfig, out: Path, prints: dict[str, dict]) -> list[str]:
    """Variants to train. A finished variant with the same fingerprint is reused; one with another
    fingerprint (finished or interrupted) raises RunError naming the fields, unless cfg.overwrite (then it
    is retrained, its folder cleared only when its training starts). Nothing is written or deleted here."""
    todo = []
    for variant in cfg.variants:
        vdir = out / variant
        before = recorded(vdir)
        stale = before is not None and before != prints[variant]
        if stale and not cfg.overwrite:
            fields = ", ".join(fingerprint_diff(before, prints[variant])) or "(unreadable record)"
            raise RunError(f"{vdir}: this folder's {variant} model was trained with other settings "
                           f"(differs in: {fields}); use another --out, or --overwrite to retrain it")
        if stale or not ((vdir / "done.json").is_file() and (vdir / "model.keras").is_file()):
            todo.append(variant)
    return todo


def resolve_data(cfg: RunConfig) -> str:
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
