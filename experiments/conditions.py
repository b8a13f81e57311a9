"""One vocabulary for what a run trains and what it tests.

Variants (models) are named by the training data they see; test conditions by the PrivateTest pixels
they score. Every module that names a variant or a condition imports it from here (the files a run writes
for them are named in `runfolder`).
No TensorFlow here: the report reads it too.

Variants:
  clean   the Training rows as they are
  masked  the same rows, each masked (one random mask type per row from the run's training types)
  mixed   every Training row twice, once clean and once masked (PublicTest validation the same way)

Test conditions, all on the same PrivateTest rows:
  clean, masked (the run's training mask types and geometry), masked:<type> (every row with that one mask
  type), masked:<geometry> (the training mask types drawn in another geometry, e.g. masked:rigid),
  masked@<fit> (the training mask types and geometry worn another way: chin, mouth, nose, high),
  masked:held-out (the training mask types, geometry and fit drawn by the test family of masks, which no
  model of the run saw in training and no choice looked at: `masking.FAMILIES`) and masked:held-out@<fit> (the
  same, worn <fit>); with the flat variant, flat (flat masks: the training outlines, one grey level per row)
  and flat@<fit>
and, for every cross-dataset test set NAME (`--test-data NAME=PATH`), on that set's rows:
  NAME:clean, NAME:masked (the run's training mask config and seed)
"""
from __future__ import annotations

import re

CLEAN, MASKED, MIXED, FLAT = "clean", "masked", "mixed", "flat"
BASELINE = "majority"  # the majority-class baseline, scored like a model

# flat: the reference of what the visible face can tell, trained as the masked model is (from the clean model's
# weights, the same epochs) on flat masks (`masking`'s "flat" appearance: each row's own outline, one grey level)
VARIANTS: dict[str, tuple[str, ...]] = {CLEAN: (CLEAN,), MASKED: (MASKED,), MIXED: (CLEAN, MASKED), FLAT: (FLAT,)}
MAIN_CONDITIONS = (CLEAN, MASKED)


def sources(variant: str) -> tuple[str, ...]:
    """The pixel sets a variant trains on, in order: ("clean",), ("masked",) or ("clean", "masked")."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    return VARIANTS[variant]


def uses_masks(variant: str) -> bool:
    """Whether a variant trains on masked faces (the masked, mixed and flat models)."""
    return MASKED in sources(variant) or FLAT in sources(variant)


def flat_condition(fit: str | None = None) -> str:
    """The flat masks' test condition: "flat" (the training fit), or worn `fit`: "flat@chin"."""
    return FLAT if fit is None else f"{FLAT}@{fit}"


def flat_fit_of(condition: str) -> str | None:
    """The fit of a flat per-fit condition ("flat@chin" -> "chin"), else None."""
    prefix = f"{FLAT}@"
    return condition[len(prefix):] if condition.startswith(prefix) and condition[len(prefix):] in FITS else None


def type_condition(mask_type: str) -> str:
    """The test condition of PrivateTest with every row wearing `mask_type`."""
    return f"{MASKED}:{mask_type}"


GEOMETRIES = ("landmark", "rigid")  # masking.placement.GEOMETRIES (a test checks they agree)


def geometry_condition(geometry: str) -> str:
    """The test condition of PrivateTest masked with the training mask types in `geometry`."""
    return f"{MASKED}:{geometry}"


def geometry_of(condition: str) -> str | None:
    """The geometry of a per-geometry condition ("masked:rigid" -> "rigid"), else None."""
    suffix = condition.partition(":")[2] if condition.startswith(f"{MASKED}:") else ""
    return suffix if suffix in GEOMETRIES else None


HELD_OUT = f"{MASKED}:held-out"
FAMILIES = ("template", "surface", "photo")  # masking.FAMILIES (a test checks they agree)
MIXABLE = ("template", "surface")  # masking.MIXABLE: the families "both" trains on
BOTH = "both"  # masking.BOTH: a training family that mixes MIXABLE
TEST_ONLY = tuple(f for f in FAMILIES if f not in MIXABLE)  # never trained on: ("photo",)


def held_out_condition(fit: str | None = None) -> str:
    """The held-out family's condition: "masked:held-out", or worn `fit`: "masked:held-out@chin"."""
    return HELD_OUT if fit is None else f"{HELD_OUT}@{fit}"


def is_held_out(condition: str) -> bool:
    """Whether a condition's masks come from the family no model of the run trained on."""
    return condition == HELD_OUT or condition.startswith(f"{HELD_OUT}@")


def held_out_fit_of(condition: str) -> str | None:
    """The fit of a held-out per-fit condition ("masked:held-out@chin" -> "chin"), else None."""
    prefix = f"{HELD_OUT}@"
    return condition[len(prefix):] if condition.startswith(prefix) and condition[len(prefix):] in FITS else None


def held_out_family(train_family: str, test_families) -> str | None:
    """The family a run's held-out conditions are drawn with: the first of `test_families` that the training
    family does not draw (a model trained on "both" draws MIXABLE), or None."""
    trained = MIXABLE if train_family == BOTH else (train_family,)
    return next((f for f in test_families if f not in trained), None)


# Validation conditions (metrics.json["validation"]), on the PublicTest rows: clean, masked (the training masks)
# and one per validation family; and for every --validation-data set NAME: NAME:clean and one per family.
def validation_condition(family: str, set_name: str | None = None) -> str:
    """The validation condition of PublicTest (or of validation set `set_name`) masked by `family` with the
    training types, look and fit: "masked(surface)", "fe-web:masked(surface)"."""
    return f"{set_name + ':' if set_name else ''}{MASKED}({family})"


def validation_family_of(condition: str) -> str | None:
    """The family of a validation condition ("fe-web:masked(surface)" -> "surface"), else None."""
    m = re.fullmatch(rf"(?:.+:)?{MASKED}\((\w+)\)", condition)
    return m.group(1) if m else None


def mask_type_of(condition: str) -> str | None:
    """The mask type of a per-type condition ("masked:n95" -> "n95"), else None."""
    prefix = f"{MASKED}:"
    if not condition.startswith(prefix) or geometry_of(condition) or is_held_out(condition):
        return None
    return condition[len(prefix):]


FITS = ("chin", "mouth", "nose", "high")  # masking.placement.FITS, low to high (a test checks they agree)


def fit_condition(fit: str) -> str:
    """The test condition of PrivateTest masked with the training mask types worn `fit`: "masked@chin"."""
    return f"{MASKED}@{fit}"


def fit_of(condition: str) -> str | None:
    """The fit of a per-fit condition ("masked@mouth" -> "mouth"), else None."""
    prefix = f"{MASKED}@"
    return condition[len(prefix):] if condition.startswith(prefix) and condition[len(prefix):] in FITS else None


def test_conditions(test_mask_types: tuple[str, ...], test_geometries: tuple[str, ...] = (),
                    test_fits: tuple[str, ...] = (), held_out: bool = False) -> tuple[str, ...]:
    """Every test condition of a run, in report order."""
    return (MAIN_CONDITIONS + ((HELD_OUT,) if held_out else ()) + tuple(geometry_condition(g) for g in test_geometries)
            + tuple(type_condition(t) for t in test_mask_types) + tuple(fit_condition(f) for f in test_fits)
            + (tuple(held_out_condition(f) for f in test_fits) if held_out else ()))


RESERVED_NAMES = (CLEAN, MASKED, MIXED, FLAT, BASELINE, "fer2013")


def valid_set_name(name: str) -> bool:
    """Whether NAME can name a cross-dataset test set (no clash with a built-in condition or file name)."""
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name)) and name.lower() not in RESERVED_NAMES


def set_condition(name: str, kind: str) -> str:
    """The condition of test set `name` seen `kind` (clean or masked): "NAME:clean" / "NAME:masked"."""
    return f"{name}:{kind}"


def set_of(condition: str) -> tuple[str, str] | None:
    """("NAME", "clean"|"masked") for a cross-dataset condition, None for FER2013's own."""
    name, sep, kind = condition.partition(":")
    if not sep or name == MASKED or kind not in (CLEAN, MASKED):
        return None
    return name, kind
