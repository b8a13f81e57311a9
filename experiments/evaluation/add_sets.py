"""`python -m experiments.evaluate RUN_DIR [--test-data NAME=PATH ...] [--model CARD ...]`: score a finished
run's models on more test sets, and outside models on the run's own conditions, without retraining."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from datasets import EMOTIONS
from datasets.cli import build_or_exit, existing, exit_code, folder

from ..config import RunConfig, parse_test_data, recorded_mask_config
from ..model.inference import load_model
from ..options import OPTIONS, add_card_arguments, card_defaults
from ..outside.score import add_models, outside_scorers, recorded_models
from ..reporting import write_reports
from ..runfolder import RunError, atomic_json, read_json
from .scoring import evaluate_everywhere, scorers
from .testsets import conditions_of, load_test_set


def add_test_sets(run_dir: Path, specs, workers: int | None = None, cache_dir: str | None = None,
                  report: bool = True) -> dict:
    """Score a finished run's models on more test sets, without retraining: their entries in metrics.json
    (replacing earlier ones of the same names), predictions files, sample faces, and the report.
    specs: ((NAME, PATH), ...). Returns the updated metrics."""
    run_dir = Path(run_dir)
    try:
        config, metrics = read_json(run_dir / "config.json"), read_json(run_dir / "metrics.json")
    except (OSError, ValueError) as e:
        raise RunError(f"{run_dir}: not a finished run folder ({e})") from None
    if not config or not metrics:
        raise RunError(f"{run_dir}: not a finished run folder (no config.json or metrics.json)")
    cfg = config.get("config", {})
    models = {v: load_model(run_dir / v / "model.keras") for v in cfg.get("variants", [])
              if (run_dir / v / "model.keras").is_file()}
    outside = recorded_models(config)
    if not models and not outside:
        raise RunError(f"{run_dir}: no trained model in this run folder")
    majority = EMOTIONS.index(metrics.get("majority_class") or _majority_from(metrics))
    train = cfg.get("train", {})  # runs made before the saved model held its views averaged the mirror outside
    score_with = (scorers(models, majority, outside_flip="views" not in train and train.get("flip_tta", True))
                  + outside_scorers(outside))
    mcfg = recorded_mask_config(cfg)
    names = {n for n, _ in specs}
    results = [r for r in metrics["results"] if r["test"].partition(":")[0] not in names]
    metrics.setdefault("test_sets", {})
    for name, path in specs:
        ts = load_test_set(name, path, workers, cache_dir)
        print(f"test set {name}: {len(ts.fer)} images {ts.counts}; skipped folders {ts.skipped or 'none'}", flush=True)
        results += evaluate_everywhere(score_with, {}, None, [(ts, conditions_of(ts, mcfg, workers, cache_dir))], run_dir)
        metrics["test_sets"][name] = ts.summary()
    metrics["results"] = results
    atomic_json(run_dir / "metrics.json", metrics)
    if report:
        write_reports(run_dir)
    return metrics


def _majority_from(metrics: dict) -> str:
    """The majority baseline's class, from its confusion matrix (runs written before it was recorded)."""
    entry = next(r for r in metrics["results"] if r["train"] == "majority")
    return EMOTIONS[int(np.array(entry["confusion"]).sum(0).argmax())]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.evaluate", description=__doc__)
    p.add_argument("run_dir")
    p.add_argument("--test-data", action="append", default=[], metavar="NAME=PATH",
                   help="another face dataset to test on, clean and masked (repeatable), as `experiments.run`'s")
    p.add_argument("--model", action="append", default=[], metavar="CARD", type=existing,
                   help="an outside model (a model card .toml or a model file) scored on the run's own conditions "
                        "(repeatable)")
    p.add_argument("--workers", type=int, default=0, help="masking processes (default: one per core)")
    p.add_argument("--cache-dir", type=folder, help="parsed data, landmarks and masks (default: the user cache folder)")
    p.add_argument("--no-report", action="store_true", help="leave report.html as it is")
    add_card_arguments(p)
    a = p.parse_args(argv)
    if not a.test_data and not a.model:
        p.error("nothing to add: give --test-data NAME=PATH or --model CARD")
    defaults = build_or_exit(p, lambda: card_defaults(a), OPTIONS)
    # the same checks a run makes on its --test-data and --workers
    specs = build_or_exit(p, lambda: RunConfig(test_data=parse_test_data(a.test_data), workers=a.workers),
                          OPTIONS).test_data
    run_dir = Path(a.run_dir)

    def body():
        if not (run_dir / "metrics.json").is_file():
            raise RunError(f"{run_dir}: not a finished run folder (no metrics.json)")
        if specs:
            add_test_sets(run_dir, specs, a.workers or None, a.cache_dir, report=False)
        if a.model:
            add_models(run_dir, a.model, defaults, a.workers, a.cache_dir)
        if not a.no_report:
            write_reports(run_dir)
    return exit_code(body)
