"""Loading a saved maskfer model and predicting with it."""
from __future__ import annotations

import numpy as np

from ..backend import keras
from . import views  # noqa: F401  (registers the view layers a saved model holds)


def load_model(path) -> keras.Model:
    """Load a saved maskfer `.keras` model (its view layers are registered by importing `views`)."""
    return keras.models.load_model(path, compile=False)


def predict_proba(model, images: np.ndarray, flip_tta: bool = False, batch_size: int = 512) -> np.ndarray:
    """(N, 7) float32 probabilities for (N, 48, 48) uint8 images. model: a saved maskfer model (it averages
    its own test-time views) or anything with Keras's `predict(x, batch_size=, verbose=)`, such as
    `deploy.tflite.TFLiteModel`. flip_tta (for models saved before views, which took the mirror outside)
    also averages with the mirror."""
    x = images[..., None].astype(np.float32)
    p = model.predict(x, batch_size=batch_size, verbose=0)
    if flip_tta:
        p = (p + model.predict(x[:, :, ::-1], batch_size=batch_size, verbose=0)) / 2
    return p.astype(np.float32)
