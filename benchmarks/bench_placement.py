"""Mask placement against an independent reference, per landmark status and per emotion.

Reference: dlib's CNN (MMOD) face detector on each row upscaled 4x (192x192, one extra pyramid
up-sampling pass when it finds nothing) plus the 68-point predictor on that image. The pipeline never
works at that scale. On a sample of rows (uniform, plus up to --per-status rows of every status),
this prints per status and per emotion:
- eye covered (pixels): the 3x3 pixels around a reference eye centre change by more than 20 grey levels
  (mean absolute change), the criterion of issue 14;
- eye covered (alpha): the mask is more than half opaque at a reference eye centre (needs `mask_alpha`);
- lower face covered (alpha): the mask is more than half opaque at the reference mouth centre, the
  bottom of the nose (33) and the middle of both lips (51, 57);
- landmark error: mean point distance to the reference, in reference inter-ocular distances;
- eye band change: mean absolute change of rows 14-21.
and writes a preview grid of the worst-placed rows (clean above masked, reference eyes in red).

    python benchmarks/bench_placement.py [PATH] --mask-type surgical --out /tmp/placement
Run it with an older checkout first on PYTHONPATH to compare the same rows under both.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import dlib
import face_recognition_models
import numpy as np
from scipy.ndimage import uniform_filter

import masking
from datasets import EMOTIONS, load_dataset
from masking import MASK_TYPES, STATUSES, MaskConfig, mask_dataset

REF_SIDE = 192


def _reference_chunk(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cnn = dlib.cnn_face_detection_model_v1(face_recognition_models.cnn_face_detector_model_location())
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
    pts = np.full((len(images), 68, 2), np.nan, np.float32)
    found = np.zeros(len(images), bool)
    for i, img in enumerate(images):
        big = cv2.resize(img, (REF_SIDE, REF_SIDE), interpolation=cv2.INTER_CUBIC)
        dets = cnn(big, 0) or cnn(big, 1)
        if len(dets):
            r = max(dets, key=lambda d: d.confidence).rect
            shape = predictor(big, r)
            pts[i] = np.array([(p.x, p.y) for p in shape.parts()], np.float32) * (img.shape[0] / REF_SIDE)
            found[i] = True
    return pts, found


def reference(images: np.ndarray, workers: int) -> tuple[np.ndarray, np.ndarray]:
    chunks = [images[i:i + 50] for i in range(0, len(images), 50)]
    with ProcessPoolExecutor(workers) as pool:
        parts = list(pool.map(_reference_chunk, chunks))
    return np.concatenate([p for p, _ in parts]), np.concatenate([f for _, f in parts])


def _sample(pixel: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Values of (N, H, W) arrays at (N, 2) points (nearest pixel; NaN points give NaN)."""
    out = np.full(len(xy), np.nan, np.float32)
    ok = np.isfinite(xy).all(1)
    x = np.clip(np.round(xy[ok, 0]).astype(int), 0, pixel.shape[2] - 1)
    y = np.clip(np.round(xy[ok, 1]).astype(int), 0, pixel.shape[1] - 1)
    out[ok] = pixel[np.flatnonzero(ok), y, x]
    return out


def _box_change(diff: np.ndarray, xy: np.ndarray) -> np.ndarray:
    return _sample(uniform_filter(diff, size=(1, 3, 3), mode="nearest"), xy)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("path", nargs="?", default=os.environ.get("FER2013_CSV", "../shared/datasets/fer2013/fer2013.csv.gz"))
    ap.add_argument("--mask-type", default="surgical", choices=MASK_TYPES + ("random",))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--uniform", type=int, default=1500, help="uniform random rows in the sample")
    ap.add_argument("--per-status", type=int, default=300, help="extra rows of every status (from the full run)")
    ap.add_argument("--status-from", help=".npz with the full set's `status` (from this script's earlier run)")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--out", default="/tmp/placement")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    print(f"machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}; masking from "
          f"{Path(masking.__file__).parent}")
    fer = load_dataset(args.path)
    rng = np.random.default_rng(0)
    pick = set(rng.choice(len(fer), args.uniform, replace=False).tolist())
    if args.status_from:  # oversample rare statuses (statuses of the new pipeline, same file for old and new)
        full = np.load(args.status_from)["status"]
        for j in np.unique(full):
            rows = np.flatnonzero(full == j)
            pick |= set(rng.choice(rows, min(args.per_status, len(rows)), replace=False).tolist())
    idx = np.array(sorted(pick))
    sub = fer.take(idx)
    ref_path = out / f"reference-{hashlib.sha256(idx.tobytes()).hexdigest()[:16]}.npz"
    if ref_path.exists():
        z = np.load(ref_path)
        ref, found = z["pts"], z["found"]
    else:
        t = time.perf_counter()
        ref, found = reference(sub.images, args.workers)
        np.savez(ref_path, pts=ref, found=found)
        print(f"reference landmarks for {len(idx)} rows in {time.perf_counter() - t:.0f} s")
    types = MASK_TYPES if args.mask_type == "random" else (args.mask_type,)
    cfg = MaskConfig(mask_types=types, seed=args.seed)
    t = time.perf_counter()
    m = mask_dataset(sub, cfg, workers=args.workers, use_cache=False)
    print(f"masked {len(idx)} sample rows in {time.perf_counter() - t:.1f} s; reference found for "
          f"{found.sum()} ({100 * found.mean():.1f}%)")
    pts, status = masking.find_landmarks(sub, cfg.landmarks, workers=args.workers, use_cache=False)
    diff = np.abs(m.images.astype(np.float32) - sub.images.astype(np.float32))
    eyes = list(masking.eye_centres(ref))
    eye_px = np.stack([_box_change(diff, e) for e in eyes], 1)
    covered_px = (eye_px > 20).any(1)
    iod = np.linalg.norm(eyes[1] - eyes[0], axis=1)
    err = np.linalg.norm(pts - ref, axis=2).mean(1) / iod
    band = diff[:, 14:22].mean((1, 2))
    has_alpha = hasattr(masking, "mask_alpha")
    if has_alpha:
        from masking.pipeline import eye_clearance
        alpha = np.stack([masking.mask_alpha(pts[i], cfg.spec_for(sub.rows[i]), 48, 48, *eye_clearance(status[i], 48))
                          for i in range(len(idx))])
        eye_a = np.stack([_sample(alpha, e) for e in eyes], 1)
        covered_a = (eye_a > 0.5).any(1)
        lower = np.stack([_sample(alpha, ref[:, 48:68].mean(1))] + [_sample(alpha, ref[:, k]) for k in (33, 51, 57)], 1)
        lower_ok = (lower > 0.5).all(1)
    ok = found
    print(f"\nper status ({args.mask_type}, seed {args.seed}); figures on rows with a reference face")
    head = f"{'status':<14}{'rows':>6}{'ref':>6}{'eye px%':>9}{'eye a%':>8}{'lower%':>8}{'lm err':>8}{'band':>7}"
    print(head)
    groups = [(s, m.status == j) for j, s in enumerate(STATUSES)] + [("all", np.ones(len(idx), bool))]
    groups += [(f"  {e}", sub.labels == k) for k, e in enumerate(EMOTIONS)]
    for name, g in groups:
        r = g & ok
        if not g.any():
            continue
        line = f"{name:<14}{int(g.sum()):>6}{int(r.sum()):>6}{100 * covered_px[r].mean() if r.any() else np.nan:>9.1f}"
        line += (f"{100 * covered_a[r].mean() if r.any() else np.nan:>8.1f}{100 * lower_ok[r].mean() if r.any() else np.nan:>8.1f}"
                 if has_alpha else f"{'-':>8}{'-':>8}")
        line += f"{np.median(err[r]) if r.any() else np.nan:>8.3f}{band[g].mean():>7.1f}"
        print(line)
    print("(lm err: median; band: mean absolute change of rows 14-21 in grey levels)")
    # Worst rows: covered eyes first, then the largest eye-band change.
    score = np.where(ok, eye_px.max(1), -1) + (covered_a.astype(float) * 100 if has_alpha else 0)
    worst = np.argsort(-score)[:32]
    tiles = []
    for i in worst:
        a = cv2.cvtColor(sub.images[i], cv2.COLOR_GRAY2BGR)
        b = cv2.cvtColor(m.images[i], cv2.COLOR_GRAY2BGR)
        a, b = (cv2.resize(x, (96, 96), interpolation=cv2.INTER_NEAREST) for x in (a, b))
        if ok[i]:
            for e in eyes:
                cv2.circle(b, tuple(int(v * 2) for v in e[i]), 2, (0, 0, 255), -1)
        cv2.putText(a, STATUSES[m.status[i]][:12], (2, 10), cv2.FONT_HERSHEY_PLAIN, 0.7, (0, 255, 0), 1)
        tiles.append(np.vstack([a, b]))
    while len(tiles) % 8:
        tiles.append(np.zeros_like(tiles[0]))
    grid = np.vstack([np.hstack(tiles[k:k + 8]) for k in range(0, len(tiles), 8)])
    cv2.imwrite(str(out / "worst.png"), grid)
    print(f"preview of the {len(worst)} worst rows: {out / 'worst.png'}")


if __name__ == "__main__":
    main()
