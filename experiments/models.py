"""The model registry and the test-time views.

A registered model (a *backbone*) takes (N, side, side, 1) float32 pixels in 0..255, where side is the
training crop (48 = no crop), rescales them itself and outputs the 7 softmax probabilities in
`datasets.EMOTIONS` order. `with_views` wraps a backbone into the saved model: (N, 48, 48, 1) pixels in,
the backbone run on several crops of each face (centre, four corners, each mirrored), the 7 probabilities
averaged, out. So a saved `.keras` file delivers by itself the accuracy the report shows.
"""
from __future__ import annotations

from typing import Callable

import keras
from keras import layers, ops

from datasets import N_CLASSES, SIDE

from .config import VIEWS  # test-time views: the centre crop; + four corners; each also mirrored


def _conv_bn(x, filters: int, name: str, kernel: int = 3, strides: int = 1):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def _inputs(side: int = SIDE):
    inp = keras.Input(shape=(side, side, 1), dtype="float32", name="pixels")
    return inp, layers.Rescaling(1.0 / 255.0, name="rescale")(inp)


def _space_to_depth(x, name: str):
    """(N, H, W, C) -> (N, H/2, W/2, 4C): a lossless stem that skips the slow one-channel conv at full size."""
    h, w, c = x.shape[1:]
    x = layers.Reshape((h // 2, 2, w // 2, 2, c), name=f"{name}_split")(x)
    x = layers.Permute((1, 3, 2, 4, 5), name=f"{name}_permute")(x)
    return layers.Reshape((h // 2, w // 2, 4 * c), name=f"{name}_merge")(x)


def maskfer_cnn(width: int = 64, dropout: float = 0.3, side: int = SIDE) -> keras.Model:
    """maskfer's default: a VGG-style CNN sized for the 2-core CPU budget.

    Space-to-depth stem (48x48x1 -> 24x24x4) and one conv at 24 pixels (width), then two convs at 12 and
    two at 6 pixels (width x 2, x 4), global pooling, dropout and the softmax. Wide layers at low
    resolution run near the CPU's peak; a one-channel conv at 48x48 runs at a tenth of it.
    """
    inp, x = _inputs(side)
    x = _space_to_depth(x, "s2d")
    x = _conv_bn(x, width, "s1a")
    x = _conv_bn(x, width, "s1b")
    for stage, mult in ((2, 2), (3, 4)):
        x = layers.MaxPooling2D(name=f"s{stage}_pool")(x)
        x = _conv_bn(x, width * mult, f"s{stage}a")
        x = _conv_bn(x, width * mult, f"s{stage}b")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="drop")(x)
    out = layers.Dense(N_CLASSES, activation="softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(inp, out, name="maskfer_cnn")


def report_cnn(width: int = 0, dropout: float = 0.25, side: int = SIDE) -> keras.Model:
    """The reference student report's CNN: Conv 128-128-64-32 with batch norm, three Dense-128 blocks.
    Its layer sizes are fixed; `width` is accepted for a uniform registry API and ignored."""
    inp, x = _inputs(side)
    for i, f in enumerate((128, 128, 64, 32)):
        x = _conv_bn(x, f, f"c{i}")
        x = layers.MaxPooling2D(name=f"c{i}_pool")(x)
        x = layers.Dropout(dropout, name=f"c{i}_drop")(x)
    x = layers.Flatten(name="flatten")(x)
    for i in range(3):
        x = layers.Dense(128, use_bias=False, name=f"d{i}")(x)
        x = layers.BatchNormalization(name=f"d{i}_bn")(x)
        x = layers.Activation("relu", name=f"d{i}_relu")(x)
        x = layers.Dropout(dropout, name=f"d{i}_drop")(x)
    out = layers.Dense(N_CLASSES, activation="softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(inp, out, name="report_cnn")


def resnet_small(width: int = 32, dropout: float = 0.3, blocks: int = 2, side: int = SIDE) -> keras.Model:
    """A small ResNet: stem, three stages of `blocks` basic residual blocks at width x (1, 2, 4)."""
    inp, x = _inputs(side)
    x = _conv_bn(x, width, "stem")
    for stage, mult in enumerate((1, 2, 4)):
        for b in range(blocks):
            stride = 2 if (b == 0 and stage > 0) else 1
            name = f"r{stage}{b}"
            y = _conv_bn(x, width * mult, f"{name}a", strides=stride)
            y = layers.Conv2D(width * mult, 3, padding="same", use_bias=False, name=f"{name}b_conv")(y)
            y = layers.BatchNormalization(name=f"{name}b_bn")(y)
            if stride != 1 or x.shape[-1] != width * mult:
                x = layers.Conv2D(width * mult, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
                x = layers.BatchNormalization(name=f"{name}_proj_bn")(x)
            x = layers.Activation("relu", name=f"{name}_out")(layers.Add(name=f"{name}_add")([x, y]))
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="drop")(x)
    out = layers.Dense(N_CLASSES, activation="softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(inp, out, name="resnet_small")


MODELS: dict[str, Callable[..., keras.Model]] = {
    "maskfer_cnn": maskfer_cnn,
    "report_cnn": report_cnn,
    "resnet_small": resnet_small,
}


def build_model(name: str, precision: str = "float32", **kwargs) -> keras.Model:
    """Build a registered model by name; unknown names raise ValueError listing the choices.

    precision "bfloat16" builds it under Keras's `mixed_bfloat16` policy (float32 weights, bfloat16
    compute; the softmax layer stays float32). The policy is set only while the layers are made.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODELS)}")
    if precision not in ("float32", "bfloat16"):
        raise ValueError(f"unknown precision {precision!r}; expected float32 or bfloat16")
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    try:
        return MODELS[name](**kwargs)
    finally:
        keras.config.set_dtype_policy(before)


def crop_offsets(side: int, crop: int, views: str) -> list[tuple[int, int, bool]]:
    """[(top, left, mirrored)] of the test-time views of a (side x side) image cropped to (crop x crop).

    "centre": the centre crop and its mirror; "five" / "ten": centre and the four corners, unmirrored
    or each also mirrored. With crop == side every crop is the whole image, so only the mirror differs.
    """
    if views not in VIEWS:
        raise ValueError(f"unknown views {views!r}; expected one of {', '.join(VIEWS)}")
    c, e = (side - crop) // 2, side - crop
    spots = [(c, c)] if views == "centre" or crop == side else [(c, c), (0, 0), (0, e), (e, 0), (e, e)]
    flips = (False, True) if views in ("centre", "ten") else (False,)
    return [(t, l, f) for f in flips for t, l in spots]


@keras.saving.register_keras_serializable(package="maskfer")
class CropViews(layers.Layer):
    """(N, side, side, 1) -> (V*N, crop, crop, 1): every view of every image, view-major."""

    def __init__(self, crop: int, offsets, **kwargs):
        super().__init__(**kwargs)
        self.crop, self.offsets = int(crop), [tuple(o) for o in offsets]

    def call(self, x):
        k = self.crop
        parts = []
        for top, left, mirrored in self.offsets:
            v = x[:, top:top + k, left:left + k, :]
            parts.append(ops.flip(v, axis=2) if mirrored else v)
        return ops.concatenate(parts, axis=0)

    def get_config(self):
        return {**super().get_config(), "crop": self.crop, "offsets": [list(o) for o in self.offsets]}


@keras.saving.register_keras_serializable(package="maskfer")
class MeanOverViews(layers.Layer):
    """(V*N, 7) view-major probabilities -> (N, 7), their mean."""

    def __init__(self, views: int, **kwargs):
        super().__init__(**kwargs)
        self.views = int(views)

    def call(self, p):
        return ops.mean(ops.reshape(p, (self.views, -1, p.shape[-1])), axis=0)

    def get_config(self):
        return {**super().get_config(), "views": self.views}


def with_views(backbone: keras.Model, views: str = "ten") -> keras.Model:
    """The saved model: (N, 48, 48, 1) float32 pixels 0..255 -> (N, 7) probabilities averaged over the
    test-time views of each face (see `crop_offsets`); the backbone is kept whole as layer "backbone"."""
    crop = int(backbone.input_shape[1])
    offsets = crop_offsets(SIDE, crop, views)
    name = backbone.name
    inp = keras.Input(shape=(SIDE, SIDE, 1), dtype="float32", name="pixels")
    x = CropViews(crop, offsets, name="views")(inp)
    backbone.name = "backbone"
    p = MeanOverViews(len(offsets), name="mean_over_views")(backbone(x))
    return keras.Model(inp, p, name=name)


def load_model(path) -> keras.Model:
    """Load a saved maskfer `.keras` model (the view layers are registered by importing this module)."""
    return keras.models.load_model(path, compile=False)
