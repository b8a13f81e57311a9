"""Recipe probe: train one clean model on FER2013 with TrainConfig / AugmentConfig overrides and print the
PublicTest accuracy (with flip averaging). PrivateTest is not touched.

    FER2013_CSV=../shared/datasets/fer2013/fer2013.csv.gz python benchmarks/bench_recipe.py NAME width=48 epochs=12

Writes the training folder to $TMPDIR/maskfer-recipe/NAME.
"""
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from datasets import load_dataset  # noqa: E402
from experiments.config import AugmentConfig, TrainConfig  # noqa: E402
from experiments.train import predict_proba, train_model  # noqa: E402

name = sys.argv[1]
kw, aug = {}, {}
for a in sys.argv[2:]:
    k, v = a.split("=")
    tgt = aug if k in AugmentConfig.__dataclass_fields__ else kw
    typ = type(getattr(TrainConfig() if tgt is kw else AugmentConfig(), k))
    tgt[k] = (v == "True") if typ is bool else typ(v)
cfg = replace(TrainConfig(), **kw, augment=replace(AugmentConfig(), **aug))
fer = load_dataset(os.environ["FER2013_CSV"])
tr, va = fer.split("Training"), fer.split("PublicTest")
t = time.time()
m = train_model(tr, va, cfg, Path(tempfile.gettempdir()) / "maskfer-recipe" / name, verbose=2)
dt = time.time() - t
p = predict_proba(m, va.images)
print(json.dumps({"name": name, "cfg": kw, "aug": aug, "train_s": round(dt),
                  "val_tta": float((p.argmax(1) == va.labels).mean())}))
