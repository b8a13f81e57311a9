"""What each way of wearing the mask covers, on FER2013: the share of mouth (48-67), nose (30-35: the tip and
the nostrils), nose-bridge (27-29) and eye (36-47) landmarks under the mask (alpha > 0.5 at the landmark's pixel of the 48x48 row),
per fit and per landmark status, for the run's training masks (a type drawn per row, seed 0) drawn exactly as
the masked sets draw them (the status's eye clearance included).

    python benchmarks/bench_fit_coverage.py $FER2013_CSV [--cache-dir DIR] [--geometry landmark|rigid] [--workers N]

The landmarks are the masks' own (dlib's, or the mean face for `mean_shape` and `blank` rows): the figures
say what each fit covers of the face the mask was placed on.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from datasets import SIDE, load_dataset
from datasets.engine import Engine, map_chunks
from masking import FITS, STATUSES, MaskConfig, find_landmarks, mask_alpha
from masking.pipeline import eye_clearance

PARTS = {"mouth": list(range(48, 68)), "nose": list(range(30, 36)), "bridge": list(range(27, 30)),
         "eyes": list(range(36, 48))}


def _chunk(task):
    points, status, rows, cfg = task
    out = np.zeros((len(rows), len(FITS), 68), bool)
    for i in range(len(rows)):
        spec = cfg.spec_for(rows[i])
        xy = np.clip(np.round(points[i]).astype(int), 0, SIDE - 1)
        for j, fit in enumerate(FITS):
            a = mask_alpha(points[i], spec, SIDE, SIDE, *eye_clearance(status[i], SIDE, fit), geometry=cfg.geometry, fit=fit)
            out[i, j] = a[xy[:, 1], xy[:, 0]] > 0.5
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--cache-dir")
    ap.add_argument("--geometry", default="landmark")
    ap.add_argument("--workers", type=int, default=0)
    a = ap.parse_args()
    fer = load_dataset(a.data, cache_dir=a.cache_dir)
    points, status = find_landmarks(fer, cache_dir=a.cache_dir)
    cfg = MaskConfig(geometry=a.geometry)
    t = time.perf_counter()
    tasks = [(points[i:i + 1024], status[i:i + 1024], fer.rows[i:i + 1024], cfg) for i in range(0, len(fer), 1024)]
    covered = np.concatenate(map_chunks(_chunk, tasks, len, Engine("local", a.workers), "coverage", total=len(fer)))
    print(f"{len(fer)} rows, {a.geometry} geometry, {time.perf_counter() - t:.0f} s")
    print("| status | rows | " + " | ".join(f"{fit}: {p}" for fit in FITS for p in PARTS) + " |")
    print("|---|---|" + "---|" * (len(FITS) * len(PARTS)))
    for name, sel in [(s, status == k) for k, s in enumerate(STATUSES)] + [("all", np.ones(len(fer), bool))]:
        if not sel.any():
            continue
        cells = [f"{100 * covered[sel][:, j][:, idx].mean():.1f}" for j in range(len(FITS)) for idx in PARTS.values()]
        print(f"| {name} | {int(sel.sum())} | " + " | ".join(cells) + " |")
    eyes = covered[:, :, PARTS["eyes"]].any(2)
    print("rows with any eye landmark covered: " + ", ".join(f"{fit} {int(eyes[:, j].sum())}" for j, fit in enumerate(FITS)))


if __name__ == "__main__":
    main()
