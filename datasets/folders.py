"""Loader for the image-folder copies of FER2013: `<root>/<split>/<emotion>/*.png|jpg`."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .fer2013 import EMOTIONS, IMAGE_SUFFIXES, SIDE, USAGES, DatasetError, FERData

SPLIT_NAMES = {
    "train": "Training", "training": "Training",
    "val": "PublicTest", "valid": "PublicTest", "validation": "PublicTest", "publictest": "PublicTest",
    "test": "PrivateTest", "privatetest": "PrivateTest",
}


def load_image_folders(root: str | Path) -> FERData:
    """Read every image under `root/<split>/<emotion>/`, sorted by split, emotion and file name.

    Split folders map to Usage (train -> Training, val/validation -> PublicTest, test -> PrivateTest);
    emotion folders are the seven names in `EMOTIONS` (any case). Images that are not 48x48
    grayscale are converted and resized. An unreadable image raises DatasetError naming the file.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    files: list[tuple[Path, int, int]] = []
    for split_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        usage = SPLIT_NAMES.get(split_dir.name.lower())
        if usage is None:
            raise DatasetError(f"{split_dir}: unknown split folder; expected one of {', '.join(sorted(SPLIT_NAMES))}")
        for emo_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            if emo_dir.name.lower() not in EMOTIONS:
                raise DatasetError(f"{emo_dir}: unknown emotion folder; expected one of {', '.join(EMOTIONS)}")
            label = EMOTIONS.index(emo_dir.name.lower())
            for f in sorted(emo_dir.iterdir()):
                if f.suffix.lower() in IMAGE_SUFFIXES:
                    files.append((f, label, USAGES.index(usage)))
    if not files:
        raise DatasetError(f"{root}: no images found in <split>/<emotion>/ folders")
    images = np.empty((len(files), SIDE, SIDE), dtype=np.uint8)
    digest = hashlib.sha256()
    for i, (f, _, _) in enumerate(files):
        try:
            with Image.open(f) as im:
                im = im.convert("L")
                if im.size != (SIDE, SIDE):
                    im = im.resize((SIDE, SIDE), Image.Resampling.BILINEAR)
                images[i] = np.asarray(im, dtype=np.uint8)
        except (OSError, UnidentifiedImageError, ValueError) as e:
            raise DatasetError(f"{f}: unreadable image ({e})") from None
        digest.update(str(f.relative_to(root)).encode() + b"\0" + images[i].tobytes())
    labels = np.array([lab for _, lab, _ in files], dtype=np.uint8)
    usage = np.array([u for _, _, u in files], dtype=np.uint8)
    return FERData(images, labels, usage, np.arange(len(files), dtype=np.int64), digest.hexdigest())
