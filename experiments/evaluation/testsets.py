"""Cross-dataset test sets (`--test-data NAME=PATH`): the user's other face datasets, clean and masked.

Each set becomes two test conditions, `NAME:clean` and `NAME:masked` (masked with the run's training mask
config and seed, every row kept), scored like FER2013's. A set is a FER-format CSV (every row is a test
row) or an emotion-folder tree (`datasets.folders`; of a `<split>/<emotion>/` tree, the test split, else
the validation split). Images that are not face crops get the same face detection and alignment as
`experiments.predict` (`datasets.faces.face_crop`); an image with no face found is kept (its centre
square, status `no_face`) and counted; an unreadable file is left out and counted.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datasets import EMOTIONS, USAGES, DatasetError, FERData, list_emotion_folders, load_fer2013
from datasets.prepared import FACE_STATUSES
from datasets.faces import crop_files
from masking import MaskConfig, mask_dataset

from .. import conditions as C
from ..runfolder import save_set_samples

PRIVATE, PUBLIC = USAGES.index("PrivateTest"), USAGES.index("PublicTest")


@dataclass(frozen=True, eq=False)
class TestSet:
    """name; fer: the set as FERData (images (N, 48, 48) uint8, labels, rows 0..N-1 in listing order);
    status (N,) uint8 into datasets.prepared.FACE_STATUSES; counts: {"crop"|"face"|"no_face"|"unreadable": n};
    skipped: {folder: images} of folders that are no emotion (or an unused split); files: (N,) source names."""

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


def _test_rows(listing) -> tuple[list[Path], np.ndarray, dict[str, int]]:
    """The files and labels a test set uses: all of a folder without splits; else the test split (or, if
    there is none, the validation split), the other splits counted as skipped."""
    if listing.usage is None:
        return listing.files, listing.labels, dict(listing.skipped)
    pick = PRIVATE if (listing.usage == PRIVATE).any() else PUBLIC
    keep = listing.usage == pick
    if not keep.any():
        raise DatasetError(f"{listing.root}: no test or validation split folder with images")
    skipped = dict(listing.skipped)
    for u in set(listing.usage[~keep].tolist()):
        skipped[f"({USAGES[u]} split)"] = int((listing.usage == u).sum())
    return [f for f, k in zip(listing.files, keep) if k], listing.labels[keep], skipped


def load_test_set(name: str, path: str, workers: int | None = None, cache_dir: str | None = None) -> TestSet:
    """Read a FER-format CSV (every row is a test row) or an emotion-folder tree of images."""
    p = Path(path)
    if p.is_file():
        fer = load_fer2013(p, cache_dir=cache_dir)
        status = np.zeros(len(fer), np.uint8)
        return TestSet(name, str(p), _as_test(fer.images, fer.labels, fer.source_hash), status,
                       {"crop": len(fer)}, files=tuple(f"row {r}" for r in fer.rows.tolist()))
    files, labels, skipped = _test_rows(list_emotion_folders(p))
    images, status = crop_files(files, workers)
    readable = status < len(FACE_STATUSES)
    counts = {s: int((status == j).sum()) for j, s in enumerate(FACE_STATUSES)}
    counts["unreadable"] = int((~readable).sum())
    if not readable.any():
        raise DatasetError(f"{p}: none of its {len(status)} images could be read")
    digest = hashlib.sha256()
    for f, img in zip(files, images):
        digest.update(str(Path(f).relative_to(p)).encode() + b"\0" + img.tobytes())
    fer = _as_test(images[readable], labels[readable], digest.hexdigest())
    names = tuple(str(Path(f).relative_to(p)) for f, ok in zip(files, readable) if ok)
    return TestSet(name, str(p), fer, status[readable], counts, skipped, names)


def _as_test(images: np.ndarray, labels: np.ndarray, source_hash: str) -> FERData:
    n = len(labels)
    return FERData(images, labels.astype(np.uint8), np.full(n, PRIVATE, np.uint8),
                   np.arange(n, dtype=np.int64), source_hash)


def conditions_of(ts: TestSet, mask_config: MaskConfig, workers: int | None = None,
                  cache_dir: str | None = None) -> dict[str, np.ndarray]:
    """{"NAME:clean": images, "NAME:masked": images}, (N, 48, 48) uint8 each, for one test set; the masked
    twin uses the run's training mask config and keeps every row."""
    return {C.set_condition(ts.name, C.CLEAN): ts.fer.images,
            C.set_condition(ts.name, C.MASKED): mask_dataset(ts.fer, mask_config, workers, cache_dir).images}


def save_set_conditions(run: Path, ts: TestSet, conds: dict[str, np.ndarray]) -> None:
    """RUN/sets/<NAME>.npz from a set's two conditions (`runfolder.save_set_samples`)."""
    save_set_samples(run, ts.name, ts.fer.labels, conds[C.set_condition(ts.name, C.CLEAN)],
                     conds[C.set_condition(ts.name, C.MASKED)])
