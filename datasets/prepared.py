"""Prepared photo sets: the format `python -m datasets prepare` writes and every loader reads.

  PREPARED/manifest.json   what the set is: its source, split rule, counts, skipped folders, unreadable files,
                           each shard's rows and sha256, and the set's hash (written last: it marks a finished set)
  PREPARED/rows.csv        one line per listed image: row, file, emotion, split, status, shard
  PREPARED/shard-NNNNN.npz images (n, 48, 48) uint8 (FER2013's framing), labels (n,) uint8, usage (n,) uint8,
                           status (n,) uint8 into FACE_STATUSES (+ one code for unreadable), row (n,) int64, key

Rows keep their listing position as their row id, so a prepared set is paired, masked and scored like FER2013.
Loading fills one preallocated array shard by shard, so peak memory is the set plus one shard.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .fer2013 import SIDE, DatasetError, FERData

MANIFEST = "manifest.json"
ROWS = "rows.csv"
FORMAT_VERSION = 1
FACE_STATUSES = ("crop", "face", "no_face")  # how each image became a face crop (datasets.faces.face_crop)
UNREADABLE = len(FACE_STATUSES)              # the status code of a file no reader could open


def shard_name(k: int) -> str:
    return f"shard-{k:05d}.npz"


def is_prepared(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def read_manifest(root: str | Path) -> dict:
    path = Path(root) / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DatasetError(f"{path}: not a prepared set's manifest ({e})") from None


SHARD_ARRAYS = ("images", "labels", "usage", "status", "row")


def content_sha256(arrays: dict[str, np.ndarray]) -> str:
    """A shard's identity: the sha256 of its arrays' bytes (the same pixels give the same hash wherever and
    whenever they were prepared; the .npz file's own bytes carry zip timestamps)."""
    h = hashlib.sha256()
    for key in SHARD_ARRAYS:
        h.update(key.encode() + np.ascontiguousarray(arrays[key]).tobytes())
    return h.hexdigest()


def read_shards(root: str | Path) -> dict[str, np.ndarray]:
    """Every row of a prepared set, unreadable ones included: {name: the shards' arrays concatenated} for each
    of SHARD_ARRAYS (images (N, 48, 48) uint8; labels, usage, status (N,) uint8; row (N,) int64), whatever
    the shard size: two sets prepared from the same folder give equal arrays."""
    root = Path(root)
    parts = {k: [] for k in SHARD_ARRAYS}
    for shard in read_manifest(root)["shards"]:
        with np.load(root / shard["name"], allow_pickle=False) as z:
            for k in SHARD_ARRAYS:
                parts[k].append(z[k])
    return {k: np.concatenate(v) for k, v in parts.items()}


def load_prepared(root: str | Path) -> FERData:
    """A prepared set as FERData: every readable row (images (N, 48, 48) uint8, labels, usage, rows = listing
    positions), source_hash = the manifest's hash. A missing or altered shard raises DatasetError naming it."""
    root = Path(root)
    manifest = read_manifest(root)
    n = sum(s["readable"] for s in manifest["shards"])
    images = np.empty((n, SIDE, SIDE), np.uint8)
    labels, usage, rows = (np.empty(n, np.uint8), np.empty(n, np.uint8), np.empty(n, np.int64))
    at = 0
    for shard in manifest["shards"]:
        path = root / shard["name"]
        try:
            with np.load(path, allow_pickle=False) as z:
                z = {k: z[k] for k in SHARD_ARRAYS}
        except (OSError, ValueError, KeyError) as e:
            raise DatasetError(f"{path}: missing or unreadable ({e}); rerun python -m datasets prepare") from None
        if content_sha256(z) != shard["sha256"]:
            raise DatasetError(f"{path}: changed since it was prepared; rerun python -m datasets prepare")
        keep = z["status"] != UNREADABLE
        k = int(keep.sum())
        images[at:at + k], labels[at:at + k] = z["images"][keep], z["labels"][keep]
        usage[at:at + k], rows[at:at + k] = z["usage"][keep], z["row"][keep]
        at += k
    return FERData(images, labels, usage, rows, manifest["sha256"])
