"""`python -m experiments.export MODEL --tflite [--quantize float16|int8] [--out DIR] [--data PATH]`

Converts a `.keras` model to TensorFlow Lite (float32, float16 weights, or int8 calibrated on Training
rows) and checks that TFLite and Keras agree on the top-1 label for at least 99% of 500 rows
(PrivateTest rows of --data, or synthetic faces without it).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from datasets.atomic import atomic_path
from datasets import DatasetError, load_dataset, make_synthetic

AGREEMENT_MIN = 0.99


def convert(model, quantize: str | None, calibration: np.ndarray | None = None) -> bytes:
    """TFLite flatbuffer bytes. calibration: (N, 48, 48) uint8 Training images, needed for int8."""
    import tensorflow as tf
    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False)
        conv = tf.lite.TFLiteConverter.from_saved_model(tmp)
        if quantize == "float16":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.target_spec.supported_types = [tf.float16]
        elif quantize == "int8":
            if calibration is None:
                raise ValueError("int8 quantization needs calibration images")
            conv.optimizations = [tf.lite.Optimize.DEFAULT]

            def representative():
                for img in calibration:
                    yield [img[None, :, :, None].astype(np.float32)]
            conv.representative_dataset = representative
        return conv.convert()


def tflite_predict(flatbuffer: bytes, images: np.ndarray) -> np.ndarray:
    """(N, 7) probabilities from the TFLite interpreter for (N, 48, 48) uint8 images."""
    import tensorflow as tf
    interp = tf.lite.Interpreter(model_content=flatbuffer)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    interp.resize_tensor_input(inp["index"], [len(images), 48, 48, 1])
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], images[..., None].astype(np.float32))
    interp.invoke()
    return interp.get_tensor(out["index"])


def agreement(model, flatbuffer: bytes, images: np.ndarray) -> float:
    keras_top = model.predict(images[..., None].astype(np.float32), verbose=0).argmax(1)
    return float((tflite_predict(flatbuffer, images).argmax(1) == keras_top).mean())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m experiments.export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a .keras model")
    ap.add_argument("--tflite", action="store_true", required=True, help="write a TensorFlow Lite file")
    ap.add_argument("--quantize", choices=["float16", "int8"], action="append",
                    help="also write a quantized file (repeatable); float32 is always written")
    ap.add_argument("--out", help="output folder (default: next to the model)")
    ap.add_argument("--data", help="FER2013 for calibration (Training) and the check (PrivateTest)")
    ap.add_argument("--check-rows", type=int, default=500)
    a = ap.parse_args(argv)
    import keras
    path = Path(a.model)
    try:
        if not path.is_file():
            raise ValueError(f"{path}: no such model file")
        try:
            model = keras.models.load_model(path)
        except Exception as e:
            raise ValueError(f"{path}: not a loadable .keras model ({e})") from None
        if a.data:
            fer = load_dataset(a.data)
            train = fer.split("Training").images
            pick = np.random.default_rng(0).choice(len(train), min(1000, len(train)), replace=False)
            calib, check = train[np.sort(pick)], fer.split("PrivateTest").images[:a.check_rows]
        else:
            images, _, _ = make_synthetic(max(a.check_rows, 21) + 200, seed=1)
            calib, check = images[:200], images[200:200 + a.check_rows]
        out_dir = Path(a.out) if a.out else path.parent
        out_dir.mkdir(parents=True, exist_ok=True)
    except (ValueError, DatasetError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    worst = 1.0
    for q in [None] + (a.quantize or []):
        flat = convert(model, q, calib)
        target = out_dir / f"{path.stem}{'' if q is None else '.' + q}.tflite"
        with atomic_path(target) as tmp:
            tmp.write_bytes(flat)
        agree = agreement(model, flat, check)
        worst = min(worst, agree)
        print(f"{target}: {len(flat) / 1024:.1f} KiB; top-1 agreement with Keras on {len(check)} rows: {100 * agree:.1f}%")
    if worst < AGREEMENT_MIN:
        print(f"warning: agreement below {100 * AGREEMENT_MIN:.0f}%", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
