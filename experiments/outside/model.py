"""An outside model as maskfer scores it: (N, 48, 48) uint8 faces in, (N, 7) probabilities of the seven
emotions out, whatever the model's own input contract and label order.

Faces are resized from 48x48 (FER2013 rows, or a test set's crops) to the card's input with bilinear
interpolation (cv2.INTER_LINEAR), replicated into three channels for an RGB or BGR model, scaled as the
card says and laid out NHWC or NCHW. Outputs are softmaxed if they are logits; outputs of classes FER2013
lacks (contempt) are dropped and the rest renormalised; an emotion the model lacks gets probability 0, so
the model never predicts it (its macro scores show it).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from datasets import EMOTIONS
from datasets.checks import check

from .adapters import open_model
from .card import ModelCard, resolve

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)  # RGB
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
BATCH = 256


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class OutsideModel:
    """A card and its model file, opened and checked against each other (`card.resolve`)."""

    def __init__(self, card: ModelCard):
        self.adapter = open_model(card.file)
        self.card = resolve(card, self.adapter.shape, self.adapter.outputs)
        self.sha256 = file_sha256(card.file)
        self.rank = len(self.adapter.shape)
        keep = [i for i, lab in enumerate(self.card.labels) if lab in EMOTIONS]
        self._columns = np.array(keep)
        self._targets = np.array([EMOTIONS.index(self.card.labels[i]) for i in keep])

    @property
    def name(self) -> str:
        return self.card.name

    def inputs(self, images: np.ndarray) -> np.ndarray:
        """(N, 48, 48) uint8 -> the model's float32 input batch (card's size, channels, scale, layout)."""
        h, w = self.card.input
        x = np.stack([cv2.resize(im, (w, h), interpolation=cv2.INTER_LINEAR) for im in images]) if len(images) \
            else np.zeros((0, h, w), np.uint8)
        x = x.astype(np.float32)[..., None]
        if self.card.channels != "grey":
            x = np.repeat(x, 3, axis=-1)
        scale = self.card.scale
        if scale == "0..1":
            x = x / 255.0
        elif scale == "-1..1":
            x = x / 127.5 - 1.0
        elif scale == "imagenet":
            mean, std = (IMAGENET_MEAN, IMAGENET_STD) if self.card.channels != "bgr" else (IMAGENET_MEAN[::-1],
                                                                                          IMAGENET_STD[::-1])
            x = (x / 255.0 - (mean if x.shape[-1] == 3 else mean.mean())) / (std if x.shape[-1] == 3 else std.mean())
        if self.rank == 3:
            x = x[..., 0]
        elif self.card.layout == "nchw":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x, np.float32)

    def probabilities(self, y: np.ndarray) -> np.ndarray:
        """(N, outputs) model outputs -> (N, 7) probabilities in FER2013's order."""
        y = y.reshape(len(y), -1).astype(np.float64)
        check(self.card.output == "logits" or not (y < -1e-6).any(), "output", f"probabilities contradicts "
              f"{self.card.file.name}'s negative outputs: they are logits (output = \"logits\")")
        if self.card.output == "logits":
            y = np.exp(y - y.max(1, keepdims=True))
            y /= y.sum(1, keepdims=True)
        out = np.zeros((len(y), len(EMOTIONS)), np.float64)
        out[:, self._targets] = y[:, self._columns]
        total = out.sum(1, keepdims=True)
        return (out / np.where(total > 0, total, 1.0)).astype(np.float32)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """(N, 48, 48) uint8 faces -> (N, 7) float32 probabilities of the seven emotions."""
        parts = [self.probabilities(self.adapter.run(self.inputs(images[i:i + BATCH])))
                 for i in range(0, len(images), BATCH)]
        return np.concatenate(parts) if parts else np.zeros((0, len(EMOTIONS)), np.float32)

    def record(self) -> dict:
        """What the report names: the card (resolved), the file and its sha256, the format."""
        return {**self.card.record(), "format": self.card.format, "sha256": self.sha256}
