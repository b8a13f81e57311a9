"""Content-addressed `.npz` cache for parsed datasets.

The key is the sha256 of the source file's bytes, so a renamed or moved copy hits the cache and an
edited one misses it. Files are written to a temporary name and renamed, and read with
`allow_pickle=False`.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import platformdirs

from .atomic import atomic_path
from .fer2013 import DatasetError, FERData, file_sha256, load_csv_uncached

CACHE_VERSION = 1
CACHE_ENV = "MASKFER_CACHE_DIR"


def default_cache_dir() -> Path:
    """`$MASKFER_CACHE_DIR`, else the user cache dir (e.g. ~/.cache/maskfer), never beside the data."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path(platformdirs.user_cache_dir("maskfer"))


def atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    """np.savez to a temporary file in the same folder, then rename over `path`."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def load_npz(path: Path) -> dict[str, np.ndarray] | None:
    """Arrays of a cache file, or None if it is missing or unreadable (a damaged cache is rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def load_fer2013(path: str | Path, cache_dir: str | Path | None = None, use_cache: bool = True) -> FERData:
    """Load FER2013 from `.csv`/`.csv.gz`, through the cache unless `use_cache` is False.

    Returns FERData with images (N, 48, 48) uint8, labels (N,) uint8, usage (N,) uint8, rows (N,) int64.
    """
    path = Path(path)
    if not use_cache:
        return load_csv_uncached(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    digest = file_sha256(path)
    target = Path(cache_dir or default_cache_dir()) / f"fer2013-{digest[:24]}-v{CACHE_VERSION}.npz"
    cached = load_npz(target)
    if cached is not None and set(cached) >= {"images", "labels", "usage", "rows"}:
        return FERData(cached["images"], cached["labels"], cached["usage"], cached["rows"], digest)
    fer = load_csv_uncached(path)  # raises before anything is written
    atomic_save_npz(target, images=fer.images, labels=fer.labels, usage=fer.usage, rows=fer.rows)
    return fer
