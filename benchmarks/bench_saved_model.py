"""The saved model alone: load RUN/<variant>/model.keras in a fresh process, score it on the 48x48
PrivateTest faces of its condition, and compare with the accuracy the run's report shows.

    python benchmarks/bench_saved_model.py RUN_DIR [--data FER2013.csv.gz] [--cache-dir DIR]

Clean PrivateTest comes from the data file; masked PrivateTest from `mask_dataset` with the run's training
mask config (the same pixels the run scored, from the cache when it is warm).
"""
import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--data", default=os.environ.get("FER2013_CSV"))
    ap.add_argument("--cache-dir")
    a = ap.parse_args()
    from datasets import load_dataset
    from masking import mask_dataset
    from experiments.config import recorded_mask_config
    from experiments.model.inference import load_model
    run = Path(a.run)
    config, metrics = (json.loads((run / f).read_text()) for f in ("config.json", "metrics.json"))
    cfg = config["config"]
    fer = load_dataset(a.data, cache_dir=a.cache_dir).split("PrivateTest")
    mcfg = recorded_mask_config(cfg)
    faces = {"clean": fer.images, "masked": mask_dataset(fer, mcfg, None, a.cache_dir).images}
    reported = {(r["train"], r["test"]): r["accuracy"] for r in metrics["results"]}
    for variant in cfg["variants"]:
        model = load_model(run / variant / "model.keras")
        for cond, images in faces.items():
            p = model.predict(images[..., None].astype("float32"), batch_size=512, verbose=0)
            acc = float((p.argmax(1) == fer.labels).mean())
            print(json.dumps({"model": variant, "test": cond, "saved_model_alone": round(acc, 4),
                              "report": round(reported[(variant, cond)], 4),
                              "difference_points": round(100 * (acc - reported[(variant, cond)]), 2)}), flush=True)


if __name__ == "__main__":
    main()
