"""The run's stages, as a library (`python -m experiments.run` is its command line; a study calls `run` in
each of its workers):

1. `load_stage`: FER2013 (Training / PublicTest / PrivateTest), a prepared set or a folder of photos,
2. `make_masks` + `mask_stage`: the masked variant of the same rows,
3. `train_stage`: one shared recipe per variant (validation on PublicTest),
4. `evaluate_stage`: every model on every test condition of PrivateTest (clean, masked, one per mask type
   and geometry) and of each cross-dataset set, beside the majority-class baseline; the occlusion maps,
5. the run folder's config.json and metrics.json. The report is the next stage's (`python -m reports`).

Rerunning into a run folder reuses each finished variant whose fingerprint (training recipe, training
masks, dataset, library versions) matches; any difference stops the run before work, naming the fields
(RunError), unless cfg.overwrite retrains those variants.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from datasets import EMOTIONS, N_CLASSES, USAGES, FERData, default_cache_dir, load_dataset
from datasets.engine import Engine
from datasets.prepare import prepare_photos
from datasets.prepared import is_prepared
from datasets.atomic import atomic_path
from masking import MaskConfig, mask_dataset, mask_key

from . import conditions as C
from .backend import pin_threads
from .config import RunConfig
from .masks import Masks, drawn_geometries, make_masks, mask_record, masking_summary, run_mask_keys
from .evaluation.occlusion import write_occlusion_maps
from .evaluation.outline import probe_geometries
from .evaluation.scoring import evaluate_everywhere, evaluate_models, scorers
from .evaluation.testsets import conditions_of, load_test_set
from .model.inference import load_model, predict_proba
from .provenance import check_resume, fingerprint, recorded, resolve_data, versions
from .runfolder import Timer, atomic_json, check_writable, save_samples, validation_dir
from .training.precision import cpu_model, resolve_precision
from .training.occlusion import occluder_tops
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


def family_summary(train: MaskConfig, held_out: MaskConfig | None, results: list[dict]) -> dict:
    """The families a run trained and tested on, and per model the accuracy on `masked` and `masked:held-out`
    (the same rows, the same types, geometry and fit) and their difference: what holds for masks it never saw."""
    out = {"train": train.family, "appearance": train.appearance, "held_out": held_out.family if held_out else None,
           "gap": {}}
    acc = {(r["train"], r["test"]): r["accuracy"] for r in results}
    for name in dict.fromkeys(r["train"] for r in results):
        if (name, C.MASKED) in acc and (name, C.HELD_OUT) in acc:
            out["gap"][name] = {"masked": acc[(name, C.MASKED)], "held_out": acc[(name, C.HELD_OUT)],
                                "loss": acc[(name, C.MASKED)] - acc[(name, C.HELD_OUT)]}
    return out


# ------------------------------------------------------------------ stages

@dataclass(frozen=True, eq=False)
class Prepared:
    """Everything a run reads before training, made once by `prepare` (a study ships it to each of its runs,
    which then need neither the data file nor the caches): the data path (for the record), the rows, the
    cross-dataset test sets with their two conditions each, the masks, and the validation sets with theirs."""

    data_path: str
    fer: FERData
    test_sets: tuple
    masks: Masks
    validation_sets: tuple = ()


def load_rows(data_path: str, cache_dir: str | None = None, workers: int = 0, limit_rows: int = 0) -> FERData:
    """The rows of a FER-format CSV, a prepared set, or a folder of photos, which is prepared first (into the
    cache, reused while the folder is unchanged); at most `limit_rows` per split (0: all)."""
    path = Path(data_path)
    if path.is_dir() and not is_prepared(path):
        target = Path(cache_dir or default_cache_dir()) / "prepared" / hashlib.sha256(
            str(path.resolve()).encode()).hexdigest()[:24]
        prepare_photos(path, target, engine=Engine("local", workers))
        path = target
    return _limit(load_dataset(path, cache_dir=cache_dir), limit_rows)


def load_stage(cfg: RunConfig) -> tuple[str, FERData]:
    """The rows a run trains and tests on (`load_rows` of --data, or of the profile's default data)."""
    data_path = resolve_data(cfg)
    print(f"[1/5] loading {data_path}", flush=True)
    return data_path, load_rows(data_path, cfg.cache_dir, cfg.workers, cfg.limit_rows)


def load_sets(specs, mask_config: MaskConfig, workers: int = 0, cache_dir: str | None = None) -> tuple:
    """((TestSet, {condition: images}), ...) for every (NAME, PATH) test set, masked with `mask_config`."""
    out = []
    for name, path in specs:
        ts = load_test_set(name, path, workers or None, cache_dir)
        out.append((ts, conditions_of(ts, mask_config, workers or None, cache_dir)))
    return tuple(out)


def load_test_sets(cfg: RunConfig) -> tuple:
    """`load_sets` of every --test-data set, masked with the training masks."""
    return load_sets(cfg.test_data, cfg.mask_config, cfg.workers, cfg.cache_dir)


def load_validation_sets(cfg: RunConfig) -> tuple:
    """((TestSet, {condition: images}), ...) for every --validation-data set: NAME:clean and, per validation
    family, NAME:masked(<family>) (the training types, look, fit and seed drawn by that family)."""
    out = []
    for name, path in cfg.validation_data:
        ts = load_test_set(name, path, cfg.workers or None, cfg.cache_dir)
        conds = {C.set_condition(name, C.CLEAN): ts.fer.images}
        conds.update({C.validation_condition(f, name): mask_dataset(ts.fer, m, cfg.workers or None, cfg.cache_dir).images
                      for f, m in cfg.validation_configs.items()})
        out.append((ts, conds))
    return tuple(out)


def prepare(cfg: RunConfig) -> Prepared:
    """Load the data, its cross-dataset test sets and its masks, as a run of `cfg` would."""
    data_path, fer = load_stage(cfg)
    return Prepared(data_path, fer, load_test_sets(cfg), make_masks(cfg, fer), load_validation_sets(cfg))


def fit_means(results: list[dict], fits) -> dict:
    """{model: {"accuracy", "macro_f1"}}: each model's mean over the masked@<fit> conditions (all four: one
    robustness figure per model), from FER2013's results."""
    out = {}
    for name in dict.fromkeys(r["train"] for r in results):
        cells = [r for r in results if r["train"] == name and C.fit_of(r["test"]) in fits]
        if fits and len(cells) == len(fits):
            out[name] = {m: float(np.mean([r[m] for r in cells])) for m in ("accuracy", "macro_f1")}
    return out


def mask_stage(cfg: RunConfig, fer: FERData, masks: Masks, out: Path) -> tuple[dict, dict[str, np.ndarray], FERData]:
    """Writes masking.json and samples.npz. Returns ({(pixels, usage): FERData}, {condition: PrivateTest
    images}, clean PrivateTest)."""
    part = fer if len(masks.masked.rows) == len(fer) else fer.take(np.isin(fer.rows, masks.masked.rows))
    masked = masks.masked.as_fer(part, mask_key(part, cfg.mask_config))
    atomic_json(out / "masking.json", masking_summary(part, masks.masked))
    twins = [(C.CLEAN, fer), (C.MASKED, masked)]
    if masks.flat is not None:
        twins.append((C.FLAT, masks.flat.as_fer(part, mask_key(part, cfg.flat_config))))
    split = {(v, u): d.split(u) for v, d in twins for u in USAGES}
    test = split[(C.CLEAN, "PrivateTest")]
    images = {C.CLEAN: test.images, C.MASKED: split[(C.MASKED, "PrivateTest")].images, **masks.per_condition}
    save_samples(out, test, images[C.MASKED], {f: images[C.fit_condition(f)] for f in cfg.test_mask_fits},
                 held_out=images.get(C.HELD_OUT))
    return split, images, test


def occluder_heights(cfg: RunConfig, variant: str, fer: FERData, points: np.ndarray, status: np.ndarray,
                     usage: str) -> np.ndarray | None:
    """Where a variant's training rows get their lower-face occluders (`training.occlusion`), in the order
    `train_stage` concatenates them: (N, 2) float32, the masked rows' nose-bridge heights and eye-clearance
    ceilings (`occluder_tops`), NaN for clean rows (never occluded); None without occlusion (cfg.train_occlusion
    0, or a variant that sees no masks)."""
    if not (cfg.train_occlusion and C.MASKED in C.sources(variant)):  # flat masks get no occluders
        return None
    rows = fer.usage == USAGES.index(usage)
    heights = occluder_tops(points[rows], status[rows])
    return np.concatenate([heights if s == C.MASKED else np.full_like(heights, np.nan) for s in C.sources(variant)])


def train_stage(cfg: RunConfig, split: dict, out: Path, todo: list[str], prints: dict, timer: Timer,
                occluders=lambda variant: None) -> dict:
    """Trains the variants in `todo` (clean first: the others may start from it and learn from its
    predictions, see `transfer`) and loads the finished ones; returns {variant: keras.Model}. occluders(variant):
    `occluder_heights` of its training rows, or None."""
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
            tops = occluders(variant)
            model = train_model(train, val, cfg.train, vdir, verbose=2 if cfg.verbose else 1, init=init,
                                teacher=teacher, transfer=cfg.transfer, occlusion=cfg.train_occlusion if tops is not None
                                else 0.0, tops=tops)
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
    results = evaluate_everywhere(score_with, images, test, test_sets, out)
    write_occlusion_maps(out, models)
    return results


def validate_stage(cfg: RunConfig, models: dict, split: dict, masks: Masks, majority_class: int,
                   validation_sets: tuple, out: Path) -> list[dict]:
    """Scores every model and the majority baseline on the validation conditions: PublicTest clean, under the
    training masks and under each validation family, and each --validation-data set clean and under each
    validation family (predictions under RUN/predictions/validation/). These are what recipes are compared on;
    the test conditions (PrivateTest, the test family) are not. Returns the entries (as `evaluate_stage`'s)."""
    public = split[(C.CLEAN, "PublicTest")]
    images = {C.CLEAN: public.images, C.MASKED: split[(C.MASKED, "PublicTest")].images, **(masks.validation or {})}
    if (C.FLAT, "PublicTest") in split:  # the flat reference's own masks, for the share of it a model reaches
        images[C.flat_condition()] = split[(C.FLAT, "PublicTest")].images
    print(f"[4/5] validating {len(models)} model(s) on {len(images) + sum(len(c) for _, c in validation_sets)} "
          "PublicTest and validation-set conditions", flush=True)
    score_with = scorers(models, majority_class)
    pred = validation_dir(out)
    results = evaluate_models(score_with, images, public.labels, public.rows, pred)
    for ts, conds in validation_sets:
        results += evaluate_models(score_with, conds, ts.fer.labels, ts.fer.rows, pred, ts.emotions)
    return results


def metrics_record(timer: Timer, results: list[dict], test: FERData, images: dict, majority: int, test_sets: list,
                   mask_cfg, held_out_cfg, geometry: tuple, fit: tuple, **extra) -> dict:
    """metrics.json's fields, for a run and for a score folder alike: results, the test rows and conditions, the
    majority class, the test sets, and the mask geometry, family and fit records. geometry, fit: (the training
    one, the test ones)."""
    return {"wall_seconds": timer.total(), "durations": timer.durations, "results": results,
            "test_rows": len(test), "emotions": list(EMOTIONS), "conditions": list(images),
            "majority_class": EMOTIONS[majority], "test_sets": {ts.name: ts.summary() for ts, _ in test_sets},
            **extra, "mask_geometry": {"train": geometry[0], "test": list(geometry[1])},
            "mask_family": family_summary(mask_cfg, held_out_cfg, results),
            "mask_fit": {"train": fit[0], "test": list(fit[1]), "mean": fit_means(results, fit[1])}}


def run(cfg: RunConfig, command: str = "", prepared: Prepared | None = None) -> Path:
    """Execute a run up to its metrics (no report: `experiments.reporting.write_reports`); returns the run
    folder. Bad input raises RunError, DatasetError or ConfigError before any work. prepared: `prepare(cfg)`'s
    result, made elsewhere (a study's driver); else the run makes it itself."""
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
        validation_sets = prepared.validation_sets if prepared else load_validation_sets(cfg)
    config = {"command": command, "config": cfg.to_dict(), "data": data_path, "dataset_sha256": fer.source_hash,
              "versions": versions(), "cpu": cpu_model(), "threads": threads, "precision": resolve_precision(cfg.train.precision),
              "transfer": {v: method_of(cfg, v) for v in cfg.variants if C.uses_masks(v)},
              "started": datetime.now().isoformat(timespec="seconds")}
    with timer.stage("masking"):
        masks = prepared.masks if prepared else make_masks(cfg, fer)
        split, images, test = mask_stage(cfg, fer, masks, out)
    models = train_stage(cfg, split, out, todo, prints, timer,
                         lambda v: occluder_heights(cfg, v, fer, masks.points, masks.masked.status, "Training"))
    majority = int(np.bincount(split[(C.CLEAN, "Training")].labels, minlength=N_CLASSES).argmax())
    with timer.stage("validate"):
        validation = validate_stage(cfg, models, split, masks, majority, validation_sets, out)
    with timer.stage("evaluate"):
        results = evaluate_stage(cfg, models, images, test, majority, test_sets, out)
    with timer.stage("outline_probe"):  # it trains on Training rows' outlines: only where they were masked
        probe = (probe_geometries(fer, masks.points, masks.masked.status, cfg.mask_config, C.GEOMETRIES,
                                  Engine("local", cfg.workers)) if len(masks.points) == len(fer) else {})
        if not probe:
            print("      outline probe: left out (no variant trains on masks, so no Training row was masked)",
                  flush=True)
    metrics = metrics_record(timer, results, test, images, majority, test_sets, cfg.mask_config, cfg.held_out_config,
                             (cfg.train_mask_geometry, drawn_geometries(cfg.mask_config, cfg.test_mask_geometries)),
                             (cfg.train_mask_fit, cfg.test_mask_fits),
                             outline_probe=probe, validation=validation, roles=cfg.roles(),
                             mask_keys=run_mask_keys(cfg),
                             validation_mask_keys=mask_record({C.validation_condition(f): m for f, m in
                                                               cfg.validation_configs.items()}),
                             validation_sets={ts.name: ts.summary() for ts, _ in validation_sets})
    config.update(finished=datetime.now().isoformat(timespec="seconds"), durations=timer.durations,
                  models={v: json.loads((out / v / "done.json").read_text())["fingerprint"] for v in cfg.variants})
    atomic_json(out / "config.json", config)
    atomic_json(out / "metrics.json", metrics)
    return out
