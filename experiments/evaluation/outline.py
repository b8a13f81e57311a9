"""What the mask's shape gives away: a probe that reads the emotion from the mask's outline alone.

A landmark mask follows the jaw, so a mouth opened in surprise or laughter makes the mask longer. If a
classifier can tell the emotion from the mask's shape alone, a masked model may be reading the outline rather
than the eyes and brows, and its accuracy would not carry over to real (especially rigid) masks. The probe:
each row's mask alpha, drawn from its landmarks exactly as the masked set draws it (type, seed, eye clearance),
downsampled to `side` x `side` and binarised, nothing else; scikit-learn's logistic regression fitted on the
Training rows and scored on PrivateTest, beside the majority class. Done for each geometry.
"""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import recall_score

from datasets import EMOTIONS, N_CLASSES, SIDE, USAGES, FERData
from datasets.engine import Engine, map_chunks
from masking import MaskConfig, mask_alpha
from masking.photo import photo_layers
from masking.pipeline import eye_clearance
from masking.surface import surface_layers

PROBE_SIDE = 12


def outline_alpha(points: np.ndarray, status: int, row: int, config: MaskConfig) -> np.ndarray:
    """(48, 48) float32 0..1: the alpha of the mask `config` draws on this row, by the family that draws it (the
    template outline, the surface sheet or the photo polygon: the probe reads the outline of the family it
    reports), with the row's eye clearance."""
    spec = config.spec_for(row)
    clearance = eye_clearance(status, SIDE, config.fit)
    family = config.family_of(row)
    if family == "surface":
        return surface_layers(points, spec.mask_type, config.surface_rng(row), SIDE, SIDE, False, *clearance,
                              fit=config.fit)[0]
    if family == "photo":
        return photo_layers(points, spec.mask_type, config.photo_rng(row), SIDE, SIDE, False, *clearance,
                            fit=config.fit)[0]
    return mask_alpha(points, spec, SIDE, SIDE, *clearance, geometry=config.geometry, fit=config.fit)


def _outline_chunk(task) -> np.ndarray:
    points, status, rows, config, side = task
    out = np.empty((len(rows), side * side), np.uint8)
    for i in range(len(rows)):
        alpha = outline_alpha(points[i], status[i], rows[i], config)
        out[i] = (cv2.resize(alpha, (side, side), interpolation=cv2.INTER_AREA) > 0.5).reshape(-1)
    return out


def outline_features(points: np.ndarray, status: np.ndarray, rows: np.ndarray, config: MaskConfig,
                     side: int = PROBE_SIDE, engine: Engine | None = None) -> np.ndarray:
    """(N, side * side) uint8 in {0, 1}: each row's mask outline (alpha > 0.5, downsampled).
    points (N, 68, 2) landmarks in 48x48 pixels, status (N,) into masking.STATUSES, rows (N,) row ids."""
    tasks = [(points[i:i + 1024], status[i:i + 1024], rows[i:i + 1024], config, side)
             for i in range(0, len(rows), 1024)]
    parts = map_chunks(_outline_chunk, tasks, len, engine, "outlines", total=len(rows))
    return np.concatenate(parts) if parts else np.empty((0, side * side), np.uint8)


def outline_probe(fer: FERData, features: np.ndarray, seed: int = 0) -> dict:
    """Fit on the Training rows' outlines, score on PrivateTest's: {"accuracy", "majority_accuracy",
    "recall": {emotion: recall}, "train_rows", "test_rows", "features"}."""
    train = fer.usage == USAGES.index("Training")
    test = fer.usage == USAGES.index("PrivateTest")
    # Newton's method with the exact Hessian (multinomial since scikit-learn 1.6): 5 iterations to the optimum
    # where lbfgs stopped at a looser one after 440 on FER2013's outlines, in a third of the time (BENCHMARKS 11f).
    clf = LogisticRegression(solver="newton-cholesky", max_iter=100, random_state=seed).fit(
        features[train], fer.labels[train])
    pred = clf.predict(features[test])
    majority = int(np.bincount(fer.labels[train], minlength=N_CLASSES).argmax())
    recall = recall_score(fer.labels[test], pred, labels=list(range(N_CLASSES)), average=None, zero_division=0)
    return {"accuracy": float((pred == fer.labels[test]).mean()),
            "majority_accuracy": float((fer.labels[test] == majority).mean()),
            "recall": {e: float(r) for e, r in zip(EMOTIONS, recall)},
            "train_rows": int(train.sum()), "test_rows": int(test.sum()), "features": int(features.shape[1])}


def probe_geometries(fer: FERData, points: np.ndarray, status: np.ndarray, config: MaskConfig, geometries,
                     engine: Engine | None = None) -> dict:
    """{geometry: outline_probe(...)} for the run's training masks drawn in each geometry its family draws (the
    surface and photo families, and "both", follow the landmarks only)."""
    out = {}
    for g in (geometries if config.family == "template" else ("landmark",)):
        cfg = replace(config, geometry=g)
        out[g] = outline_probe(fer, outline_features(points, status, fer.rows, cfg, engine=engine))
        print(f"      outline probe, {g} masks: accuracy {out[g]['accuracy']:.4f} "
              f"(majority {out[g]['majority_accuracy']:.4f})", flush=True)
    return out
