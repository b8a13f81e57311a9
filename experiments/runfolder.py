"""The run folder's files: names, formats, readers and writers. No TensorFlow here: `experiments.pipeline` writes
these files and `reports` reads them through this one module.

  RUN/config.json, RUN/metrics.json, RUN/masking.json      JSON (`atomic_json`, `read_json`)
  RUN/predictions/<model>__<condition>.csv                 row, true, pred, p_<emotion> x 7
  RUN/predictions/validation/<model>__<condition>.csv      the same, for the validation conditions (PublicTest)
  RUN/samples.npz                                          a few PrivateTest faces per emotion, clean and masked
  RUN/sets/<NAME>.npz                                      a few faces per emotion of a cross-dataset test set
  RUN/occlusion.npz                                        per-emotion occlusion maps and the mean faces
  RUN/<variant>/history.csv                                one line per epoch (`training.train.HistoryFile`)

Every file is written to a temporary name and renamed (`datasets.atomic.atomic_path`).
"""
from __future__ import annotations

import csv
import json
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from datasets import EMOTIONS, N_CLASSES, FERData
from datasets.atomic import atomic_path
from datasets.cli import InputError

PREDICTIONS = "predictions"
VALIDATION = "validation"
SAMPLES = "samples.npz"
OCCLUSION = "occlusion.npz"
HISTORY = "history.csv"


class RunError(InputError):
    """Bad run input: reported on stderr with exit code 2."""


class Timer:
    """Seconds per named stage (`with timer.stage("load"): ...`) and since creation."""

    def __init__(self):
        self.start = time.perf_counter()
        self.durations: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.durations[name] = time.perf_counter() - t

    def total(self) -> float:
        return time.perf_counter() - self.start


def check_writable(out: Path) -> None:
    """RunError unless `out` is (or can be made) a folder this process can write."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / ".write-check") as tmp:
            tmp.write_text("")
        (out / ".write-check").unlink()
    except OSError as e:
        raise RunError(f"--out {out}: cannot write there ({e.strerror or e})") from None


# ------------------------------------------------------------------ JSON

def atomic_json(path: Path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2))


def read_json(path: Path):
    """The file's JSON, or None when it does not exist."""
    return json.loads(Path(path).read_text()) if Path(path).exists() else None


# ------------------------------------------------------------------ predictions

def predictions_name(model: str, condition: str) -> str:
    """File name (inside RUN/predictions/) of `model`'s predictions on `condition`."""
    return f"{model}__{condition.replace(':', '-')}.csv"


def predictions_path(run: Path, model: str, condition: str) -> Path:
    return Path(run) / PREDICTIONS / predictions_name(model, condition)


def validation_dir(run: Path) -> Path:
    """RUN/predictions/validation/: the predictions of the validation conditions (PublicTest, --validation-data)."""
    return Path(run) / PREDICTIONS / VALIDATION


def validation_predictions_path(run: Path, model: str, condition: str) -> Path:
    return validation_dir(run) / predictions_name(model, condition)


def write_predictions(path: Path, rows: np.ndarray, y_true: np.ndarray, proba: np.ndarray) -> None:
    """CSV: row, true, pred, p_<emotion> x 7. rows, y_true (N,) int; proba (N, 7) float."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["row", "true", "pred"] + [f"p_{e}" for e in EMOTIONS])
        for r, t, p in zip(rows.tolist(), y_true.tolist(), proba):
            w.writerow([r, EMOTIONS[t], EMOTIONS[int(p.argmax())]] + [f"{v:.5f}" for v in p])


def read_predictions(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(rows (N,) int64, true (N,) int64, pred (N,) int64, proba (N, 7) float32) from a predictions CSV."""
    with open(path) as f:
        recs = list(csv.DictReader(f))
    rows = np.array([int(r["row"]) for r in recs], dtype=np.int64)
    true = np.array([EMOTIONS.index(r["true"]) for r in recs], dtype=np.int64)
    pred = np.array([EMOTIONS.index(r["pred"]) for r in recs], dtype=np.int64)
    proba = np.array([[float(r[f"p_{e}"]) for e in EMOTIONS] for r in recs], dtype=np.float32)
    return rows, true, pred, proba.reshape(-1, N_CLASSES)


# ------------------------------------------------------------------ sample faces and maps

def _first_per_class(labels: np.ndarray, per_class: int) -> np.ndarray:
    return np.concatenate([np.flatnonzero(labels == k)[:per_class] for k in range(N_CLASSES)])


def _load_npz(path: Path) -> dict[str, np.ndarray] | None:
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def save_samples(run: Path, test: FERData, masked_images: np.ndarray, per_fit: dict | None = None,
                 per_class: int = 32, held_out: np.ndarray | None = None) -> None:
    """RUN/samples.npz: the first `per_class` PrivateTest faces per emotion, clean and masked (report grids
    and occlusion maps). Keys rows, labels (M,), clean, masked (M, 48, 48) uint8, fit_<fit> for each of
    `per_fit` ({fit: all test images masked that way}) and held_out (the held-out family's masks), if given."""
    idx = _first_per_class(test.labels, per_class)
    fits = {f"fit_{k}": v[idx] for k, v in (per_fit or {}).items()}
    if held_out is not None:
        fits["held_out"] = held_out[idx]
    with atomic_path(Path(run) / SAMPLES) as tmp:
        np.savez_compressed(tmp, rows=test.rows[idx], labels=test.labels[idx], clean=test.images[idx],
                            masked=masked_images[idx], **fits)


def load_samples(run: Path) -> dict[str, np.ndarray] | None:
    return _load_npz(Path(run) / SAMPLES)


def set_samples_path(run: Path, name: str) -> Path:
    return Path(run) / "sets" / f"{name}.npz"


def save_set_samples(run: Path, name: str, labels: np.ndarray, clean: np.ndarray, masked: np.ndarray,
                     per_class: int = 4) -> None:
    """RUN/sets/<NAME>.npz: a few faces per emotion of a cross-dataset set, clean and masked (report grids)."""
    idx = _first_per_class(labels, per_class)
    with atomic_path(set_samples_path(run, name)) as tmp:
        np.savez_compressed(tmp, labels=labels[idx], clean=clean[idx], masked=masked[idx])


def load_set_samples(run: Path, name: str) -> dict[str, np.ndarray] | None:
    return _load_npz(set_samples_path(run, name))


def save_occlusion(run: Path, arrays: dict[str, np.ndarray]) -> None:
    """RUN/occlusion.npz: "<model>|<faces>" -> (7, 48, 48) maps, "mean|<model>|<faces>" -> (7, 48, 48) faces."""
    with atomic_path(Path(run) / OCCLUSION) as tmp:
        np.savez_compressed(tmp, **arrays)


def load_occlusion(run: Path) -> dict[str, np.ndarray] | None:
    return _load_npz(Path(run) / OCCLUSION)


def read_history(path: Path) -> dict[str, list[float]] | None:
    """history.csv's columns loss, accuracy, val_loss, val_accuracy, learning_rate, one value per epoch
    (NaN where an epoch has none: PublicTest is scored only from `TrainConfig.validate_from`); None if no file."""
    if not Path(path).exists():
        return None
    with open(path) as f:
        rows = list(csv.DictReader(f))
    keys = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")
    values = {k: [float(r[k]) if r.get(k) not in (None, "") else float("nan") for r in rows] for k in keys}
    return {k: v if any(x == x for x in v) else [] for k, v in values.items()}  # a column never filled: []
