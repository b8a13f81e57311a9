"""`python -m datasets prepare PHOTOS --out PREPARED`: a folder of face photos -> a prepared set of 48x48 face
crops in FER2013's framing, in shards, with a manifest (format: `datasets.prepared`).

PHOTOS holds `<emotion>/` or `<split>/<emotion>/` folders (`datasets.folders`: synonyms, AffectNet numbers;
contempt and unknown folders are reported and skipped). Split folders give the Usage; a set without them is
split stratified by emotion (`split`, `seed`). Every image gets `datasets.faces.face_crop`, the crop `predict`
and `--test-data` use: an image with no face is kept (its centre square) and marked `no_face`; an unreadable
file is left out of the set, counted and listed. Shards are made on an engine (`datasets.engine`: local
processes or Ray), written by this process as each is done, so an interrupted prepare resumes at the first
missing shard, and a rerun on an unchanged folder does nothing.
"""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .engine import Engine
from .faces import crop_files
from .fer2013 import EMOTIONS, USAGES, DatasetError
from .folders import list_emotion_folders
from .prepared import (FACE_STATUSES, FORMAT_VERSION, MANIFEST, ROWS, SHARD_ARRAYS, UNREADABLE, content_sha256,
                       is_prepared, read_manifest, shard_name)

SHARD_ROWS = 2048
PHOTO_UPSAMPLE = 1  # dlib's up-sampling passes on photos (`datasets.faces.FaceFinder`)


def parse_split(text: str) -> tuple[float, float, float]:
    """"0.8,0.1,0.1" -> (Training, PublicTest, PrivateTest) fractions; DatasetError unless three values >= 0
    that sum to 1."""
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or min(parts) < 0 or abs(sum(parts) - 1) > 1e-6:
        raise DatasetError(f"--split {text}: expected three fractions (train,val,test) >= 0 that sum to 1")
    return parts


def stratified_usage(labels: np.ndarray, split: tuple[float, float, float], seed: int) -> np.ndarray:
    """(N,) uint8 Usage per row, stratified by emotion: each emotion present is shuffled (seeded) and cut into
    Training / PublicTest / PrivateTest at its own share of the fractions, rounded to whole rows, so every
    emotion a set has is split alike whichever emotions it lacks. Reproducible from `seed`."""
    usage = np.zeros(len(labels), np.uint8)
    rng = np.random.default_rng(seed)
    _, val_frac, test_frac = split
    for k in np.unique(labels):
        ids = rng.permutation(np.flatnonzero(labels == k))
        n_test = int(np.floor(len(ids) * test_frac + 0.5))
        n_val = min(int(np.floor(len(ids) * val_frac + 0.5)), len(ids) - n_test)
        usage[ids[:n_val]] = USAGES.index("PublicTest")
        usage[ids[n_val:n_val + n_test]] = USAGES.index("PrivateTest")
    return usage


def _listing_hash(root: Path, files, labels, usage, settings: dict) -> str:
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for f, lab, u in zip(files, labels.tolist(), usage.tolist()):
        st = f.stat()
        h.update(f"{f.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\0{lab}\0{u}\n".encode())
    return h.hexdigest()


def _check_paths(photos: Path, out: Path) -> None:
    if not photos.is_dir():
        raise DatasetError(f"{photos}: not a folder")
    if not any(photos.iterdir()):
        raise DatasetError(f"{photos}: the folder is empty")
    if out.resolve() == photos.resolve() or photos.resolve() in out.resolve().parents:
        raise DatasetError(f"--out {out}: inside the photo folder {photos}; choose a folder outside it")


def prepare_photos(photos: str | Path, out: str | Path, split: tuple[float, float, float] = (0.8, 0.1, 0.1),
                   seed: int = 0, engine: Engine | None = None, shard_rows: int = SHARD_ROWS) -> dict:
    """Prepare PHOTOS into OUT (see the module docstring) and return the manifest. Bad input raises
    DatasetError naming the folder or option, before anything is written."""
    photos, out = Path(photos), Path(out)
    _check_paths(photos, out)
    listing = list_emotion_folders(photos)
    usage = listing.usage if listing.usage is not None else stratified_usage(listing.labels, split, seed)
    order = np.lexsort((np.arange(len(usage)), usage))  # rows grouped by split, listing order within
    files = [listing.files[i] for i in order]
    labels, usage = listing.labels[order], usage[order]
    settings = {"version": FORMAT_VERSION, "split": "folders" if listing.usage is not None else list(split),
                "seed": seed, "shard_rows": shard_rows, "faces": {"photo_upsample": PHOTO_UPSAMPLE}}
    listing_hash = _listing_hash(photos, files, labels, usage, settings)
    done = read_manifest(out) if is_prepared(out) else {}
    if done.get("listing_sha256") == listing_hash and all((out / s["name"]).is_file() for s in done["shards"]):
        print(f"prepare: {out} is up to date ({len(files)} images)", flush=True)
        return done
    out.mkdir(parents=True, exist_ok=True)
    shards, statuses = [], []
    for k, start in enumerate(range(0, len(files), shard_rows)):
        part = slice(start, start + shard_rows)
        key = hashlib.sha256(f"{listing_hash}/{k}".encode()).hexdigest()
        path = out / shard_name(k)
        if not _shard_done(path, key):
            _make_shard(path, key, files[part], labels[part], usage[part], start, engine or Engine())
        entry, status = _shard_entry(path)
        shards.append(entry)
        statuses.append(status)
        print(f"prepare: shard {k + 1}/{-(-len(files) // shard_rows)} ({path.name})", flush=True)
    return _write_manifest(out, photos, files, labels, usage, listing, settings, listing_hash, shards,
                           np.concatenate(statuses))


def _shard_done(path: Path, key: str) -> bool:
    try:
        with np.load(path, allow_pickle=False) as z:
            return str(z["key"]) == key
    except (OSError, ValueError, KeyError):
        return False


def _make_shard(path: Path, key: str, files, labels, usage, start: int, engine: Engine) -> None:
    """Face crops of one shard's files, on the engine (its chunks spread over the workers), saved atomically."""
    images, status = crop_files(files, engine=engine, photo_upsample=PHOTO_UPSAMPLE)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, images=images, labels=labels, usage=usage, status=status,
                 row=np.arange(start, start + len(files), dtype=np.int64), key=np.array(key))


def _shard_entry(path: Path) -> tuple[dict, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in SHARD_ARRAYS}
    status = arrays["status"]
    return ({"name": path.name, "rows": int(len(status)), "readable": int((status != UNREADABLE).sum()),
             "sha256": content_sha256(arrays)}, status)


def _write_manifest(out, photos, files, labels, usage, listing, settings, listing_hash, shards, statuses) -> dict:
    names = FACE_STATUSES + ("unreadable",)
    with atomic_path(out / ROWS) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["row", "file", "emotion", "split", "status", "shard"])
        for i, (p, lab, u, st) in enumerate(zip(files, labels.tolist(), usage.tolist(), statuses.tolist())):
            w.writerow([i, p.relative_to(photos), EMOTIONS[lab], USAGES[u], names[st], shards[i // settings["shard_rows"]]["name"]])
    readable = statuses != UNREADABLE
    manifest = {
        **settings, "source": str(photos), "listing_sha256": listing_hash,
        "sha256": hashlib.sha256("".join(s["sha256"] for s in shards).encode()).hexdigest(),
        "rows": int(readable.sum()), "listed": len(files), "shards": shards,
        "counts": {n: int((statuses == j).sum()) for j, n in enumerate(names)},
        "per_split": {u: {e: int(((usage == i) & (labels == k) & readable).sum()) for k, e in enumerate(EMOTIONS)}
                      for i, u in enumerate(USAGES)},
        "skipped_folders": listing.skipped,
        "unreadable_files": [str(p.relative_to(photos)) for p, st in zip(files, statuses) if st == UNREADABLE],
    }
    with atomic_path(out / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2))
    c = manifest["counts"]
    print(f"prepare: {manifest['rows']} of {len(files)} images -> {out} (faces found {c['face']}, crops "
          f"{c['crop']}, no face {c['no_face']}, unreadable {c['unreadable']}; skipped folders "
          f"{listing.skipped or 'none'})", flush=True)
    return manifest
