"""The masks a run draws, as a library: every masked condition's MaskConfig (`condition_configs`,
`scored_mask_configs`) and its record (`mask_record`), the rows a run masks (`masked_rows`), and `make_masks`, the
run's masking stage (the training masks on the rows it uses, PrivateTest per test condition, PublicTest per
validation family, the flat reference's masks); `private_conditions` for folders that score without training."""
from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np

from datasets import EMOTIONS, USAGES, FERData
from masking import COLORS, MASK_TYPES, STATUSES, TEXTURES, MaskConfig, MaskedSet, find_landmarks, mask_dataset
from masking.pipeline import CACHE_VERSION as MASK_CACHE_VERSION, DRAWN

from . import conditions as C
from .config import RunConfig


def masking_summary(fer: FERData, masked) -> dict:
    """Counts per landmark status and emotion, mask type, colour and texture; median lower-face coverage."""
    status = {e: {s: int(((fer.labels == k) & (masked.status == j)).sum()) for j, s in enumerate(STATUSES)}
              for k, e in enumerate(EMOTIONS)}
    return {"rows": len(fer), "statuses": list(STATUSES), "status_per_emotion": status,
            "mask_types": {t: int((masked.mask_type == i).sum()) for i, t in enumerate(MASK_TYPES)},
            "colors": {c: int((masked.color == i).sum()) for i, c in enumerate(COLORS) if (masked.color == i).any()},
            "textures": {t: int((masked.texture == i).sum()) for i, t in enumerate(TEXTURES)
                         if (masked.texture == i).any()},
            "drawn_colors": int((masked.color == DRAWN).sum()),
            "shade_quartiles": [float(q) for q in np.percentile(masked.shade, [25, 50, 75])] if len(fer) else [],
            "coverage_median": float(np.median(masked.coverage)) if len(fer) else 0.0}


@dataclass(frozen=True, eq=False)
class Masks:
    """The masked twins a run uses: `masked`, every row with the training masks (MaskedSet, aligned with the
    rows); `per_condition`, {condition: (M, 48, 48) uint8 PrivateTest images} for every other masked test
    condition (masked:<geometry>, masked:<type>, masked@<fit>: `mask_conditions`); `points` (N, 68, 2)
    float32, every row's landmarks (the outline probe redraws the masks' shapes from them)."""

    masked: MaskedSet
    per_condition: dict[str, np.ndarray]
    points: np.ndarray
    validation: dict[str, np.ndarray] | None = None  # {masked(<family>): (P, 48, 48) uint8 PublicTest} per validation family
    flat: MaskedSet | None = None  # every row with flat masks (`RunConfig.flat_config`), for the flat variant


def condition_configs(mcfg: MaskConfig, test_mask_types, geometries, fits=(),
                      held_out: MaskConfig | None = None) -> dict[str, MaskConfig]:
    """{condition: the MaskConfig that draws it} for every masked test condition but `masked` itself: the
    held-out family's masks (`held_out`: masked:held-out, and worn each fit: masked:held-out@<fit>), once per
    geometry the family draws (masked:<geometry>), per test mask type (masked:<type>) and per fit (masked@<fit>).
    Report order."""
    out = {C.HELD_OUT: held_out} if held_out else {}
    out.update({C.geometry_condition(g): replace(mcfg, geometry=g) for g in drawn_geometries(mcfg, geometries)})
    out.update({C.type_condition(mt): replace(mcfg, mask_types=(mt,)) for mt in test_mask_types})
    out.update({C.fit_condition(f): replace(mcfg, fit=f) for f in fits})
    if held_out:
        out.update({C.held_out_condition(f): replace(held_out, fit=f) for f in fits})
    return out


def mask_record(configs: dict[str, MaskConfig]) -> dict[str, dict]:
    """{condition: what its pixels depend on}: the MaskConfig's identity (family, appearance, fit, geometry,
    types, seed and the renderer versions its cache key holds) and the masking code's version. Recorded in
    metrics.json ("mask_keys"), so results drawn by another version of a renderer are never paired with new ones."""
    return {c: json.loads(json.dumps({**m.identity(), "masking_version": MASK_CACHE_VERSION}))
            for c, m in configs.items()}


def scored_mask_configs(mcfg: MaskConfig, test_mask_types, geometries, fits=(), held_out: MaskConfig | None = None,
                        test_sets=(), flat: MaskConfig | None = None) -> dict[str, MaskConfig]:
    """{condition: MaskConfig} of every masked condition a run or score folder scores: `masked`, those of
    `condition_configs`, each test set's NAME:masked and, with `flat`, the flat conditions."""
    out = {C.MASKED: mcfg, **condition_configs(mcfg, test_mask_types, geometries, fits, held_out)}
    out.update({C.set_condition(name, C.MASKED): mcfg for name in test_sets})
    if flat is not None:
        out.update({C.flat_condition(): flat, **{C.flat_condition(f): replace(flat, fit=f) for f in fits}})
    return out


def mask_conditions(test: FERData, mcfg: MaskConfig, test_mask_types, geometries, workers: int = 0,
                    cache_dir: str | None = None, landmarks=None, fits=(),
                    held_out: MaskConfig | None = None) -> dict[str, np.ndarray]:
    """{condition: (M, 48, 48) uint8} of the test rows for every condition of `condition_configs`; cached."""
    return {c: mask_dataset(test, m, workers or None, cache_dir, landmarks=landmarks).images
            for c, m in condition_configs(mcfg, test_mask_types, geometries, fits, held_out).items()}


def drawn_geometries(mcfg: MaskConfig, geometries) -> tuple[str, ...]:
    """The per-geometry conditions a family can draw: all of `geometries` for the template family, none for the
    others (they follow the landmarks: a masked:rigid condition of theirs would be `masked` under another name)."""
    return tuple(geometries) if mcfg.family == "template" else ()


def private_conditions(test: FERData, mcfg: MaskConfig, test_mask_types, geometries, workers: int = 0,
                       cache_dir: str | None = None, fits=(),
                       held_out: MaskConfig | None = None) -> tuple[dict[str, np.ndarray], MaskedSet]:
    """Every FER2013 test condition of a run on its test rows alone ({condition: (M, 48, 48) uint8}, in
    report order), and the `masked` condition's MaskedSet. A row's mask depends only on the seed, its row id
    and its pixels, so these are the pixels a run masks on all rows (scoring needs no Training rows)."""
    points, status = find_landmarks(test, mcfg.landmarks, workers or None, cache_dir)
    masked = mask_dataset(test, mcfg, workers or None, cache_dir, landmarks=(points, status))
    images = {C.CLEAN: test.images, C.MASKED: masked.images}
    images.update(mask_conditions(test, mcfg, test_mask_types, geometries, workers, cache_dir, (points, status), fits,
                                  held_out))
    return images, masked


def masked_rows(cfg: RunConfig, fer: FERData) -> np.ndarray:
    """(N,) bool: the rows a run masks. Every row when a variant trains on masks; else PublicTest and PrivateTest
    alone (the validation and test conditions), so a clean-only run finds no landmark on a Training row."""
    if any(C.uses_masks(v) for v in cfg.variants):
        return np.ones(len(fer), bool)
    return fer.usage != USAGES.index("Training")


def make_masks(cfg: RunConfig, fer: FERData) -> Masks:
    """Masks the rows a run uses (`masked_rows`) with the training masks, and PrivateTest once per test
    condition, PublicTest once per validation family (reusing the landmarks); all of it cached."""
    workers = cfg.workers or None
    mcfg = cfg.mask_config
    held = cfg.held_out_config
    sel = masked_rows(cfg, fer)
    part = fer if sel.all() else fer.take(sel)
    family = "both families" if cfg.train_mask_family == C.BOTH else f"{cfg.train_mask_family} family"
    which = "" if part is fer else " (PublicTest and PrivateTest: no variant trains on masks, so no Training row)"
    print(f"[2/5] masking {len(part)} of {len(fer)} rows{which} ({family}, {cfg.train_mask_appearance} appearance, "
          f"types: {', '.join(cfg.train_mask_types)}; validated on: {', '.join(cfg.validation_configs) or 'none'}; "
          f"held out for testing: {held.family if held else 'none'})", flush=True)
    points, status = find_landmarks(part, mcfg.landmarks, workers, cfg.cache_dir)
    masked_set = mask_dataset(part, mcfg, workers, cfg.cache_dir, landmarks=(points, status))
    private = part.usage == USAGES.index("PrivateTest")
    per_condition = mask_conditions(part.take(private), mcfg, cfg.test_mask_types, cfg.test_mask_geometries,
                                    cfg.workers, cfg.cache_dir, (points[private], status[private]), cfg.test_mask_fits,
                                    cfg.held_out_config)
    flat = None
    if C.FLAT in cfg.variants:  # the flat reference: every row, and PrivateTest worn each fit
        flat = mask_dataset(part, cfg.flat_config, workers, cfg.cache_dir, landmarks=(points, status))
        per_condition[C.flat_condition()] = flat.images[private]
        per_condition.update({C.flat_condition(f): mask_dataset(
            part.take(private), replace(cfg.flat_config, fit=f), workers, cfg.cache_dir,
            landmarks=(points[private], status[private])).images for f in cfg.test_mask_fits})
    public = part.usage == USAGES.index("PublicTest")
    validation = {C.validation_condition(f): mask_dataset(part.take(public), m, workers, cfg.cache_dir,
                                                          landmarks=(points[public], status[public])).images
                  for f, m in cfg.validation_configs.items()}
    return Masks(masked_set, per_condition, points, validation, flat)


def run_mask_keys(cfg: RunConfig) -> dict[str, dict]:
    """metrics.json's "mask_keys" of a run of `cfg`: the record of every masked condition it scores."""
    return mask_record(scored_mask_configs(cfg.mask_config, cfg.test_mask_types, cfg.test_mask_geometries,
                                           cfg.test_mask_fits, cfg.held_out_config, [n for n, _ in cfg.test_data],
                                           cfg.flat_config if C.FLAT in cfg.variants else None))
