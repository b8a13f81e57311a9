"""Run configuration: `RunConfig` (frozen, checks its own values) and the three profiles (smoke, default, full).

The recipe's own configs (`TrainConfig`, `AugmentConfig`, `TransferConfig`) live in `training.config`.
Every value is checked here, in the classes; the CLI only reports a `ConfigError` under the option's name.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from masking import APPEARANCES, BOTH, FAMILIES, FITS, GEOMETRIES, MASK_TYPES, MaskConfig

from . import conditions as C
from .training.config import AugmentConfig, ConfigError, TrainConfig, TransferConfig, check, check_choice

__all__ = ["AugmentConfig", "ConfigError", "TrainConfig", "TransferConfig", "RunConfig", "PROFILES", "TRANSFER",
           "SMOKE_ROWS", "profile_config", "mask_config", "recorded_mask_config", "held_out_config",
           "recorded_held_out_config", "validation_configs", "parse_test_data"]


def mask_config(train_mask_types, mask_seed: int, geometry: str = "landmark", fit: str = "nose",
                family: str = "template", appearance: str = "fixed") -> MaskConfig:
    """The masks a run trains on (and masks its cross-dataset test sets with): its training mask types, its
    seed, its geometry, how they are worn, their family and appearance."""
    return MaskConfig(mask_types=tuple(train_mask_types), seed=int(mask_seed), geometry=geometry, fit=fit,
                      family=family, appearance=appearance)


def recorded_mask_config(run_config: dict) -> MaskConfig:
    """`mask_config` of a finished run, from the "config" object of its config.json (a run made before the
    families existed trained on the template family's fixed appearance)."""
    return mask_config(run_config.get("train_mask_types", MASK_TYPES), run_config.get("mask_seed", 0),
                       run_config.get("train_mask_geometry", "landmark"), run_config.get("train_mask_fit", "nose"),
                       run_config.get("train_mask_family", "template"),
                       run_config.get("train_mask_appearance", "fixed"))


def held_out_config(train: MaskConfig, test_families) -> MaskConfig | None:
    """The masks of a run's held-out conditions: the training masks drawn by the first of `test_families` that
    is not the training family (None where there is none), in the landmark geometry (the only one the surface
    and photo families draw)."""
    family = C.held_out_family(train.family, test_families)
    return replace(train, family=family, geometry="landmark") if family else None


def validation_configs(train: MaskConfig, families) -> dict[str, MaskConfig]:
    """{family: the training masks drawn by that family} for each validation family the training does not draw
    (the training family's own masks are the `masked` validation condition), in the landmark geometry."""
    trained = C.MIXABLE if train.family == BOTH else (train.family,)
    return {f: replace(train, family=f, geometry="landmark") for f in families if f not in trained}


def recorded_held_out_config(run_config: dict) -> MaskConfig | None:
    """`held_out_config` of a finished run (none for a run made before the families existed)."""
    return held_out_config(recorded_mask_config(run_config), run_config.get("test_mask_families", ()))


def parse_test_data(specs, field: str = "test_data") -> tuple[tuple[str, str], ...]:
    """["NAME=PATH", ...] -> ((NAME, PATH), ...); ConfigError(field, ...) when one has no `=`.
    The names and paths themselves are checked by RunConfig."""
    out = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        check(bool(sep and name.strip() and path), field, f"{spec!r}: expected NAME=PATH")
        out.append((name.strip(), path))
    return tuple(out)


def check_test_data(pairs, field: str = "test_data") -> None:
    seen = set()
    for name, path in pairs:
        spec = f"{name}={path}"
        check(C.valid_set_name(name), field, f"{spec!r}: NAME may use letters, digits, '_' and '-' and "
              f"must not be one of {', '.join(C.RESERVED_NAMES)}")
        check(name not in seen, field, f"{spec!r}: the name {name!r} is used twice")
        check(Path(path).exists(), field, f"{spec!r}: {path}: no such file or folder")
        seen.add(name)


def _check_mask_types(types, field: str, allow_empty: bool) -> None:
    check(allow_empty or len(types) > 0, field, f"needs at least one mask type; expected some of {', '.join(MASK_TYPES)}")
    for t in types:
        check(t in MASK_TYPES, field, f"{t!r} is an unknown mask type; expected {', '.join(MASK_TYPES)}")


@dataclass(frozen=True)
class RunConfig:
    """Everything a run depends on. `train` defaults to the profile's recipe and `limit_rows` to the
    profile's row limit (SMOKE_ROWS for smoke, all rows otherwise), so RunConfig(profile="smoke") is a
    smoke run from Python too."""

    variants: tuple[str, ...] = ("clean", "masked")
    profile: str = "default"
    data: str | None = None         # FER2013 csv / csv.gz / image folders; None = synthetic (smoke only)
    out: str = ""
    train: TrainConfig | None = None
    transfer: TransferConfig | None = None  # None = the profile's
    train_mask_types: tuple[str, ...] = MASK_TYPES
    test_mask_types: tuple[str, ...] = MASK_TYPES
    train_mask_geometry: str = "landmark"     # the geometry of the masks the masked and mixed models see
    test_mask_geometries: tuple[str, ...] = ("rigid",)  # one more test condition each: masked:<geometry>
    train_mask_fit: str = "nose"              # how the masked and mixed models' masks are worn
    test_mask_fits: tuple[str, ...] = FITS    # one more test condition each: masked@<fit>
    train_mask_family: str = "template"       # the family of masks the masked and mixed models see
    train_mask_appearance: str = "random"     # fixed (each type's colour), random (drawn per row) or mixed
    test_mask_families: tuple[str, ...] = C.TEST_ONLY  # the test family (masked:held-out): no choice looks at it
    validation_mask_families: tuple[str, ...] = ("surface",)  # PublicTest conditions that choices are made on
    train_occlusion: float = 0.5              # share of mask-aware training rows given a random lower-face occluder
    mask_seed: int = 0
    limit_rows: int | None = None   # keep at most this many rows per split (0 = all)
    workers: int = 0                # masking processes; 0 = one per core
    threads: int = 0                # TensorFlow's intra- and inter-op threads; 0 = one per core
    cache_dir: str | None = None
    report: bool = True
    overwrite: bool = False         # retrain variants whose recorded fingerprint differs
    verbose: bool = False           # per-epoch Keras output
    test_data: tuple[tuple[str, str], ...] = ()  # cross-dataset test sets: ((NAME, PATH), ...)
    validation_data: tuple[tuple[str, str], ...] = ()  # other face sets to validate on: ((NAME, PATH), ...)

    def __post_init__(self):
        check_choice(self.profile, tuple(PROFILES), "profile")
        check(len(self.variants) > 0, "variants", f"needs at least one of {', '.join(C.VARIANTS)}")
        for v in self.variants:
            check_choice(v, tuple(C.VARIANTS), "variants")
        _check_mask_types(self.train_mask_types, "train_mask_types", allow_empty=False)
        _check_mask_types(self.test_mask_types, "test_mask_types", allow_empty=True)
        check_choice(self.train_mask_geometry, GEOMETRIES, "train_mask_geometry")
        for g in self.test_mask_geometries:
            check_choice(g, GEOMETRIES, "test_mask_geometries")
        check_choice(self.train_mask_fit, FITS, "train_mask_fit")
        for f in self.test_mask_fits:
            check_choice(f, FITS, "test_mask_fits")
        check_choice(self.train_mask_family, C.MIXABLE + (BOTH,), "train_mask_family")
        check(self.train_mask_geometry == "landmark" or self.train_mask_family == "template", "train_mask_geometry",
              f"{self.train_mask_geometry}: only the template family draws it (the {self.train_mask_family} family "
              "follows the landmarks)")
        check_choice(self.train_mask_appearance, APPEARANCES, "train_mask_appearance")
        for f in self.test_mask_families:
            check_choice(f, FAMILIES, "test_mask_families")
        for f in self.validation_mask_families:
            check_choice(f, FAMILIES, "validation_mask_families")
            check(f not in self.test_mask_families, "validation_mask_families",
                  f"{f} is also a test family: a family that validates choices cannot test them "
                  "(give it to one of --validation-mask-families and --test-mask-families)")
        check(0.0 <= self.train_occlusion <= 1.0, "train_occlusion", f"must be 0..1, got {self.train_occlusion}")
        for name in ("limit_rows", "workers", "threads"):
            value = getattr(self, name)
            check(value is None or value >= 0, name, f"must be 0 or more, got {value}")
        check_test_data(self.test_data)
        check_test_data(self.validation_data, "validation_data")
        for name, _ in self.validation_data:
            check(name not in dict(self.test_data), "validation_data",
                  f"{name}: also a --test-data name; a set that validates choices cannot test them")
        finetuned = [v for v in self.variants if C.uses_masks(v)] and C.CLEAN in self.variants
        check(self.transfer is None or self.transfer.seed is None or bool(finetuned and self.transfer.method != "scratch"),
              "transfer.seed", "only a masked, mixed or flat model fine-tuned from the clean model uses it (the run "
              "trains " + ("it from scratch" if finetuned else "no such model") + ")")
        if self.train is None:
            object.__setattr__(self, "train", PROFILES[self.profile])
        if self.transfer is None:
            object.__setattr__(self, "transfer", TRANSFER[self.profile])
        if self.limit_rows is None:
            object.__setattr__(self, "limit_rows", SMOKE_ROWS if self.profile == "smoke" else 0)

    @property
    def mask_config(self) -> MaskConfig:
        """The training masks (also used for the masked twin of every cross-dataset test set)."""
        return mask_config(self.train_mask_types, self.mask_seed, self.train_mask_geometry, self.train_mask_fit,
                           self.train_mask_family, self.train_mask_appearance)

    @property
    def held_out_config(self) -> MaskConfig | None:
        """The masks of the masked:held-out conditions (`held_out_config`), or None."""
        return held_out_config(self.mask_config, self.test_mask_families)

    @property
    def flat_config(self) -> MaskConfig:
        """The flat variant's masks: the training types, geometry, fit and seed, as the template family's outlines
        filled with one grey level per row (`masking`'s "flat" appearance)."""
        return replace(self.mask_config, family="template", appearance="flat")

    @property
    def validation_configs(self) -> dict[str, MaskConfig]:
        """{family: MaskConfig} of the validation conditions (`validation_configs`)."""
        return validation_configs(self.mask_config, self.validation_mask_families)

    def roles(self) -> dict:
        """Which masks and sets play which role: what the models train on, what choices are made on (PublicTest),
        what the final figures are (PrivateTest). JSON-ready."""
        trained = list(C.MIXABLE) if self.train_mask_family == BOTH else [self.train_mask_family]
        held = self.held_out_config
        return {"train": {"families": trained, "appearance": self.train_mask_appearance, "rows": "Training"},
                "validate": {"families": list(self.validation_configs), "rows": "PublicTest",
                             "sets": [n for n, _ in self.validation_data]},
                "test": {"families": [held.family] if held else [], "rows": "PrivateTest",
                         "sets": [n for n, _ in self.test_data]}}

    def to_dict(self) -> dict:
        return asdict(self)


PROFILES: dict[str, TrainConfig] = {
    # CI: one epoch on a few hundred rows, end to end.
    "smoke": TrainConfig(epochs=1, batch_size=64, width=8, warmup_epochs=0.0, crop=40, views="ten", jit_compile=False),
    # The 2-core CPU budget: both variants, evaluation and the report in about 45 minutes in bfloat16.
    "default": TrainConfig(),
    # A GPU: a longer schedule and a wider network.
    "full": TrainConfig(width=96, epochs=60, views="ten"),
}

TRANSFER: dict[str, TransferConfig] = {
    "smoke": TransferConfig(epochs=1),
    "default": TransferConfig(),
    "full": TransferConfig(epochs=30),
}

SMOKE_ROWS = 300


def profile_config(profile: str, **overrides) -> TrainConfig:
    """The profile's TrainConfig with the given fields replaced (None values are ignored)."""
    check_choice(profile, tuple(PROFILES), "profile")
    return replace(PROFILES[profile], **{k: v for k, v in overrides.items() if v is not None})
