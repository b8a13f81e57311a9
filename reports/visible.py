"""What the visible face can tell: each mask-aware model against the flat-mask reference.

The flat model (`experiments.run ... flat`) trains as the masked model does, on flat masks: each row's own mask
outline filled with one grey level, nothing else, so all it can read is the upper face and the outline. Its
accuracy on flat masks is what a model that ignores how a mask is drawn can reach. Here each mask-aware model's
accuracy on the training family, the validation family (PublicTest) and the test family (PrivateTest) stands
beside that reference on the same rows and fit, as points and as a share of it."""
from __future__ import annotations

from experiments import conditions as C


def table(cells: dict, validation: dict | None, models: list[str]) -> list[dict] | None:
    """[{"model", "role", "condition", "rows", "accuracy", "reference", "share", "gap"}] for every mask-aware
    model of the run but the flat one, or None without a flat reference. cells: {(train, test): result} of the
    PrivateTest conditions; validation: `build._validation`'s dict (its "cells" are PublicTest's)."""
    ref_test = cells.get((C.FLAT, C.flat_condition()))
    if ref_test is None:
        return None
    vcells = (validation or {}).get("cells", {})
    ref_val = vcells.get((C.FLAT, C.flat_condition()))
    val_conds = [t for t in (validation or {}).get("tests", []) if C.validation_family_of(t) and ":" not in t]
    out = []
    for m in models:
        if m == C.FLAT or m not in C.VARIANTS or not C.uses_masks(m):
            continue
        rows = [("training family", C.MASKED, "PrivateTest", cells.get((m, C.MASKED)), ref_test),
                *[(f"validation family ({C.validation_family_of(t)})", t, "PublicTest", vcells.get((m, t)), ref_val)
                  for t in val_conds],
                ("test family", C.HELD_OUT, "PrivateTest", cells.get((m, C.HELD_OUT)), ref_test)]
        for role, cond, split, cell, ref in rows:
            if cell is None or ref is None:
                continue
            out.append({"model": m, "role": role, "condition": cond, "rows": split, "accuracy": cell["accuracy"],
                        "reference": ref["accuracy"], "gap": cell["accuracy"] - ref["accuracy"],
                        "share": cell["accuracy"] / ref["accuracy"] if ref["accuracy"] else None})
    return out or None
