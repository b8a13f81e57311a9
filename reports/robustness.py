"""Models under masks: every model of a run folder (maskfer's and outside ones) ranked by accuracy on masked
faces, with the paired cost of masks and its interval, and the same table as RUN/robustness.csv."""
from __future__ import annotations

import csv
from pathlib import Path

from datasets.atomic import atomic_path
from experiments import conditions as C

from .stats import compare

CSV = "robustness.csv"
COLUMNS = ("rank", "model", "kind", "clean_accuracy", "masked_accuracy", "clean_macro_f1", "masked_macro_f1",
           "mask_cost", "mask_cost_low", "mask_cost_high", "relative_robustness", "rows")


def table(cells: dict, preds: dict, models: list[str], outside: dict) -> list[dict]:
    """One row per model with clean and masked FER2013 results, ranked by masked accuracy (best first)."""
    rows = []
    for m in models:
        pair = compare(preds, (m, C.CLEAN), (m, C.MASKED))
        if pair is None:
            continue
        cost, low, high = pair["diff"], pair["low"], pair["high"]
        acc_c, acc_m = cells[(m, C.CLEAN)]["accuracy"], cells[(m, C.MASKED)]["accuracy"]
        rows.append({"model": m, "kind": "outside" if m in outside else "maskfer", "clean_accuracy": acc_c,
                     "masked_accuracy": acc_m, "clean_macro_f1": cells[(m, C.CLEAN)]["macro_f1"],
                     "masked_macro_f1": cells[(m, C.MASKED)]["macro_f1"], "mask_cost": cost, "mask_cost_low": low,
                     "mask_cost_high": high, "relative_robustness": acc_m / acc_c if acc_c else float("nan"),
                     "rows": pair["rows"]})
    rows.sort(key=lambda r: -r["masked_accuracy"])
    for i, r in enumerate(rows, 1):
        r["rank"] = i
    return rows


def against_masked_model(preds: dict, outside: dict) -> list[dict]:
    """Exact McNemar test of each outside model against maskfer's masked model, on masked faces."""
    out = []
    for name in outside:
        pair = compare(preds, (name, C.MASKED), (C.MASKED, C.MASKED), interval=False)
        if pair is not None:
            out.append({"model": name, **pair})
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
