"""BatchNorm statistics for the images a model is tested on ("precise BN", Wu & Johnson 2021).

During training, BatchNorm keeps running averages (momentum 0.99) of the statistics of augmented batches
while the weights move under them. Tested with those averages, maskfer's validation accuracy fell by up to
6.6 points from one epoch to the next and ended 1.6 points below the same weights with the statistics
recomputed on un-augmented training crops (BENCHMARKS.md section 6c). `PreciseBatchNorm` recomputes them at the end of every epoch
(the running averages are used only at test time, so training is unchanged) and then validates.
"""
from __future__ import annotations

import numpy as np

from ..backend import keras
from .data import centre_crop


def batchnorm_layers(model) -> list:
    """Every BatchNormalization layer in `model`, nested models included."""
    found = []
    for layer in getattr(model, "layers", []):
        found += [layer] if isinstance(layer, keras.layers.BatchNormalization) else batchnorm_layers(layer)
    return found


def recompute_batchnorm(model: keras.Model, x: np.ndarray, batch_size: int = 128) -> None:
    """Set every BatchNorm layer's moving mean and variance to the mean of its batch statistics over
    `x` (N, side, side, 1) float32, in batches: an exact running mean (momentum k / (k + 1) at batch k)."""
    layers = batchnorm_layers(model)
    saved = [layer.momentum for layer in layers]
    try:
        for k, start in enumerate(range(0, len(x), batch_size)):
            for layer in layers:
                layer.momentum = k / (k + 1)
            model(x[start:start + batch_size], training=True)
    finally:
        for layer, m in zip(layers, saved):
            layer.momentum = m


class PreciseBatchNorm(keras.callbacks.Callback):
    """At each epoch's end: recompute BatchNorm statistics on `stats_x`, then validate on (val_x, val_y) and
    put val_loss (cross-entropy) and val_accuracy in the logs for the callbacks after it.

    stats_x (M, side, side, 1) float32: un-augmented training crops; val_x likewise; val_y (N,) int labels.
    Epochs before `first_epoch` (0-based) are neither recomputed nor scored (their logs get no val_ keys):
    the best epoch of a cosine schedule is always late, and each scoring costs a few seconds."""

    def __init__(self, stats_x: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, batch_size: int = 128,
                 first_epoch: int = 0):
        super().__init__()
        self.stats_x, self.val_x, self.val_y, self.batch_size = stats_x, val_x, val_y, batch_size
        self.first_epoch = first_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch < self.first_epoch:
            return
        recompute_batchnorm(self.model, self.stats_x, self.batch_size)
        p = self.model.predict(self.val_x, batch_size=512, verbose=0)
        if logs is not None:
            logs["val_accuracy"] = float((p.argmax(1) == self.val_y).mean())
            picked = np.clip(p[np.arange(len(p)), self.val_y], 1e-7, 1.0)
            logs["val_loss"] = float(-np.log(picked).mean())


def stats_sample(images: np.ndarray, crop: int, rows: int = 6400, seed: int = 0) -> np.ndarray:
    """(min(rows, N), crop, crop, 1) float32: centre crops of a seeded random sample of (N, 48, 48) uint8 images."""
    idx = np.sort(np.random.default_rng(seed).permutation(len(images))[:rows])
    return centre_crop(images[idx, ..., None], crop).astype(np.float32)


