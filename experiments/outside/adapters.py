"""One adapter per model format behind one interface: `open_model(path)` -> an object with `shape` (the input
shape, batch first, None for a free dimension), `outputs` (the output width, or None) and `run(x)` (a float32
batch in the model's own layout and scale -> (N, outputs) float32). Adding a format is one class and one
line in `ADAPTERS`. A file that its format cannot load raises InputError naming the file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from datasets.cli import InputError

from ..model.inference import load_model
from .card import FORMATS


class KerasAdapter:
    """`.keras`, and legacy HDF5 `.h5` / `.hdf5` (Keras 3 reads both)."""

    def __init__(self, path: Path):
        try:
            self.model = load_model(path)
        except Exception as e:  # Keras raises many types for a file it cannot read
            raise InputError(f"{path}: not a loadable Keras model ({type(e).__name__}: {e})") from None
        self.shape = tuple(self.model.input_shape)
        self.outputs = self.model.output_shape[-1]

    def run(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(x, batch_size=256, verbose=0), np.float32)


class TFLiteAdapter:
    """`.tflite` through LiteRT: float models, and integer-quantised ones with their input and output
    quantisation applied (scale, zero point)."""

    def __init__(self, path: Path):
        from ai_edge_litert.interpreter import Interpreter
        try:
            self.interpreter = Interpreter(model_path=str(path))
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise InputError(f"{path}: not a loadable TFLite model ({e})") from None
        self.input, self.output = self.interpreter.get_input_details()[0], self.interpreter.get_output_details()[0]
        sig = self.input.get("shape_signature", self.input["shape"])
        self.shape = (None,) + tuple(int(v) if v > 0 else None for v in sig[1:])
        self.outputs = int(self.output["shape"][-1])
        self._batch = None

    def run(self, x: np.ndarray) -> np.ndarray:
        if self._batch != len(x):
            self.interpreter.resize_tensor_input(self.input["index"], [len(x), *x.shape[1:]])
            self.interpreter.allocate_tensors()
            self._batch = len(x)
        dtype = self.input["dtype"]
        if np.issubdtype(dtype, np.integer):  # quantised input: q = x / scale + zero_point
            scale, zero = self.input["quantization"]
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
        self.interpreter.set_tensor(self.input["index"], x.astype(dtype, copy=False))
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self.output["index"])
        if np.issubdtype(y.dtype, np.integer):
            scale, zero = self.output["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return y.astype(np.float32)


class ONNXAdapter:
    """`.onnx` through onnxruntime's CPU provider."""

    def __init__(self, path: Path):
        import onnxruntime as ort
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for a bad file
            raise InputError(f"{path}: not a loadable ONNX model ({type(e).__name__}: {e})") from None
        inp, out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self.name = inp.name
        self.shape = (None,) + tuple(d if isinstance(d, int) and d > 0 else None for d in inp.shape[1:])
        last = out.shape[-1] if out.shape else None
        self.outputs = last if isinstance(last, int) and last > 0 else None

    def run(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.name: x.astype(np.float32)})[0], np.float32)


ADAPTERS = {"keras": KerasAdapter, "tflite": TFLiteAdapter, "onnx": ONNXAdapter}
assert set(ADAPTERS) == set(FORMATS.values())


def open_model(path: Path):
    """The adapter for a model file, by its suffix (`card.FORMATS`)."""
    return ADAPTERS[FORMATS[path.suffix.lower()]](path)
