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
import hashlib
import json
import shutil
import sys
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np

from datasets import EMOTIONS, N_CLASSES, USAGES, DatasetError, FERData, default_cache_dir, load_dataset
from datasets.engine import Engine
from datasets.prepared import is_prepared
from datasets.atomic import atomic_path
from datasets.cli import exit_code
from masking.prepare import prepare_photos
from masking import COLORS, MASK_TYPES, STATUSES, TEXTURES, MaskedSet, find_landmarks, mask_dataset, mask_key
from reports import build_report

from . import conditions as C
from .backend import pin_threads
from .config import PROFILES, TRANSFER, ConfigError, RunConfig, TransferConfig, parse_test_data, profile_config
from .evaluation.occlusion import write_occlusion_maps
from .evaluation.outline import probe_geometries
from .evaluation.scoring import evaluate_models, scorers
from .evaluation.testsets import conditions_of, load_test_set, save_set_conditions
from .model.inference import load_model, predict_proba
from .provenance import check_resume, fingerprint, recorded, resolve_data, versions
from .runfolder import RunError, Timer, atomic_json, check_writable, save_samples
from .training.config import MODEL_NAMES, PRECISIONS, TRANSFER_METHODS, VIEWS
from .training.precision import cpu_model, resolve_precision
from .training.train import train_model
from .training.transfer import method_of, teacher_targets, training_order


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

@dataclass(frozen=True, eq=False)
class Masks:
    """The masked twins a run uses: `masked`, every row with the training masks (MaskedSet, aligned with the
    rows); `per_type`, {mask type: (M, 48, 48) uint8 PrivateTest images, every row with that one type};
    `per_geometry`, {geometry: PrivateTest with the training mask types drawn in that geometry}; `points`
    (N, 68, 2) float32, every row's landmarks (the outline probe redraws the masks' shapes from them)."""

    masked: MaskedSet
    per_type: dict[str, np.ndarray]
    per_geometry: dict[str, np.ndarray]
    points: np.ndarray


@dataclass(frozen=True, eq=False)
class Prepared:
    """Everything a run reads before training, made once by `prepare` (a study ships it to each of its runs,
    which then need neither the data file nor the caches): the data path (for the record), the rows, the
    cross-dataset test sets with their two conditions each, and the masks."""

    data_path: str
    fer: FERData
    test_sets: tuple
    masks: Masks


def load_stage(cfg: RunConfig) -> tuple[str, FERData]:
    """The rows a run trains and tests on: a FER-format CSV, a prepared set, or a folder of photos, which is
    prepared first (into the cache, reused while the folder is unchanged)."""
    data_path = resolve_data(cfg)
    print(f"[1/5] loading {data_path}", flush=True)
    path = Path(data_path)
    if path.is_dir() and not is_prepared(path):
        target = Path(cfg.cache_dir or default_cache_dir()) / "prepared" / hashlib.sha256(
            str(path.resolve()).encode()).hexdigest()[:24]
        prepare_photos(path, target, engine=Engine("local", cfg.workers))
        path = target
    return data_path, _limit(load_dataset(path, cache_dir=cfg.cache_dir), cfg.limit_rows)


def load_test_sets(cfg: RunConfig) -> tuple:
    """((TestSet, {condition: images}), ...) for every --test-data set, masked with the training masks."""
    out = []
    for name, path in cfg.test_data:
        ts = load_test_set(name, path, cfg.workers or None, cfg.cache_dir)
        out.append((ts, conditions_of(ts, cfg.mask_config, cfg.workers or None, cfg.cache_dir)))
    return tuple(out)


def make_masks(cfg: RunConfig, fer: FERData) -> Masks:
    """Masks every row with the training mask types, and PrivateTest once per test mask type (reusing the
    landmarks); all of it cached."""
    workers = cfg.workers or None
    mcfg = cfg.mask_config
    print(f"[2/5] masking {len(fer)} rows (types: {', '.join(cfg.train_mask_types)})", flush=True)
    points, status = find_landmarks(fer, mcfg.landmarks, workers, cfg.cache_dir)
    masked_set = mask_dataset(fer, mcfg, workers, cfg.cache_dir, landmarks=(points, status))
    private = fer.usage == USAGES.index("PrivateTest")
    test = fer.take(private)
    private_marks = (points[private], status[private])
    per_type = {mt: mask_dataset(test, replace(mcfg, mask_types=(mt,)), workers, cfg.cache_dir,
                                 landmarks=private_marks).images for mt in cfg.test_mask_types}
    per_geometry = {g: mask_dataset(test, replace(mcfg, geometry=g), workers, cfg.cache_dir,
                                    landmarks=private_marks).images for g in cfg.test_mask_geometries}
    return Masks(masked_set, per_type, per_geometry, points)


def prepare(cfg: RunConfig) -> Prepared:
    """Load the data, its cross-dataset test sets and its masks, as a run of `cfg` would."""
    data_path, fer = load_stage(cfg)
    return Prepared(data_path, fer, load_test_sets(cfg), make_masks(cfg, fer))


def mask_stage(cfg: RunConfig, fer: FERData, masks: Masks, out: Path) -> tuple[dict, dict[str, np.ndarray], FERData]:
    """Writes masking.json and samples.npz. Returns ({(pixels, usage): FERData}, {condition: PrivateTest
    images}, clean PrivateTest)."""
    masked = masks.masked.as_fer(fer, mask_key(fer, cfg.mask_config))
    atomic_json(out / "masking.json", masking_summary(fer, masks.masked))
    split = {(v, u): d.split(u) for v, d in ((C.CLEAN, fer), (C.MASKED, masked)) for u in USAGES}
    test = split[(C.CLEAN, "PrivateTest")]
    images = {C.CLEAN: test.images, C.MASKED: split[(C.MASKED, "PrivateTest")].images}
    images.update({C.geometry_condition(g): masks.per_geometry[g] for g in cfg.test_mask_geometries})
    images.update({C.type_condition(mt): masks.per_type[mt] for mt in cfg.test_mask_types})
    save_samples(out, test, images[C.MASKED])
    return split, images, test


def train_stage(cfg: RunConfig, split: dict, out: Path, todo: list[str], prints: dict, timer: Timer) -> dict:
    """Trains the variants in `todo` (clean first: the others may start from it and learn from its
    predictions, see `transfer`) and loads the finished ones; returns {variant: keras.Model}."""
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
            before = recorded(vdir)
            if before is not None and before != prints[variant]:  # --overwrite: start afresh
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


def evaluate_stage(cfg: RunConfig, models: dict, images: dict, test: FERData, majority_class: int,
                   test_sets: list, out: Path) -> list[dict]:
    """Scores every model and the majority baseline on every FER2013 condition and every cross-dataset
    set's two conditions, writes the predictions files and the occlusion maps; returns the metrics entries."""
    print(f"[4/5] evaluating {len(models)} model(s) on {len(images) + 2 * len(test_sets)} test conditions",
          flush=True)
    score_with = scorers(models, majority_class)
    results = evaluate_models(score_with, images, test.labels, test.rows, out / "predictions")
    for ts, conds in test_sets:
        results += evaluate_models(score_with, conds, ts.fer.labels, ts.fer.rows, out / "predictions", ts.emotions)
        save_set_conditions(out, ts, conds)
    write_occlusion_maps(out, models)
    return results


def report_stage(out: Path) -> Path:
    print("[5/5] writing report", flush=True)
    return build_report(out)


def run(cfg: RunConfig, command: str = "", prepared: Prepared | None = None) -> Path:
    """Execute a run; returns the run folder. Bad input raises RunError or DatasetError before any work.
    prepared: `prepare(cfg)`'s result, made elsewhere (a study's driver); else the run makes it itself."""
    threads = pin_threads(cfg.threads)  # before any TensorFlow op
    timer = Timer()
    out = Path(cfg.out)
    check_writable(out)
    with timer.stage("load"):
        data_path, fer = (prepared.data_path, prepared.fer) if prepared else load_stage(cfg)
    prints = {v: fingerprint(cfg, v, fer.source_hash) for v in cfg.variants}
    todo = check_resume(cfg, out, prints)
    with timer.stage("test_sets"):  # bad test sets fail here, before any training
        test_sets = prepared.test_sets if prepared else load_test_sets(cfg)
    config = {"command": command, "config": cfg.to_dict(), "data": data_path, "dataset_sha256": fer.source_hash,
              "versions": versions(), "cpu": cpu_model(), "threads": threads, "precision": resolve_precision(cfg.train.precision),
              "transfer": {v: method_of(cfg, v) for v in cfg.variants if C.uses_masks(v)},
              "started": datetime.now().isoformat(timespec="seconds")}
    with timer.stage("masking"):
        masks = prepared.masks if prepared else make_masks(cfg, fer)
        split, images, test = mask_stage(cfg, fer, masks, out)
    models = train_stage(cfg, split, out, todo, prints, timer)
    majority = int(np.bincount(split[(C.CLEAN, "Training")].labels, minlength=N_CLASSES).argmax())
    with timer.stage("evaluate"):
        results = evaluate_stage(cfg, models, images, test, majority, test_sets, out)
    with timer.stage("outline_probe"):
        probe = probe_geometries(fer, masks.points, masks.masked.status, cfg.mask_config, C.GEOMETRIES,
                                 Engine("local", cfg.workers))
    metrics = {"wall_seconds": timer.total(), "durations": timer.durations, "results": results,
               "test_rows": len(test), "emotions": list(EMOTIONS), "conditions": list(images),
               "majority_class": EMOTIONS[majority], "test_sets": {ts.name: ts.summary() for ts, _ in test_sets}, "outline_probe": probe,
               "mask_geometry": {"train": cfg.train_mask_geometry, "test": list(cfg.test_mask_geometries)}}
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
    p.add_argument("--erasing", type=float, help="probability of erasing one random patch of each training crop "
                   "(Keras RandomErasing; default 0 = off)")
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
    p.add_argument("--train-mask-geometry", default="landmark", help="geometry of the training masks: landmark "
                   "(the mask follows the jaw; default) or rigid (placed by the eyes and nose bridge)")
    p.add_argument("--test-mask-geometry", default="rigid", help="comma-separated geometries: one more test "
                   "condition each, masked:<geometry> (default rigid)")
    p.add_argument("--mask-seed", type=int, default=0)
    p.add_argument("--limit-rows", type=int, help="at most this many rows per split")
    p.add_argument("--workers", type=int, default=0, help="masking processes (default: one per core)")
    p.add_argument("--threads", type=int, default=0, help="TensorFlow's intra- and inter-op threads, recorded in "
                   "config.json (default: one per core)")
    p.add_argument("--test-data", action="append", default=[], metavar="NAME=PATH",
                   help="another face dataset to test on, clean and masked (repeatable): a FER-format CSV or a "
                        "folder of <emotion>/ (or <split>/<emotion>/) image folders")
    p.add_argument("--cache-dir")
    p.add_argument("--no-report", action="store_true")
    p.add_argument("--verbose", action="store_true", help="Keras's own per-epoch output (TensorFlow's start-up lines: set TF_CPP_MIN_LOG_LEVEL=0)")
    a = p.parse_args(argv)
    try:
        return _config(a)
    except ConfigError as e:
        p.error(f"{OPTIONS.get(e.field, e.field)} {e.problem}")


# The option that sets each checked config field, for the CLI's messages (the configs check the values).
OPTIONS = {"epochs": "--epochs", "width": "--width", "batch_size": "--batch-size", "crop": "--crop",
           "erasing": "--erasing", "views": "--views", "precision": "--precision", "model": "--model",
           "transfer.method": "--masked-start", "transfer.epochs": "--finetune-epochs",
           "transfer.alpha": "--distill-weight", "transfer.temperature": "--distill-temperature",
           "train_mask_types": "--train-mask-types", "test_mask_types": "--test-mask-types",
           "train_mask_geometry": "--train-mask-geometry", "test_mask_geometries": "--test-mask-geometry",
           "limit_rows": "--limit-rows", "workers": "--workers", "threads": "--threads", "test_data": "--test-data"}


def _mask_types(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _config(a: argparse.Namespace) -> RunConfig:
    """The RunConfig the options ask for; ConfigError (from the config classes) names a bad value's field."""
    train = profile_config(a.profile, epochs=a.epochs, model=a.model, width=a.width, batch_size=a.batch_size,
                           seed=a.seed, class_weights=a.class_weights, crop=a.crop, views=a.views,
                           precision=a.precision)
    if a.erasing is not None:
        train = replace(train, augment=replace(train.augment, erasing=a.erasing))
    transfer = replace(TRANSFER[a.profile], **{k: v for k, v in (
        ("method", a.masked_start), ("epochs", a.finetune_epochs), ("alpha", a.distill_weight),
        ("temperature", a.distill_temperature)) if v is not None})
    out = a.out or str(Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S"))
    return RunConfig(variants=tuple(dict.fromkeys(a.variants)), profile=a.profile, data=a.data, out=out, train=train,
                     train_mask_types=_mask_types(a.train_mask_types), test_mask_types=_mask_types(a.test_mask_types),
                     train_mask_geometry=a.train_mask_geometry, test_mask_geometries=_mask_types(a.test_mask_geometry),
                     transfer=transfer, mask_seed=a.mask_seed, limit_rows=a.limit_rows, workers=a.workers, threads=a.threads,
                     cache_dir=a.cache_dir, report=not a.no_report, overwrite=a.overwrite, verbose=a.verbose,
                     test_data=parse_test_data(a.test_data))


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    command = "python -m experiments.run " + " ".join(sys.argv[1:] if argv is None else argv)
    return exit_code(lambda: run(cfg, command) and None, RunError, DatasetError)


if __name__ == "__main__":
    sys.exit(main())
