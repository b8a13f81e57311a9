"""How much of the lower face each mask family covers, per fit, measured against landmarks maskfer did not place.

The reference: dlib's HOG detector and 68-point predictor run afresh on 4x upscaled PrivateTest rows (the rows where
it finds a face), not maskfer's landmark pipeline (no CNN detector, no fallback, no plausibility check, no mean
shape). A point counts as covered where the masked row's pixels differ from the clean row's by more than
`THRESHOLD` grey levels in its 3x3 neighbourhood (the renderer's own alpha is not used, so both families are read
the same way; a mask whose grey happens to match the skin is undercounted, alike for both).

    python benchmarks/bench_family_coverage.py [--data FER2013] [--rows 1000] [--looks photo/random,template/flat]

prints, per family and fit, the share of rows whose reference points are covered: the lips' centre line (51, 57,
62, 66, all four), the nose tip (30), the upper nose bridge (28), the nose base (33) and the eye centres (either;
in its 3x3 neighbourhood, and at its own pixel).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from outside_masks import UP  # noqa: E402  (the same independent detection set-up as the held-out check)

THRESHOLD = 6
POINTS = {"lips (51, 57, 62, 66)": [51, 57, 62, 66], "nose tip (30)": [30], "nose base (33)": [33],
          "upper bridge (28)": [28]}


def reference_landmarks(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(kept indices, (K, 68, 2) points in 48-px coordinates) where dlib's HOG finds a face on the 4x row."""
    import dlib
    import face_recognition_models
    det = dlib.get_frontal_face_detector()
    pred = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
    keep, pts = [], []
    for i, img in enumerate(images):
        big = cv2.resize(img, (48 * UP, 48 * UP), interpolation=cv2.INTER_CUBIC)
        faces = det(big, 1)
        if faces:
            s = pred(big, max(faces, key=lambda f: f.area()))
            keep.append(i)
            pts.append([[(s.part(k).x + 0.5) / UP - 0.5, (s.part(k).y + 0.5) / UP - 0.5] for k in range(68)])
    return np.array(keep), np.array(pts)


def covered(clean: np.ndarray, masked: np.ndarray, points: np.ndarray, idx: list[int], near: bool = True) -> np.ndarray:
    """(K,) bool: every point of `idx` lies where the masked row differs from the clean one (near=True: anywhere
    in the point's 3x3 neighbourhood; False: at its own pixel)."""
    diff = np.abs(masked.astype(np.int16) - clean).astype(np.uint8)
    if near:
        diff = np.stack([cv2.dilate(d, np.ones((3, 3), np.uint8)) for d in diff])
    diff = diff > THRESHOLD
    xy = np.clip(np.round(points[:, idx]).astype(int), 0, 47)
    return diff[np.arange(len(diff))[:, None], xy[..., 1], xy[..., 0]].all(1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("FER2013_CSV"))
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--looks", default="template/fixed,template/random,surface/random,photo/random,template/flat",
                    help="comma-separated FAMILY/APPEARANCE pairs to measure")
    a = ap.parse_args(argv)
    looks = [tuple(x.split("/")) for x in a.looks.split(",")]
    if not a.data or not Path(a.data).is_file():
        ap.error(f"--data {a.data}: no such file (or set FER2013_CSV)")
    if any(len(x) != 2 for x in looks):
        ap.error(f"--looks {a.looks}: expected FAMILY/APPEARANCE pairs")
    from datasets import load_fer2013
    from masking import FITS, MaskConfig, mask_dataset
    test = load_fer2013(a.data, cache_dir=a.cache_dir).split("PrivateTest")
    test = test.take(np.arange(len(test)) < a.rows)
    keep, ref = reference_landmarks(test.images)
    print(f"reference landmarks on {len(keep)} of {len(test)} PrivateTest rows", flush=True)
    clean = test.images[keep]
    eyes = [list(range(36, 42)), list(range(42, 48))]
    print("| family | fit | " + " | ".join(POINTS) + " | an eye centre (3x3) | an eye centre (its pixel) |")
    print("|---|---|" + "---|" * (len(POINTS) + 2))
    for family, appearance in looks:
        for fit in FITS:
            masked = mask_dataset(test, MaskConfig(family=family, appearance=appearance, fit=fit),
                                  cache_dir=a.cache_dir).images[keep]
            shares = [covered(clean, masked, ref, idx).mean() for idx in POINTS.values()]
            centres = np.stack([ref[:, e].mean(1) for e in eyes], 1)
            eye = covered(clean, masked, centres, [0]) | covered(clean, masked, centres, [1])
            pixel = covered(clean, masked, centres, [0], False) | covered(clean, masked, centres, [1], False)
            print(f"| {family} ({appearance}) | {fit} | " + " | ".join(f"{100 * s:.0f}%" for s in shares)
                  + f" | {100 * eye.mean():.1f}% | {100 * pixel.mean():.1f}% |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
