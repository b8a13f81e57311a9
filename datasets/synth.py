"""A small synthetic FER-format dataset: simple drawn faces whose brows and mouth follow the emotion.

Used by tests and smoke runs; it contains nothing from FER2013. Rows are stratified: every emotion
appears in every Usage, in the proportions 80 / 10 / 10 (Training / PublicTest / PrivateTest).
"""
from __future__ import annotations

import csv
import gzip
from pathlib import Path

import cv2
import numpy as np

from .atomic import atomic_path
from .fer2013 import EMOTIONS, SIDE, USAGES

_SCALE = 4  # draw at 192x192, then shrink: smoother edges, like a real downsampled photo
# per emotion: (brow tilt, mouth curve, mouth open)
_STYLE = {
    "angry": (-0.35, -0.15, 0.1), "disgust": (-0.2, -0.3, 0.0), "fear": (0.35, -0.05, 0.5),
    "happy": (0.0, 0.45, 0.15), "sad": (0.3, -0.4, 0.0), "surprise": (0.25, 0.0, 0.9),
    "neutral": (0.0, 0.0, 0.0),
}


def draw_face(label: int, rng: np.random.Generator) -> np.ndarray:
    """One 48x48 uint8 face for emotion `label` (0..6), with random pose, light and noise."""
    s = SIDE * _SCALE
    bg = int(rng.integers(20, 90))
    img = np.full((s, s), bg, dtype=np.uint8)
    cx, cy = s / 2 + rng.normal(0, 4), s / 2 + rng.normal(0, 5)
    rx, ry = s * rng.uniform(0.33, 0.38), s * rng.uniform(0.42, 0.47)
    skin = int(rng.integers(140, 215))
    cv2.ellipse(img, (int(cx), int(cy)), (int(rx), int(ry)), 0, 0, 360, skin, -1, cv2.LINE_AA)
    tilt, curve, opening = _STYLE[EMOTIONS[label]]
    dark = max(skin - 120, 10)
    eye_y, eye_dx = cy - ry * 0.2, rx * 0.42
    for side in (-1, 1):
        ex = cx + side * eye_dx
        cv2.ellipse(img, (int(ex), int(eye_y)), (int(rx * 0.16), int(ry * 0.07 * (1 + opening * 0.5))),
                    0, 0, 360, dark, -1, cv2.LINE_AA)
        by = eye_y - ry * 0.16
        dy = tilt * ry * 0.12
        cv2.line(img, (int(ex - rx * 0.2), int(by - side * dy)), (int(ex + rx * 0.2), int(by + side * dy)),
                 dark, int(s * 0.025), cv2.LINE_AA)
    cv2.line(img, (int(cx), int(cy - ry * 0.05)), (int(cx), int(cy + ry * 0.22)), skin - 50, int(s * 0.02),
             cv2.LINE_AA)
    my, mw = cy + ry * 0.5, rx * 0.45
    xs = np.linspace(-1, 1, 24)
    top = np.stack([cx + xs * mw, my - curve * ry * 0.18 * (1 - xs ** 2)], 1)
    bottom = np.stack([cx + xs * mw, my - curve * ry * 0.18 * (1 - xs ** 2) + opening * ry * 0.22 * (1 - xs ** 2)], 1)
    poly = np.concatenate([top, bottom[::-1]]).astype(np.int32)
    cv2.fillPoly(img, [poly], dark, cv2.LINE_AA)
    cv2.polylines(img, [top.astype(np.int32)], False, dark, int(s * 0.03), cv2.LINE_AA)
    angle = rng.normal(0, 6)
    m = cv2.getRotationMatrix2D((s / 2, s / 2), angle, rng.uniform(0.9, 1.1))
    img = cv2.warpAffine(img, m, (s, s), borderValue=bg)
    small = cv2.resize(img, (SIDE, SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)
    small += rng.normal(0, 6, small.shape)
    return np.clip(small, 0, 255).astype(np.uint8)


def make_synthetic(rows: int = 700, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images (rows, 48, 48) uint8, labels (rows,) uint8, usage (rows,) uint8; stratified, shuffled."""
    if rows < len(EMOTIONS) * len(USAGES):
        raise ValueError(f"--rows must be at least {len(EMOTIONS) * len(USAGES)} (7 emotions x 3 usages)")
    rng = np.random.default_rng(seed)
    labels = np.arange(rows) % len(EMOTIONS)
    usage = np.zeros(rows, dtype=np.uint8)
    per_class = [np.flatnonzero(labels == k) for k in range(len(EMOTIONS))]
    for idx in per_class:  # 80/10/10 within each class, at least one row of each usage
        n_val = max(1, round(len(idx) * 0.1))
        usage[idx[-2 * n_val:-n_val]] = 1
        usage[idx[-n_val:]] = 2
    order = rng.permutation(rows)
    labels, usage = labels[order].astype(np.uint8), usage[order]
    images = np.stack([draw_face(int(k), rng) for k in labels])
    return images, labels, usage


def write_fer_csv(path: str | Path, images: np.ndarray, labels: np.ndarray, usage: np.ndarray) -> None:
    """Write FER-format CSV (emotion,pixels,Usage) atomically; `.gz` suffix gives gzip."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with (gzip.open(tmp, "wt", newline="") if path.suffix == ".gz" else open(tmp, "w", newline="")) as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["emotion", "pixels", "Usage"])
            for img, lab, u in zip(images, labels, usage):
                w.writerow([int(lab), " ".join(map(str, img.reshape(-1).tolist())), USAGES[int(u)]])


def write_photo_folder(out: str | Path, faces: np.ndarray, labels: np.ndarray, names: dict[int, str] | None = None,
                       canvas: tuple[int, int] = (256, 256), face_side: tuple[float, float] = (0.55, 0.75),
                       seed: int = 0) -> list[Path]:
    """A folder of "photos" for prepare and test sets: each face (N, h, w) uint8 grayscale enlarged to a random
    fraction `face_side` of the canvas's shorter side and pasted at a random place on a blurred-noise
    (width, height) canvas, written to out/<names[label] or EMOTIONS[label]>/<i>.png. Returns the paths."""
    rng = np.random.default_rng(seed)
    width, height = canvas
    paths = []
    for i, (face, label) in enumerate(zip(faces, labels)):
        side = int(min(width, height) * rng.uniform(*face_side))
        big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
        img = cv2.GaussianBlur(rng.integers(0, 256, (height, width)).astype(np.uint8), (0, 0), 6)
        y, x = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
        img[y:y + side, x:x + side] = big
        d = Path(out) / (names or {}).get(int(label), EMOTIONS[int(label)])
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{i:05d}.png"
        with atomic_path(path) as tmp:
            cv2.imwrite(str(tmp), img)
        paths.append(path)
    return paths
