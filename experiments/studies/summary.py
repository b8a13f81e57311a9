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


def _value(metrics: dict, train: str, test: str, metric: str, table: str = "results") -> float | None:
    return next((r[metric] for r in metrics.get(table) or [] if r["train"] == train and r["test"] == test), None)


def cells(runs: dict[tuple[str, int], dict], table: str = "results") -> list[dict]:
    """One entry per model x train variant x condition found in every seed's metrics.json of that model:
    {"model", "train", "test", "accuracy": spread(...), "macro_f1": spread(...)}. runs: {(model, seed): metrics};
    table: "results" (the test conditions, PrivateTest) or "validation" (PublicTest and the validation sets)."""
    out = []
    for model in dict.fromkeys(m for m, _ in runs):
        seeds = sorted(s for m, s in runs if m == model)
        first = runs[(model, seeds[0])].get(table) or []
        for r in first:
            entry = {"model": model, "train": r["train"], "test": r["test"]}
            for metric in METRICS:
                values = {s: _value(runs[(model, s)], r["train"], r["test"], metric, table) for s in seeds}
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


# The rule a study ranks its recipes by, written before any figure is looked at, on the validation table alone:
RANKING_RULE = ("Among the recipes whose mask-aware model is within 0.5 points of the best on clean PublicTest "
                "faces (mean over seeds), the most mean accuracy over the validation families' masked conditions "
                "(PublicTest and every --validation-data set). PrivateTest plays no part.")
CLEAN_MARGIN = 0.005


def ranking(validation_cells: list[dict], variants=(C.MASKED, C.MIXED)) -> list[dict]:
    """The study's recipes (model x mask-aware variant) ranked by RANKING_RULE from `cells(runs, "validation")`:
    [{"model", "train", "clean", "score", "conditions", "eligible", "rank"}], eligible ones first (rank 1 = the
    choice), then the rest (rank None); means over seeds."""
    entries = []
    for model in dict.fromkeys(c["model"] for c in validation_cells):
        for train in variants:
            mine = [c for c in validation_cells if c["model"] == model and c["train"] == train]
            clean = next((c["accuracy"]["mean"] for c in mine if c["test"] == C.CLEAN), None)
            masked = [c for c in mine if C.validation_family_of(c["test"])]
            if clean is None or not masked:
                continue
            entries.append({"model": model, "train": train, "clean": clean,
                            "score": float(np.mean([c["accuracy"]["mean"] for c in masked])),
                            "conditions": [c["test"] for c in masked]})
    if not entries:
        return []
    best = max(e["clean"] for e in entries)
    for e in entries:
        e["eligible"] = e["clean"] >= best - CLEAN_MARGIN
    entries.sort(key=lambda e: (not e["eligible"], -e["score"]))
    for i, e in enumerate(entries):
        e["rank"] = i + 1 if e["eligible"] else None
    return entries
