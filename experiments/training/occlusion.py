"""Lower-face occlusion augmentation: random occluders over the mouth-nose region of mask-aware training rows.

A model trained on one renderer's masks can learn that renderer (its colours, its edges, its shading) instead of
learning to read the upper face. Here, with probability `p` per row and per epoch, the lower face is covered by an
occluder that is no mask at all: a random grey level (black to white), low-frequency blotches and grain at random
amplitudes, a top edge at a random height around the row's nose bridge, random tilt and curvature, random side
cuts and a random edge softness. No two epochs see the same occluder on a row.
"""
from __future__ import annotations

import numpy as np

from datasets import SIDE

from ..backend import tf

NOSE = (28, 29)  # landmarks whose mean height places a row's occluder (before the random shift)


def occluder_tops(points: np.ndarray) -> np.ndarray:
    """(N,) float32: the height (pixels of the 48x48 row) an occluder's top edge starts from, from (N, 68, 2)
    landmarks: the middle of the nose bridge."""
    return points[:, NOSE, 1].mean(1).astype(np.float32)


def occlude(x, top, gen: tf.random.Generator, p: float):
    """x (B, 48, 48, 1) float32 0..255; top (B,) float32 (NaN: never occlude that row). Returns x with random
    lower-face occluders on a share `p` of the rows, drawn from `gen` (seeded: the same batches each run)."""
    b = tf.shape(x)[0]

    def u(lo, hi):
        return gen.uniform(tf.stack([b, 1, 1, 1]), lo, hi)

    yy = tf.reshape(tf.range(SIDE, dtype=tf.float32), [1, SIDE, 1, 1])
    xx = tf.reshape(tf.range(SIDE, dtype=tf.float32), [1, 1, SIDE, 1]) - SIDE / 2
    finite = tf.math.is_finite(top)
    t = tf.reshape(tf.where(finite, top, 1e4), [-1, 1, 1, 1]) + u(-5.0, 10.0)
    edge = t + u(-0.2, 0.2) * xx + u(-0.004, 0.02) * xx ** 2
    soft = u(0.3, 3.0)
    a = tf.clip_by_value((yy - edge) / soft, 0.0, 1.0)
    a *= tf.clip_by_value((xx - u(-32.0, -14.0)) / soft, 0.0, 1.0) * tf.clip_by_value((u(14.0, 32.0) - xx) / soft, 0.0, 1.0)
    blotch = tf.image.resize(gen.normal(tf.stack([b, 6, 6, 1])), [SIDE, SIDE], method="bicubic")
    occ = u(0.0, 255.0) + u(0.0, 40.0) * blotch + u(0.0, 12.0) * gen.normal(tf.shape(x))
    on = tf.cast(gen.uniform(tf.stack([b, 1, 1, 1])) < p, tf.float32) * tf.reshape(tf.cast(finite, tf.float32), [-1, 1, 1, 1])
    a *= on
    return x * (1 - a) + tf.clip_by_value(occ, 0.0, 255.0) * a
