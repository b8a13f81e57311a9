"""Build a folder of N "photos" from FER2013 rows (PrivateTest by default), for timing `python -m datasets prepare`
and `--test-data`: each row is enlarged and pasted at a random place on a blurred-noise canvas
(`datasets.synth.write_photo_folder`), written to <emotion>/<i>.png. The folder is made from FER2013 pixels:
keep it out of the repository.

    python benchmarks/make_photo_set.py ../shared/datasets/fer2013/fer2013.csv.gz /tmp/fer256 --rows 1000
    python benchmarks/make_photo_set.py ../shared/datasets/fer2013/fer2013.csv.gz /tmp/fer640 --rows 1000 --size 640x480
"""
from __future__ import annotations

import argparse

import numpy as np

from datasets import load_dataset
from datasets.synth import write_photo_folder


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--size", default="256x256", help="canvas WIDTHxHEIGHT")
    ap.add_argument("--usage", default="PrivateTest")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    part = load_dataset(a.data).split(a.usage)
    pick = np.sort(np.random.default_rng(a.seed).choice(len(part), min(a.rows, len(part)), replace=False))
    width, height = (int(v) for v in a.size.lower().split("x"))
    write_photo_folder(a.out, part.images[pick], part.labels[pick], canvas=(width, height), seed=a.seed)
    print(f"{len(pick)} images of {width}x{height} in {a.out}")


if __name__ == "__main__":
    main()
