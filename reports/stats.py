"""Confidence intervals and paired tests for classifier results (scipy.stats)."""
from __future__ import annotations

import numpy as np
from scipy import stats

from experiments.evaluation.metrics import macro_f1


def _accuracy(t, p, axis=-1):
    return np.mean(t == p, axis=axis)


def bootstrap_ci(y_true: np.ndarray, y_pred: np.ndarray, metric: str = "accuracy", labels=None,
                 n_resamples: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI over rows (paired resampling of (N,) true and predicted labels).

    metric "accuracy", or "macro_f1": the same `macro_f1` as the score, over `labels` (the emotions the
    set has; None: all seven), so the interval is drawn around the figure the report prints."""
    if metric == "accuracy":
        fn, vectorized = _accuracy, True
    elif metric == "macro_f1":
        fn, vectorized = (lambda t, p: macro_f1(t, p, labels)), False
    else:
        raise ValueError(f"unknown metric {metric!r}; expected accuracy or macro_f1")
    if len(y_true) < 2:
        v = float(fn(y_true, y_pred)) if len(y_true) else float("nan")
        return v, v
    res = stats.bootstrap((np.asarray(y_true), np.asarray(y_pred)), fn, paired=True, vectorized=vectorized,
                          n_resamples=n_resamples, confidence_level=level, method="percentile",
                          random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """Exact McNemar test on paired per-row correctness (bool arrays of the same rows).

    b = rows A gets right and B wrong, c = the reverse; p is the two-sided binomial p-value of b
    among the b + c discordant rows under p = 0.5."""
    a, b_ = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    b = int((a & ~b_).sum())
    c = int((~a & b_).sum())
    p = 1.0 if b + c == 0 else float(stats.binomtest(b, b + c, 0.5).pvalue)
    return {"a_only": b, "b_only": c, "p_value": p, "acc_a": float(a.mean()), "acc_b": float(b_.mean())}
