"""Scoring predictions: accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix
(scikit-learn), and the prediction files the report reads."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from datasets import EMOTIONS
from datasets.atomic import atomic_path

LABELS = list(range(len(EMOTIONS)))


def score(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Metrics for (N,) true and predicted labels in 0..6."""
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=LABELS, zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=LABELS, average="macro", zero_division=0)),
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
