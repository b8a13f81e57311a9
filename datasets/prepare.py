"""`python -m datasets prepare PHOTOS --out PREPARED`: a folder of face photos -> a prepared set of 48x48 face
crops in FER2013's framing, in shards, with a manifest (format: `datasets.prepared`).

PHOTOS holds `<emotion>/` or `<split>/<emotion>/` folders (`datasets.folders`: synonyms, AffectNet numbers;
contempt and unknown folders are reported and skipped). Split folders give the Usage; a set without them is
split stratified by emotion (`split`, `seed`). Every image gets `datasets.faces.face_crop`, the crop `predict`
and `--test-data` use: an image with no face is kept (its centre square) and marked `no_face`; an unreadable
file is left out of the set, counted and listed. PHOTOS may be a URI (`s3://`, `gs://`, `file://`, ...) that
every node reads through pyarrow; a local folder is read here and its bytes go to the workers.

Every shard's chunks go to the engine at once (`datasets.engine.stream`: local processes or Ray, with a bound on
the chunks in flight); this process writes each shard as soon as its last chunk is in, so an interrupted prepare
makes only the shards not yet written (from the first missing one on), and a rerun on an unchanged folder does
nothing.
"""
from __future__ import annotations

import csv
import hashlib
import json
import time
from collections import Counter
from pathlib import Path, PurePosixPath

import numpy as np

from .atomic import atomic_path
from .engine import Engine, progress, stream
from .faces import crop_chunk
from .fer2013 import EMOTIONS, USAGES, DatasetError
from .folders import list_emotion_folders
from .photos import PhotoFolder
from .prepared import (FACE_STATUSES, FORMAT_VERSION, MANIFEST, ROWS, SHARD_ARRAYS, UNREADABLE, content_sha256,
                       is_prepared, read_manifest, shard_name)

SHARD_ROWS = 2048
CHUNK_ROWS = 32  # photos per task: small enough that no worker idles long at the end
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
    emotion a set has is split alike whichever emotions it lacks. Each emotion draws from its own generator
    (seed, emotion), so adding or removing one emotion's rows leaves every other emotion's split as it was.
    Reproducible from `seed`."""
    usage = np.zeros(len(labels), np.uint8)
    _, val_frac, test_frac = split
    for k in np.unique(labels):
        ids = np.random.default_rng([seed, int(k)]).permutation(np.flatnonzero(labels == k))
        n_test = int(np.floor(len(ids) * test_frac + 0.5))
        n_val = min(int(np.floor(len(ids) * val_frac + 0.5)), len(ids) - n_test)
        usage[ids[:n_val]] = USAGES.index("PublicTest")
        usage[ids[n_val:n_val + n_test]] = USAGES.index("PrivateTest")
    return usage


def _listing_hash(src: PhotoFolder, files, labels, usage, settings: dict) -> str:
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for f, lab, u in zip(files, labels.tolist(), usage.tolist()):
        size, mtime = src.stamp(f)
        h.update(f"{f.relative_to(src.root)}\0{size}\0{mtime}\0{lab}\0{u}\n".encode())
    return h.hexdigest()


def _check_paths(src: PhotoFolder, out: Path) -> None:
    if not src.is_dir():
        raise DatasetError(f"{src}: not a folder")
    if src.fs is None:
        photos = src.root
        if not any(photos.iterdir()):
            raise DatasetError(f"{photos}: the folder is empty")
        if out.resolve() == photos.resolve() or photos.resolve() in out.resolve().parents:
            raise DatasetError(f"--out {out}: inside the photo folder {photos}; choose a folder outside it")


def prepare_photos(photos: str | Path, out: str | Path, split: tuple[float, float, float] = (0.8, 0.1, 0.1),
                   seed: int = 0, engine: Engine | None = None, shard_rows: int = SHARD_ROWS,
                   chunk: int = CHUNK_ROWS) -> dict:
    """Prepare PHOTOS (a local folder, or a URI that pyarrow opens: `datasets.photos`) into OUT (see the module
    docstring) and return the manifest. Bad input raises DatasetError naming the folder or option, before
    anything is written."""
    src, out = PhotoFolder(photos), Path(out)
    _check_paths(src, out)
    listing = list_emotion_folders(src)
    usage = listing.usage if listing.usage is not None else stratified_usage(listing.labels, split, seed)
    order = np.lexsort((np.arange(len(usage)), usage))  # rows grouped by split, listing order within
    files = [listing.files[i] for i in order]
    labels, usage = listing.labels[order], usage[order]
    settings = {"version": FORMAT_VERSION, "split": "folders" if listing.usage is not None else list(split),
                "seed": seed, "shard_rows": shard_rows, "faces": {"photo_upsample": PHOTO_UPSAMPLE}}
    listing_hash = _listing_hash(src, files, labels, usage, settings)
    done = read_manifest(out) if is_prepared(out) else {}
    if done.get("listing_sha256") == listing_hash and all((out / s["name"]).is_file() for s in done["shards"]):
        print(f"prepare: {out} is up to date ({len(files)} images)", flush=True)
        return done
    out.mkdir(parents=True, exist_ok=True)
    n_shards = -(-len(files) // shard_rows)
    keys = [hashlib.sha256(f"{listing_hash}/{k}".encode()).hexdigest() for k in range(n_shards)]
    todo = [k for k in range(n_shards) if not _shard_done(out / shard_name(k), keys[k])]
    if len(todo) < n_shards:
        print(f"prepare: {n_shards - len(todo)} of {n_shards} shards done earlier; making the other {len(todo)}",
              flush=True)
    _make_shards(src, out, todo, keys, files, labels, usage, shard_rows, chunk, engine or Engine())
    entries = [_shard_entry(out / shard_name(k)) for k in range(n_shards)]
    return _write_manifest(out, src, files, labels, usage, listing, settings, listing_hash,
                           [e for e, _ in entries], np.concatenate([s for _, s in entries]))


def _make_shards(src: PhotoFolder, out: Path, todo: list[int], keys: list[str], files, labels, usage,
                 shard_rows: int, chunk: int, engine: Engine) -> None:
    """Every chunk of every shard in `todo` on the engine at once (streaming, `datasets.engine.stream`); each
    shard is saved atomically as soon as its last chunk is in, whatever the order they finish in."""
    plan = [(k, start) for k in todo for start in range(k * shard_rows, min((k + 1) * shard_rows, len(files)), chunk)]
    tasks = ((list(src.refs(files[a:min(a + chunk, (k + 1) * shard_rows)])), PHOTO_UPSAMPLE) for k, a in plan)
    parts: dict[int, dict[int, tuple]] = {k: {} for k in todo}
    expected = Counter(k for k, _ in plan)  # chunks per shard
    sent = {}
    t0 = time.perf_counter()
    with engine.session(), progress(sum(min(shard_rows, len(files) - k * shard_rows) for k in todo), "faces") as bar:
        for done in stream(crop_chunk, _timed(tasks, plan, sent), engine):
            k, a = plan[done.index]
            parts[k][a] = (*done.result, done.seconds)
            bar.update(len(done.result[1]))
            if len(parts[k]) < expected[k]:
                continue
            chunks = [v for _, v in sorted(parts.pop(k).items())]
            rows = slice(k * shard_rows, k * shard_rows + sum(len(c[1]) for c in chunks))
            _save_shard(out / shard_name(k), keys[k], np.concatenate([c[0] for c in chunks]),
                        np.concatenate([c[1] for c in chunks]), labels[rows], usage[rows], rows.start)
            work = sum(c[2] for c in chunks)
            print(f"prepare: shard {k + 1}/{-(-len(files) // shard_rows)} written ({rows.stop - rows.start} rows; "
                  f"{time.perf_counter() - sent[k]:.1f} s since its first chunk was sent, {work:.1f} s of work; "
                  f"{time.perf_counter() - t0:.1f} s in all)", flush=True)


def _timed(tasks, plan, sent: dict):
    """The tasks, noting when each shard's first chunk is sent."""
    for i, t in enumerate(tasks):
        sent.setdefault(plan[i][0], time.perf_counter())
        yield t


def _shard_done(path: Path, key: str) -> bool:
    try:
        with np.load(path, allow_pickle=False) as z:
            return str(z["key"]) == key
    except (OSError, ValueError, KeyError):
        return False


def _save_shard(path: Path, key: str, images, status, labels, usage, start: int) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, images=images, labels=labels, usage=usage, status=status,
                 row=np.arange(start, start + len(status), dtype=np.int64), key=np.array(key))


def _shard_entry(path: Path) -> tuple[dict, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in SHARD_ARRAYS}
    status = arrays["status"]
    return ({"name": path.name, "rows": int(len(status)), "readable": int((status != UNREADABLE).sum()),
             "sha256": content_sha256(arrays)}, status)


def _write_manifest(out, src, files, labels, usage, listing, settings, listing_hash, shards, statuses) -> dict:
    names = FACE_STATUSES + ("unreadable",)
    with atomic_path(out / ROWS) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["row", "file", "emotion", "split", "status", "shard"])
        for i, (p, lab, u, st) in enumerate(zip(files, labels.tolist(), usage.tolist(), statuses.tolist())):
            w.writerow([i, PurePosixPath(*p.relative_to(src.root).parts), EMOTIONS[lab], USAGES[u], names[st], shards[i // settings["shard_rows"]]["name"]])
    readable = statuses != UNREADABLE
    manifest = {
        **settings, "source": str(src), "listing_sha256": listing_hash,
        "sha256": hashlib.sha256("".join(s["sha256"] for s in shards).encode()).hexdigest(),
        "rows": int(readable.sum()), "listed": len(files), "shards": shards,
        "counts": {n: int((statuses == j).sum()) for j, n in enumerate(names)},
        "per_split": {u: {e: int(((usage == i) & (labels == k) & readable).sum()) for k, e in enumerate(EMOTIONS)}
                      for i, u in enumerate(USAGES)},
        "skipped_folders": listing.skipped,
        "unreadable_files": [str(PurePosixPath(*p.relative_to(src.root).parts)) for p, st in zip(files, statuses) if st == UNREADABLE],
    }
    with atomic_path(out / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2))
    c = manifest["counts"]
    print(f"prepare: {manifest['rows']} of {len(files)} images -> {out} (faces found {c['face']}, crops "
          f"{c['crop']}, no face {c['no_face']}, unreadable {c['unreadable']}; skipped folders "
          f"{listing.skipped or 'none'})", flush=True)
    return manifest
