"""Emotion-folder datasets: one reader for every folder of face images maskfer takes.

A folder holds `<emotion>/` subfolders, or `<split>/<emotion>/` ones. Emotion folders are named by an
emotion or a usual synonym, in any case, with an optional numeric prefix (`Anger`, `HAPPINESS`, `03_fear`)
or by AffectNet's class number (0-6; 7, contempt, is skipped);
split folders map to FER2013's Usage (`train` -> Training, `val` -> PublicTest, `test` -> PrivateTest, and
their synonyms). Images are found at any depth inside an emotion folder. Folders that are no emotion
(contempt, unknown, ...) or no split are listed as skipped; what to do with them is the caller's choice.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .fer2013 import EMOTIONS, IMAGE_SUFFIXES, SIDE, USAGES, DatasetError, FERData
from .photos import PhotoFolder

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
# AffectNet's class folders are numbers: 0 neutral, 1 happy, 2 sad, 3 surprise, 4 fear, 5 disgust, 6 anger,
# 7 contempt (no FER2013 emotion: skipped like any other folder that is no emotion).
AFFECTNET = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "angry")
SPLIT_NAMES = {
    "train": "Training", "training": "Training",
    "val": "PublicTest", "valid": "PublicTest", "validation": "PublicTest", "publictest": "PublicTest",
    "test": "PrivateTest", "testing": "PrivateTest", "privatetest": "PrivateTest",
}


def emotion_of(folder_name: str) -> int | None:
    """Label 0..6 of an emotion folder name (any case; a numeric prefix such as `03_` or `3-` is ignored;
    a bare number is an AffectNet class), or None for a folder that is no emotion (contempt, unknown, ...)."""
    if folder_name.strip().isdigit():
        k = int(folder_name)
        return EMOTIONS.index(AFFECTNET[k]) if k < len(AFFECTNET) else None
    name = re.sub(r"^[0-9]+[\s_.-]*", "", folder_name.strip().lower())
    return _LOOKUP.get(name)


def usage_of(folder_name: str) -> int | None:
    """Index into USAGES of a split folder name (any case), or None."""
    usage = SPLIT_NAMES.get(folder_name.strip().lower())
    return None if usage is None else USAGES.index(usage)


@dataclass(frozen=True)
class FolderListing:
    """The labelled images of an emotion-folder dataset, sorted by usage, emotion and path.

    files: (N,) image paths (`Path`s; for a URI, `PurePosixPath`s of its filesystem); labels: (N,) uint8 in 0..6; usage: (N,) uint8 into USAGES, or None for a
    folder without split folders; skipped: {folder path relative to the root: images in it} of folders
    that are no emotion or no split."""

    root: Path
    files: list[Path]
    labels: np.ndarray
    usage: np.ndarray | None
    skipped: dict[str, int] = field(default_factory=dict)


def list_emotion_folders(root: "str | Path | PhotoFolder") -> FolderListing:
    """List an emotion-folder dataset: a local folder, or a URI or `PhotoFolder` (`datasets.photos`). Raises
    DatasetError naming the folder when it is no folder, holds neither emotion nor split folders, or has no
    image in its emotion folders."""
    src = root if isinstance(root, PhotoFolder) else PhotoFolder(root)
    root = src.root
    if not src.is_dir():
        raise DatasetError(f"{src}: not a folder")
    subdirs = src.subdirs(root)
    flat = any(emotion_of(d.name) is not None for d in subdirs)
    if flat:
        groups = [(None, subdirs)]
    else:
        groups = [(usage_of(d.name), src.subdirs(d)) for d in subdirs]
        if all(u is None for u, _ in groups):
            raise DatasetError(f"{src}: no emotion folders (angry, happy, ...) and no split folders "
                               f"({', '.join(SPLIT_NAMES)})")
    files, labels, usages, skipped = [], [], [], {}
    for (usage, emotion_dirs), split_dir in zip(groups, [root] if flat else subdirs):
        if not flat and usage is None:
            skipped[split_dir.name] = len(src.files(split_dir, IMAGE_SUFFIXES))
            continue
        for d in emotion_dirs:
            label, imgs = emotion_of(d.name), src.files(d, IMAGE_SUFFIXES)
            if label is None:
                skipped[str(d.relative_to(root))] = len(imgs)
                continue
            files += imgs
            labels += [label] * len(imgs)
            usages += [usage or 0] * len(imgs)
    if not files:
        raise DatasetError(f"{src}: no images in its emotion folders")
    order = np.lexsort((np.array([str(f) for f in files]), np.array(labels), np.array(usages)))
    return FolderListing(root, [files[i] for i in order], np.array(labels, np.uint8)[order],
                         None if flat else np.array(usages, np.uint8)[order], skipped)


def load_image_folders(root: str | Path) -> FERData:
    """A training set of 48x48 face crops in `<split>/<emotion>/` folders (FER2013's image-folder copies).

    Every folder must be used: a skipped folder, a folder without split folders or an unreadable image
    raises DatasetError naming it. Images that are not 48x48 grayscale are converted and resized. Rows
    are in `list_emotion_folders` order; the hash covers each file's relative path and pixels.
    """
    listing = list_emotion_folders(root)
    root = listing.root
    if listing.usage is None:
        raise DatasetError(f"{root}: training images need <split>/<emotion>/ folders "
                           f"(splits: {', '.join(SPLIT_NAMES)})")
    if listing.skipped:
        raise DatasetError(f"{root}: unknown split or emotion folder(s) {', '.join(listing.skipped)}; "
                           f"expected splits {', '.join(SPLIT_NAMES)} holding emotions {', '.join(EMOTIONS)}")
    images = np.empty((len(listing.files), SIDE, SIDE), dtype=np.uint8)
    digest = hashlib.sha256()
    for i, f in enumerate(listing.files):
        try:
            with Image.open(f) as im:
                im = im.convert("L")
                if im.size != (SIDE, SIDE):
                    im = im.resize((SIDE, SIDE), Image.Resampling.BILINEAR)
                images[i] = np.asarray(im, dtype=np.uint8)
        except (OSError, UnidentifiedImageError, ValueError) as e:
            raise DatasetError(f"{f}: unreadable image ({e})") from None
        digest.update(str(f.relative_to(root)).encode() + b"\0" + images[i].tobytes())
    return FERData(images, listing.labels, listing.usage, np.arange(len(listing.files), dtype=np.int64),
                   digest.hexdigest())
