"""`python -m experiments.export MODEL --tflite [--quantize float16|int8|int16x8] [--out DIR] [--data PATH]`

Converts a `.keras` model to TensorFlow Lite and checks that TFLite and Keras agree on the top-1 label
for at least 99% of 500 rows (the first PrivateTest rows of --data, or synthetic faces without it).

  float32   always written
  float16   float16 weights, float compute
  int8      int8 weights and activations, calibrated on 1,000 random Training rows; float32 input and
            output, and float fallback for any operation without an int8 kernel (not integer-only)
  int16x8   int8 weights, int16 activations (same calibration and float32 ends); about the size of
            int8, and it keeps the top-1 label where int8's rounding flips low-margin rows

Calibration and check rows are drawn from the condition the model was trained on (`--condition auto`
reads it from the run folder: `RUN/masked/model.keras` gets masked rows, `mixed` both copies of each row,
as it was trained), masked with the run's mask types and seed. Exit code 1 when a file agrees on fewer than 99% of the rows.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from datasets import USAGES, FERData, load_dataset, make_synthetic
from datasets.atomic import atomic_path
from datasets.cli import InputError, at_least, existing, exit_code, folder
from masking import mask_dataset

from .. import conditions as C
from ..config import recorded_mask_config
from ..model.inference import load_model
from .tflite import QUANTIZE, TFLiteModel, convert

AGREEMENT_MIN = 0.99
CALIBRATION_ROWS = 1000
CONDITIONS = tuple(C.VARIANTS)  # a model is calibrated and checked on what its variant trained on


def run_condition(model_path: Path) -> tuple[str, dict]:
    """The training condition of a model in a run folder (`RUN/VARIANT/model.keras`) and that run's
    config; ("clean", {}) for a model outside a run folder."""
    config_path = model_path.parent.parent / "config.json"
    if model_path.parent.name in CONDITIONS and config_path.is_file():
        try:
            return model_path.parent.name, json.loads(config_path.read_text()).get("config", {})
        except ValueError as e:
            raise InputError(f"{config_path}: not a run's config.json ({e})") from None
    return "clean", {}


def _in_condition(part: FERData, condition: str, run_config: dict, cache_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(images (M, 48, 48) uint8, labels (M,)) of `part` as variant `condition` sees them: one copy per
    source (mixed: every row clean, then every row masked). Masks use the run's training types and seed."""
    out = []
    for source in C.sources(condition):
        if source == C.CLEAN:
            out.append(part.images)
        else:
            masks = recorded_mask_config(run_config)
            masks = replace(masks, family="template", appearance="flat") if source == C.FLAT else masks
            out.append(mask_dataset(part, masks, cache_dir=cache_dir).images)
    return np.concatenate(out), np.concatenate([part.labels] * len(out))


def check_rows(fer: FERData, condition: str, n_check: int, run_config: dict,
               cache_dir: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibration images (<= 1000 random Training rows, seed 0), check images (the first `n_check`
    PrivateTest rows) and their labels, in `condition` (a variant name: clean, masked or mixed)."""
    train, test = fer.split("Training"), fer.split("PrivateTest")
    for usage, part in (("Training", train), ("PrivateTest", test)):
        if len(part) == 0:
            raise InputError(f"the data has no {usage} rows; export needs them for calibration and the check")
    calib = train.take(np.sort(np.random.default_rng(0).choice(len(train), min(CALIBRATION_ROWS, len(train)),
                                                               replace=False)))
    check = test.take(np.arange(min(n_check, len(test))))
    check_images, check_labels = _in_condition(check, condition, run_config, cache_dir)
    return _in_condition(calib, condition, run_config, cache_dir)[0], check_images, check_labels


def _synthetic(rows: int) -> FERData:
    images, labels, _ = make_synthetic(rows, seed=1)
    usage = np.full(rows, USAGES.index("PrivateTest"), dtype=np.uint8)
    usage[:200] = USAGES.index("Training")
    return FERData(images, labels, usage, np.arange(rows, dtype=np.int64))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m experiments.export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a .keras model")
    ap.add_argument("--tflite", action="store_true", required=True, help="write a TensorFlow Lite file")
    ap.add_argument("--quantize", choices=QUANTIZE, action="append",
                    help="also write a quantized file (repeatable); float32 is always written")
    ap.add_argument("--out", type=folder, help="output folder (default: next to the model)")
    ap.add_argument("--data", type=existing, help="FER2013 for calibration (Training) and the check (PrivateTest)")
    ap.add_argument("--condition", choices=("auto",) + CONDITIONS, default="auto",
                    help="faces to calibrate and check on (default: the model's training condition)")
    ap.add_argument("--cache-dir", type=folder, help="dataset and masking cache (default: the user cache folder)")
    ap.add_argument("--check-rows", type=at_least(1), default=500)
    a = ap.parse_args(argv)
    return exit_code(lambda: export(a))


def export(a: argparse.Namespace) -> int:
    """The CLI's work: 0, or 1 when a file agrees with Keras on fewer than AGREEMENT_MIN of the check rows.
    Bad input (options, model, data) raises InputError, DatasetError or OSError naming it, before anything is written."""
    path = Path(a.model)
    if a.check_rows < 1:
        raise InputError(f"--check-rows must be at least 1, got {a.check_rows}")
    if not path.is_file():
        raise InputError(f"{path}: no such model file")
    try:
        model = load_model(path)
    except Exception as e:  # Keras raises many types for a bad file
        raise InputError(f"{path}: not a loadable .keras model ({e})") from None
    condition, run_config = run_condition(path)
    condition = condition if a.condition == "auto" else a.condition
    fer = load_dataset(a.data, cache_dir=a.cache_dir) if a.data else _synthetic(200 + max(a.check_rows, 21))
    calib, check, labels = check_rows(fer, condition, a.check_rows, run_config, a.cache_dir)
    out_dir = Path(a.out) if a.out else path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"calibration: {len(calib)} {condition} Training rows; check: {len(check)} {condition} PrivateTest rows")
    keras_proba = model.predict(check[..., None].astype(np.float32), verbose=0)
    print(f"Keras top-1 accuracy on the check rows: {100 * (keras_proba.argmax(1) == labels).mean():.1f}%")
    worst = 1.0
    for q in [None] + (a.quantize or []):
        flat = convert(model, q, calib)
        target = out_dir / f"{path.stem}{'' if q is None else '.' + q}.tflite"
        with atomic_path(target) as tmp:
            tmp.write_bytes(flat)
        top = TFLiteModel(flat).predict(check[..., None]).argmax(1)
        agree = float((top == keras_proba.argmax(1)).mean())
        worst = min(worst, agree)
        print(f"{target}: {len(flat) / 1024:.1f} KiB; accuracy {100 * (top == labels).mean():.1f}%; "
              f"top-1 agreement with Keras on {len(check)} rows: {100 * agree:.1f}%")
    if worst < AGREEMENT_MIN:
        print(f"warning: agreement below {100 * AGREEMENT_MIN:.0f}%", file=sys.stderr)
        return 1
    return 0
