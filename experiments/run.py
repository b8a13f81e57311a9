"""`python -m experiments.run clean masked [mixed]`: the main job.

1. load FER2013 (Training / PublicTest / PrivateTest), 2. make the masked variant of the same rows,
3. train one shared recipe per variant (validation on PublicTest), 4. evaluate every model on every
test condition of PrivateTest (clean, masked, one per mask type) plus the majority-class baseline, and
compute the occlusion maps, 5. write the run folder and report.html.

Rerunning into a run folder reuses each finished variant whose fingerprint (training recipe, training
masks, dataset, library versions) matches; any difference stops the run before work, naming the fields
(exit 2), unless --overwrite retrains those variants.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np

from datasets import EMOTIONS, N_CLASSES, USAGES, DatasetError, FERData, load_dataset
from datasets.atomic import atomic_path
from masking import COLORS, MASK_TYPES, STATUSES, TEXTURES, MaskConfig, find_landmarks, mask_dataset, mask_key

from . import conditions as C
from .config import (MODEL_NAMES, PRECISIONS, PROFILES, TRANSFER, TRANSFER_METHODS, VIEWS, RunConfig, TransferConfig,
                     profile_config)
from .evaluate import evaluate_models, majority_proba
from .quiet import quiet_tensorflow
from .testsets import load_test_set, parse_specs
from .machine import cpu_model, resolve_precision
from .transfer import method_of, teacher_targets, training_order
from .runfolder import (RunError, Timer, atomic_json, check_writable, fingerprint, fingerprint_diff, resolve_data,
                        versions)


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


def masking_summary(fer: FERData, masked) -> dict:
    """Counts per landmark status and emotion, mask type, colour and texture; median lower-face coverage."""
    status = {e: {s: int(((fer.labels == k) & (masked.status == j)).sum()) for j, s in enumerate(STATUSES)}
              for k, e in enumerate(EMOTIONS)}
    return {"rows": len(fer), "statuses": list(STATUSES), "status_per_emotion": status,
            "mask_types": {t: int((masked.mask_type == i).sum()) for i, t in enumerate(MASK_TYPES)},
            "colors": {c: int((masked.color == i).sum()) for i, c in enumerate(COLORS) if (masked.color == i).any()},
            "textures": {t: int((masked.texture == i).sum()) for i, t in enumerate(TEXTURES)
                         if (masked.texture == i).any()},
            "coverage_median": float(np.median(masked.coverage)) if len(fer) else 0.0}


# ------------------------------------------------------------------ stages

def load_stage(cfg: RunConfig, data_path: str) -> FERData:
    print(f"[1/5] loading {data_path}", flush=True)
    return _limit(load_dataset(data_path, cache_dir=cfg.cache_dir), cfg.limit_rows)


def _recorded(vdir: Path) -> dict | None:
    """The fingerprint a variant folder records (finished: done.json; interrupted: fingerprint.json)."""
    for name in ("done.json", "fingerprint.json"):
        if (vdir / name).is_file():
            try:
                return json.loads((vdir / name).read_text()).get("fingerprint")
            except ValueError:
                return {"unreadable": name}
    return None


def check_resume(cfg: RunConfig, out: Path, prints: dict[str, dict]) -> list[str]:
    """Variants to train. A finished variant with the same fingerprint is reused; one with another
    fingerprint (finished or interrupted) raises RunError naming the fields, unless cfg.overwrite (then it
    is retrained, its folder cleared only when its training starts). Nothing is written or deleted here."""
    todo = []
    for variant in cfg.variants:
        vdir = out / variant
        recorded = _recorded(vdir)
        stale = recorded is not None and recorded != prints[variant]
        if stale and not cfg.overwrite:
            fields = ", ".join(fingerprint_diff(recorded, prints[variant])) or "(unreadable record)"
            raise RunError(f"{vdir}: this folder's {variant} model was trained with other settings "
                           f"(differs in: {fields}); use another --out, or --overwrite to retrain it")
        if stale or not ((vdir / "done.json").is_file() and (vdir / "model.keras").is_file()):
            todo.append(variant)
    return todo


def mask_stage(cfg: RunConfig, fer: FERData, out: Path) -> tuple[dict, dict[str, np.ndarray], FERData]:
    """Masks every row with the training mask types, and PrivateTest once per test mask type (reusing the
    landmarks). Returns ({(pixels, usage): FERData}, {condition: PrivateTest images}, clean PrivateTest)."""
    workers = cfg.workers or None
    mcfg = MaskConfig(mask_types=cfg.train_mask_types, seed=cfg.mask_seed)
    print(f"[2/5] masking {len(fer)} rows (types: {', '.join(cfg.train_mask_types)})", flush=True)
    points, status = find_landmarks(fer, mcfg.landmarks, workers, cfg.cache_dir)
    masked_set = mask_dataset(fer, mcfg, workers, cfg.cache_dir, landmarks=(points, status))
    masked = masked_set.as_fer(fer, mask_key(fer, mcfg))
    atomic_json(out / "masking.json", masking_summary(fer, masked_set))
    split = {(v, u): d.split(u) for v, d in ((C.CLEAN, fer), (C.MASKED, masked)) for u in USAGES}
    private = fer.usage == USAGES.index("PrivateTest")
    test = split[(C.CLEAN, "PrivateTest")]
    images = {C.CLEAN: test.images, C.MASKED: split[(C.MASKED, "PrivateTest")].images}
    for mt in cfg.test_mask_types:
        one = mask_dataset(test, replace(mcfg, mask_types=(mt,)), workers, cfg.cache_dir,
                           landmarks=(points[private], status[private]))
        images[C.type_condition(mt)] = one.images
    _save_samples(out, test, images[C.MASKED])
    return split, images, test


def train_stage(cfg: RunConfig, split: dict, out: Path, todo: list[str], prints: dict, timer: Timer) -> dict:
    """Trains the variants in `todo` (clean first: the others may start from it and learn from its
    predictions, see `transfer`) and loads the finished ones; returns {variant: keras.Model}."""
    quiet_tensorflow(cfg.verbose)
    from .models import load_model
    from .train import predict_proba, train_model
    models = {}
    order = training_order(cfg.variants)
    for i, variant in enumerate(order):
        vdir = out / variant
        if variant not in todo:
            print(f"[3/5] {variant}: finished earlier with the same settings, loading {vdir / 'model.keras'}",
                  flush=True)
            models[variant] = load_model(vdir / "model.keras")
            continue
        with timer.stage(f"train_{variant}"):
            srcs = C.sources(variant)
            train = _concat(*(split[(s, "Training")] for s in srcs))
            val = _concat(*(split[(s, "PublicTest")] for s in srcs))
            method = method_of(cfg, variant)
            init = models[C.CLEAN] if method in ("clean_init", "distill") else None
            teacher = (teacher_targets(lambda x: predict_proba(init, x), split, variant)
                       if method == "distill" else None)
            epochs = cfg.transfer.epochs if init is not None else cfg.train.epochs
            print(f"[3/5] training {variant} ({i + 1}/{len(order)}): {len(train)} rows ({' + '.join(srcs)}), "
                  f"{epochs} epochs{_start_text(method)}, validation {len(val)} PublicTest rows", flush=True)
            recorded = _recorded(vdir)
            if recorded is not None and recorded != prints[variant]:  # --overwrite: start afresh
                shutil.rmtree(vdir)
            atomic_json(vdir / "fingerprint.json", {"fingerprint": prints[variant]})
            model = train_model(train, val, cfg.train, vdir, verbose=2 if cfg.verbose else 1, init=init,
                                teacher=teacher, transfer=cfg.transfer)
            with atomic_path(vdir / "model.keras") as tmp:
                model.save(tmp)
            (vdir / "best.keras").unlink(missing_ok=True)
        atomic_json(vdir / "done.json", {"seconds": timer.durations[f"train_{variant}"],
                                          "fingerprint": prints[variant]})
        models[variant] = model
    return {v: models[v] for v in cfg.variants}


def _start_text(method: str | None) -> str:
    return {None: "", "scratch": " from scratch", "clean_init": " from the clean model's weights",
            "distill": " from the clean model's weights, distilled from its predictions on the clean twins"}[method]


def scorers(models: dict, majority_class: int, outside_flip: bool = False) -> list:
    """[(name, images -> (N, 7) probabilities)]: the majority baseline, then every model as saved (it
    averages its own test-time views). outside_flip: also average with the mirror, for runs made before
    the views moved into the saved model."""
    from .train import predict_proba

    def majority(x):
        return majority_proba(np.array([majority_class]), len(x))
    return [(C.BASELINE, majority)] + [(v, lambda x, m=m: predict_proba(m, x, outside_flip))
                                       for v, m in models.items()]


def evaluate_stage(cfg: RunConfig, models: dict, images: dict, test: FERData, majority_class: int,
                   test_sets: list, out: Path) -> list[dict]:
    """Scores every model and the majority baseline on every FER2013 condition and every cross-dataset
    set's two conditions, writes the predictions files and the occlusion maps; returns the metrics entries."""
    from .occlusion import write_occlusion_maps
    from .testsets import conditions_of
    print(f"[4/5] evaluating {len(models)} model(s) on {len(images) + 2 * len(test_sets)} test conditions",
          flush=True)
    score_with = scorers(models, majority_class)
    results = evaluate_models(score_with, images, test.labels, test.rows, out / "predictions")
    mcfg = MaskConfig(mask_types=cfg.train_mask_types, seed=cfg.mask_seed)
    for ts in test_sets:
        conds = conditions_of(ts, mcfg, cfg.workers or None, cfg.cache_dir)
        results += evaluate_models(score_with, conds, ts.fer.labels, ts.fer.rows, out / "predictions", ts.emotions)
        save_set_samples(out, ts, conds)
    write_occlusion_maps(out, models)
    return results


def report_stage(out: Path) -> Path:
    from reports import build_report
    print("[5/5] writing report", flush=True)
    return build_report(out)


def run(cfg: RunConfig, command: str = "") -> Path:
    """Execute a run; returns the run folder. Bad input raises RunError or DatasetError before any work."""
    timer = Timer()
    out = Path(cfg.out)
    check_writable(out)
    data_path = resolve_data(cfg)
    with timer.stage("load"):
        fer = load_stage(cfg, data_path)
    prints = {v: fingerprint(cfg, v, fer.source_hash) for v in cfg.variants}
    todo = check_resume(cfg, out, prints)
    with timer.stage("test_sets"):  # bad test sets fail here, before any training
        test_sets = [load_test_set(name, path, cfg.workers or None, cfg.cache_dir) for name, path in cfg.test_data]
    config = {"command": command, "config": cfg.to_dict(), "data": data_path, "dataset_sha256": fer.source_hash,
              "versions": versions(), "cpu": cpu_model(), "precision": resolve_precision(cfg.train.precision),
              "transfer": {v: method_of(cfg, v) for v in cfg.variants if C.uses_masks(v)},
              "started": datetime.now().isoformat(timespec="seconds")}
    with timer.stage("masking"):
        split, images, test = mask_stage(cfg, fer, out)
    models = train_stage(cfg, split, out, todo, prints, timer)
    majority = int(np.bincount(split[(C.CLEAN, "Training")].labels, minlength=N_CLASSES).argmax())
    with timer.stage("evaluate"):
        results = evaluate_stage(cfg, models, images, test, majority, test_sets, out)
    metrics = {"wall_seconds": timer.total(), "durations": timer.durations, "results": results,
               "test_rows": len(test), "emotions": list(EMOTIONS), "conditions": list(images),
               "majority_class": EMOTIONS[majority], "test_sets": {ts.name: ts.summary() for ts in test_sets}}
    config.update(finished=datetime.now().isoformat(timespec="seconds"), durations=timer.durations,
                  models={v: json.loads((out / v / "done.json").read_text())["fingerprint"] for v in cfg.variants})
    atomic_json(out / "config.json", config)
    atomic_json(out / "metrics.json", metrics)
    if cfg.report:
        with timer.stage("report"):
            path = report_stage(out)
        metrics.update(wall_seconds=timer.total(), durations=timer.durations)
        atomic_json(out / "metrics.json", metrics)
        print(f"      {path}", flush=True)
    print(f"run folder: {out} ({timer.total() / 60:.1f} min)", flush=True)
    return out


def save_set_samples(out: Path, ts, conds: dict[str, np.ndarray], per_class: int = 4) -> None:
    """RUN/sets/<NAME>.npz: a few faces per emotion of a cross-dataset set, clean and masked (report grids)."""
    idx = np.concatenate([np.flatnonzero(ts.fer.labels == k)[:per_class] for k in range(N_CLASSES)])
    clean, masked = (conds[C.set_condition(ts.name, kind)][idx] for kind in (C.CLEAN, C.MASKED))
    with atomic_path(out / "sets" / f"{ts.name}.npz") as tmp:
        np.savez_compressed(tmp, labels=ts.fer.labels[idx], clean=clean, masked=masked)


def _save_samples(out: Path, test: FERData, masked_images: np.ndarray, per_class: int = 32) -> None:
    """A few PrivateTest faces per emotion (clean and masked) for the report's grids and occlusion maps."""
    idx = np.concatenate([np.flatnonzero(test.labels == k)[:per_class] for k in range(len(EMOTIONS))])
    with atomic_path(out / "samples.npz") as tmp:
        np.savez_compressed(tmp, rows=test.rows[idx], labels=test.labels[idx], clean=test.images[idx],
                            masked=masked_images[idx])


def parse_args(argv: list[str] | None) -> RunConfig:
    p = argparse.ArgumentParser(prog="python -m experiments.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("variants", nargs="+", choices=list(C.VARIANTS), help="variants to train")
    p.add_argument("--profile", default="default", choices=list(PROFILES))
    p.add_argument("--data", help="FER2013 .csv/.csv.gz or image folders (default: $FER2013_CSV; smoke: synthetic)")
    p.add_argument("--out", help="run folder (default runs/<timestamp>); rerunning into it resumes")
    p.add_argument("--overwrite", action="store_true", help="retrain variants whose settings changed")
    p.add_argument("--epochs", type=int)
    p.add_argument("--model", choices=MODEL_NAMES)
    p.add_argument("--width", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int, help="initial weights, shuffling and augmentation")
    p.add_argument("--class-weights", action="store_true", default=None, help="inverse-frequency class weights")
    p.add_argument("--crop", type=int, help="training crop side in pixels, random position (48 = no crop)")
    p.add_argument("--views", choices=VIEWS, help="test-time views averaged inside the saved model: the centre "
                   "crop and its mirror, centre and four corners, or those ten with mirrors")
    p.add_argument("--precision", choices=PRECISIONS,
                   help="auto: bfloat16 where /proc/cpuinfo shows amx_bf16 or avx512_bf16, else float32")
    p.add_argument("--masked-start", choices=TRANSFER_METHODS,
                   help="how masked and mixed models train when the run also trains clean: from scratch, from "
                        "the clean weights, or from them plus distillation from the clean model on each row's "
                        f"clean twin (default {TransferConfig.method})")
    p.add_argument("--finetune-epochs", type=int, help="epochs of a masked/mixed model that starts from the clean "
                   "weights (default: the profile's)")
    p.add_argument("--distill-weight", type=float, help=f"alpha, 0..1 (default {TransferConfig.alpha})")
    p.add_argument("--distill-temperature", type=float, help=f"default {TransferConfig.temperature}")
    p.add_argument("--train-mask-types", default=",".join(MASK_TYPES), help="comma-separated mask types for training")
    p.add_argument("--test-mask-types", default=",".join(MASK_TYPES), help="comma-separated: one test condition each")
    p.add_argument("--mask-seed", type=int, default=0)
    p.add_argument("--limit-rows", type=int, help="at most this many rows per split")
    p.add_argument("--workers", type=int, default=0, help="masking processes (default: one per core)")
    p.add_argument("--test-data", action="append", default=[], metavar="NAME=PATH",
                   help="another face dataset to test on, clean and masked (repeatable): a FER-format CSV or a "
                        "folder of <emotion>/ (or <split>/<emotion>/) image folders")
    p.add_argument("--cache-dir")
    p.add_argument("--no-report", action="store_true")
    p.add_argument("--verbose", action="store_true", help="TensorFlow's own log lines and per-epoch Keras output")
    a = p.parse_args(argv)
    for opt, val in (("--epochs", a.epochs), ("--width", a.width), ("--batch-size", a.batch_size),
                     ("--finetune-epochs", a.finetune_epochs)):
        if val is not None and val < 1:
            p.error(f"{opt} must be at least 1")
    for opt, val in (("--limit-rows", a.limit_rows), ("--workers", a.workers)):
        if val is not None and val < 0:
            p.error(f"{opt} must be 0 or more")
    types = {}
    for opt, val in (("--train-mask-types", a.train_mask_types), ("--test-mask-types", a.test_mask_types)):
        names = tuple(t.strip() for t in val.split(",") if t.strip())
        bad = [t for t in names if t not in MASK_TYPES]
        if bad or (opt == "--train-mask-types" and not names):
            p.error(f"{opt}: unknown mask type {bad[0] if bad else '(none)'}; expected {', '.join(MASK_TYPES)}")
        types[opt] = names
    try:
        test_data = parse_specs(a.test_data)
    except ValueError as e:
        p.error(str(e))
    if a.crop is not None and not 8 <= a.crop <= 48:
        p.error(f"--crop must be 8..48 pixels, got {a.crop}")
    if a.distill_weight is not None and not 0 <= a.distill_weight <= 1:
        p.error(f"--distill-weight must be 0..1, got {a.distill_weight}")
    if a.distill_temperature is not None and not a.distill_temperature > 0:
        p.error(f"--distill-temperature must be positive, got {a.distill_temperature}")
    train = profile_config(a.profile, epochs=a.epochs, model=a.model, width=a.width, batch_size=a.batch_size,
                           seed=a.seed, class_weights=a.class_weights, crop=a.crop, views=a.views,
                           precision=a.precision)
    transfer = replace(TRANSFER[a.profile], **{k: v for k, v in (
        ("method", a.masked_start), ("epochs", a.finetune_epochs), ("alpha", a.distill_weight),
        ("temperature", a.distill_temperature)) if v is not None})
    out = a.out or str(Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S"))
    return RunConfig(variants=tuple(dict.fromkeys(a.variants)), profile=a.profile, data=a.data, out=out, train=train,
                     train_mask_types=types["--train-mask-types"], test_mask_types=types["--test-mask-types"],
                     transfer=transfer, mask_seed=a.mask_seed, limit_rows=a.limit_rows, workers=a.workers, cache_dir=a.cache_dir,
                     report=not a.no_report, overwrite=a.overwrite, verbose=a.verbose, test_data=test_data)


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
