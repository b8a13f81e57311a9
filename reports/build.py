"""Build RUN_DIR/report.html from a run folder of `experiments.run` (one self-contained HTML file)."""
from __future__ import annotations

from pathlib import Path

import jinja2
import numpy as np

from datasets import EMOTIONS
from datasets.atomic import atomic_path
from experiments import conditions as C
from experiments.runfolder import (HISTORY, load_occlusion, load_samples, predictions_path, read_history,
                                   read_json, read_predictions)

from . import crossdata, figures, fits, robustness
from .references import REFERENCES
from .stats import bootstrap_ci, mcnemar_exact

MAIN_TESTS = C.MAIN_CONDITIONS


def _read_all_predictions(run: Path, results: list[dict]) -> dict:
    """{(train, test): (rows, true, pred, proba)} for every result whose predictions file exists; each file read once."""
    out = {}
    for r in results:
        path = predictions_path(run, r["train"], r["test"])
        if path.exists():
            out[(r["train"], r["test"])] = read_predictions(path)
    return out


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}"


def _matrix(results: list[dict], preds: dict) -> tuple[list[str], list[str], dict]:
    trains = list(dict.fromkeys(r["train"] for r in results))
    tests = list(dict.fromkeys(r["test"] for r in results))
    cells = {}
    for r in results:
        pred = preds.get((r["train"], r["test"]))
        ci_acc = ci_f1 = (None, None)
        if pred is not None:
            _, t, p, _ = pred
            labels = [EMOTIONS.index(e) for e in r.get("emotions", EMOTIONS)]  # those its macro-F1 averages
            ci_acc, ci_f1 = bootstrap_ci(t, p, "accuracy"), bootstrap_ci(t, p, "macro_f1", labels)
        cells[(r["train"], r["test"])] = {**r, "ci_acc": ci_acc, "ci_f1": ci_f1}
    return trains, tests, cells


def _paired_tests(preds: dict, models: list[str]) -> list[dict]:
    clean, masked, mixed = C.CLEAN, C.MASKED, C.MIXED
    pairs = [((clean, clean), (clean, masked), "masks on the clean model (clean vs masked test)")]
    for other in (masked, mixed):
        pairs.append(((clean, masked), (other, masked), f"clean vs {other} model, on masked test"))
        pairs.append(((clean, clean), (other, clean), f"clean vs {other} model, on clean test"))
    pairs.append(((masked, masked), (mixed, masked), "masked vs mixed model, on masked test"))
    out = []
    for a, b, label in pairs:
        if a[0] not in models or b[0] not in models:
            continue
        pa, pb = preds.get(a), preds.get(b)
        if pa is None or pb is None or not np.array_equal(pa[0], pb[0]):
            continue
        res = mcnemar_exact(pa[1] == pa[2], pb[1] == pb[2])
        out.append({"label": label, "a": f"{a[0]} model on {a[1]} test", "b": f"{b[0]} model on {b[1]} test", **res})
    return out


_HOW = {"scratch": "trained from scratch", "clean_init": "started from the clean model's weights",
        "distill": "started from the clean model's weights and distilled from its predictions on the clean twins"}


def _headline(cells: dict, models: list[str], transfer: dict | None = None, geometry: str = "landmark") -> str | None:
    def acc(t, s):
        c = cells.get((t, s))
        return None if c is None else c["accuracy"]
    cc, cm = acc(C.CLEAN, C.CLEAN), acc(C.CLEAN, C.MASKED)
    if cc is None or cm is None:
        return None
    text = (f"Masks cost the clean model {100 * (cc - cm):.1f} points of accuracy "
            f"({100 * cc:.1f}% on clean faces, {100 * cm:.1f}% on the same faces masked)")
    how = transfer or {}
    masks = " on rigid masks" if geometry == "rigid" else ""
    wins = [f"{v} training{masks}{' (' + _HOW[how[v]] + ')' if how.get(v) in _HOW else ''} wins back "
            f"{100 * (acc(v, C.MASKED) - cm):.1f} ({100 * acc(v, C.MASKED):.1f}% on masked faces)"
            for v in (C.MASKED, C.MIXED) if acc(v, C.MASKED) is not None]
    return text + ("; mask-aware training: " + "; ".join(wins) if wins else "") + "."


def _outline(metrics: dict, cells: dict, models: list[str]) -> dict | None:
    """The section "What the mask's shape gives away": the outline probe per geometry, and every model's
    accuracy on masked faces in each geometry (`masked` is the training geometry's)."""
    probe = metrics.get("outline_probe")
    if not probe:
        return None
    train_geometry = metrics.get("mask_geometry", {}).get("train", "landmark")
    conds = [(C.MASKED, f"masked ({train_geometry}, as trained)")] + [
        (s, s) for s in dict.fromkeys(r["test"] for r in metrics["results"]) if C.geometry_of(s)]
    rows = [{"model": t, "cells": [cells.get((t, s)) for s, _ in conds]} for t in [C.BASELINE] + models]
    return {"probe": probe, "emotions": EMOTIONS, "conditions": [label for _, label in conds], "rows": rows}


def _saliency(run: Path) -> str | None:
    """The occlusion-map figure from RUN/occlusion.npz (written by the run; nothing is inferred here)."""
    z = load_occlusion(run)
    if z is None:
        return None
    keys = [k for k in z if not k.startswith("mean|")]
    maps = {f"{k.split('|')[0]} model, {k.split('|')[1]} faces": z[k] for k in keys}
    faces = {f"{k.split('|')[0]} model, {k.split('|')[1]} faces": z[f"mean|{k}"] for k in keys}
    return figures.saliency_grid(maps, faces) if maps else None


def _status_table(masking: dict | None) -> dict | None:
    """Per emotion (and in total): rows per landmark status, the share of the emotion's rows, and the share
    found by a detector (statuses starting with "detected")."""
    if not masking:
        return None
    per = masking["status_per_emotion"]
    statuses = masking.get("statuses") or list(next(iter(per.values())))
    rows = []
    for name, counts in list(per.items()) + [("total", {s: sum(c.get(s, 0) for c in per.values()) for s in statuses})]:
        n = max(sum(counts.get(s, 0) for s in statuses), 1)
        rows.append({"name": name, "cells": [(counts.get(s, 0), counts.get(s, 0) / n) for s in statuses],
                     "found": sum(counts.get(s, 0) for s in statuses if s.startswith("detected")) / n})
    return {"statuses": statuses, "rows": rows}


def build_report(run_dir: str | Path) -> Path:
    """Write RUN_DIR/report.html (atomically) and return its path. Missing pieces are noted, not fatal."""
    run = Path(run_dir)
    config = read_json(run / "config.json") or {}
    metrics = read_json(run / "metrics.json")
    masking = read_json(run / "masking.json")
    samples = load_samples(run)
    all_results = metrics["results"] if metrics else []
    results = [r for r in all_results if not C.set_of(r["test"])]  # FER2013's own conditions
    models = [m for m in dict.fromkeys(r["train"] for r in results) if m != C.BASELINE]
    preds = _read_all_predictions(run, all_results)
    trains, tests, cells = _matrix(results, preds)
    cells.update(_matrix([r for r in all_results if C.set_of(r["test"])], preds)[2])
    ctx = {"run": str(run), "config": config, "metrics": metrics, "models": models, "emotions": EMOTIONS,
           "trains": trains, "tests": tests, "cells": cells, "pct": _pct,
           "headline": _headline(cells, models, config.get("transfer"),
                                 config.get("config", {}).get("train_mask_geometry", "landmark")),
           "outline": _outline(metrics or {}, cells, models), "references": REFERENCES,
           "paired": _paired_tests(preds, models), "masking": masking,
           "status_table": _status_table(masking), "cross": crossdata.sections(run, metrics or {}, cells, models)}
    # Confusion matrices and per-emotion scores for the main conditions.
    conf_cells = [(f"{t} model / {s} test", cells[(t, s)]["confusion"]) for t in models for s in MAIN_TESTS
                  if (t, s) in cells]
    ctx["confusion_png"] = figures.confusion_grid(conf_cells) if conf_cells else None
    ctx["per_emotion"] = [(t, s, cells[(t, s)]["per_class"]) for t in models for s in MAIN_TESTS if (t, s) in cells]
    drops = {t: [cells[(t, C.CLEAN)]["per_class"][e]["f1"] - cells[(t, C.MASKED)]["per_class"][e]["f1"]
                 for e in EMOTIONS] for t in models if (t, C.CLEAN) in cells and (t, C.MASKED) in cells}
    ctx["f1_drop_png"] = figures.f1_drop_chart(drops) if drops else None
    histories = {v: h for v in models if (h := read_history(run / v / HISTORY)) and h["loss"]}
    ctx["curves_png"] = figures.training_curves(histories) if histories else None
    ctx["faces_png"] = (figures.face_grid(samples["clean"], samples["masked"], samples["labels"])
                        if samples is not None else None)
    ctx["saliency_png"] = _saliency(run)
    ctx["fits"] = fits.section(cells, models, metrics or {}, samples)
    outside = config.get("outside_models", {})
    ctx["robustness"] = robustness.table(cells, preds, models, outside)
    ctx["robustness_tests"] = robustness.against_masked_model(preds, outside)
    ctx["outside"] = outside
    if ctx["robustness"]:
        robustness.write_csv(run, ctx["robustness"])
    train_types = set(config.get("config", {}).get("train_mask_types", []))
    ctx["mask_type_tests"] = [s for s in tests if C.mask_type_of(s)]
    ctx["seen"] = {(t, s): (t in C.VARIANTS and C.uses_masks(t) and C.mask_type_of(s) in train_types)
                   for t in models for s in ctx["mask_type_tests"]}
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                             autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
                             undefined=jinja2.StrictUndefined)
    html = env.get_template("report.html.j2").render(**ctx)
    out = run / "report.html"
    with atomic_path(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return out
