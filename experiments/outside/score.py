"""Scoring outside models the way maskfer scores its own: the same rows, the same masks, every condition.

  `score_run`    `python -m experiments.score`: a run folder with no training, every outside model on every
                 PrivateTest condition and on each test set's two conditions, beside the majority baseline
  `add_models`   `python -m experiments.evaluate RUN_DIR --model CARD`: outside models added to a finished
                 run, on that run's own conditions and masks, so they sit in its matrix on the same rows

Both record each model's card, file and sha256 under "outside_models" in config.json, and warn (without
stopping) when a model's clean FER2013 accuracy is within `GUARD_POINTS` of the majority class: the usual
sign of a wrong card.
"""
from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from datasets import N_CLASSES, USAGES, FERData
from datasets.checks import ConfigError, check, check_choice
from masking import APPEARANCES, FAMILIES, FITS, GEOMETRIES, MASK_TYPES, MaskConfig

from .. import conditions as C
from ..config import check_test_data, held_out_config, mask_config, recorded_held_out_config, recorded_mask_config
from ..evaluation.scoring import evaluate_everywhere, scorers
from ..masks import drawn_geometries, mask_record, masking_summary, private_conditions, scored_mask_configs
from ..pipeline import fit_means, load_rows, load_sets, metrics_record
from ..provenance import versions
from ..runfolder import RunError, Timer, atomic_json, check_writable, read_json, read_predictions, save_samples
from ..training.precision import cpu_model
from .card import CardDefaults, ModelCard, read_card
from .model import OutsideModel, file_sha256

GUARD_POINTS = 0.05
PROBE_ROWS = 32


@dataclass(frozen=True)
class ScoreConfig:
    """cards: model cards or bare model files; defaults: card fields for bare files; data: FER2013 (or any
    set `experiments.run` reads); mask_types, mask_seed: the `masked` condition's masks; test_mask_types,
    test_mask_geometries: one more condition each; test_data: ((NAME, PATH), ...) other test sets."""

    cards: tuple[str, ...]
    data: str
    out: str
    defaults: CardDefaults = field(default_factory=CardDefaults)
    mask_types: tuple[str, ...] = MASK_TYPES
    mask_seed: int = 0
    test_mask_types: tuple[str, ...] = MASK_TYPES
    test_mask_geometries: tuple[str, ...] = ("rigid",)
    test_mask_fits: tuple[str, ...] = FITS
    mask_family: str = "template"
    mask_appearance: str = "random"
    test_mask_families: tuple[str, ...] = C.TEST_ONLY
    test_data: tuple[tuple[str, str], ...] = ()
    workers: int = 0
    cache_dir: str | None = None
    report: bool = True
    overwrite: bool = False

    def __post_init__(self):
        check(len(self.cards) > 0, "cards", "needs at least one model card or file")
        check(self.workers >= 0, "workers", f"must be 0 or more, got {self.workers}")
        for field_, values, allowed in (("mask_types", self.mask_types, MASK_TYPES),
                                        ("test_mask_types", self.test_mask_types, MASK_TYPES),
                                        ("test_mask_geometries", self.test_mask_geometries, GEOMETRIES),
                                        ("test_mask_fits", self.test_mask_fits, FITS)):
            for v in values:  # named by the option the user typed (`options.OPTIONS`), before any model loads
                check_choice(v, allowed, field_)
        check_choice(self.mask_family, FAMILIES, "mask_family")
        check_choice(self.mask_appearance, APPEARANCES, "mask_appearance")
        for f in self.test_mask_families:
            check_choice(f, FAMILIES, "test_mask_families")
        check_test_data(self.test_data)

    @property
    def mask_config(self) -> MaskConfig:
        """The `masked` condition's masks: those a default run trains on."""
        return mask_config(self.mask_types, self.mask_seed, family=self.mask_family, appearance=self.mask_appearance)

    @property
    def held_out_config(self) -> MaskConfig | None:
        """The masked:held-out conditions' masks: the other family."""
        return held_out_config(self.mask_config, self.test_mask_families)


def open_models(specs, defaults: CardDefaults = CardDefaults(), taken: tuple[str, ...] = ()) -> list[OutsideModel]:
    """Each card (or bare file) read, its model opened and checked against it. ConfigError names the field of
    a bad card; a name that repeats (or is one of `taken`, a run's own models) is refused."""
    models, names = [], set(taken)
    for spec in specs:
        card = read_card(spec, defaults)
        check(card.name not in names, "name", f"{card.name!r} is used twice (give the card a name = ...)")
        names.add(card.name)
        with as_options(card):
            model = OutsideModel(card)
        print(model.describe(), flush=True)
        models.append(model)
    return models


@contextmanager
def as_options(card: ModelCard):
    """A bare model file's fields come from the command line: a ConfigError about one is named by its option
    (`--output-name`, `--labels`) rather than the card field."""
    try:
        yield
    except ConfigError as e:
        if card.source or e.field.startswith("-"):
            raise
        raise ConfigError("--" + e.field.replace("_", "-"), e.problem) from None


def probe_models(models: list[OutsideModel], fer: FERData) -> None:
    """Each model run on PROBE_ROWS real faces (the first clean PrivateTest rows, or the first rows) and checked
    (`OutsideModel.probe`) before anything is masked or written; ConfigError names the card's field."""
    test = fer.split("PrivateTest")
    faces = (test if len(test) else fer).images[:PROBE_ROWS]
    for m in models:
        with as_options(m.card):
            m.probe(faces)


def recorded_models(config: dict) -> list[OutsideModel]:
    """The outside models a run folder's config.json records, reopened from their cards (so that sets added
    later score them too). A model whose file is gone or changed since (sha256) is left out with a line that
    says so: its recorded results stay, and everything that does not need its file goes on."""
    models = []
    for name, rec in config.get("outside_models", {}).items():
        path = Path(rec["file"])
        if not path.is_file():
            print(f"model {name}: {path} is not there any more; its recorded results stay, it is not scored on "
                  "anything new", flush=True)
            continue
        card = ModelCard(name=name, file=path, scale=rec["scale"], labels=tuple(rec["labels"]),
                         input=tuple(rec["input"]), channels=rec["channels"], layout=rec["layout"],
                         output=rec["output"], output_name=rec.get("output_name"), source=rec.get("source", ""))
        if file_sha256(path) != rec["sha256"]:
            print(f"model {name}: {path} changed since it was scored (sha256 differs); its recorded results stay, "
                  "it is not scored on anything new", flush=True)
            continue
        models.append(OutsideModel(card))
    return models


def outside_scorers(models: list[OutsideModel]) -> list:
    """[(name, images -> (N, 7) probabilities)] for `scoring.evaluate_models`."""
    return [(m.name, m.predict_proba) for m in models]


def guard(results: list[dict], names) -> list[str]:
    """A warning per outside model whose clean FER2013 accuracy is within GUARD_POINTS of the majority
    class's (printed; the run goes on)."""
    acc = {(r["train"], r["test"]): r["accuracy"] for r in results}
    base = acc.get((C.BASELINE, C.CLEAN))
    warnings = []
    for name in names:
        a = acc.get((name, C.CLEAN))
        if a is not None and base is not None and a - base < GUARD_POINTS:
            warnings.append(f"warning: {name} scores {100 * a:.1f}% on clean FER2013 rows, within "
                            f"{100 * GUARD_POINTS:.0f} points of the majority class ({100 * base:.1f}%): check its "
                            "card: the scale (0..255, 0..1, -1..1, imagenet, -128..127), the channel order (rgb, bgr) and the "
                            "label order are the usual causes")
    for w in warnings:
        print(w, flush=True)
    return warnings


def _majority(fer: FERData) -> int:
    train = fer.labels[fer.usage == USAGES.index("Training")]
    return int(np.bincount(train if len(train) else fer.labels, minlength=N_CLASSES).argmax())


def refuse_foreign_folder(out: Path) -> None:
    """RunError when `out` holds a folder `experiments.score` did not write (a training run, a study): scoring
    into it would replace its config.json and metrics.json. A score folder may be scored into again."""
    config = read_json(out / "config.json") if (out / "config.json").is_file() else None
    if config is not None and config.get("kind") != "score" or (out / "study.json").is_file():
        raise RunError(f"--out {out}: holds a run that experiments.score did not write (its config.json and "
                       "metrics.json would be replaced); give another --out, or add models to that run with "
                       f"python -m experiments.evaluate {out} --model CARD")


NOT_SETTINGS = ("cards", "defaults", "out", "workers", "cache_dir", "report", "overwrite")  # leave results as they are
SETTING_OPTIONS = {"mask_seed": "--mask-seed", "test_mask_geometries": "--test-mask-geometry",
                   "mask_types": "--train-mask-types", "mask_family": "--train-mask-family",
                   "mask_appearance": "--train-mask-appearance"}


def _settings(recorded: dict) -> dict:
    return {k: v for k, v in json.loads(json.dumps(recorded)).items() if k not in NOT_SETTINGS}


def earlier_results(out: Path, cfg: ScoreConfig, data_sha256: str, models: list[OutsideModel]) -> tuple[list[dict], bool]:
    """What an earlier `experiments.score` into `out` left that this one can keep: the majority baseline's and
    each model's results whose record (card, file, sha256) is unchanged, when the settings that make the rows
    and masks are the same and every condition's masks were drawn by today's renderers (`mask_keys`), and whether
    that is every result the folder holds (no model to drop). RunError names the settings that differ, unless
    cfg.overwrite (then nothing is kept). ([], False) for a new folder."""
    config = read_json(out / "config.json") if (out / "config.json").is_file() else None
    metrics = read_json(out / "metrics.json") if (out / "metrics.json").is_file() else None
    if not config or not metrics or cfg.overwrite:
        return [], False
    before, now = _settings(config.get("config", {})), _settings(asdict(cfg))
    changed = sorted(k for k in now if before.get(k) != now[k])
    if config.get("dataset_sha256") != data_sha256:
        changed.insert(0, "data")
    if changed:
        named = ", ".join(SETTING_OPTIONS.get(k, "--" + k.replace("_", "-")) for k in changed)
        raise RunError(f"--out {out}: scored earlier with other settings ({named}); give another --out, or "
                       "--overwrite to score it again")
    stale = stale_masks(metrics.get("mask_keys"), mask_keys(cfg))
    if stale:
        print(f"score: {stale}; scoring every model again (results drawn by two renderer versions are never "
              "paired)", flush=True)
        return [], False
    recorded = config.get("outside_models", {})
    same = {m.name for m in models if json.loads(json.dumps(m.record())) == recorded.get(m.name)}
    kept = [r for r in metrics["results"] if r["train"] in same | {C.BASELINE}]
    return kept, len(kept) == len(metrics["results"])


def mask_keys(cfg: ScoreConfig) -> dict[str, dict]:
    """`pipeline.mask_record` of every masked condition a score folder of `cfg` holds."""
    return mask_record(scored_mask_configs(cfg.mask_config, cfg.test_mask_types, cfg.test_mask_geometries,
                                           cfg.test_mask_fits, cfg.held_out_config, [n for n, _ in cfg.test_data]))


def stale_masks(recorded: dict | None, now: dict[str, dict]) -> str | None:
    """None when every condition of `now` was drawn as `recorded` says; else one line naming the first condition
    whose masks another version of the code drew (or a folder made before mask keys were recorded)."""
    if recorded is None:
        return "its masks were drawn before their renderer versions were recorded"
    for cond, key in now.items():
        if cond in recorded and recorded[cond] != key:
            fields = sorted(k for k in set(key) | set(recorded[cond]) if key.get(k) != recorded[cond].get(k))
            return f"the masks of {cond} were drawn by another version (differs in: {', '.join(fields)})"
    return None


def _work_folder(out: Path, keep: set[str]) -> Path:
    """A fresh folder beside `out` to build the new results in, holding the prediction files of the models kept
    (hard links where the disk allows, else copies): `out` itself is never touched until `_swap`."""
    work = out.with_name(f".{out.name}.scoring")
    shutil.rmtree(work, ignore_errors=True)
    (work / "predictions").mkdir(parents=True)
    for p in (out / "predictions").glob("*__*.csv") if out.is_dir() else ():
        if p.name.split("__")[0] in keep:
            try:
                os.link(p, work / "predictions" / p.name)
            except OSError:
                shutil.copy2(p, work / "predictions" / p.name)
    return work


def _swap(work: Path, out: Path) -> None:
    """Put the finished `work` folder in place of `out` (two renames; the old folder removed after)."""
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    work.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def score_run(cfg: ScoreConfig, command: str = "") -> tuple[Path, bool]:
    """`python -m experiments.score`: write a run folder of outside models (no training); returns (the folder,
    whether anything was written). Rescoring into its own folder keeps what is there (`earlier_results`) and
    scores only models that are new or changed; with nothing to score it writes nothing. The new folder is built
    beside `out` and swapped in whole, so a failure leaves `out` as it was."""
    timer, out = Timer(), Path(cfg.out)
    refuse_foreign_folder(out)
    with timer.stage("models"):  # a bad card stops the command before --out is made
        models = open_models(cfg.cards, cfg.defaults)
    with timer.stage("load"):
        print(f"loading {cfg.data}", flush=True)
        fer = load_rows(cfg.data, cfg.cache_dir, cfg.workers)
        probe_models(models, fer)  # a card the model contradicts stops here: nothing masked, no --out
        kept, whole = earlier_results(out, cfg, fer.source_hash, models)
        reused = {r["train"] for r in kept}
        todo = [m for m in models if m.name not in reused]
        if kept and whole and not todo:  # every model as it was, none to drop
            print(f"score: {out} is up to date ({', '.join(m.name for m in models)}); nothing written", flush=True)
            return out, False
        if reused - {C.BASELINE}:
            print(f"score: keeping the results of {', '.join(sorted(reused - {C.BASELINE}))}; scoring "
                  f"{', '.join(m.name for m in todo) or 'none'}", flush=True)
        check_writable(out.parent)
        work = _work_folder(out, reused)
        test_sets = load_sets(cfg.test_data, cfg.mask_config, cfg.workers, cfg.cache_dir)
    try:
        _score_into(work, cfg, command, timer, fer, models, kept, reused, todo, test_sets)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    _swap(work, out)
    return out, True


def _score_into(out: Path, cfg: ScoreConfig, command: str, timer: Timer, fer: FERData, models: list, kept: list,
                reused: set, todo: list, test_sets) -> None:
    test = fer.split("PrivateTest")
    if not len(test):
        raise RunError(f"--data {cfg.data}: no PrivateTest rows to score on")
    with timer.stage("masking"):
        images, masked = private_conditions(test, cfg.mask_config, cfg.test_mask_types, cfg.test_mask_geometries,
                                            cfg.workers, cfg.cache_dir, cfg.test_mask_fits, cfg.held_out_config)
        atomic_json(out / "masking.json", masking_summary(test, masked))
        save_samples(out, test, images[C.MASKED], {f: images[C.fit_condition(f)] for f in cfg.test_mask_fits},
                 held_out=images.get(C.HELD_OUT))
    majority = _majority(fer)
    with timer.stage("evaluate"):
        score_with = ([] if C.BASELINE in reused else scorers({}, majority)) + outside_scorers(todo)
        results = kept + evaluate_everywhere(score_with, images, test, test_sets, out)
    order = [C.BASELINE] + [m.name for m in models]
    results.sort(key=lambda r: order.index(r["train"]))  # stable: each model's conditions in their own order
    guard(results, [m.name for m in models])
    config = {"command": command, "kind": "score", "config": {**asdict(cfg), "variants": [],
                                                              "train_mask_types": list(cfg.mask_types),
                                                              "train_mask_family": cfg.mask_family,
                                                              "train_mask_appearance": cfg.mask_appearance},
              "data": cfg.data, "dataset_sha256": fer.source_hash, "versions": versions(), "cpu": cpu_model(),
              "outside_models": {m.name: m.record() for m in models},
              "finished": datetime.now().isoformat(timespec="seconds"), "durations": timer.durations}
    metrics = metrics_record(timer, results, test, images, majority, test_sets, cfg.mask_config, cfg.held_out_config,
                             (cfg.mask_config.geometry, drawn_geometries(cfg.mask_config, cfg.test_mask_geometries)),
                             (cfg.mask_config.fit, cfg.test_mask_fits), mask_keys=mask_keys(cfg))
    atomic_json(out / "config.json", config)
    atomic_json(out / "metrics.json", metrics)


def add_models(run_dir: Path, specs, defaults: CardDefaults = CardDefaults(), workers: int = 0,
               cache_dir: str | None = None) -> dict:
    """Score outside models on a finished run's own conditions and masks (its FER2013 test rows, its mask
    config and test mask types and geometries, its other test sets), replacing earlier entries of the same
    names; updates metrics.json and config.json. Returns the metrics."""
    config, metrics = read_json(run_dir / "config.json"), read_json(run_dir / "metrics.json")
    if not config or not metrics:
        raise RunError(f"{run_dir}: not a finished run folder (no config.json or metrics.json)")
    cfg = config.get("config", {})
    own = tuple(dict.fromkeys(r["train"] for r in metrics["results"] if r["train"] not in config.get("outside_models", {})))
    models = open_models(specs, defaults, own)
    data = config.get("data")
    if not data or not Path(data).exists():
        raise RunError(f"{run_dir}: its data {data!r} is not there; the outside models need the run's own rows")
    fer = load_rows(data, cache_dir or cfg.get("cache_dir"), workers, cfg.get("limit_rows") or 0)
    if fer.source_hash != config.get("dataset_sha256"):
        raise RunError(f"{data}: not the data this run was made from (sha256 differs)")
    probe_models(models, fer)
    test = fer.split("PrivateTest")
    mcfg = recorded_mask_config(cfg)
    now = mask_record(scored_mask_configs(
        mcfg, cfg.get("test_mask_types", MASK_TYPES), cfg.get("test_mask_geometries", []), cfg.get("test_mask_fits", []),
        recorded_held_out_config(cfg), list(metrics.get("test_sets", {}))))
    now = {c: k for c, k in now.items() if c in set(metrics.get("conditions", now)) or C.set_of(c)}
    stale = stale_masks(metrics.get("mask_keys"), now)
    if stale:
        raise RunError(f"{run_dir}: {stale}: new models would be scored on other pixels than its own; rerun it into "
                       "its folder first (python -m experiments.run with its settings and --out; its models are "
                       "reused, every condition is scored again)")
    images, _ = private_conditions(test, mcfg, cfg.get("test_mask_types", MASK_TYPES),
                                   cfg.get("test_mask_geometries", []), workers, cache_dir or cfg.get("cache_dir"),
                                   cfg.get("test_mask_fits", []), recorded_held_out_config(cfg))
    paired = read_predictions(run_dir / "predictions" / f"{C.BASELINE}__{C.CLEAN}.csv")[0]
    if not np.array_equal(paired, test.rows):
        raise RunError(f"{run_dir}: its PrivateTest rows differ from {data}'s: the models could not be paired")
    images = {k: v for k, v in images.items() if k in set(metrics.get("conditions", images))}
    sets = [(name, s["path"]) for name, s in metrics.get("test_sets", {}).items()]
    score_with = outside_scorers(models)
    names = {m.name for m in models}
    results = [r for r in metrics["results"] if r["train"] not in names]
    new = evaluate_everywhere(score_with, images, test, load_sets(sets, mcfg, workers, cache_dir or cfg.get("cache_dir")),
                              run_dir)
    guard([r for r in results if r["train"] == C.BASELINE] + new, names)
    metrics["results"] = results + new
    if "mask_fit" in metrics:
        metrics["mask_fit"]["mean"] = fit_means(metrics["results"], metrics["mask_fit"]["test"])
    config.setdefault("outside_models", {}).update({m.name: m.record() for m in models})
    atomic_json(run_dir / "metrics.json", metrics)
    atomic_json(run_dir / "config.json", config)
    return metrics
