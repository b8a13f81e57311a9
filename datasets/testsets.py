"""Other face datasets as test sets: emotion folder names (with the usual synonyms) -> labels.

A test set is a folder of `<emotion>/` subfolders, or of `<split>/<emotion>/` (its test split is used),
holding images of any size and format Pillow or OpenCV read; or a FER-format CSV (extra columns ignored).
Folders whose name is no emotion (contempt, unknown, ...) are reported and skipped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .fer2013 import EMOTIONS, IMAGE_SUFFIXES, DatasetError

SYNONYMS = {
    "angry": ("anger", "angry", "mad", "an"),
    "disgust": ("disgust", "disgusted", "disgusting", "di"),
    "fear": ("fear", "fearful", "afraid", "scared", "fe"),
    "happy": ("happy", "happiness", "joy", "joyful", "smile", "smiling", "ha"),
    "sad": ("sad", "sadness", "unhappy", "sa"),
    "surprise": ("surprise", "surprised", "su"),
    "neutral": ("neutral", "neutrality", "calm", "ne"),
}
_LOOKUP = {s: EMOTIONS.index(e) for e, names in SYNONYMS.items() for s in names}
TEST_SPLITS = ("test", "testing", "privatetest", "val", "valid", "validation", "publictest")


def emotion_of(folder_name: str) -> int | None:
    """Label 0..6 of an emotion folder name (any case; a numeric prefix such as `03_` or `3-` is ignored),
    or None for a folder that is no emotion (contempt, unknown, ...)."""
    name = re.sub(r"^[0-9]+[\s_.-]*", "", folder_name.strip().lower())
    return _LOOKUP.get(name)


@dataclass(frozen=True)
class FolderListing:
    """files (N,) image paths sorted by emotion then name; labels (N,) uint8; skipped: {folder: images}."""

    files: list[Path]
    labels: np.ndarray
    skipped: dict[str, int] = field(default_factory=dict)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def list_emotion_folders(root: str | Path) -> FolderListing:
    """The labelled images of a test-set folder. Raises DatasetError when it holds no emotion folder."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir())
    if not any(emotion_of(d.name) is not None for d in subdirs):  # <split>/<emotion>/: take the test split
        splits = {d.name.lower(): d for d in subdirs}
        pick = next((splits[s] for s in TEST_SPLITS if s in splits), None)
        if pick is None:
            raise DatasetError(f"{root}: no emotion folders (angry, happy, ...) and no test split folder "
                               f"({', '.join(TEST_SPLITS)})")
        root, subdirs = pick, sorted(p for p in pick.iterdir() if p.is_dir())
    files, labels, skipped = [], [], {}
    for d in subdirs:
        label, imgs = emotion_of(d.name), _images(d)
        if label is None:
            skipped[d.name] = len(imgs)
            continue
        files += imgs
        labels += [label] * len(imgs)
    if not files:
        raise DatasetError(f"{root}: no images in its emotion folders")
    order = np.lexsort((np.array([str(f) for f in files]), np.array(labels)))
    return FolderListing([files[i] for i in order], np.array(labels, np.uint8)[order], skipped)
