"""Models under masks: every model of a run folder (maskfer's and outside ones) ranked by accuracy on masked
faces, with the paired cost of masks and its interval, and the same table as RUN/robustness.csv."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from scipy import stats

from datasets.atomic import atomic_path
from experiments import conditions as C

from .stats import mcnemar_exact

CSV = "robustness.csv"
COLUMNS = ("rank", "model", "kind", "clean_accuracy", "masked_accuracy", "clean_macro_f1", "masked_macro_f1",
           "mask_cost", "mask_cost_low", "mask_cost_high", "relative_robustness", "rows")


def paired_cost(correct_clean: np.ndarray, correct_masked: np.ndarray, n_resamples: int = 1000,
                seed: int = 0) -> tuple[float, float, float]:
    """Accuracy on clean minus accuracy on masked faces of the same rows, with its 95% percentile bootstrap
    interval (rows resampled, the pair kept together). (N,) bool arrays -> (cost, low, high)."""
    a, b = np.asarray(correct_clean, float), np.asarray(correct_masked, float)
    cost = float(a.mean() - b.mean())
    if len(a) < 2:
        return cost, cost, cost
    res = stats.bootstrap((a, b), lambda x, y, axis=-1: x.mean(axis) - y.mean(axis), paired=True,
                          vectorized=True, n_resamples=n_resamples, method="percentile",
                          random_state=np.random.default_rng(seed))
    return cost, float(res.confidence_interval.low), float(res.confidence_interval.high)


def table(cells: dict, preds: dict, models: list[str], outside: dict) -> list[dict]:
    """One row per model with clean and masked FER2013 results, ranked by masked accuracy (best first)."""
    rows = []
    for m in models:
        clean, masked = preds.get((m, C.CLEAN)), preds.get((m, C.MASKED))
        if clean is None or masked is None or not np.array_equal(clean[0], masked[0]):
            continue
        cost, low, high = paired_cost(clean[1] == clean[2], masked[1] == masked[2])
        acc_c, acc_m = cells[(m, C.CLEAN)]["accuracy"], cells[(m, C.MASKED)]["accuracy"]
        rows.append({"model": m, "kind": "outside" if m in outside else "maskfer", "clean_accuracy": acc_c,
                     "masked_accuracy": acc_m, "clean_macro_f1": cells[(m, C.CLEAN)]["macro_f1"],
                     "masked_macro_f1": cells[(m, C.MASKED)]["macro_f1"], "mask_cost": cost, "mask_cost_low": low,
                     "mask_cost_high": high, "relative_robustness": acc_m / acc_c if acc_c else float("nan"),
                     "rows": int(len(clean[0]))})
    rows.sort(key=lambda r: -r["masked_accuracy"])
    for i, r in enumerate(rows, 1):
        r["rank"] = i
    return rows


def against_masked_model(preds: dict, outside: dict) -> list[dict]:
    """Exact McNemar test of each outside model against maskfer's masked model, on masked faces."""
    ref = preds.get((C.MASKED, C.MASKED))
    out = []
    for name in outside:
        p = preds.get((name, C.MASKED))
        if ref is None or p is None or not np.array_equal(ref[0], p[0]):
            continue
        out.append({"model": name, **mcnemar_exact(p[1] == p[2], ref[1] == ref[2])})
    return out


def write_csv(run: Path, rows: list[dict]) -> Path:
    """RUN/robustness.csv: the table, one line per model, fractions (not percent)."""
    path = Path(run) / CSV
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS, lineterminator="\n", extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in r.items()})
    return path
