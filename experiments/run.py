"""`python -m experiments.run clean masked [mixed]`: the main job.

1. load FER2013 (Training / PublicTest / PrivateTest), 2. make the masked variant of the same rows,
3. train one shared recipe per variant (validation on PublicTest), 4. evaluate every model on every
test condition of PrivateTest (clean, masked, one per mask type) plus the majority-class baseline,
5. write the run folder and, when the report stage is installed, report.html.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from datetime import datetime
from importlib import metadata
from pathlib import Path

import numpy as np

from datasets import EMOTIONS, USAGES, DatasetError, FERData, default_cache_dir, load_dataset, make_synthetic
from datasets import write_fer_csv
from datasets.atomic import atomic_path
from masking import COLORS, MASK_TYPES, STATUSES, TEXTURES, MaskConfig, mask_dataset

from .config import MODEL_NAMES, PROFILES, SMOKE_ROWS, VARIANTS, RunConfig, profile_config


class RunError(ValueError):
    """Bad run input: reported on stderr with exit code 2."""


def _atomic_json(path: Path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2))


def _versions() -> dict:
    names = ["numpy", "tensorflow-cpu", "tensorflow", "keras", "dlib-bin", "opencv-python-headless", "scikit-learn",
             "scipy", "maskfer"]
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            pass
    return out


def _resolve_data(cfg: RunConfig) -> str:
    if cfg.data:
        if not Path(cfg.data).exists():
            raise RunError(f"--data {cfg.data}: no such file or folder")
        return cfg.data
    if cfg.profile == "smoke":  # synthetic faces, made here
        path = Path(cfg.cache_dir or default_cache_dir()) / "synthetic-700-seed0.csv"
        if not path.exists():
            write_fer_csv(path, *make_synthetic(700, 0))
        return str(path)
    env = os.environ.get("FER2013_CSV")
    if env and Path(env).is_file():
        return env
    raise RunError("no data: pass --data PATH to FER2013 (.csv, .csv.gz or image folders), or set FER2013_CSV")


def _limit(fer: FERData, n: int) -> FERData:
    if not n:
        return fer
    keep = np.zeros(len(fer), bool)
    for u in range(len(USAGES)):
        keep[np.flatnonzero(fer.usage == u)[:n]] = True
    return fer.take(keep)


def _concat(*parts: FERData) -> FERData:
    return FERData(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("images", "labels", "usage", "rows")),
                   parts[0].source_hash)


def _masking_summary(fer: FERData, masked) -> dict:
    status = {e: {s: int(((fer.labels == k) & (masked.status == j)).sum()) for j, s in enumerate(STATUSES)}
              for k, e in enumerate(EMOTIONS)}
    return {"rows": len(fer), "status_per_emotion": status,
            "mask_types": {t: int((masked.mask_type == i).sum()) for i, t in enumerate(MASK_TYPES)},
            "colors": {c: int((masked.color == i).sum()) for i, c in enumerate(COLORS) if (masked.color == i).any()},
            "textures": {t: int((masked.texture == i).sum()) for i, t in enumerate(TEXTURES)
                         if (masked.texture == i).any()},
            "coverage_median": float(np.median(masked.coverage)) if len(fer) else 0.0}


def run(cfg: RunConfig, command: str = "") -> Path:
    """Execute a run; returns the run folder."""
    from .evaluate import majority_proba, score, write_predictions
    from .train import predict_proba, train_model
    import keras

    t_start = time.perf_counter()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    durations: dict[str, float] = {}
    data_path = _resolve_data(cfg)

    t = time.perf_counter()
    print(f"[1/5] loading {data_path}", flush=True)
    fer = _limit(load_dataset(data_path, cache_dir=cfg.cache_dir), cfg.limit_rows)
    durations["load"] = time.perf_counter() - t
    config = {"command": command, "config": cfg.to_dict(), "data": data_path, "dataset_sha256": fer.source_hash,
              "versions": _versions(), "started": datetime.now().isoformat(timespec="seconds")}
    _atomic_json(out / "config.json", config)

    t = time.perf_counter()
    print(f"[2/5] masking {len(fer)} rows (types: {', '.join(cfg.train_mask_types)})", flush=True)
    mcfg = MaskConfig(mask_types=cfg.train_mask_types, seed=cfg.mask_seed)
    masked_set = mask_dataset(fer, mcfg, workers=cfg.workers or None, cache_dir=cfg.cache_dir)
    masked = masked_set.as_fer(fer)
    _atomic_json(out / "masking.json", _masking_summary(fer, masked_set))
    split = {(v, u): d.split(u) for v, d in (("clean", fer), ("masked", masked)) for u in USAGES}
    test = split[("clean", "PrivateTest")]
    conditions = {"clean": test.images, "masked": split[("masked", "PrivateTest")].images}
    for mt in cfg.test_mask_types:
        one = mask_dataset(test, replace(mcfg, mask_types=(mt,)), workers=cfg.workers or None, cache_dir=cfg.cache_dir)
        conditions[f"masked:{mt}"] = one.images
    durations["masking"] = time.perf_counter() - t
    _save_samples(out, test, conditions["masked"])

    models = {}
    for i, variant in enumerate(cfg.variants):
        vdir = out / variant
        t = time.perf_counter()
        if (vdir / "done.json").exists() and (vdir / "model.keras").exists():
            print(f"[3/5] {variant}: finished in an earlier run, loading {vdir / 'model.keras'}", flush=True)
            models[variant] = keras.models.load_model(vdir / "model.keras")
            continue
        sources = {"clean": ["clean"], "masked": ["masked"], "mixed": ["clean", "masked"]}[variant]
        train = _concat(*(split[(s, "Training")] for s in sources))
        val = _concat(*(split[(s, "PublicTest")] for s in sources))
        print(f"[3/5] training {variant} ({i + 1}/{len(cfg.variants)}): {len(train)} rows, "
              f"{cfg.train.epochs} epochs, validation {len(val)} PublicTest rows", flush=True)
        model = train_model(train, val, cfg.train, vdir)
        with atomic_path(vdir / "model.keras") as tmp:
            model.save(tmp)
        (vdir / "best.keras").unlink(missing_ok=True)
        _atomic_json(vdir / "done.json", {"seconds": time.perf_counter() - t})
        durations[f"train_{variant}"] = time.perf_counter() - t
        models[variant] = model

    t = time.perf_counter()
    print(f"[4/5] evaluating {len(models)} model(s) on {len(conditions)} test conditions", flush=True)
    pred_dir = out / "predictions"
    pred_dir.mkdir(exist_ok=True)
    results = []
    baseline = majority_proba(split[("clean", "Training")].labels, len(test))
    for name, proba_fn in [("majority", lambda x: baseline)] + [
            (v, lambda x, m=m: predict_proba(m, x, cfg.train.flip_tta)) for v, m in models.items()]:
        for cond, images in conditions.items():
            proba = proba_fn(images)
            write_predictions(pred_dir / f"{name}__{cond.replace(':', '-')}.csv", test.rows, test.labels, proba)
            res = {"train": name, "test": cond, **score(test.labels, proba.argmax(1))}
            results.append(res)
            print(f"      {name:>8} on {cond:<16} accuracy {res['accuracy']:.4f}  macro-F1 {res['macro_f1']:.4f}",
                  flush=True)
    durations["evaluate"] = time.perf_counter() - t
    durations["total_before_report"] = time.perf_counter() - t_start
    metrics = {"wall_seconds": time.perf_counter() - t_start, "durations": durations, "results": results,
               "test_rows": len(test), "emotions": list(EMOTIONS)}
    _atomic_json(out / "metrics.json", metrics)
    config["finished"] = datetime.now().isoformat(timespec="seconds")
    config["durations"] = durations
    _atomic_json(out / "config.json", config)

    if cfg.report:
        _report(out, t_start)
    print(f"run folder: {out}", flush=True)
    return out


def _save_samples(out: Path, test: FERData, masked_images: np.ndarray, per_class: int = 32) -> None:
    """A few PrivateTest faces per emotion (clean and masked) for the report's grids and saliency maps."""
    idx = np.concatenate([np.flatnonzero(test.labels == k)[:per_class] for k in range(len(EMOTIONS))])
    with atomic_path(out / "samples.npz") as tmp:
        np.savez_compressed(tmp, rows=test.rows[idx], labels=test.labels[idx], clean=test.images[idx],
                            masked=masked_images[idx])


def _report(out: Path, t_start: float) -> None:
    try:
        from reports import build_report
    except ImportError:
        print("[5/5] report stage not installed; skipped", flush=True)
        return
    t = time.perf_counter()
    print("[5/5] writing report", flush=True)
    path = build_report(out)
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["durations"]["report"] = time.perf_counter() - t
    metrics["wall_seconds"] = time.perf_counter() - t_start
    _atomic_json(out / "metrics.json", metrics)
    print(f"      {path}", flush=True)


def parse_args(argv: list[str] | None) -> RunConfig:
    p = argparse.ArgumentParser(prog="python -m experiments.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("variants", nargs="+", choices=VARIANTS, help="variants to train")
    p.add_argument("--profile", default="default", choices=list(PROFILES))
    p.add_argument("--data", help="FER2013 .csv/.csv.gz or image folders (default: $FER2013_CSV; smoke: synthetic)")
    p.add_argument("--out", help="run folder (default runs/<timestamp>); rerunning into it resumes")
    p.add_argument("--epochs", type=int)
    p.add_argument("--model", choices=MODEL_NAMES)
    p.add_argument("--width", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int, help="initial weights, shuffling and augmentation")
    p.add_argument("--class-weights", action="store_true", default=None, help="inverse-frequency class weights")
    p.add_argument("--train-mask-types", default=",".join(MASK_TYPES), help="comma-separated mask types for training")
    p.add_argument("--test-mask-types", default=",".join(MASK_TYPES), help="comma-separated: one test condition each")
    p.add_argument("--mask-seed", type=int, default=0)
    p.add_argument("--limit-rows", type=int, help="at most this many rows per split")
    p.add_argument("--workers", type=int, default=0, help="masking processes (default: one per core)")
    p.add_argument("--cache-dir")
    p.add_argument("--no-report", action="store_true")
    a = p.parse_args(argv)
    for opt, val in (("--epochs", a.epochs), ("--width", a.width), ("--batch-size", a.batch_size)):
        if val is not None and val < 1:
            p.error(f"{opt} must be at least 1")
    types = {}
    for opt, val in (("--train-mask-types", a.train_mask_types), ("--test-mask-types", a.test_mask_types)):
        names = tuple(t.strip() for t in val.split(",") if t.strip())
        bad = [t for t in names if t not in MASK_TYPES]
        if bad or (opt == "--train-mask-types" and not names):
            p.error(f"{opt}: unknown mask type {bad[0] if bad else '(none)'}; expected {', '.join(MASK_TYPES)}")
        types[opt] = names
    variants = tuple(dict.fromkeys(a.variants))
    train = profile_config(a.profile, epochs=a.epochs, model=a.model, width=a.width, batch_size=a.batch_size,
                           seed=a.seed, class_weights=a.class_weights)
    limit = a.limit_rows if a.limit_rows is not None else (SMOKE_ROWS if a.profile == "smoke" else 0)
    out = a.out or str(Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S"))
    return RunConfig(variants=variants, profile=a.profile, data=a.data, out=out, train=train,
                     train_mask_types=types["--train-mask-types"], test_mask_types=types["--test-mask-types"],
                     mask_seed=a.mask_seed, limit_rows=limit, workers=a.workers, cache_dir=a.cache_dir,
                     report=not a.no_report)


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    command = "python -m experiments.run " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        run(cfg, command)
    except (RunError, DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
