"""Masked training that learns from its clean twin.

maskfer's masked rows are the clean rows with a mask drawn on, in the same order, so a masked (or mixed)
model can start from the clean model's weights and be distilled from the clean model's predictions on the
unmasked twin of exactly the row it sees masked. `RunConfig.transfer` chooses how (scratch / clean_init /
distill); a run without a clean model trains from scratch.
"""
from __future__ import annotations

import numpy as np

from .. import conditions as C


def method_of(cfg, variant: str) -> str | None:
    """How `variant` is trained in the run `cfg`: None for clean, else "scratch", "clean_init" or "distill"
    ("scratch" whatever was asked when the run trains no clean model)."""
    if not C.uses_masks(variant):
        return None
    return cfg.transfer.method if C.CLEAN in cfg.variants else "scratch"


def training_order(variants) -> list[str]:
    """The variants with clean first (the others may start from it); otherwise in the given order."""
    return sorted(variants, key=lambda v: v != C.CLEAN)


def teacher_targets(predict, split: dict, variant: str) -> np.ndarray:
    """(N, 7) float32: for every training row of `variant`, in its training order, the teacher's
    probabilities on the clean twin of that row.

    predict: (M, 48, 48) uint8 images -> (M, 7) probabilities. split: {(pixels, usage): FERData} from the
    run's mask stage, whose clean and masked Training sets hold the same rows in the same order.
    """
    clean = split[(C.CLEAN, "Training")]
    probs = np.asarray(predict(clean.images), np.float32)
    parts = []
    for source in C.sources(variant):
        rows = split[(source, "Training")].rows
        if not np.array_equal(rows, clean.rows):
            raise ValueError(f"the {source} Training rows are not the clean rows in the same order")
        parts.append(probs)
    return np.concatenate(parts)
