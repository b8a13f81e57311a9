"""The model registry: the architectures a run can train (`--model`).

A registered model (a *backbone*) takes (N, side, side, 1) float32 pixels in 0..255, where side is the
training crop (48 = no crop), rescales them itself and outputs (N, 7) float32 softmax probabilities in
`datasets.EMOTIONS` order. `model.views.with_views` wraps a backbone into the saved model.
"""
from __future__ import annotations

from typing import Callable

from datasets import N_CLASSES, SIDE

from ..backend import keras

layers = keras.layers


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


def _squeeze_excite(x, name: str, ratio: int = 8):
    """Squeeze-and-excitation (Hu et al. 2018): rescale each channel by a gate computed from the
    channel means, (N, H, W, C) -> (N, H, W, C)."""
    c = x.shape[-1]
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(x)
    s = layers.Dense(max(4, c // ratio), activation="relu", name=f"{name}_reduce")(s)
    s = layers.Dense(c, activation="sigmoid", name=f"{name}_gate")(s)
    return layers.Multiply(name=f"{name}_scale")([x, s])


def maskfer_cnn(width: int = 64, dropout: float = 0.3, side: int = SIDE, se: bool = False) -> keras.Model:
    """maskfer's default: a VGG-style CNN sized for the 2-core CPU budget.

    Space-to-depth stem (side x side x 1 -> side/2 x side/2 x 4) and two convs at that resolution (width),
    then two convs at each of the next two poolings (width x 2, x 4), global pooling, dropout and the
    softmax. At the default 40 px crop: two convs at 20 px, two at 10, two at 5. Wide layers at low
    resolution run near the CPU's peak; a one-channel conv at 48x48 runs at a tenth of it.
    se=True (`maskfer_se`) gates each stage's output channels by squeeze-and-excitation.
    """
    inp, x = _inputs(side)
    x = _space_to_depth(x, "s2d")
    for stage, mult in ((1, 1), (2, 2), (3, 4)):
        if stage > 1:
            x = layers.MaxPooling2D(name=f"s{stage}_pool")(x)
        x = _conv_bn(x, width * mult, f"s{stage}a")
        x = _conv_bn(x, width * mult, f"s{stage}b")
        if se:
            x = _squeeze_excite(x, f"s{stage}_se")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="drop")(x)
    out = layers.Dense(N_CLASSES, activation="softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(inp, out, name="maskfer_se" if se else "maskfer_cnn")


def maskfer_se(width: int = 48, dropout: float = 0.3, side: int = SIDE) -> keras.Model:
    """`maskfer_cnn` with a squeeze-and-excitation gate after each of its three stages (+1.9% parameters)."""
    return maskfer_cnn(width, dropout, side, se=True)


def report_cnn(width: int = 0, dropout: float = 0.5, side: int = SIDE) -> keras.Model:
    """The masked-comparison student report's CNN (the report that compares with MaskTheFace masks; 50 epochs,
    batch 128, Adam), as its summary lists it: four unpadded 3x3 convolutions, 128-128-64-32 with ReLU and batch
    norm (48 -> 46 -> 44, pooled 22 -> 20, pooled 10 -> 8, pooled 4; the first block neither pools nor drops),
    then three Dense-128 blocks with batch norm and dropout 0.5, and the softmax: 343,655 parameters (342,183
    trainable) at 48x48. Its layer sizes are fixed; `width` is accepted for a uniform registry API and ignored."""
    inp, x = _inputs(side)
    for i, f in enumerate((128, 128, 64, 32)):
        x = layers.Conv2D(f, 3, padding="valid", activation="relu", name=f"c{i}_conv")(x)
        x = layers.BatchNormalization(name=f"c{i}_bn")(x)
        if i:
            x = layers.MaxPooling2D(name=f"c{i}_pool")(x)
            x = layers.Dropout(0.25, name=f"c{i}_drop")(x)
    x = layers.Flatten(name="flatten")(x)
    for i in range(3):
        x = layers.Dense(128, activation="relu", name=f"d{i}")(x)
        x = layers.BatchNormalization(name=f"d{i}_bn")(x)
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
    "maskfer_se": maskfer_se,
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
