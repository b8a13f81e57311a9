"""Training throughput of the default network per precision, crop and XLA, on random data:

    python benchmarks/bench_precision.py SIDE PRECISION JIT [WIDTH]
    python benchmarks/bench_precision.py 40 bfloat16 0 48

One epoch-sized fit of 5,120 random images (batch 128, SGD) after a 5-batch warm-up; prints images/s and
the seconds an epoch of FER2013's 28,709 Training rows would take (no input pipeline, no validation).
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("side", type=int, help="input side in pixels")
    ap.add_argument("precision", choices=("float32", "bfloat16"))
    ap.add_argument("jit", choices=("0", "1"), help="1: XLA-compile the training step")
    ap.add_argument("width", type=int, nargs="?", default=48)
    a = ap.parse_args(argv)
    import numpy as np
    from experiments.backend import keras
    from experiments.model.architectures import build_model
    side, precision, jit, width = a.side, a.precision, a.jit == "1", a.width
    m = build_model("maskfer_cnn", precision=precision, width=width, side=side)
    m.compile(keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True), "categorical_crossentropy", jit_compile=jit)
    x = np.random.default_rng(0).uniform(0, 255, (128 * 40, side, side, 1)).astype("float32")
    y = keras.utils.to_categorical(np.random.default_rng(1).integers(0, 7, len(x)), 7)
    m.fit(x[:128 * 5], y[:128 * 5], batch_size=128, epochs=1, verbose=0)
    t = time.perf_counter()
    m.fit(x, y, batch_size=128, epochs=1, verbose=0)
    rate = len(x) / (time.perf_counter() - t)
    print(f"side {side}, {precision}, XLA {jit}, width {width}: {rate:.0f} images/s, "
          f"{28709 / rate:.0f} s per FER2013 epoch", flush=True)


if __name__ == "__main__":
    main()
