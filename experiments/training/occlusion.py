"""Lower-face occlusion augmentation: random occluders over the mouth-nose region of mask-aware training rows.

A model trained on one renderer's masks can learn that renderer (its colours, its edges, its shading) instead of
learning to read the upper face. Here, with probability `p` per row and per epoch, the lower face is covered by an
occluder that is no mask at all: a random grey level (black to white), low-frequency blotches and grain at random
amplitudes, a top edge at a random height around the row's nose bridge, random tilt and curvature, random side
cuts and a random edge softness. No two epochs see the same occluder on a row.

Occluders keep the eyes clear by the masks' own rule (`masking.pipeline.eye_clearance`, by landmark status): no
occluder reaches above a row's ceiling, a line `margin` inter-ocular distances below its lowest eye landmark (and,
for landmarks no detector confirmed, below FER2013's low eye line), whatever its random height, tilt or curve.
"""
from __future__ import annotations

import numpy as np

from datasets import SIDE
from datasets.faces import eye_centres
from masking.pipeline import eye_clearance

from ..backend import tf

NOSE = (28, 29)  # landmarks whose mean height places a row's occluder (before the random shift)
EYES = slice(36, 48)  # the eye landmarks no occluder may reach
# This module's version is `config.OCCLUDER_VERSION` (in the fingerprint of every model trained with occluders;
# tests/test_versions.py pins this file's hash to it).


def occluder_tops(points: np.ndarray, status: np.ndarray | None = None, height: int = SIDE) -> np.ndarray:
    """(N, 2) float32 from (N, 68, 2) landmarks and their (N,) uint8 statuses (None: all `detected`), in pixels
    of the `height`-pixel row: column 0, the height an occluder's top edge starts from (the middle of the nose
    bridge); column 1, its ceiling: no occluder pixel lies above it (the masks' eye clearance for that status)."""
    p = points.astype(np.float64)
    status = np.zeros(len(p), np.uint8) if status is None else status
    ceiling = np.empty(len(p))
    for i in range(len(p)):
        margin, floor = eye_clearance(int(status[i]), height)
        left, right = eye_centres(p[i])
        iod = float(np.hypot(*(right - left)))
        ceiling[i] = p[i, EYES, 1].max() + margin * iod
        if floor is not None:
            ceiling[i] = max(ceiling[i], floor + (margin + 0.1) * iod)
    return np.stack([p[:, NOSE, 1].mean(1), ceiling], axis=1).astype(np.float32)


def occluders(b, top, gen: tf.random.Generator, p: float):
    """(alpha, grey), each (b, 48, 48, 1) float32: `b` random lower-face occluders, alpha 0..1 (0 on a share
    1 - p of the rows, on rows whose top is NaN and everywhere above a row's ceiling) and their grey levels
    0..255. top (b, 2) float32, `occluder_tops`; drawn from `gen`."""
    def u(lo, hi):
        return gen.uniform(tf.stack([b, 1, 1, 1]), lo, hi)

    yy = tf.reshape(tf.range(SIDE, dtype=tf.float32), [1, SIDE, 1, 1])
    xx = tf.reshape(tf.range(SIDE, dtype=tf.float32), [1, 1, SIDE, 1]) - SIDE / 2
    top, ceiling = top[:, 0], top[:, 1]
    finite = tf.math.is_finite(top)
    t = tf.reshape(tf.where(finite, top, 1e4), [-1, 1, 1, 1]) + u(-5.0, 10.0)
    edge = t + u(-0.2, 0.2) * xx + u(-0.004, 0.02) * xx ** 2
    soft = u(0.3, 3.0)
    a = tf.clip_by_value((yy - edge) / soft, 0.0, 1.0)
    a *= tf.clip_by_value((xx - u(-32.0, -14.0)) / soft, 0.0, 1.0) * tf.clip_by_value((u(14.0, 32.0) - xx) / soft, 0.0, 1.0)
    a *= tf.cast(yy >= tf.reshape(tf.where(finite, ceiling, 1e4), [-1, 1, 1, 1]), tf.float32)  # the eye clearance
    blotch = tf.image.resize(gen.normal(tf.stack([b, 6, 6, 1])), [SIDE, SIDE], method="bicubic")
    occ = u(0.0, 255.0) + u(0.0, 40.0) * blotch + u(0.0, 12.0) * gen.normal(tf.stack([b, SIDE, SIDE, 1]))
    on = tf.cast(gen.uniform(tf.stack([b, 1, 1, 1])) < p, tf.float32) * tf.reshape(tf.cast(finite, tf.float32), [-1, 1, 1, 1])
    return a * on, tf.clip_by_value(occ, 0.0, 255.0)


def occlude(x, top, gen: tf.random.Generator, p: float):
    """x (B, 48, 48, 1) float32 0..255; top (B, 2) float32, `occluder_tops` (NaN: never occlude that row).
    Returns x with random lower-face occluders (`occluders`) on a share `p` of the rows, drawn from `gen`
    (seeded: the same batches each run), none of them above its row's ceiling."""
    a, occ = occluders(tf.shape(x)[0], top, gen, p)
    return x * (1 - a) + occ * a
