"""TensorFlow Lite: converting a saved maskfer model (TensorFlow's converter), and running a `.tflite` file behind
Keras's `predict` (LiteRT's interpreter, `ai-edge-litert`: TensorFlow's own `tf.lite.Interpreter` is deprecated)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from ..backend import tf

QUANTIZE = ("float16", "int8", "int16x8")


def convert(model, quantize: str | None, calibration: np.ndarray | None = None) -> bytes:
    """TFLite flatbuffer bytes of a saved maskfer model. quantize: None (float32), "float16", "int8" or
    "int16x8"; calibration: (N, 48, 48) uint8 Training images, needed for int8 and int16x8.

    The quantized files keep float32 input and output, and TFLite's float fallback for any operation
    without an integer kernel: they are weight-and-activation quantized, not integer-only."""
    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False)
        conv = tf.lite.TFLiteConverter.from_saved_model(tmp)
        if quantize == "float16":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.target_spec.supported_types = [tf.float16]
        elif quantize in ("int8", "int16x8"):
            if calibration is None:
                raise ValueError(f"{quantize} quantization needs calibration images")
            conv.optimizations = [tf.lite.Optimize.DEFAULT]

            def representative():
                for img in calibration:
                    yield [img[None, :, :, None].astype(np.float32)]
            conv.representative_dataset = representative
            if quantize == "int16x8":
                conv.target_spec.supported_ops = [
                    tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        elif quantize is not None:
            raise ValueError(f"unknown quantization {quantize!r}; expected one of {', '.join(QUANTIZE)}")
        return conv.convert()


class TFLiteModel:
    """A TFLite flatbuffer behind Keras's `predict(x)` call, so `deploy.predict` and
    `model.inference.predict_proba` take either kind of model.

    One interpreter is kept and resized only when the batch size changes (video frames reuse it)."""

    def __init__(self, flatbuffer: bytes):
        self.interpreter = Interpreter(model_content=flatbuffer)  # raises on a bad file
        self._input = self.interpreter.get_input_details()[0]["index"]
        self._output = self.interpreter.get_output_details()[0]["index"]
        self._batch = 0

    @classmethod
    def from_file(cls, path: str | Path) -> "TFLiteModel":
        model = cls(Path(path).read_bytes())
        model.predict(np.zeros((1, 48, 48, 1), np.float32))  # a truncated file fails here, not mid-video
        return model

    def predict(self, x: np.ndarray, batch_size: int = 512, verbose: int = 0) -> np.ndarray:
        """x (N, 48, 48, 1) pixels 0..255 -> (N, 7) float32 probabilities. batch_size and verbose are
        accepted for Keras's signature; the whole batch runs in one call."""
        if len(x) != self._batch:
            self.interpreter.resize_tensor_input(self._input, [len(x), 48, 48, 1])
            self.interpreter.allocate_tensors()
            self._batch = len(x)
        self.interpreter.set_tensor(self._input, np.asarray(x, np.float32))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output)  # a copy, safe across calls
