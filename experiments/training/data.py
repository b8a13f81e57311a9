"""The tf.data input pipeline: uint8 images -> shuffled, augmented float32 batches.

Keras 3 no longer exports ImageDataGenerator; its parameters (rotation_range, width/height_shift_range,
zoom_range, horizontal_flip) are implemented here with Keras preprocessing layers mapped over batches
inside tf.data, seeded so that the same seed gives the same batches.
"""
from __future__ import annotations

import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from datasets import N_CLASSES, SIDE

from ..backend import keras, tf
from .config import AugmentConfig
from .occlusion import occlude

layers = keras.layers


def augmenter(cfg: AugmentConfig, seed: int, crop: int = SIDE) -> list:
    """Keras preprocessing layers equivalent to ImageDataGenerator(**cfg). With crop < 48 the shifts grow
    by the crop's margin, (48 - crop) / 2 pixels each way, so that a centre crop afterwards is a random crop."""
    aug = []
    margin = (SIDE - crop) / 2 / SIDE
    if cfg.horizontal_flip:
        aug.append(layers.RandomFlip("horizontal", seed=seed))
    if cfg.rotation_range:
        aug.append(layers.RandomRotation(cfg.rotation_range / 360.0, fill_mode="nearest", seed=seed + 1))
    if cfg.width_shift_range or cfg.height_shift_range or margin:
        aug.append(layers.RandomTranslation(cfg.height_shift_range + margin, cfg.width_shift_range + margin,
                                            fill_mode="nearest", seed=seed + 2))
    if cfg.zoom_range:
        aug.append(layers.RandomZoom(cfg.zoom_range, cfg.zoom_range, fill_mode="nearest", seed=seed + 3))
    return aug


def class_weights(labels: np.ndarray) -> np.ndarray:
    """(7,) float32 per-row weights by class, scikit-learn's "balanced": every class present in `labels`
    (N,) int gets the same total weight, N / (classes present) rows' worth, so a balanced set weighs 1 per
    row; absent classes get 0."""
    present = np.unique(labels)
    w = np.zeros(N_CLASSES, np.float32)
    w[present] = compute_class_weight("balanced", classes=present, y=labels)
    return w


def centre_crop(x, crop: int):
    """(B, 48, 48, 1) -> (B, crop, crop, 1), the centre."""
    m = (SIDE - crop) // 2
    return x[:, m:m + crop, m:m + crop, :]


def train_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int,
                  augment: AugmentConfig | None, weights: np.ndarray | None = None, crop: int = SIDE,
                  teacher: np.ndarray | None = None, occlusion: float = 0.0,
                  tops: np.ndarray | None = None) -> tf.data.Dataset:
    """Shuffled (reshuffled each epoch), augmented batches, randomly cropped to `crop`.

    images (N, 48, 48) uint8, labels (N,) int. Yields (x (B, crop, crop, 1) float32 0..255, y) and, with
    `weights` (7,), per-row sample weights. y is (B, 7) one-hot, or with `teacher` (N, 7) float32 (a teacher's
    probabilities for each row) (B, 14): the one-hot label, then that row's teacher probabilities.
    occlusion, tops: with occlusion > 0, that share of the rows gets a random lower-face occluder each epoch
    (`occlusion.occlude`), its top edge around tops (N,) float32 (NaN: a row never occluded), before the
    geometric augmentation.
    """
    extra = (teacher.astype(np.float32),) if teacher is not None else ()
    if occlusion:
        if tops is None or len(tops) != len(labels):
            raise ValueError("occlusion needs one occluder height (tops) per training row")
        extra += (tops.astype(np.float32),)
        gen = tf.random.Generator.from_seed(seed + 5)
    if teacher is not None and len(teacher) != len(labels):
        raise ValueError(f"teacher has {len(teacher)} rows for {len(labels)} images")
    ds = tf.data.Dataset.from_tensor_slices((images[..., None], labels.astype(np.int32)) + extra)
    ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    augment = augment or AugmentConfig(0, 0, 0, 0, False)
    aug = augmenter(augment, seed, crop)
    erase = (layers.RandomErasing((augment.erasing, augment.erasing), fill_value=None, value_range=(0, 255),
                                  seed=seed + 4) if augment.erasing else None)
    table = tf.constant(weights) if weights is not None else None

    def prepare(x, y, *rest):
        soft = rest[:1] if teacher is not None else ()
        x = tf.cast(x, tf.float32)
        if occlusion:
            x = occlude(x, rest[-1], gen, occlusion)
        for layer in aug:
            x = layer(x, training=True)
        x = centre_crop(tf.clip_by_value(x, 0.0, 255.0), crop)
        if erase is not None:
            x = erase(x, training=True)
        target = tf.one_hot(y, N_CLASSES)
        if soft:
            target = tf.concat([target, soft[0]], axis=1)
        return (x, target) if table is None else (x, target, tf.gather(table, y))

    # Sequential map: each Keras random layer advances its own seeded state once per batch, in batch
    # order, so the same seed gives the same augmented batches (parallel calls would race on that state).
    return ds.map(prepare).prefetch(tf.data.AUTOTUNE)
