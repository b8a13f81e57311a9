"""An outside model as maskfer scores it: (N, 48, 48) uint8 faces in, (N, 7) probabilities of the seven
emotions out, whatever the model's own input contract and label order.

Faces are resized from 48x48 (FER2013 rows, or a test set's crops) to the card's input with bilinear
interpolation (cv2.INTER_LINEAR), replicated into three channels for an RGB or BGR model, scaled as the
card says and laid out NHWC or NCHW. Outputs are softmaxed if they are logits; outputs of classes FER2013
lacks (contempt) are dropped and the rest renormalised; an emotion the model lacks gets probability 0, and a
row whose kept outputs are all 0 is spread evenly over the emotions the model has, so the model never predicts
an emotion it lacks (its macro scores show it).

`probe` runs the model on a few real faces before anything is masked or written: the shape, the width, finite
values and the output contract (probabilities sum to 1) are checked, and a failure names the card's field.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from datasets import EMOTIONS
from datasets.checks import check
from datasets.cli import InputError

from .adapters import open_model
from .card import ModelCard, resolve

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)  # RGB
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
BATCH = 256
SUM_TOLERANCE = 0.05  # probabilities' row sums on the probe faces (quantised softmax outputs stray ~0.01-0.03)


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
        self.adapter.select(choose_output(card, self.adapter.outputs))
        self.card = resolve(card, self.adapter.shape, self.adapter.outputs[self.adapter.output])
        dtype = np.dtype(self.adapter.dtype)
        if np.issubdtype(dtype, np.integer) and not self.adapter.quantised:  # raw pixels in the model's own type
            fits = [sc for sc, (lo, hi) in (("0..255", (0, 255)), ("-128..127", (-128, 127)))
                    if np.iinfo(dtype).min <= lo and hi <= np.iinfo(dtype).max]
            check(self.card.scale in fits, "scale", f"{self.card.scale} does not fit {card.file.name}'s {dtype} "
                  f"input (raw pixels would be clipped or meaningless): give scale = "
                  f"{' or '.join(repr(f) for f in fits) or 'none: this type cannot hold a pixel'}")
        self.assumed_order = card.labels is None
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
        elif scale == "-128..127":
            x = x - 128.0
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
        empty = out.sum(1) <= 0  # all the mass on classes FER2013 lacks: even over the emotions the model has
        out[np.ix_(empty, self._targets)] = 1.0
        return (out / out.sum(1, keepdims=True)).astype(np.float32)

    def outputs(self, images: np.ndarray) -> np.ndarray:
        """(N, 48, 48) uint8 faces -> the model's raw (N, width) float32 outputs; an error of the model's
        runtime on the user's file is an InputError naming the file."""
        x = self.inputs(images)
        try:
            return self.adapter.run(x)
        except Exception as e:  # every runtime raises its own exception types
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise InputError(f"{self.card.file}: {self.card.format} failed on a batch of {list(x.shape)} "
                             f"({type(e).__name__}: {first[:300]})") from None

    def probe(self, images: np.ndarray) -> None:
        """Run the model on a few real faces (N, 48, 48) uint8 and check what it gives: (N, width) rows, finite,
        and for `output = "probabilities"` rows of non-negative values summing to 1 (within SUM_TOLERANCE).
        ConfigError names the card's field that the model contradicts."""
        y = self.outputs(images)
        width = len(self.card.labels)
        where = f"{self.card.file.name}'s output {self.adapter.output!r}"
        check(y.shape == (len(images), width), "output_name" if self.card.output_name else "labels",
              f"{where} gave shape {list(y.shape)} on {len(images)} faces; expected [{len(images)}, {width}]")
        check(bool(np.isfinite(y).all()), "scale", f"{where} is not finite on real faces (scaled "
              f"{self.card.scale}): NaN or infinity")
        if self.card.output == "probabilities":
            sums = y.sum(1)
            check(bool((y >= -1e-6).all()) and bool(np.abs(sums - 1).max() <= SUM_TOLERANCE), "output",
                  f"probabilities contradicts {where}: on real faces its rows sum to {sums.min():.3g}..{sums.max():.3g}"
                  f"{' with negative values' if (y < -1e-6).any() else ''}, not 1: they are logits "
                  "(output = \"logits\")")

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """(N, 48, 48) uint8 faces -> (N, 7) float32 probabilities of the seven emotions."""
        parts = [self.probabilities(self.outputs(images[i:i + BATCH])) for i in range(0, len(images), BATCH)]
        return np.concatenate(parts) if parts else np.zeros((0, len(EMOTIONS)), np.float32)

    def describe(self) -> str:
        """One line: what the model was read as."""
        c = self.card
        line = (f"model {self.name}: {c.format} {c.file.name}, input {list(c.input)} {c.channels} {c.layout} "
                f"{self.adapter.dtype} scaled {c.scale}{f', batch {self.adapter.batch}' if self.adapter.batch else ''}, "
                f"output {self.adapter.output!r}: {', '.join(c.labels)} ({c.output})")
        if self.assumed_order:
            line += (f"\nmodel {self.name}: 7 outputs and no labels: FER2013's order is assumed; if the model's "
                     "order differs, give labels = [...] in its card (or --labels)")
        return line

    def record(self) -> dict:
        """What the report names: the card (resolved), the file and its sha256, the format."""
        return {**self.card.record(), "format": self.card.format, "sha256": self.sha256}


def choose_output(card: ModelCard, outputs: dict) -> str:
    """The output to score: the card's `output_name`, or the model's only output. ConfigError("output_name")
    when the name is not an output or the model has several and the card names none."""
    listed = ", ".join(f"{n!r} ({w if w else '?'} wide)" for n, w in outputs.items())
    if card.output_name is not None:
        check(card.output_name in outputs, "output_name", f"{card.output_name!r} is not an output of "
              f"{card.file.name}; its outputs: {listed}")
        return card.output_name
    check(len(outputs) == 1, "output_name", f"is needed: {card.file.name} has {len(outputs)} outputs ({listed}); "
          "name the one to score")
    return next(iter(outputs))

