"""How the mask is worn: every model's accuracy and macro-F1 from clean faces through the four fits (chin,
mouth, nose, high), its per-emotion recall along the same axis, the emotion that fails first, the mean over
the fits, and a row of example faces per fit."""
from __future__ import annotations

import numpy as np

from datasets import EMOTIONS
from experiments import conditions as C

from .figures import cell_line, fits_lines, model_colours, mosaic, plt, to_uri


def axis(cells: dict) -> list[tuple[str, str]]:
    """[(label, condition)]: clean, then each fit the run scored, low to high."""
    fits = [f for f in C.FITS if any(C.fit_condition(f) == s for _, s in cells)]
    return ([("clean", C.CLEAN)] + [(f, C.fit_condition(f)) for f in fits]) if fits else []


def first_failures(cells: dict, model: str, points: list[tuple[str, str]]) -> dict[str, str | None]:
    """{emotion: the first fit (low to high) at which its recall falls to half its clean recall or below, or
    None where it holds at every fit (or has no clean recall to lose)}."""
    clean = cells[(model, C.CLEAN)]["per_class"]
    out = {}
    for e in EMOTIONS:
        base = clean[e]["recall"]
        out[e] = next((label for label, s in points[1:] if base > 0 and cells[(model, s)]["per_class"][e]["recall"]
                       <= base / 2), None)
    return out


def section(cells: dict, models: list[str], metrics: dict, samples: dict | None) -> dict | None:
    points = axis(cells)
    models = [m for m in models if all((m, s) in cells for _, s in points)]
    if not points or not models:
        return None
    labels = [label for label, _ in points]
    colours = model_colours(models)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, metric, ci in ((axes[0], "accuracy", "ci_acc"), (axes[1], "macro_f1", "ci_f1")):
        lines = []
        for m in models:
            lines.append(cell_line(cells, m, [s for _, s in points], False, metric, ci))
            held = [s if s == C.CLEAN else C.held_out_condition(label) for label, s in points]
            if all((m, s) in cells for s in held):
                lines.append(cell_line(cells, m, held, True, metric, ci))
        fits_lines(ax, labels, lines, colours)
        ax.set_ylabel(f"{metric.replace('_', '-')} (%)")
        ax.set_xlabel("how the mask is worn (low to high)")
    axes[0].legend(fontsize=7)
    curve = to_uri(fig)
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.4), squeeze=False)
    for ax, m in zip(axes[0], models):
        for e in EMOTIONS:
            ax.plot(range(len(points)), [100 * cells[(m, s)]["per_class"][e]["recall"] for _, s in points],
                    marker=".", label=e)
        ax.set_xticks(range(len(points)), labels, fontsize=8)
        ax.set_title(f"{m}: recall per emotion", fontsize=9)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    recall = to_uri(fig)
    faces = None
    if samples is not None and all(f"fit_{label}" in samples for label in labels[1:]):
        idx = [int(np.flatnonzero(samples["labels"] == k)[0]) for k in range(len(EMOTIONS))
               if (samples["labels"] == k).any()]
        rows = [samples["clean"][idx]] + [samples[f"fit_{label}"][idx] for label in labels[1:]]
        faces = mosaic(rows, labels, [EMOTIONS[int(samples["labels"][i])] for i in idx], scale=1.3)
    means = (metrics or {}).get("mask_fit", {}).get("mean", {})
    rows = []
    for m in models:
        rows.append({"model": m, "cells": [cells[(m, s)] for _, s in points], "mean": means.get(m),
                     "first": first_failures(cells, m, points)})
        held = [(label, C.held_out_condition(label) if s != C.CLEAN else s) for label, s in points]
        if all((m, s) in cells for _, s in held):  # the same fits drawn by the family no model trained on
            hcells = [cells[(m, s)] for _, s in held]
            rows.append({"model": f"{m}, held-out family", "cells": hcells, "first": first_failures(cells, m, held),
                         "mean": {k: float(np.mean([c[k] for c in hcells[1:]])) for k in ("accuracy", "macro_f1")}})
    return {"labels": labels, "rows": rows, "curve_png": curve, "recall_png": recall, "faces_png": faces,
            "emotions": EMOTIONS}
