"""Training one variant with the shared recipe: warm-up + cosine learning rate, checkpoint on validation
accuracy, optional early stopping, resumable after an interruption (BackupAndRestore).

The validation set is PublicTest; `train_model` refuses any PrivateTest row, so the final test set can
never reach `fit` or a callback.
"""
from __future__ import annotations

import csv
import json
import math
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from datasets import USAGES, FERData
from datasets.atomic import atomic_path

from .config import TrainConfig
from .data import class_weights, eval_dataset, train_dataset
from .models import build_model

PRIVATE = USAGES.index("PrivateTest")


def learning_rate_schedule(cfg: TrainConfig, steps_per_epoch: int) -> keras.optimizers.schedules.CosineDecay:
    """Linear warm-up from 0 to the peak rate over `warmup_epochs`, then cosine decay to 0 at the last step."""
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = min(int(cfg.warmup_epochs * steps_per_epoch), total - 1)
    if warmup <= 0:
        return keras.optimizers.schedules.CosineDecay(cfg.learning_rate, total)
    return keras.optimizers.schedules.CosineDecay(0.0, total - warmup, warmup_target=cfg.learning_rate,
                                                  warmup_steps=warmup)


class LogLearningRate(keras.callbacks.Callback):
    """Adds the rate in force at the end of each epoch to the logs (history.csv's `learning_rate`)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            opt = self.model.optimizer
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(opt.learning_rate))


class EpochLine(keras.callbacks.Callback):
    """One short line per epoch (the run's progress without Keras's own output)."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs, self.t = epochs, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        print(f"      epoch {epoch + 1}/{self.epochs}: loss {logs.get('loss', float('nan')):.4f}, "
              f"accuracy {logs.get('accuracy', float('nan')):.4f}, val_accuracy "
              f"{logs.get('val_accuracy', float('nan')):.4f}, {time.perf_counter() - self.t:.0f} s", flush=True)


def check_no_private(*parts: FERData) -> None:
    """Raise if any PrivateTest row is about to be used for training or validation."""
    for part in parts:
        if (part.usage == PRIVATE).any():
            raise RuntimeError("PrivateTest rows must never reach training or validation")


def _strategy() -> tf.distribute.Strategy:
    gpus = tf.config.list_physical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


def _best_so_far(history_csv: Path) -> float | None:
    if not history_csv.exists():
        return None
    with open(history_csv) as f:
        vals = [float(r["val_accuracy"]) for r in csv.DictReader(f) if r.get("val_accuracy")]
    return max(vals) if vals else None


def train_model(train: FERData, val: FERData, cfg: TrainConfig, out_dir: str | Path,
                verbose: int = 1) -> keras.Model:
    """Train on `train`, validate on `val`, write into `out_dir`; return the best-validation model.

    Files: best.keras (best validation accuracy), history.csv (per epoch: loss, accuracy, val_loss,
    val_accuracy, learning_rate), backup/ (deleted when training completes), train.json (summary).
    Rerunning with the same out_dir after an interruption resumes from the last finished epoch.
    verbose: 0 silent, 1 one line per epoch, 2 Keras's own per-epoch output.
    """
    check_no_private(train, val)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg.seed)  # same initial weights for every variant
    weights = class_weights(train.labels) if cfg.class_weights else None
    ds_train = train_dataset(train.images, train.labels, cfg.batch_size, cfg.seed, cfg.augment, weights)
    ds_val = eval_dataset(val.images, val.labels, max(cfg.batch_size, 256))
    steps = math.ceil(len(train) / cfg.batch_size)
    with _strategy().scope():
        model = build_model(cfg.model, width=cfg.width, dropout=cfg.dropout)
        rate = learning_rate_schedule(cfg, steps)
        if cfg.optimizer == "sgd":
            opt = keras.optimizers.SGD(rate, momentum=cfg.momentum, nesterov=True,
                                       weight_decay=cfg.weight_decay or None)
        elif cfg.optimizer == "adam":
            opt = keras.optimizers.AdamW(rate, weight_decay=cfg.weight_decay)
        else:
            raise ValueError(f"unknown optimizer {cfg.optimizer!r}; expected sgd or adam")
        model.compile(opt, keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
                      metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")], jit_compile=cfg.jit_compile)
    history = out / "history.csv"
    best = keras.callbacks.ModelCheckpoint(out / "best.keras", monitor="val_accuracy", mode="max",
                                           save_best_only=True, initial_value_threshold=_best_so_far(history))
    callbacks = [
        LogLearningRate(),
        keras.callbacks.CSVLogger(str(history), append=True),
        best,
        keras.callbacks.BackupAndRestore(str(out / "backup")),
    ]
    if verbose == 1:
        callbacks.append(EpochLine(cfg.epochs))
    if cfg.patience:
        callbacks.append(keras.callbacks.EarlyStopping("val_accuracy", patience=cfg.patience, mode="max"))
    model.fit(ds_train, validation_data=ds_val, epochs=cfg.epochs, callbacks=callbacks,
              verbose=2 if verbose == 2 else 0, shuffle=False)  # the dataset shuffles itself
    _dedupe_history(history)
    if not (out / "best.keras").exists():  # no epoch beat an earlier run's best: keep the final weights
        model.save(out / "best.keras")
    shutil.rmtree(out / "backup", ignore_errors=True)
    best_model = keras.models.load_model(out / "best.keras")
    (out / "train.json").write_text(json.dumps({"rows": len(train), "val_rows": len(val),
                                                "best_val_accuracy": _best_so_far(history)}, indent=2))
    return best_model


def _dedupe_history(path: Path) -> None:
    """Keep the last line per epoch (a resumed run may log an epoch twice)."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    by_epoch = {int(r["epoch"]): r for r in rows}
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(by_epoch[e] for e in sorted(by_epoch))


def predict_proba(model: keras.Model, images: np.ndarray, flip_tta: bool = True,
                  batch_size: int = 512) -> np.ndarray:
    """(N, 7) float32 probabilities for (N, 48, 48) uint8 images; with flip_tta, averaged with the mirror."""
    x = images[..., None].astype(np.float32)
    p = model.predict(x, batch_size=batch_size, verbose=0)
    if flip_tta:
        p = (p + model.predict(x[:, :, ::-1], batch_size=batch_size, verbose=0)) / 2
    return p.astype(np.float32)
