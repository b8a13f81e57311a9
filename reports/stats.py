"""Confidence intervals and paired tests for classifier results (scipy.stats)."""
from __future__ import annotations

import numpy as np
from scipy import stats

from experiments.evaluation.metrics import LABELS


def _accuracy(t, p, axis=-1):
    return np.mean(t == p, axis=axis)


def macro_f1_along(t: np.ndarray, p: np.ndarray, labels=None, axis: int = -1) -> np.ndarray:
    """`experiments.evaluation.metrics.macro_f1` along `axis` of (..., N) int arrays (scipy's vectorised
    bootstrap hands it every resample at once): per label 2 TP / (true + predicted), 0 where the label is
    neither true nor predicted, averaged over `labels` (default all seven). Returns (...) float64."""
    t, p = np.moveaxis(np.asarray(t), axis, -1), np.moveaxis(np.asarray(p), axis, -1)
    f1 = []
    for k in (LABELS if labels is None else sorted(labels)):
        is_t, is_p = t == k, p == k
        tp = np.count_nonzero(is_t & is_p, axis=-1)
        both = np.count_nonzero(is_t, axis=-1) + np.count_nonzero(is_p, axis=-1)
        f1.append(np.divide(2.0 * tp, both, out=np.zeros(tp.shape), where=both > 0))
    return np.mean(f1, axis=0)


def bootstrap_ci(y_true: np.ndarray, y_pred: np.ndarray, metric: str = "accuracy", labels=None,
                 n_resamples: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI over rows (paired resampling of (N,) true and predicted labels).

    metric "accuracy", or "macro_f1": the same `macro_f1` as the score, over `labels` (the emotions the
    set has; None: all seven), so the interval is drawn around the figure the report prints."""
    if metric == "accuracy":
        fn, vectorized = _accuracy, True
    elif metric == "macro_f1":
        fn, vectorized = (lambda t, p, axis=-1: macro_f1_along(t, p, labels, axis)), True
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


def paired_cost(correct_a: np.ndarray, correct_b: np.ndarray, n_resamples: int = 1000,
                seed: int = 0) -> tuple[float, float, float]:
    """Accuracy of A minus accuracy of B on the same rows, with its 95% percentile bootstrap interval (rows
    resampled, the pair kept together). (N,) bool arrays -> (difference, low, high)."""
    a, b = np.asarray(correct_a, float), np.asarray(correct_b, float)
    cost = float(a.mean() - b.mean())
    if len(a) < 2:
        return cost, cost, cost
    res = stats.bootstrap((a, b), lambda x, y, axis=-1: x.mean(axis) - y.mean(axis), paired=True,
                          vectorized=True, n_resamples=n_resamples, method="percentile",
                          random_state=np.random.default_rng(seed))
    return cost, float(res.confidence_interval.low), float(res.confidence_interval.high)


def compare(preds: dict, a: tuple[str, str], b: tuple[str, str], interval: bool = True) -> dict | None:
    """The one paired comparison every report makes: model-on-condition `a` against `b` ({(train, test): (rows,
    true, pred, proba)}), on the same rows or not at all (None where either is missing or the rows differ).
    Returns mcnemar_exact's fields ("a_only", "b_only", "p_value", "acc_a", "acc_b") and the difference of
    accuracies a - b ("diff") with its 95% paired bootstrap interval ("low", "high"; with interval=False the
    difference only), and "rows"."""
    pa, pb = preds.get(a), preds.get(b)
    if pa is None or pb is None or not np.array_equal(pa[0], pb[0]):
        return None
    ca, cb = pa[1] == pa[2], pb[1] == pb[2]
    out = mcnemar_exact(ca, cb)
    diff, low, high = paired_cost(ca, cb) if interval else (out["acc_a"] - out["acc_b"], None, None)
    return {**out, "diff": diff, "low": low, "high": high, "rows": int(len(pa[0]))}
