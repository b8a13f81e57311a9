"""Ensembles of a study's seeds on PublicTest: what averaging the probabilities of k independently trained
models of one recipe gives, for every subset of the seeds. PrivateTest is not touched.

    python benchmarks/bench_ensemble.py STUDY/maskfer_cnn --data FER2013.csv.gz [--cache-dir DIR] [--views V]

Each `seed*/clean/model.keras` is scored on clean PublicTest and each `seed*/masked/model.keras` on masked
PublicTest (the run's training mask config; masks from the cache when it is warm). Prints one JSON line per
variant and ensemble size: every subset's accuracy and their mean. --views centre|five|ten rewraps each saved
model's backbone with that test-time view set first (the same weights; members 1 = each seed alone).
"""
import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("study_model_dir", help="STUDY/<model>, holding seed0/, seed1/, ...")
    ap.add_argument("--data", required=True)
    ap.add_argument("--cache-dir")
    ap.add_argument("--views", choices=("centre", "five", "ten"), help="score with this view set instead of the saved one")
    a = ap.parse_args()
    from datasets import load_dataset
    from masking import mask_dataset, mask_key
    from experiments.config import recorded_mask_config
    from experiments.model.inference import load_model, predict_proba
    from experiments.model.views import with_views

    def model(path):
        saved = load_model(path)
        return with_views(saved.get_layer("backbone"), a.views) if a.views else saved
    seeds = sorted(Path(a.study_model_dir).glob("seed*"))
    runs = [r for r in seeds if all((r / v / "model.keras").exists() for v in ("clean", "masked"))]
    for r in sorted(set(seeds) - set(runs)):
        print(f"skipping {r}: no finished clean and masked models", file=sys.stderr)
    if not runs:
        sys.exit(f"bench_ensemble: no finished seed under {a.study_model_dir}")
    fer = load_dataset(a.data)
    mcfg = recorded_mask_config(json.loads((runs[0] / "config.json").read_text())["config"])
    masked = mask_dataset(fer, mcfg, None, a.cache_dir).as_fer(fer, mask_key(fer, mcfg))
    for variant, data in (("clean", fer), ("masked", masked)):
        val = data.split("PublicTest")
        probs = [predict_proba(model(r / variant / "model.keras"), val.images) for r in runs]
        for k in range(1, len(runs) + 1):
            accs = [float((sum(probs[i] for i in c).argmax(1) == val.labels).mean())
                    for c in itertools.combinations(range(len(runs)), k)]
            print(json.dumps({"variant": variant, "views": a.views or "saved", "members": k, "publictest_accuracy": [round(x, 4) for x in accs],
                              "mean": round(float(np.mean(accs)), 4)}), flush=True)


if __name__ == "__main__":
    main()
