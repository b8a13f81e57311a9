"""matplotlib figures, returned as embedded `data:image/png;base64,...` URIs (the report has no external files)."""
from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from datasets import EMOTIONS  # noqa: E402

SHORT = [e[:3] for e in EMOTIONS]
# Okabe & Ito's palette, which colour-blind readers can tell apart: one colour per model in every figure.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
FIXED = {"clean": "#0072B2", "masked": "#D55E00", "mixed": "#009E73", "majority": "#999999"}


def model_colours(models) -> dict[str, str]:
    """{model: colour}: maskfer's variants keep theirs in every report, other models take the next free one."""
    out, free = {}, [c for c in OKABE_ITO if c not in FIXED.values()]
    for m in models:
        out[m] = FIXED.get(m) or free[len([k for k in out if k not in FIXED]) % len(free)]
    return out


def to_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def confusion_grid(cells: list[tuple[str, np.ndarray]]) -> str:
    """One row per cell: counts (shared colour scale) and row-normalised (0..1)."""
    vmax = max(int(np.max(m)) for _, m in cells) or 1
    fig, axes = plt.subplots(len(cells), 2, figsize=(8.4, 3.9 * len(cells)), squeeze=False)
    for (title, m), (ax_c, ax_n) in zip(cells, axes):
        m = np.asarray(m)
        norm = m / np.maximum(m.sum(1, keepdims=True), 1)
        for ax, data, fmt, vm, sub in ((ax_c, m, "d", vmax, "counts"), (ax_n, norm, ".2f", 1.0, "row-normalised")):
            ax.imshow(data, cmap="Blues", vmin=0, vmax=vm)
            ax.set_title(f"{title} — {sub}", fontsize=9)
            ax.set_xticks(range(7), SHORT, fontsize=8)
            ax.set_yticks(range(7), SHORT, fontsize=8)
            ax.set_xlabel("predicted", fontsize=8)
            ax.set_ylabel("true", fontsize=8)
            for i in range(7):
                for j in range(7):
                    v = data[i, j]
                    ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=6.5,
                            color="white" if v > 0.6 * vm else "black")
    fig.tight_layout()
    return to_uri(fig)


def f1_drop_chart(drops: dict[str, list[float]]) -> str:
    """Grouped bars: per emotion, F1 on clean test minus F1 on masked test, one bar per model."""
    fig, ax = plt.subplots(figsize=(8, 3.4))
    n = max(len(drops), 1)
    colours = model_colours(drops)
    for i, (name, vals) in enumerate(drops.items()):
        ax.bar(np.arange(7) + (i - (n - 1) / 2) * 0.8 / n, 100 * np.asarray(vals), 0.8 / n, label=f"{name} model",
               color=colours[name])
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(7), EMOTIONS)
    ax.set_ylabel("F1 drop, points (clean − masked)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return to_uri(fig)


def training_curves(histories: dict[str, dict[str, list[float]]]) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    colours = model_colours(histories)
    for name, h in histories.items():
        ep = np.arange(1, len(h["loss"]) + 1)
        for ax, key in zip(axes, ("loss", "accuracy")):
            line, = ax.plot(ep, h[key], label=f"{name} train", color=colours[name])
            if h.get(f"val_{key}"):
                ax.plot(ep, h[f"val_{key}"], "--", color=line.get_color(), label=f"{name} validation")
    for ax, key in zip(axes, ("loss", "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return to_uri(fig)


def mosaic(rows: list[np.ndarray], row_labels: list[str], col_labels: list[str] | None = None,
           scale: float = 0.9) -> str:
    """Faces as one image: rows (R,) of (C, H, W) uint8 stacks, a label left of each row and above each column.
    One imshow of one array (a grid of subplots costs seconds per figure)."""
    h, w = rows[0].shape[1:3]
    gap = 2
    cols = max(len(r) for r in rows)
    canvas = np.full((len(rows) * (h + gap), cols * (w + gap)), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            canvas[i * (h + gap):i * (h + gap) + h, j * (w + gap):j * (w + gap) + w] = img
    fig, ax = plt.subplots(figsize=(scale * cols * 0.62 + 1.0, scale * len(rows) * 0.62 + 0.3))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_yticks([i * (h + gap) + h / 2 for i in range(len(rows))], row_labels, fontsize=7)
    ax.set_xticks([j * (w + gap) + w / 2 for j in range(cols)], col_labels or [""] * cols, fontsize=7)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    return to_uri(fig)


def face_grid(clean: np.ndarray, masked: np.ndarray, labels: np.ndarray, per_class: int = 6) -> str:
    """Per emotion a row of clean faces above the same faces masked."""
    rows, names = [], []
    blank = np.full(clean.shape[1:], 255, np.uint8)
    for k in range(7):
        idx = np.flatnonzero(labels == k)[:per_class]
        for src, what in ((clean, "clean"), (masked, "masked")):
            faces = [src[i] for i in idx] + [blank] * (per_class - len(idx))
            rows.append(np.stack(faces))
            names.append(f"{EMOTIONS[k]}, {what}")
    return mosaic(rows, names)


def saliency_grid(maps: dict[str, np.ndarray], faces: dict[str, np.ndarray]) -> str:
    """Rows: one per map set (title -> (7, 48, 48)); columns: emotions; heat over the mean face."""
    fig, axes = plt.subplots(len(maps), 7, figsize=(11, 1.75 * len(maps)), squeeze=False)
    vmax = max(float(np.max(m)) for m in maps.values()) or 1.0
    for r, (title, m) in enumerate(maps.items()):
        for k in range(7):
            ax = axes[r, k]
            ax.imshow(faces[title][k], cmap="gray", vmin=0, vmax=255)
            ax.imshow(np.clip(m[k], 0, None), cmap="inferno", alpha=0.55, vmin=0, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(EMOTIONS[k], fontsize=8)
        axes[r, 0].set_ylabel(title, fontsize=7)
    fig.tight_layout()
    return to_uri(fig)


def fits_lines(ax, labels: list[str], lines: list[dict], colours: dict[str, str]) -> None:
    """The one fits plot every report draws (run and study): accuracy (or another metric) from clean faces through
    the fits, colour by model, line style by family: the training family solid, the held-out family dashed with
    open markers. lines: [{"model", "held_out": bool, "values", "low", "high"}] (percent; NaN: no interval)."""
    x = np.arange(len(labels))
    for line in lines:
        v, lo, hi = (np.asarray(line[k], np.float64) for k in ("values", "low", "high"))
        colour = colours[line["model"]]
        err = np.clip([v - lo, hi - v], 0, None)  # a percentile interval can miss its own estimate by a hair
        ax.errorbar(x + (0.06 if line["held_out"] else 0), v, yerr=err, color=colour,
                    ls="--" if line["held_out"] else "-", marker="o", mfc="white" if line["held_out"] else colour,
                    capsize=3, label=line["model"] + (", held-out family" if line["held_out"] else ""))
    ax.set_xticks(x, labels)
    ax.grid(alpha=0.3)


def fits_figure(labels: list[str], lines: list[dict], xlabel: str, ylabel: str,
                colours: dict[str, str] | None = None) -> str:
    """`fits_lines` on one axis with its legend beside it, as a data URI (colours: the report's, by model)."""
    fig, ax = plt.subplots(figsize=(8.6, 3.5))
    fits_lines(ax, labels, lines, colours or model_colours(dict.fromkeys(line["model"] for line in lines)))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7.5, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    return to_uri(fig)


def cell_line(cells: dict, model: str, conds: list[str], held_out: bool, metric: str = "accuracy",
              ci: str = "ci_acc", name: str | None = None) -> dict:
    """A `fits_lines` line from a run report's cells ({(model, condition): result with 95% bootstrap intervals})."""
    def pct(c, i):
        return np.nan if c[ci][i] is None else 100 * c[ci][i]
    got = [cells[(model, s)] for s in conds]
    return {"model": name or model, "held_out": held_out, "values": [100 * c[metric] for c in got],
            "low": [pct(c, 0) for c in got], "high": [pct(c, 1) for c in got]}
