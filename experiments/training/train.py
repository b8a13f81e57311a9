"""Training one variant with the shared recipe: warm-up + cosine learning rate, checkpoint on validation
accuracy, optional early stopping, resumable after an interruption (BackupAndRestore).

The validation set is PublicTest; `train_model` refuses any PrivateTest row, so the final test set can
never reach `fit` or a callback.
"""
from __future__ import annotations

import csv
import math
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from datasets import N_CLASSES, USAGES, FERData
from datasets.atomic import atomic_path

from ..backend import keras, tf
from ..model.architectures import build_model
from ..model.inference import predict_proba
from ..model.views import with_views
from ..runfolder import HISTORY, atomic_json
from .config import TrainConfig, TransferConfig
from .data import class_weights, train_dataset
from .precisebn import PreciseBatchNorm, stats_sample
from .precision import cpu_model, resolve_precision

PRIVATE = USAGES.index("PrivateTest")


def learning_rate_schedule(cfg: TrainConfig, steps_per_epoch: int) -> keras.optimizers.schedules.CosineDecay:
    """Linear warm-up from 0 to the peak rate over `warmup_epochs`, then cosine decay to 0 at the last step."""
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = min(int(cfg.warmup_epochs * steps_per_epoch), total - 1)
    if warmup <= 0:
        return keras.optimizers.schedules.CosineDecay(cfg.learning_rate, total)
    return keras.optimizers.schedules.CosineDecay(0.0, total - warmup, warmup_target=cfg.learning_rate,
                                                  warmup_steps=warmup)


@keras.saving.register_keras_serializable(package="maskfer")
class DistillationLoss(keras.losses.Loss):
    """Knowledge distillation on probabilities. y_true (B, 14): the one-hot label, then the teacher's
    probabilities; y_pred (B, 7) the student's. Loss per row:
    (1 - alpha) * CE(smoothed label, p) + alpha * T**2 * KL(softmax(log q / T) || softmax(log p / T)),
    which equals Hinton et al.'s temperature-T distillation on the logits."""

    def __init__(self, alpha: float = 0.5, temperature: float = 4.0, label_smoothing: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha, self.temperature, self.label_smoothing = float(alpha), float(temperature), float(label_smoothing)

    def call(self, y_true, y_pred):
        ops, eps, t = keras.ops, 1e-7, 1.0 / self.temperature
        onehot, teacher = y_true[:, :N_CLASSES], y_true[:, N_CLASSES:]
        log_p = ops.log(ops.clip(y_pred, eps, 1.0))
        target = onehot * (1.0 - self.label_smoothing) + self.label_smoothing / N_CLASSES
        ce = -ops.sum(target * log_p, axis=-1)
        log_s = ops.log_softmax(log_p * t, axis=-1)
        log_q = ops.log_softmax(ops.log(ops.clip(teacher, eps, 1.0)) * t, axis=-1)
        kl = ops.sum(ops.exp(log_q) * (log_q - log_s), axis=-1)
        return (1.0 - self.alpha) * ce + self.alpha * self.temperature ** 2 * kl

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "temperature": self.temperature,
                "label_smoothing": self.label_smoothing}


def first_validated_epoch(cfg: TrainConfig) -> int:
    """The first epoch (0-based) scored on PublicTest: `validate_from` of the way through the schedule, and
    never after the last epoch."""
    return min(int(cfg.validate_from * cfg.epochs), cfg.epochs - 1)


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
        val = f"{logs['val_accuracy']:.4f}" if "val_accuracy" in logs else "not scored yet"
        print(f"      epoch {epoch + 1}/{self.epochs}: loss {logs.get('loss', float('nan')):.4f}, "
              f"accuracy {logs.get('accuracy', float('nan')):.4f}, val_accuracy {val}, "
              f"{time.perf_counter() - self.t:.0f} s", flush=True)


def check_no_private(*parts: FERData) -> None:
    """Raise if any PrivateTest row is about to be used for training or validation."""
    for part in parts:
        if (part.usage == PRIVATE).any():
            raise RuntimeError("PrivateTest rows must never reach training or validation")


def _strategy() -> tf.distribute.Strategy:
    gpus = tf.config.list_physical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


def _history_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def _best_so_far(history_csv: Path) -> float | None:
    vals = [float(r["val_accuracy"]) for r in _history_rows(history_csv) if r.get("val_accuracy")]
    return max(vals) if vals else None


class HistoryFile(keras.callbacks.Callback):
    """history.csv, rewritten atomically at each epoch's end: one line per epoch (epoch, then the logs' keys
    in sorted order); a resumed run's repeat of an epoch replaces that epoch's line."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        fields = ["epoch"] + sorted(logs)
        rows = [r for r in _history_rows(self.path) if int(r["epoch"]) != epoch]
        rows.append({"epoch": epoch, **logs})
        with atomic_path(self.path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            w.writeheader()
            w.writerows(sorted(rows, key=lambda r: int(r["epoch"])))


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the model to `path` (atomically) at each epoch whose val_accuracy beats `best`, the best so far
    (an interrupted earlier run's best, or None)."""

    def __init__(self, path: Path, best: float | None = None):
        super().__init__()
        self.path, self.best = Path(path), best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get("val_accuracy")
        if value is not None and (self.best is None or value > self.best):
            self.best = value
            with atomic_path(self.path) as tmp:
                self.model.save(tmp)


@keras.saving.register_keras_serializable(package="maskfer")
def label_accuracy(y_true, y_pred):
    """Top-1 accuracy against the one-hot label in y_true's first 7 columns (a teacher's may follow)."""
    return keras.ops.cast(keras.ops.argmax(y_true[:, :N_CLASSES], -1) == keras.ops.argmax(y_pred, -1), "float32")


def _optimizer(cfg: TrainConfig, rate) -> keras.optimizers.Optimizer:
    if cfg.optimizer == "sgd":
        opt = keras.optimizers.SGD(rate, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay or None)
    elif cfg.optimizer == "adam":
        opt = keras.optimizers.AdamW(rate, weight_decay=cfg.weight_decay)
    else:
        raise ValueError(f"unknown optimizer {cfg.optimizer!r}; expected sgd or adam")
    if cfg.weight_decay and not cfg.decay_norms:
        opt.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    return opt


def _in_float32(backbone: keras.Model, cfg: TrainConfig) -> keras.Model:
    """The same network built in float32 with the trained weights (a bfloat16-trained model is saved in float32)."""
    if all(layer.compute_dtype == "float32" for layer in backbone.layers):
        return backbone
    copy = build_model(cfg.model, "float32", width=cfg.width, dropout=cfg.dropout, side=cfg.crop)
    copy.set_weights(backbone.get_weights())
    return copy


def train_model(train: FERData, val: FERData, cfg: TrainConfig, out_dir: str | Path, verbose: int = 1, *,
                init: keras.Model | None = None, teacher: np.ndarray | None = None,
                transfer: TransferConfig | None = None, occlusion: float = 0.0,
                tops: np.ndarray | None = None) -> keras.Model:
    """Train on `train`, validate on `val`, write into `out_dir`; return the saved model: the best-validation
    backbone in float32, wrapped with the recipe's test-time views (`models.with_views`).

    init: a saved model (from `with_views`) whose backbone weights to start from; the schedule is then
    transfer.epochs at peak rate transfer.learning_rate. teacher: (len(train), 7) float32, a teacher's
    probabilities for each training row, distilled with transfer.alpha and transfer.temperature.
    occlusion, tops: random lower-face occluders on that share of the rows each epoch, placed by tops (len(train),)
    float32 (NaN: never; `data.train_dataset`).
    Files: best.keras (the best backbone by centre-crop validation accuracy), history.csv (per epoch: loss,
    accuracy, val_loss, val_accuracy, learning_rate), backup/ (deleted when training completes),
    train.json (summary). Rerunning with the same out_dir after an interruption resumes from the last
    finished epoch. verbose: 0 silent, 1 one line per epoch, 2 Keras's own per-epoch output.
    """
    check_no_private(train, val)
    transfer = transfer or TransferConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    precision = resolve_precision(cfg.precision)
    if init is not None:
        cfg = replace(cfg, epochs=transfer.epochs, learning_rate=transfer.learning_rate,
                      seed=cfg.seed if transfer.seed is None else transfer.seed)
    keras.utils.set_random_seed(cfg.seed)  # same initial weights for every variant
    weights = class_weights(train.labels) if cfg.class_weights else None
    ds_train = train_dataset(train.images, train.labels, cfg.batch_size, cfg.seed, cfg.augment, weights, cfg.crop,
                             teacher, occlusion, tops)
    val_x = stats_sample(val.images, cfg.crop, rows=len(val))
    steps = math.ceil(len(train) / cfg.batch_size)
    with _strategy().scope():
        model = build_model(cfg.model, precision, width=cfg.width, dropout=cfg.dropout, side=cfg.crop)
        if init is not None:
            model.set_weights(init.get_layer("backbone").get_weights())
        if teacher is not None:
            loss = DistillationLoss(transfer.alpha, transfer.temperature, cfg.label_smoothing)
        else:
            loss = keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
        model.compile(_optimizer(cfg, learning_rate_schedule(cfg, steps)), loss,
                      metrics=[keras.metrics.MeanMetricWrapper(label_accuracy, name="accuracy")],
                      jit_compile=cfg.jit_compile and precision == "float32")
    history = out / HISTORY
    callbacks = [
        PreciseBatchNorm(stats_sample(train.images, cfg.crop, seed=cfg.seed), val_x, val.labels,
                         first_epoch=first_validated_epoch(cfg)),
        LogLearningRate(),
        HistoryFile(history),
        BestCheckpoint(out / "best.keras", _best_so_far(history)),
        keras.callbacks.BackupAndRestore(str(out / "backup")),  # Keras's own working folder, removed below
    ]
    if verbose == 1:
        callbacks.append(EpochLine(cfg.epochs))
    if cfg.patience:
        callbacks.append(keras.callbacks.EarlyStopping("val_accuracy", patience=cfg.patience, mode="max"))
    model.fit(ds_train, epochs=cfg.epochs, callbacks=callbacks,
              verbose=2 if verbose == 2 else 0, shuffle=False)  # the dataset shuffles itself
    if not (out / "best.keras").exists():  # no epoch beat an earlier run's best: keep the final weights
        with atomic_path(out / "best.keras") as tmp:
            model.save(tmp)
    shutil.rmtree(out / "backup", ignore_errors=True)
    backbone = _in_float32(keras.models.load_model(out / "best.keras", compile=False), cfg)
    saved = with_views(backbone, cfg.views)
    val_views = float((predict_proba(saved, val.images).argmax(1) == val.labels).mean())
    atomic_json(out / "train.json", {
        "rows": len(train), "val_rows": len(val), "epochs": cfg.epochs, "seed": cfg.seed,
        "peak_learning_rate": cfg.learning_rate,
        "precision": precision, "cpu": cpu_model(), "best_val_accuracy_centre_crop": _best_so_far(history),
        "val_accuracy_saved_model": val_views, "views": cfg.views,
        "start": "clean model" if init is not None else "random weights",
        "distilled": None if teacher is None else {"alpha": transfer.alpha, "temperature": transfer.temperature},
        "occlusion": occlusion,
    })
    return saved
