"""Mask all FER2013 rows (cold, no cache) and report coverage, status per emotion, throughput, and the
error of fallback landmarks against detector landmarks.

    python benchmarks/bench_masking.py [PATH] [--workers 2] [--error-sample 2000]
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from datasets import EMOTIONS, load_fer2013
from masking import STATUSES, LandmarkFinder, MaskConfig, interocular, mask_dataset


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("path", nargs="?", default=os.environ.get("FER2013_CSV", "../shared/datasets/fer2013/fer2013.csv.gz"))
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--error-sample", type=int, default=0)
    ap.add_argument("--save-status", help="write every row's status to this .npz (for bench_placement.py)")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; workers {args.workers}")
    fer = load_fer2013(args.path)
    t = time.perf_counter()
    masked = mask_dataset(fer, MaskConfig(), workers=args.workers, use_cache=False)
    secs = time.perf_counter() - t
    n = len(fer)
    changed = (masked.images != fer.images).reshape(n, -1).any(1)
    print(f"rows {n}; masked (pixels changed) {changed.sum()} = {100 * changed.mean():.2f}%; "
          f"{secs:.1f} s = {n / secs:.0f} rows/s (landmarks + masks, cold, {args.workers} workers)")
    if args.save_status:
        np.savez(args.save_status, status=masked.status)
    found = np.isin(masked.status, [STATUSES.index(s) for s in STATUSES if s.startswith("detected")])
    print(f"{'emotion':<10}" + "".join(f"{s:>13}" for s in STATUSES) + f"{'found %':>10}")
    for k, e in enumerate(EMOTIONS + ("total",)):
        sel = fer.labels == k if k < len(EMOTIONS) else np.ones(n, bool)
        st = masked.status[sel]
        print(f"{e:<10}" + "".join(f"{int((st == j).sum()):>13}" for j in range(len(STATUSES)))
              + f"{100 * found[sel].mean():>9.1f}%")
    print(f"coverage of the lower face: median {np.median(masked.coverage):.3f}, 5th percentile "
          f"{np.percentile(masked.coverage, 5):.3f}")
    if not args.error_sample:
        return
    # Fallback vs detector landmarks on rows where HOG found a face: the easy rows, so only a lower bound on
    # the fallback error (bench_placement.py measures every status against an independent reference).
    finder = LandmarkFinder()
    det_rows = np.flatnonzero(masked.status == 0)
    pick = np.random.default_rng(0).choice(det_rows, min(args.error_sample, len(det_rows)), replace=False)
    errs = []
    for i in pick:
        p_det, _ = finder.crop_landmarks(fer.images[i])
        p_fb, _ = finder.crop_landmarks(fer.images[i], detect=False)
        errs.append(np.linalg.norm(p_det - p_fb, axis=1).mean() / max(interocular(p_det), 1e-6))
    errs = np.array(errs)
    print(f"fallback vs detector landmarks on {len(pick)} detected rows: mean error / inter-ocular distance "
          f"{errs.mean():.3f} (median {np.median(errs):.3f}, 90th pct {np.percentile(errs, 90):.3f})")


if __name__ == "__main__":
    main()
