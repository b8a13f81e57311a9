"""The outline probe on a whole dataset: can the emotion be read from the mask's shape alone, per geometry?

    python benchmarks/bench_outline.py $FER2013_CSV [--cache-dir DIR]

Draws every row's training mask (all four types, seed 0, as the default run) from its cached landmarks in
each geometry, and prints the probe's PrivateTest accuracy, the majority class and per-emotion recall.
"""
from __future__ import annotations

import argparse
import json
import time

from datasets import load_dataset
from experiments.evaluation.outline import probe_geometries
from masking import GEOMETRIES, MaskConfig, find_landmarks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--cache-dir")
    a = ap.parse_args()
    fer = load_dataset(a.data, cache_dir=a.cache_dir)
    points, status = find_landmarks(fer, cache_dir=a.cache_dir)
    t = time.perf_counter()
    probe = probe_geometries(fer, points, status, MaskConfig(), GEOMETRIES)
    print(json.dumps({"seconds": round(time.perf_counter() - t), "probe": probe}, indent=1))


if __name__ == "__main__":
    main()
