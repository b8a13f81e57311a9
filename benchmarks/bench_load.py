"""Cold and cached load of FER2013 against the pandas + per-row split() parse of the reference reports.

    python benchmarks/bench_load.py [PATH] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

import numpy as np

from datasets import load_csv_uncached, load_fer2013


def pandas_split(path):
    import pandas as pd
    df = pd.read_csv(path)
    images = np.array([np.array(p.split(), dtype=np.uint8) for p in df["pixels"]]).reshape(-1, 48, 48)
    return images, df["emotion"].to_numpy(), df["Usage"].to_numpy()


def timed(fn, repeat):
    out, times = None, []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("path", nargs="?", default=os.environ.get("FER2013_CSV", "../shared/datasets/fer2013/fer2013.csv.gz"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}")
    cold, t_cold = timed(lambda: load_csv_uncached(args.path), args.repeat)
    with tempfile.TemporaryDirectory() as cache:
        load_fer2013(args.path, cache_dir=cache)  # populate
        cached, t_cached = timed(lambda: load_fer2013(args.path, cache_dir=cache), args.repeat)
    (ref_images, _, _), t_ref = timed(lambda: pandas_split(args.path), 1)
    assert np.array_equal(cold.images, ref_images) and np.array_equal(cached.images, ref_images)
    print(f"rows: {len(cold)}")
    for name, t in [("cold load (maskfer)", t_cold), ("cached reload (maskfer)", t_cached), ("pandas + split()", t_ref)]:
        print(f"{name:<26} median {statistics.median(t):6.2f} s   runs: {', '.join(f'{x:.2f}' for x in t)}")
    print(f"speed-up of cold load over pandas + split(): {statistics.median(t_ref) / statistics.median(t_cold):.1f}x")


if __name__ == "__main__":
    main()
