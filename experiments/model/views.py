"""The test-time views inside a saved model.

`with_views` wraps a backbone into the saved model: (N, 48, 48, 1) float32 pixels 0..255 in, the backbone
run on several crops of each face (the centre, optionally the four corners, each optionally mirrored), the
(N, 7) probabilities averaged, out. So a saved `.keras` file delivers by itself the accuracy the report shows.
"""
from __future__ import annotations

from datasets import SIDE

from ..backend import keras
from ..training.config import VIEWS

layers, ops = keras.layers, keras.ops


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
