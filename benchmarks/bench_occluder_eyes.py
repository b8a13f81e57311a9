"""Do the training occluders cover eyes? The occluders of every FER2013 row's own landmarks, drawn as training
draws them, with and without the eye clearance (`experiments.training.occlusion`).

    python benchmarks/bench_occluder_eyes.py [--data FER2013] [--usage Training] [--draws 5]

prints, for the occluders before the clearance (ceiling at minus infinity) and with it, the share of drawn
occluders that reach above a row's lower eyelids (any alpha above the lowest of landmarks 40, 41, 46, 47) and that
touch an eye centre's pixel (any alpha, and alpha > 0.5: covered), per landmark status group.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("FER2013_CSV"))
    ap.add_argument("--usage", default="Training", choices=("Training", "PublicTest", "PrivateTest"))
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--cache-dir", default=None)
    a = ap.parse_args(argv)
    if not a.data or not Path(a.data).is_file():
        ap.error(f"--data {a.data}: no such file (or set FER2013_CSV)")
    if a.draws < 1:
        ap.error("--draws: at least 1")
    from datasets import USAGES, load_dataset
    from experiments.backend import tf
    from experiments.training.occlusion import occluder_tops, occluders
    from masking import STATUSES, eye_centres, find_landmarks
    fer = load_dataset(a.data, cache_dir=a.cache_dir)
    points, status = find_landmarks(fer, cache_dir=a.cache_dir)  # every row, as a run finds them (cached)
    keep = fer.usage == USAGES.index(a.usage)
    points, status = points[keep], status[keep]
    tops = occluder_tops(points, status)
    lids = points[:, [40, 41, 46, 47], 1].max(1)
    centres = np.stack([np.stack(eye_centres(p)) for p in points])  # (N, 2, 2)
    confirmed = np.isin(status, [STATUSES.index(s) for s in ("detected", "detected_cnn", "detected_weak")])
    print(f"{len(points)} {a.usage} rows, {a.draws} occluders each (all rows occluded: p = 1)")
    print("| occluders | status | rows | reach above the lower eyelids | touch an eye centre's pixel | cover it (alpha > 0.5) |")
    print("|---|---|---|---|---|---|")
    for name, ceiling in (("before (no clearance)", np.full(len(tops), -1e4, np.float32)), ("with the clearance", tops[:, 1])):
        t = np.stack([tops[:, 0], ceiling], 1).astype(np.float32)
        gen = tf.random.Generator.from_seed(0)
        above, eye, cover = np.zeros(len(t)), np.zeros(len(t)), np.zeros(len(t))
        for _ in range(a.draws):
            for i in range(0, len(t), 2048):
                soft = occluders(len(t[i:i + 2048]), t[i:i + 2048], gen, 1.0)[0].numpy()[..., 0]
                alpha = soft > 0
                rows = np.arange(48)[None, :] < lids[i:i + 2048, None]
                above[i:i + 2048] += (alpha & rows[:, :, None]).any((1, 2))
                xy = np.clip(np.round(centres[i:i + 2048]).astype(int), 0, 47)
                n = np.arange(len(alpha))[:, None]
                eye[i:i + 2048] += alpha[n, xy[..., 1], xy[..., 0]].any(1)
                cover[i:i + 2048] += (soft[n, xy[..., 1], xy[..., 0]] > 0.5).any(1)
        for label, sel in (("confirmed by a detector", confirmed), ("fallback / mean shape", ~confirmed),
                           ("all", np.ones(len(t), bool))):
            print(f"| {name} | {label} | {sel.sum()} | {100 * above[sel].sum() / (a.draws * max(sel.sum(), 1)):.1f}% "
                  f"| {100 * eye[sel].sum() / (a.draws * max(sel.sum(), 1)):.2f}% "
                  f"| {100 * cover[sel].sum() / (a.draws * max(sel.sum(), 1)):.2f}% |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
