"""Measure the rigid mask's frame on FER2013 and check it on the widest-open mouths.

The rigid geometry (`masking.placement`, geometry "rigid") places the mask by a similarity transform fitted
to landmarks that do not move with the mouth: the four eye corners (36, 39, 42, 45) and the nose bridge
(27-30). This script prints, in the eye frame (origin between the eye centres, x along the eye line, unit =
inter-ocular distance), the median of those stable points over HOG-detected rows (RIGID_STABLE) and the six
mask anchors sized for an open mouth: the landmark anchors' median, with the lip-height cheeks and the chin at
the 95th percentile of the surprise rows (RIGID_ANCHORS). Then it reports how much of the mouth (48-67) the
rigid mask covers on the 5% of surprise rows with the widest-open mouths.

    python benchmarks/bench_rigid.py $FER2013_CSV [--cache-dir DIR]
"""
from __future__ import annotations

import argparse

import numpy as np

from datasets import EMOTIONS, load_dataset
from masking import STATUSES, MaskSpec, find_landmarks
from masking.landmarks import eye_centres
from masking.placement import RIGID_STABLE, anchors, eye_frame, mask_alpha


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--cache-dir")
    a = ap.parse_args()
    fer = load_dataset(a.data, cache_dir=a.cache_dir)
    points, status = find_landmarks(fer, cache_dir=a.cache_dir)
    found = status == STATUSES.index("detected")
    pts = points[found].astype(np.float64)
    labels = fer.labels[found]
    framed = np.stack([eye_frame(p) @ np.vstack([q.T, np.ones(68)]) for p, q in zip(pts, pts)]).transpose(0, 2, 1)
    stable = np.median(framed[:, [27, 28, 29, 30, 36, 39, 42, 45]], 0)
    anc = np.stack([eye_frame(p) @ np.vstack([anchors(p).T, np.ones(6)]) for p in pts]).transpose(0, 2, 1)
    surprise = labels == EMOTIONS.index("surprise")
    rigid = np.median(anc, 0)
    rigid[3:, 1] = np.percentile(anc[surprise][:, 3:, 1], 95, axis=0)
    np.set_printoptions(precision=3, suppress=True)
    print(f"{found.sum()} detected rows, {surprise.sum()} surprise")
    print("RIGID_STABLE =", np.round(stable, 3).tolist())
    print("RIGID_ANCHORS =", np.round(rigid, 3).tolist())
    # the widest-open mouths: inner-lip gap (66 - 62) over the inter-ocular distance
    iod = np.linalg.norm(np.subtract(*eye_centres(pts)[::-1]), axis=1)
    gap = (pts[:, 66, 1] - pts[:, 62, 1]) / iod
    wide = np.flatnonzero(surprise & (gap >= np.percentile(gap[surprise], 95)))
    cover = []
    for i in wide:
        alpha = mask_alpha(pts[i], MaskSpec("surgical"), 48, 48, geometry="rigid")
        mouth = np.clip(np.round(pts[i, 48:68]).astype(int), 0, 47)
        cover.append((alpha[mouth[:, 1], mouth[:, 0]] > 0.5).mean())
    print(f"stable points now in placement: {np.round(RIGID_STABLE, 3).tolist()}")
    print(f"widest-open surprise mouths ({len(wide)} rows): mouth landmarks under the rigid mask "
          f"{100 * np.mean(cover):.1f}% on average, all of them on {100 * np.mean(np.array(cover) == 1):.1f}% of rows")


if __name__ == "__main__":
    main()
