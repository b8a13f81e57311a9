"""A study's numbers: every cell (model x train variant x test condition) and the headline's effects, each
over seeds with mean, sample sd and a t interval (scipy.stats). No TensorFlow here: the study report reads it.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

from .. import conditions as C

METRICS = ("accuracy", "macro_f1")


def spread(per_seed: dict[int, float], level: float = 0.95) -> dict:
    """{"per_seed", "mean", "sd" (sample sd, ddof 1), "ci95" ([lo, hi], Student t over seeds)}. With one seed
    sd and ci95 are None: one run has no spread."""
    values = np.array(list(per_seed.values()), dtype=np.float64)
    n = len(values)
    mean = float(values.mean())
    out = {"per_seed": {str(k): float(v) for k, v in per_seed.items()}, "n": n, "mean": mean, "sd": None,
           "ci95": None}
    if n > 1:
        sd = float(values.std(ddof=1))
        half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
        out.update(sd=sd, ci95=[mean - half, mean + half])
    return out


def _value(metrics: dict, train: str, test: str, metric: str) -> float | None:
    return next((r[metric] for r in metrics["results"] if r["train"] == train and r["test"] == test), None)


def cells(runs: dict[tuple[str, int], dict]) -> list[dict]:
    """One entry per model x train variant x test condition found in every seed's metrics.json of that model:
    {"model", "train", "test", "accuracy": spread(...), "macro_f1": spread(...)}. runs: {(model, seed): metrics}."""
    out = []
    for model in dict.fromkeys(m for m, _ in runs):
        seeds = sorted(s for m, s in runs if m == model)
        first = runs[(model, seeds[0])]["results"]
        for r in first:
            entry = {"model": model, "train": r["train"], "test": r["test"]}
            for metric in METRICS:
                values = {s: _value(runs[(model, s)], r["train"], r["test"], metric) for s in seeds}
                if any(v is None for v in values.values()):
                    break
                entry[metric] = spread(values)
            else:
                out.append(entry)
    return out


# The headline's effects, as differences of two cells of the same seed: (name, text, (train, test) minus (train, test)).
EFFECTS = (
    ("mask_cost", "cost of masks to the clean model", (C.CLEAN, C.CLEAN), (C.CLEAN, C.MASKED)),
    ("masked_gain", "gain of masked training on masked faces", (C.MASKED, C.MASKED), (C.CLEAN, C.MASKED)),
    ("mixed_gain", "gain of mixed training on masked faces", (C.MIXED, C.MASKED), (C.CLEAN, C.MASKED)),
    ("masked_gain_held_out", "gain of masked training on the held-out family's masks", (C.MASKED, C.HELD_OUT),
     (C.CLEAN, C.HELD_OUT)),
    ("masked_held_out_loss", "masked model: its training family's masks minus the held-out family's",
     (C.MASKED, C.MASKED), (C.MASKED, C.HELD_OUT)),
    ("mixed_gain_held_out", "gain of mixed training on the held-out family's masks", (C.MIXED, C.HELD_OUT),
     (C.CLEAN, C.HELD_OUT)),
)


def effects(runs: dict[tuple[str, int], dict], metric: str = "accuracy") -> list[dict]:
    """Per model, the seed-paired differences the headline is made of (those whose cells the runs have):
    {"model", "effect", "text", "a", "b", "metric", **spread(per seed a - b)}; ci95 is the paired t interval."""
    out = []
    for model in dict.fromkeys(m for m, _ in runs):
        seeds = sorted(s for m, s in runs if m == model)
        for name, text, a, b in EFFECTS:
            diffs = {}
            for s in seeds:
                va, vb = _value(runs[(model, s)], *a, metric), _value(runs[(model, s)], *b, metric)
                if va is None or vb is None:
                    break
                diffs[s] = va - vb
            else:
                out.append({"model": model, "effect": name, "text": text, "a": list(a), "b": list(b),
                            "metric": metric, **spread(diffs)})
    return out
