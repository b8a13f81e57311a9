"""Occlusion sensitivity: how much the true-class probability falls when a patch of the face is greyed out."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..conditions import CLEAN, MASKED
from ..runfolder import load_samples, save_occlusion


def occlusion_map(model, images: np.ndarray, labels: np.ndarray, patch: int = 12, stride: int = 4,
                  fill: float = 128.0) -> np.ndarray:
    """Mean probability drop per pixel.

    images (N, 48, 48) uint8, labels (N,) int. Returns (48, 48) float32: for each pixel, the average over
    images and over the patches covering it of p(true | image) - p(true | image with patch greyed)."""
    if len(images) == 0:
        return np.zeros((48, 48), np.float32)
    x = images.astype(np.float32)[..., None]
    base = model.predict(x, verbose=0, batch_size=512)[np.arange(len(x)), labels]
    positions = [(i, j) for i in range(0, 48 - patch + 1, stride) for j in range(0, 48 - patch + 1, stride)]
    occluded = np.repeat(x[None], len(positions), axis=0)  # (P, N, 48, 48, 1)
    for k, (i, j) in enumerate(positions):
        occluded[k, :, i:i + patch, j:j + patch] = fill
    p = model.predict(occluded.reshape(-1, 48, 48, 1), verbose=0, batch_size=1024).reshape(len(positions), len(x), -1)
    drop = base[None] - p[:, np.arange(len(x)), labels]  # (P, N)
    heat, count = np.zeros((48, 48), np.float32), np.zeros((48, 48), np.float32)
    for k, (i, j) in enumerate(positions):
        heat[i:i + patch, j:j + patch] += drop[k].mean()
        count[i:i + patch, j:j + patch] += 1
    return heat / np.maximum(count, 1)


def per_emotion_maps(model, images: np.ndarray, labels: np.ndarray, per_class: int = 8) -> np.ndarray:
    """(7, 48, 48) occlusion maps averaged over up to `per_class` images of each emotion."""
    out = np.zeros((7, 48, 48), np.float32)
    for k in range(7):
        idx = np.flatnonzero(labels == k)[:per_class]
        out[k] = occlusion_map(model, images[idx], labels[idx])
    return out


def write_occlusion_maps(out: Path, models: dict) -> None:
    """RUN/occlusion.npz from RUN/samples.npz: for the clean model on clean and masked faces and every other
    model on masked faces, the (7, 48, 48) per-emotion occlusion map (key "<model>|<faces>") and the mean
    face behind it (key "mean|<model>|<faces>"). The report only reads this file."""
    samples = load_samples(out)
    labels = samples["labels"]
    arrays = {}
    for variant, model in models.items():
        for kind in ((CLEAN, MASKED) if variant == CLEAN else (MASKED,)):
            arrays[f"{variant}|{kind}"] = per_emotion_maps(model, samples[kind], labels)
            arrays[f"mean|{variant}|{kind}"] = np.stack(
                [samples[kind][labels == k].mean(0) if (labels == k).any() else np.zeros((48, 48)) for k in range(7)])
    save_occlusion(out, arrays)
