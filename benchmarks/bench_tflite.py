"""TFLite latency per face: `python benchmarks/bench_tflite.py FILE.tflite...`

One 48x48 face per call (as a phone app would run it), one interpreter thread, 200 timed calls after 20
warm-up calls; prints the median and 90th percentile in milliseconds.
"""
import sys
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def latency_ms(path: str, calls: int = 200, threads: int = 1) -> tuple[float, float]:
    interp = Interpreter(model_path=path, num_threads=threads)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    faces = np.random.default_rng(0).integers(0, 256, (calls + 20, 1, 48, 48, 1)).astype(np.float32)
    times = []
    for i, face in enumerate(faces):
        t = time.perf_counter()
        interp.set_tensor(inp["index"], face)
        interp.invoke()
        interp.get_tensor(out["index"])
        if i >= 20:
            times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times)), 1000 * float(np.percentile(times, 90))


def main(argv=None) -> int:
    import argparse
    from pathlib import Path
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", metavar="FILE.tflite")
    a = ap.parse_args(argv)
    missing = [f for f in a.files if not Path(f).is_file()]
    if missing:
        ap.error(f"{missing[0]}: no such file")
    for path in a.files:
        med, p90 = latency_ms(path)
        print(f"{path}: median {med:.2f} ms, p90 {p90:.2f} ms per face (1 thread)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
