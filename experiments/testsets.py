"""Cross-dataset test sets (`--test-data NAME=PATH`): the user's other face datasets, clean and masked.

Each set becomes two test conditions, `NAME:clean` and `NAME:masked` (masked with the run's training mask
config and seed, every row kept), scored like FER2013's. Images that are not face crops get the same face
detection and alignment as `experiments.predict` (`masking.faces.face_crop`); an image with no face found
is kept (its centre square, status `no_face`) and counted; an unreadable file is left out and counted.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datasets import EMOTIONS, USAGES, DatasetError, FERData, load_fer2013
from datasets.testsets import list_emotion_folders

from . import conditions as C


@dataclass(frozen=True, eq=False)
class TestSet:
    """name; fer: the set as FERData (images (N, 48, 48) uint8, labels, rows 0..N-1 in listing order);
    status (N,) uint8 into masking.faces.FACE_STATUSES; counts: {"crop"|"face"|"no_face"|"unreadable": n};
    skipped: {folder: images} of folders that are no emotion; files: (N,) source names."""

    name: str
    path: str
    fer: FERData
    status: np.ndarray
    counts: dict[str, int]
    skipped: dict[str, int] = field(default_factory=dict)
    files: tuple[str, ...] = ()

    @property
    def emotions(self) -> list[int]:
        return sorted(set(self.fer.labels.tolist()))

    def summary(self) -> dict:
        return {"path": self.path, "rows": len(self.fer), "counts": self.counts, "skipped_folders": self.skipped,
                "emotions": [EMOTIONS[k] for k in self.emotions],
                "per_emotion": {EMOTIONS[k]: int((self.fer.labels == k).sum()) for k in self.emotions}}


def parse_spec(spec: str, taken: set[str] = frozenset()) -> tuple[str, str]:
    """NAME=PATH -> (NAME, PATH). Raises ValueError naming the problem: no `=`, an empty or reserved name, a
    name used twice, a path that does not exist."""
    name, sep, path = spec.partition("=")
    name = name.strip()
    if not sep or not name or not path:
        raise ValueError(f"--test-data {spec!r}: expected NAME=PATH")
    if not C.valid_set_name(name):
        raise ValueError(f"--test-data {spec!r}: NAME may use letters, digits, '_' and '-' and must not be "
                         f"one of {', '.join(C.RESERVED_NAMES)}")
    if name in taken:
        raise ValueError(f"--test-data {spec!r}: the name {name!r} is used twice")
    if not Path(path).exists():
        raise ValueError(f"--test-data {spec!r}: {path}: no such file or folder")
    return name, path


def parse_specs(specs: list[str]) -> tuple[tuple[str, str], ...]:
    """Every --test-data NAME=PATH, checked (`parse_spec`), names unique; ValueError on the first bad one."""
    out: list[tuple[str, str]] = []
    for spec in specs:
        out.append(parse_spec(spec, {n for n, _ in out}))
    return tuple(out)


def load_test_set(name: str, path: str, workers: int | None = None, cache_dir: str | None = None) -> TestSet:
    """Read a FER-format CSV (every row is a test row) or an emotion-folder tree of images."""
    from masking import crop_files
    from masking.faces import FACE_STATUSES
    p = Path(path)
    if p.is_file():
        fer = load_fer2013(p, cache_dir=cache_dir)
        status = np.zeros(len(fer), np.uint8)
        return TestSet(name, str(p), _as_test(fer.images, fer.labels, fer.source_hash), status,
                       {"crop": len(fer)}, files=tuple(f"row {r}" for r in fer.rows.tolist()))
    listing = list_emotion_folders(p)
    images, status = crop_files(listing.files, workers)
    readable = status < len(FACE_STATUSES)
    counts = {s: int((status == j).sum()) for j, s in enumerate(FACE_STATUSES)}
    counts["unreadable"] = int((~readable).sum())
    if not readable.any():
        raise DatasetError(f"{p}: none of its {len(status)} images could be read")
    digest = hashlib.sha256()
    for f, img in zip(listing.files, images):
        digest.update(str(Path(f).relative_to(p)).encode() + b"\0" + img.tobytes())
    fer = _as_test(images[readable], listing.labels[readable], digest.hexdigest())
    files = tuple(str(Path(f).relative_to(p)) for f, ok in zip(listing.files, readable) if ok)
    return TestSet(name, str(p), fer, status[readable], counts, listing.skipped, files)


def _as_test(images: np.ndarray, labels: np.ndarray, source_hash: str) -> FERData:
    n = len(labels)
    return FERData(images, labels.astype(np.uint8), np.full(n, USAGES.index("PrivateTest"), np.uint8),
                   np.arange(n, dtype=np.int64), source_hash)


def masked_images(ts: TestSet, mask_config, workers: int | None = None, cache_dir: str | None = None) -> np.ndarray:
    """(N, 48, 48) uint8: the set masked with the run's training mask config; every row kept."""
    from masking import mask_dataset
    return mask_dataset(ts.fer, mask_config, workers, cache_dir).images


def conditions_of(ts: TestSet, mask_config, workers: int | None = None,
                  cache_dir: str | None = None) -> dict[str, np.ndarray]:
    """{"NAME:clean": images, "NAME:masked": images} for one test set."""
    return {C.set_condition(ts.name, C.CLEAN): ts.fer.images,
            C.set_condition(ts.name, C.MASKED): masked_images(ts, mask_config, workers, cache_dir)}
