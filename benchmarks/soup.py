"""Weight averaging ("model soups", Wortsman et al. 2022; WiSE-FT) of maskfer models fine-tuned from one clean model.

Two masked models fine-tuned from the same clean weights (say one on fixed-look masks, one on random looks and
occluders) lie in one basin; the weighted mean of their weights is again one model of the same size and cost.
Whether it keeps the fixed-look model's accuracy on its own masks and the random-look model's on masks it never
saw is what BENCHMARKS section 19 measures with it.

    python benchmarks/soup.py OUT.keras MODEL.keras MODEL.keras [...] [--weights 0.5,0.5] [--bn-from RUN ...]

Every variable is averaged, BatchNorm's moving statistics included (the models share an architecture: checked).
--bn-from recomputes those statistics instead (precise BN, as training does at each epoch's end; REPAIR, Jordan et
al. 2022, for averaged networks) on centre crops of Training rows masked as each named run's masked model was
trained (3,200 rows per run; PublicTest and PrivateTest are not touched). --validate prints the soup's PublicTest
accuracy, clean and under each named run's training and held-out masks: weights are chosen there, never on
PrivateTest (score the chosen soup on PrivateTest with `experiments.score`).
The result is a saved maskfer model: score it with `experiments.score` (a card with scale = "0..255").
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.config import recorded_held_out_config  # noqa: E402  (no TensorFlow)


def soup(models: list, weights: list[float]) -> list[np.ndarray]:
    """The weighted mean of the models' weight lists (each a list of arrays of matching shapes)."""
    lists = [m.get_weights() for m in models]
    for i, ws in enumerate(lists[1:], 1):
        shapes = [w.shape for w in ws]
        if shapes != [w.shape for w in lists[0]]:
            raise SystemExit(f"model {i + 1} has another architecture than model 1")
    return [sum(w * a[j].astype(np.float64) for w, a in zip(weights, lists)).astype(lists[0][j].dtype)
            for j in range(len(lists[0]))]


def run_masks(run: Path, data: str | None, usage: str = "Training", held_out: bool = False):
    """FERData of the `usage` rows masked as `run`'s masked model was trained (held_out: as its held-out
    condition), masks from the cache where it has them."""
    import json
    from datasets import load_dataset
    from experiments.config import recorded_held_out_config, recorded_mask_config
    from masking import mask_dataset, mask_key
    from datasets.fer2013 import USAGES
    from masking import find_landmarks
    cfg = json.loads((run / "config.json").read_text())
    fer = load_dataset(data or cfg["data"])
    if not held_out:  # every row, as the run masked them (cached)
        mcfg = recorded_mask_config(cfg["config"])
        return mask_dataset(fer, mcfg, None, None).as_fer(fer, mask_key(fer, mcfg)).split(usage), mcfg
    points, status = find_landmarks(fer)  # the run's held-out masks covered PrivateTest only: mask `usage` here
    keep = fer.usage == USAGES.index(usage)
    part = fer.take(keep)
    mcfg = recorded_held_out_config(cfg["config"])
    masked = mask_dataset(part, mcfg, None, None, landmarks=(points[keep], status[keep]))
    return masked.as_fer(part, mask_key(part, mcfg)), mcfg


def validate(model, runs: list[Path], data: str | None) -> dict:
    """PublicTest accuracy of `model`: clean, and under each run's training and held-out masks."""
    from datasets import load_dataset
    from experiments.model.inference import predict_proba
    import json
    val = load_dataset(data or json.loads((runs[0] / "config.json").read_text())["data"]).split("PublicTest")
    acc = lambda d: round(100 * float((predict_proba(model, d.images).argmax(1) == d.labels).mean()), 2)
    out = {"clean": acc(val)}
    for run in runs:
        for held_out in (False, True):
            d, mcfg = run_masks(run, data, "PublicTest", held_out)
            out[f"{mcfg.family}/{mcfg.appearance}"] = acc(d)
    return out


def _weights(text: str) -> list[float]:
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated numbers, e.g. 0.5,0.5") from None


def _model(text: str) -> Path:
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such model file")
    return Path(text)


def _run(text: str) -> Path:
    if not (Path(text) / "config.json").is_file():
        raise argparse.ArgumentTypeError(f"{text}: not a run folder (no config.json)")
    return Path(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("models", nargs="+", type=_model)
    ap.add_argument("--weights", type=_weights, help="comma-separated, one per model, summing to 1 (default: equal)")
    ap.add_argument("--bn-from", nargs="+", type=_run, default=[], help="run folders whose training masks give the "
                    "BatchNorm statistics")
    ap.add_argument("--validate", nargs="+", type=_run, default=[], help="run folders whose training and held-out "
                    "masks to score the soup on, on PublicTest")
    ap.add_argument("--data", help="FER2013 (default: the first named run's)")
    a = ap.parse_args(argv)
    weights = a.weights or [1 / len(a.models)] * len(a.models)
    if len(weights) != len(a.models) or abs(sum(weights) - 1) > 1e-6:
        ap.error(f"--weights: {len(a.models)} weights summing to 1, got {','.join(map(str, weights))}")
    for run in a.validate:
        cfg = json.loads((run / "config.json").read_text())["config"]
        if recorded_held_out_config(cfg) is None:
            ap.error(f"--validate {run}: that run holds no family out (trained on {cfg.get('train_mask_family')} "
                     f"with test families {cfg.get('test_mask_families')}): nothing held out to validate on")
    from experiments.model.inference import load_model
    models = [load_model(p) for p in a.models]
    base = models[0]
    base.set_weights(soup(models, weights))
    if a.bn_from:
        from experiments.training.precisebn import recompute_batchnorm, stats_sample
        backbone = base.get_layer("backbone")
        x = np.concatenate([stats_sample(run_masks(run, a.data)[0].images, crop=int(backbone.input_shape[1]), rows=3200,
                                         seed=i) for i, run in enumerate(a.bn_from)])
        recompute_batchnorm(backbone, x)
        print(f"BatchNorm statistics recomputed on {len(x)} masked Training crops")
    if a.validate:
        import json
        print("PublicTest", json.dumps(validate(base, a.validate, a.data)), flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_name(a.out.stem + ".tmp.keras")
    base.save(tmp)
    tmp.rename(a.out)
    print(f"{a.out}: {' + '.join(f'{w:g} x {p}' for w, p in zip(weights, a.models))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
