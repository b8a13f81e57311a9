"""Scoring models on test conditions: every (name, probabilities function) on every condition's images of
the same rows, one predictions file per pair, one metrics entry per pair."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import conditions as C
from ..model.inference import predict_proba
from ..runfolder import predictions_name, write_predictions
from .metrics import majority_proba, score
from .testsets import save_set_conditions


def scorers(models: dict, majority_class: int, outside_flip: bool = False) -> list:
    """[(name, images -> (N, 7) probabilities)]: the majority baseline, then every model as saved (it
    averages its own test-time views). outside_flip: also average with the mirror, for runs made before
    the views moved into the saved model."""
    def majority(x):
        return majority_proba(majority_class, len(x))
    return [(C.BASELINE, majority)] + [(v, lambda x, m=m: predict_proba(m, x, outside_flip))
                                       for v, m in models.items()]


def evaluate_models(scorers: list, conditions: dict[str, np.ndarray], labels: np.ndarray, rows: np.ndarray,
                    pred_dir: Path, emotions: list[int] | None = None) -> list[dict]:
    """Score every (name, proba_fn) on every condition's images of the same rows; write one predictions
    file per pair; return the metrics entries ({"train", "test", ...metrics.score()}).

    conditions: {condition: (N, 48, 48) uint8}; labels, rows (N,); emotions: the labels macro scores
    average over (None: all seven)."""
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


def evaluate_everywhere(scorers: list, conditions: dict[str, np.ndarray], test, test_sets: list, run: Path) -> list[dict]:
    """Every model on every test set: the FER2013 PrivateTest conditions (`test`: its FERData) and each other
    test set's two conditions (`test_sets`: [(TestSet, conditions)], whose samples are saved), predictions under
    run/predictions. The one loop that runs, scores, adds models and adds sets share."""
    results = evaluate_models(scorers, conditions, test.labels, test.rows, run / "predictions") if conditions else []
    for ts, conds in test_sets:
        results += evaluate_models(scorers, conds, ts.fer.labels, ts.fer.rows, run / "predictions", ts.emotions)
        save_set_conditions(run, ts, conds)
    return results

