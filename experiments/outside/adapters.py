"""One adapter per model format behind one interface: `open_model(path)` -> an object with
  `shape`    the input shape, batch first: None for a free dimension, an int for a fixed one (a batch of 1 is
             what `torch.onnx.export` writes without `dynamic_axes`)
  `dtype`    the input's numpy dtype (float32, float16, uint8, int8, ...)
  `outputs`  {output name: its width (or None)}, in the model's order
  `select(name)` the output `run` returns (default: the first)
  `run(x)`   a float32 batch of any length in the model's own layout and scale -> (N, width) float32

`run` feeds the input in its own type (integers rounded and clipped, a quantised TFLite input quantised with its
scale and zero point, a raw uint8 one as it is) and, where the batch is fixed, in batches of that size (the
last one padded with its own last row, the padding dropped). Adding a format is one class and one line in
`ADAPTERS`. A file that its format cannot load raises InputError naming the file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from datasets.cli import InputError

from ..model.inference import load_model
from .card import FORMATS

FREE_BATCH = 256  # rows per call where the model takes any batch
ONNX_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
              "tensor(uint8)": np.uint8, "tensor(int8)": np.int8}


def as_type(x: np.ndarray, dtype) -> np.ndarray:
    """float32 values -> `dtype`: integers rounded and clipped to the type's range, floats cast."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.round(x), info.min, info.max).astype(dtype)
    return x.astype(dtype, copy=False)


def in_batches(run_one, x: np.ndarray, batch: int | None) -> np.ndarray:
    """run_one on `x` in batches of the model's fixed size `batch` (the last padded with its own last row, the
    padding's outputs dropped), or of FREE_BATCH rows where the batch is free."""
    size = batch or FREE_BATCH
    parts = []
    for i in range(0, len(x), size):
        part = x[i:i + size]
        n = len(part)
        if batch and n < batch:
            part = np.concatenate([part, np.repeat(part[-1:], batch - n, axis=0)])
        parts.append(np.asarray(run_one(part), np.float32).reshape(len(part), -1)[:n])
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def _dims(shape) -> tuple:
    """A shape with symbolic or unknown dimensions (None, -1, 0, "N") as None, fixed ones as ints."""
    return tuple(int(d) if isinstance(d, (int, np.integer)) and d > 0 else None for d in shape)


class _Adapter:
    shape: tuple
    dtype: np.dtype
    outputs: dict
    quantised = False  # an integer input made from the card's scale (TFLite's input quantisation)

    @property
    def batch(self) -> int | None:
        return self.shape[0]

    def select(self, name: str) -> None:
        self.output = name


class KerasAdapter(_Adapter):
    """`.keras`, and legacy HDF5 `.h5` / `.hdf5` (Keras 3 reads both)."""

    def __init__(self, path: Path):
        try:
            self.model = load_model(path)
        except Exception as e:  # Keras raises many types for a file it cannot read
            raise InputError(f"{path}: not a loadable Keras model ({type(e).__name__}: {e})") from None
        inputs = self.model.inputs
        self.shape = _dims(inputs[0].shape)
        self.dtype = np.dtype(getattr(inputs[0], "dtype", "float32") or "float32")
        names = list(getattr(self.model, "output_names", None) or [])  # the output layers' names, stable
        if len(names) != len(self.model.outputs):
            names = [getattr(t, "name", str(i)) for i, t in enumerate(self.model.outputs)]
        self.outputs = {n: _dims(t.shape)[-1] for n, t in zip(names, self.model.outputs)}
        self.output = next(iter(self.outputs))

    def run(self, x: np.ndarray) -> np.ndarray:
        k = list(self.outputs).index(self.output)

        def one(part):
            y = self.model(as_type(part, self.dtype), training=False)
            return np.asarray(y[k] if isinstance(y, (list, tuple)) else y)
        return in_batches(one, x, self.batch)


class TFLiteAdapter(_Adapter):
    """`.tflite` through LiteRT: float models, integer-quantised ones with their input and output quantisation
    applied (scale, zero point), and raw integer inputs (scale 0: no quantisation) fed as they are."""

    def __init__(self, path: Path):
        from ai_edge_litert.interpreter import Interpreter
        try:
            self.interpreter = Interpreter(model_path=str(path))
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise InputError(f"{path}: not a loadable TFLite model ({e})") from None
        self.input = self.interpreter.get_input_details()[0]
        self.details = {d["name"]: d for d in self.interpreter.get_output_details()}
        self.shape = _dims(self.input.get("shape_signature", self.input["shape"]))
        self.dtype = np.dtype(self.input["dtype"])
        self.quantised = bool(self.input["quantization"][0] > 0)
        self.outputs = {name: int(d["shape"][-1]) for name, d in self.details.items()}
        self.output = next(iter(self.outputs))
        self._rows = int(self.input["shape"][0])

    def _one(self, x: np.ndarray) -> np.ndarray:
        if self._rows != len(x):  # a free batch: the interpreter is resized to this batch
            self.interpreter.resize_tensor_input(self.input["index"], [len(x), *x.shape[1:]])
            self.interpreter.allocate_tensors()
            self._rows = len(x)
        scale, zero = self.input["quantization"]
        if self.quantised:  # q = x / scale + zero_point
            x = x / scale + zero
        self.interpreter.set_tensor(self.input["index"], as_type(x, self.dtype))
        self.interpreter.invoke()
        out = self.details[self.output]
        y = self.interpreter.get_tensor(out["index"])
        scale, zero = out["quantization"]
        if np.issubdtype(y.dtype, np.integer) and scale > 0:
            y = (y.astype(np.float32) - zero) * scale
        return y.astype(np.float32)

    def run(self, x: np.ndarray) -> np.ndarray:
        return in_batches(self._one, x, self.batch)


class ONNXAdapter(_Adapter):
    """`.onnx` through onnxruntime's CPU provider; inputs of float32, float16, float64, uint8 and int8."""

    def __init__(self, path: Path):
        import onnxruntime as ort
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for a bad file
            raise InputError(f"{path}: not a loadable ONNX model ({type(e).__name__}: {e})") from None
        inp = self.session.get_inputs()[0]
        if inp.type not in ONNX_TYPES:
            raise InputError(f"{path}: its input {inp.name!r} is {inp.type}; maskfer feeds "
                             f"{', '.join(ONNX_TYPES)}")
        self.name, self.dtype = inp.name, np.dtype(ONNX_TYPES[inp.type])
        self.shape = _dims(inp.shape)
        self.outputs = {o.name: (_dims(o.shape)[-1] if o.shape else None) for o in self.session.get_outputs()}
        self.output = next(iter(self.outputs))

    def run(self, x: np.ndarray) -> np.ndarray:
        return in_batches(lambda part: self.session.run([self.output], {self.name: as_type(part, self.dtype)})[0],
                          x, self.batch)


ADAPTERS = {"keras": KerasAdapter, "tflite": TFLiteAdapter, "onnx": ONNXAdapter}
assert set(ADAPTERS) == set(FORMATS.values())


def open_model(path: Path):
    """The adapter for a model file, by its suffix (`card.FORMATS`)."""
    return ADAPTERS[FORMATS[path.suffix.lower()]](path)
