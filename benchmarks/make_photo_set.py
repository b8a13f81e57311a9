"""Build a folder test set of N 256x256 "photos" from FER2013 PrivateTest rows, for timing
`python -m experiments.evaluate RUN --test-data NAME=FOLDER` (issue 13). Each row is enlarged to 150-190 px and
pasted at a random place on a 256x256 blurred-noise background, then written to <emotion>/<row>.png.
The folder is made from FER2013 pixels: keep it out of the repository.

    python benchmarks/make_photo_set.py ../shared/datasets/fer2013/fer2013.csv.gz /tmp/fer256 --rows 1000
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from datasets import EMOTIONS, load_dataset


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    test = load_dataset(a.data).split("PrivateTest")
    rng = np.random.default_rng(a.seed)
    pick = np.sort(rng.choice(len(test), min(a.rows, len(test)), replace=False))
    for i in pick:
        side = int(rng.integers(150, 191))
        face = cv2.resize(test.images[i], (side, side), interpolation=cv2.INTER_CUBIC)
        canvas = cv2.GaussianBlur(rng.integers(0, 256, (256, 256)).astype(np.uint8), (0, 0), 6)
        y, x = rng.integers(0, 256 - side + 1, 2)
        canvas[y:y + side, x:x + side] = face
        d = Path(a.out) / EMOTIONS[test.labels[i]]
        d.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(d / f"{int(test.rows[i])}.png"), canvas)
    print(f"{len(pick)} images in {a.out}")


if __name__ == "__main__":
    main()
