"""Scores of predicted labels: accuracy, macro-F1 and macro-recall, per-class precision/recall/F1 and the
confusion matrix (scikit-learn). No TensorFlow here: the report's intervals use the same `macro_f1`."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support,
                             recall_score)

from datasets import EMOTIONS, N_CLASSES

LABELS = list(range(N_CLASSES))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, labels=None) -> float:
    """The mean F1 over `labels` (default: all seven emotions; a test set with only some emotions passes
    the ones it has). y_true, y_pred (N,) int in 0..6. An emotion neither true nor predicted scores 0."""
    return float(f1_score(y_true, y_pred, labels=LABELS if labels is None else sorted(labels), average="macro",
                          zero_division=0))


def score(y_true: np.ndarray, y_pred: np.ndarray, labels: list[int] | None = None) -> dict:
    """Metrics for (N,) true and predicted labels in 0..6. Macro-F1 and macro-recall average over `labels`
    (see `macro_f1`); per-class figures and the confusion matrix always cover all seven."""
    macro = LABELS if labels is None else sorted(labels)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=LABELS, zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": macro_f1(y_true, y_pred, macro),
        "macro_recall": float(recall_score(y_true, y_pred, labels=macro, average="macro", zero_division=0)),
        "emotions": [EMOTIONS[k] for k in macro],
        "per_class": {e: {"precision": float(p[k]), "recall": float(r[k]), "f1": float(f[k]), "support": int(s[k])}
                      for k, e in enumerate(EMOTIONS)},
        "confusion": confusion_matrix(y_true, y_pred, labels=LABELS).tolist(),
    }


def majority_proba(majority_class: int, n: int) -> np.ndarray:
    """(n, 7) float32 one-hot predictions of `majority_class`."""
    proba = np.zeros((n, N_CLASSES), np.float32)
    proba[:, int(majority_class)] = 1.0
    return proba
