"""The masking stage of `experiments.run clean` before and after it masked only the rows it uses.

    python benchmarks/bench_clean_masking.py [--data FER2013] [--train-rows N] [--masked-copy]

Times `experiments.masks.make_masks` with cold caches (a fresh temporary cache folder each) for a clean-only run
(today: PublicTest and PrivateTest alone) and for a run with a mask-aware variant (every row: what a clean-only
run masked before). --train-rows keeps that many Training rows (0: all); --masked-copy first covers every row's
lower face with a flat mask (each row's own outline, one grey level), as a user's own set of masked faces would
be, where the landmark fallbacks are slow.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("FER2013_CSV"))
    ap.add_argument("--train-rows", type=int, default=0)
    ap.add_argument("--masked-copy", action="store_true")
    ap.add_argument("--workers", type=int, default=0)
    a = ap.parse_args(argv)
    if not a.data or not Path(a.data).is_file():
        ap.error(f"--data {a.data}: no such file (or set FER2013_CSV)")
    if a.train_rows < 0:
        ap.error("--train-rows: 0 or more")
    from datasets import USAGES, FERData, load_dataset
    from experiments.config import RunConfig
    from experiments.masks import make_masks
    from masking import MaskConfig, mask_dataset
    fer = load_dataset(a.data)
    if a.train_rows:
        train = np.flatnonzero(fer.usage == USAGES.index("Training"))
        fer = fer.take(~np.isin(np.arange(len(fer)), train[a.train_rows:]))
    if a.masked_copy:  # faces that already wear masks: the pixels change, so does the data's identity
        covered = mask_dataset(fer, MaskConfig(appearance="flat", seed=7), a.workers or None)
        fer = FERData(covered.images, fer.labels, fer.usage, fer.rows, fer.source_hash + "/flat-masked")
    print(f"{len(fer)} rows ({'every lower face already covered' if a.masked_copy else 'FER2013 as it is'}); "
          f"cold caches", flush=True)
    out = {}
    for name, variants in (("clean only (today)", ("clean",)), ("clean + masked (every row: as clean-only runs "
                                                                 "masked before)", ("clean", "masked"))):
        with tempfile.TemporaryDirectory() as cache:
            cfg = RunConfig(variants=variants, cache_dir=cache, workers=a.workers)
            t = time.perf_counter()
            masks = make_masks(cfg, fer)
            out[name] = (time.perf_counter() - t, len(masks.masked.rows))
    print("| masking stage | rows masked | seconds |\n|---|---|---|")
    for name, (secs, rows) in out.items():
        print(f"| {name} | {rows} | {secs:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
