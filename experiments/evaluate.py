"""Scoring predictions: accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix
(scikit-learn), and the prediction files the report reads."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support,
                             recall_score)

from datasets import EMOTIONS
from datasets.atomic import atomic_path

from .conditions import set_of

LABELS = list(range(len(EMOTIONS)))


def score(y_true: np.ndarray, y_pred: np.ndarray, labels: list[int] | None = None) -> dict:
    """Metrics for (N,) true and predicted labels in 0..6. Macro-F1 and macro-recall average over `labels`
    (default: all seven emotions; a test set with only some emotions passes the ones it has); per-class
    figures and the confusion matrix always cover all seven."""
    macro = LABELS if labels is None else sorted(labels)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=LABELS, zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=macro, average="macro", zero_division=0)),
        "macro_recall": float(recall_score(y_true, y_pred, labels=macro, average="macro", zero_division=0)),
        "emotions": [EMOTIONS[k] for k in macro],
        "per_class": {e: {"precision": float(p[k]), "recall": float(r[k]), "f1": float(f[k]), "support": int(s[k])}
                      for k, e in enumerate(EMOTIONS)},
        "confusion": confusion_matrix(y_true, y_pred, labels=LABELS).tolist(),
    }


def majority_proba(train_labels: np.ndarray, n: int) -> np.ndarray:
    """(n, 7) one-hot predictions of the most frequent training class."""
    proba = np.zeros((n, len(EMOTIONS)), np.float32)
    proba[:, int(np.bincount(train_labels, minlength=len(EMOTIONS)).argmax())] = 1.0
    return proba


def write_predictions(path: Path, rows: np.ndarray, y_true: np.ndarray, proba: np.ndarray) -> None:
    """CSV: row, true, pred, p_<emotion> x 7 (written to a temporary name, then renamed)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["row", "true", "pred"] + [f"p_{e}" for e in EMOTIONS])
        for r, t, p in zip(rows.tolist(), y_true.tolist(), proba):
            w.writerow([r, EMOTIONS[t], EMOTIONS[int(p.argmax())]] + [f"{v:.5f}" for v in p])


def read_predictions(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(rows (N,) int64, true (N,) int, pred (N,) int, proba (N, 7) float32) from a predictions CSV."""
    with open(path) as f:
        recs = list(csv.DictReader(f))
    rows = np.array([int(r["row"]) for r in recs], dtype=np.int64)
    true = np.array([EMOTIONS.index(r["true"]) for r in recs], dtype=np.int64)
    pred = np.array([EMOTIONS.index(r["pred"]) for r in recs], dtype=np.int64)
    proba = np.array([[float(r[f"p_{e}"]) for e in EMOTIONS] for r in recs], dtype=np.float32).reshape(-1, 7)
    return rows, true, pred, proba


def evaluate_models(scorers: list, conditions: dict[str, np.ndarray], labels: np.ndarray, rows: np.ndarray,
                    pred_dir: Path, emotions: list[int] | None = None) -> list[dict]:
    """Score every (name, proba_fn) on every condition's images of the same rows; write one predictions
    file per pair; return the metrics entries ({"train", "test", ...score()}).

    conditions: {condition: (N, 48, 48) uint8}; labels, rows (N,); emotions: the labels macro scores
    average over (None: all seven)."""
    from .conditions import predictions_name
    results = []
    for name, proba_fn in scorers:
        for cond, x in conditions.items():
            proba = proba_fn(x)
            write_predictions(pred_dir / predictions_name(name, cond), rows, labels, proba)
            res = {"train": name, "test": cond, **score(labels, proba.argmax(1), emotions)}
            results.append(res)
            print(f"      {name:>8} on {cond:<16} accuracy {res['accuracy']:.4f}  macro-F1 {res['macro_f1']:.4f}",
                  flush=True)
    return results


def add_test_sets(run_dir: Path, specs, workers: int | None = None,
                  cache_dir: str | None = None, report: bool = True, verbose: bool = False) -> dict:
    """Score a finished run's models on more test sets, without retraining: their entries in metrics.json
    (replacing earlier ones of the same names), predictions files, sample faces, and the report. Returns
    the updated metrics."""
    from .quiet import quiet_tensorflow
    quiet_tensorflow(verbose)
    from datasets import EMOTIONS as EMO
    from masking import MASK_TYPES, MaskConfig
    from .run import save_set_samples, scorers
    from .runfolder import RunError, atomic_json
    from .testsets import conditions_of, load_test_set
    from .models import load_model
    try:
        config = json.loads((run_dir / "config.json").read_text())
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError) as e:
        raise RunError(f"{run_dir}: not a finished run folder ({e})") from None
    cfg = config.get("config", {})
    models = {v: load_model(run_dir / v / "model.keras") for v in cfg.get("variants", [])
              if (run_dir / v / "model.keras").is_file()}
    if not models:
        raise RunError(f"{run_dir}: no trained model in this run folder")
    majority = EMO.index(metrics.get("majority_class") or _majority_from(metrics))
    train = cfg.get("train", {})  # runs made before the saved model held its views averaged the mirror outside
    score_with = scorers(models, majority, outside_flip="views" not in train and train.get("flip_tta", True))
    mcfg = MaskConfig(mask_types=tuple(cfg.get("train_mask_types", MASK_TYPES)), seed=int(cfg.get("mask_seed", 0)))
    names = {n for n, _ in specs}
    results = [r for r in metrics["results"] if (set_of(r["test"]) or ("",))[0] not in names]
    metrics.setdefault("test_sets", {})
    for name, path in specs:
        ts = load_test_set(name, path, workers, cache_dir)
        print(f"test set {name}: {len(ts.fer)} images {ts.counts}; skipped folders {ts.skipped or 'none'}", flush=True)
        conds = conditions_of(ts, mcfg, workers, cache_dir)
        results += evaluate_models(score_with, conds, ts.fer.labels, ts.fer.rows, run_dir / "predictions",
                                   ts.emotions)
        save_set_samples(run_dir, ts, conds)
        metrics["test_sets"][name] = ts.summary()
    metrics["results"] = results
    atomic_json(run_dir / "metrics.json", metrics)
    if report:
        from reports import build_report
        print(build_report(run_dir), flush=True)
    return metrics


def _majority_from(metrics: dict) -> str:
    """The majority baseline's class, from its confusion matrix (runs written before it was recorded)."""
    entry = next(r for r in metrics["results"] if r["train"] == "majority")
    return EMOTIONS[int(np.array(entry["confusion"]).sum(0).argmax())]


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys
    from datasets import DatasetError
    from .runfolder import RunError
    from .testsets import parse_specs
    p = argparse.ArgumentParser(prog="python -m experiments.evaluate",
                                description="Add cross-dataset test sets to a finished run, without retraining.")
    p.add_argument("run_dir")
    p.add_argument("--test-data", action="append", required=True, metavar="NAME=PATH")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--cache-dir")
    p.add_argument("--no-report", action="store_true")
    p.add_argument("--verbose", action="store_true")
    a = p.parse_args(argv)
    try:
        specs = parse_specs(a.test_data)
    except ValueError as e:
        p.error(str(e))
    run_dir = Path(a.run_dir)
    if not (run_dir / "metrics.json").is_file():
        print(f"error: {run_dir}: not a finished run folder (no metrics.json)", file=sys.stderr)
        return 2
    try:
        add_test_sets(run_dir, specs, a.workers or None, a.cache_dir, report=not a.no_report, verbose=a.verbose)
    except (RunError, DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
