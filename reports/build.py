"""Build RUN_DIR/report.html from a run folder (`experiments.run`, `experiments.score`, or a run with outside models
added by `experiments.evaluate --model`): one self-contained HTML file, read from the folder alone.

The page answers first (`answer`: sentences with intervals and one figure), then goes into the evidence in the
order a reader asks (`SECTIONS`). A section whose data the folder lacks is left out, and the contents says in one
line which command adds it."""
from __future__ import annotations

from pathlib import Path

import jinja2
import numpy as np

from datasets import EMOTIONS
from datasets.atomic import atomic_path
from experiments import conditions as C
from experiments.runfolder import (HISTORY, load_occlusion, load_samples, predictions_path, read_history,
                                   read_json, read_predictions, validation_predictions_path)

from . import answer, crossdata, figures, fits, robustness, visible
from .references import REFERENCES
from .stats import bootstrap_ci, compare

# (id, title, what adds it to a folder that lacks it), in the order a reader asks.
SECTIONS = (
    ("answer", "The answer", None),
    ("models", "Models under masks", "a model scored on clean and masked faces of the same rows"),
    ("fits", "How the mask is worn", "rerun with --test-mask-fits chin,mouth,nose,high"),
    ("emotions", "Per emotion", "a model scored on clean and masked faces of the same rows"),
    ("types", "Per mask type", "rerun with --test-mask-types surgical,n95,kn95,cloth"),
    ("datasets", "Other datasets", "python -m experiments.evaluate FOLDER --test-data NAME=PATH"),
    ("visible", "What the visible face can tell", "python -m experiments.run clean masked flat (the flat-mask "
     "reference)"),
    ("validation", "Validation: where choices are made", "a run of python -m experiments.run, which scores PublicTest "
     "under the validation families"),
    ("saliency", "Where the models look", "the occlusion maps that python -m experiments.run writes for its models"),
    ("outline", "What the mask's shape gives away", "the outline probe that python -m experiments.run makes"),
    ("masks", "How the masks were made", "masking.json and samples.npz, which python -m experiments.run and "
     "python -m experiments.score write"),
    ("training", "Training", "training curves: only a folder of python -m experiments.run trains models"),
    ("caveats", "Caveats", None),
    ("method", "Method and provenance", None),
)


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


def _cells(results: list[dict], preds: dict) -> dict:
    """{(train, test): result + its 95% bootstrap intervals ("ci_acc", "ci_f1")}."""
    cells = {}
    for r in results:
        pred = preds.get((r["train"], r["test"]))
        ci_acc = ci_f1 = (None, None)
        if pred is not None:
            _, t, p, _ = pred
            labels = [EMOTIONS.index(e) for e in r.get("emotions", EMOTIONS)]  # those its macro-F1 averages
            ci_acc, ci_f1 = bootstrap_ci(t, p, "accuracy"), bootstrap_ci(t, p, "macro_f1", labels)
        cells[(r["train"], r["test"])] = {**r, "ci_acc": ci_acc, "ci_f1": ci_f1}
    return cells


def _validation(run: Path, metrics: dict) -> dict | None:
    """The validation table (PublicTest and --validation-data sets): {"tests", "models", "cells", "roles"}, each
    cell with its 95% bootstrap intervals; None for a folder that scored none (made before roles existed)."""
    results = metrics.get("validation") or []
    if not results:
        return None
    preds = {}
    for r in results:
        path = validation_predictions_path(run, r["train"], r["test"])
        if path.exists():
            preds[(r["train"], r["test"])] = read_predictions(path)
    return {"tests": list(dict.fromkeys(r["test"] for r in results)),
            "models": list(dict.fromkeys(r["train"] for r in results)), "cells": _cells(results, preds),
            "roles": metrics.get("roles") or {}, "sets": metrics.get("validation_sets") or {}}


def _heat(values: list[float]) -> dict[float, str]:
    """A background colour per value: light (lowest) to a mid blue (highest); text stays dark and readable."""
    lo, hi = min(values), max(values)
    return {v: f"hsl(210, 75%, {96 - 28 * (v - lo) / (hi - lo if hi > lo else 1):.0f}%)" for v in values}


def _long_table(cells: dict, trains: list[str], tests: list[str], metric: str) -> dict:
    """Conditions as rows, models as columns (so that it grows down, not across), heat-coloured."""
    vals = [cells[(t, s)][metric] for t in trains for s in tests if (t, s) in cells]
    return {"metric": metric, "trains": trains, "tests": tests, "heat": _heat(vals) if vals else {},
            "ci": "ci_acc" if metric == "accuracy" else "ci_f1"}


def _paired_tests(preds: dict, models: list[str]) -> list[dict]:
    clean, masked, mixed = C.CLEAN, C.MASKED, C.MIXED
    pairs = [((clean, clean), (clean, masked), "masks on the clean model (clean vs masked test)")]
    for other in (masked, mixed):
        pairs.append(((clean, masked), (other, masked), f"clean vs {other} model, on masked test"))
        pairs.append(((clean, C.HELD_OUT), (other, C.HELD_OUT), f"clean vs {other} model, on held-out family test"))
        pairs.append(((other, masked), (other, C.HELD_OUT), f"{other} model: training family vs held-out family"))
        pairs.append(((clean, clean), (other, clean), f"clean vs {other} model, on clean test"))
    pairs.append(((masked, masked), (mixed, masked), "masked vs mixed model, on masked test"))
    out = []
    for a, b, label in pairs:
        res = compare(preds, a, b, interval=False) if a[0] in models and b[0] in models else None
        if res is not None:
            out.append({"label": label, "a": f"{a[0]} model on {a[1]} test", "b": f"{b[0]} model on {b[1]} test",
                        **res})
    return out


def _per_emotion(cells: dict, models: list[str]) -> list[dict]:
    """Per model: a row per emotion with F1 and recall on clean, masked and held-out faces (what it has)."""
    out = []
    for m in models:
        conds = [(label, s) for label, s in (("clean", C.CLEAN), ("masked", C.MASKED), ("held-out", C.HELD_OUT))
                 if (m, s) in cells]
        if len(conds) < 2:
            continue
        rows = [{"emotion": e, "f1": [cells[(m, s)]["per_class"][e]["f1"] for _, s in conds],
                 "recall": [cells[(m, s)]["per_class"][e]["recall"] for _, s in conds]} for e in EMOTIONS]
        out.append({"model": m, "conditions": [label for label, _ in conds], "rows": rows})
    return out


def _outline(metrics: dict, cells: dict, models: list[str]) -> dict | None:
    """The outline probe per geometry, and every model's accuracy on masked faces in each geometry."""
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


def _family_faces(samples) -> str | None:
    """Clean PrivateTest faces above the same faces with the training family's masks and the held-out family's."""
    if samples is None or "held_out" not in samples:
        return None
    labels = samples["labels"]
    idx = [int(i) for k in range(len(EMOTIONS)) for i in np.flatnonzero(labels == k)[:2]]
    return figures.mosaic([samples["clean"][idx], samples["masked"][idx], samples["held_out"][idx]],
                          ["clean", "training family", "held-out family"], [EMOTIONS[int(labels[i])][:3] for i in idx])


def context(run: Path) -> dict:
    """Everything the template shows, computed from the run folder alone."""
    config = read_json(run / "config.json") or {}
    metrics = read_json(run / "metrics.json") or {}
    masking = read_json(run / "masking.json")
    samples = load_samples(run)
    all_results = metrics.get("results", [])
    results = [r for r in all_results if not C.set_of(r["test"])]  # FER2013's own conditions
    trains = list(dict.fromkeys(r["train"] for r in results))
    tests = list(dict.fromkeys(r["test"] for r in results))
    models = [m for m in trains if m != C.BASELINE]
    preds = _read_all_predictions(run, all_results)
    cells = _cells(all_results, preds)
    colours = figures.model_colours(trains)
    kind = answer.kind(config, models)
    family = metrics.get("mask_family")
    outside = config.get("outside_models", {})
    ctx = {"run": str(run), "config": config, "metrics": metrics, "models": models, "emotions": EMOTIONS,
           "trains": trains, "tests": tests, "cells": cells, "pct": _pct, "kind": kind, "family": family,
           "answer": answer.sentences(kind, preds, models, config, family),
           "answer_png": answer.figure(cells, models, colours), "references": REFERENCES,
           "paired": _paired_tests(preds, models), "masking": masking, "status_table": _status_table(masking),
           "cross": crossdata.sections(run, metrics, cells, models), "outline": _outline(metrics, cells, models),
           "per_emotion": _per_emotion(cells, models), "outside": outside,
           "validation": _validation(run, metrics), "roles": metrics.get("roles"),
           "accuracy_table": _long_table(cells, trains, tests, "accuracy"),
           "f1_table": _long_table(cells, trains, tests, "macro_f1"),
           "colour_of": lambda m: colours.get(m, "#999999")}
    conf_cells = [(f"{t} model / {s} test", cells[(t, s)]["confusion"]) for t in models
                  for s in (C.CLEAN, C.MASKED, C.HELD_OUT) if (t, s) in cells]
    ctx["confusion_png"] = figures.confusion_grid(conf_cells) if conf_cells else None
    drops = {t: [cells[(t, C.CLEAN)]["per_class"][e]["f1"] - cells[(t, C.MASKED)]["per_class"][e]["f1"]
                 for e in EMOTIONS] for t in models if (t, C.CLEAN) in cells and (t, C.MASKED) in cells}
    ctx["f1_drop_png"] = figures.f1_drop_chart(drops) if drops else None
    histories = {v: h for v in models if (h := read_history(run / v / HISTORY)) and h["loss"]}
    ctx["curves_png"] = figures.training_curves(histories) if histories else None
    ctx["faces_png"] = (figures.face_grid(samples["clean"], samples["masked"], samples["labels"])
                        if samples is not None else None)
    ctx["family_png"] = _family_faces(samples)
    ctx["saliency_png"] = _saliency(run)
    ctx["fits"] = fits.section(cells, models, metrics, samples)
    ctx["visible"] = visible.table(cells, ctx["validation"], models)
    ctx["robustness"] = robustness.table(cells, preds, models, outside)
    ctx["robustness_tests"] = robustness.against_masked_model(preds, outside)
    if ctx["robustness"]:
        robustness.write_csv(run, ctx["robustness"])
    train_types = set(config.get("config", {}).get("train_mask_types", []))
    ctx["mask_type_tests"] = [s for s in tests if C.mask_type_of(s)]
    ctx["seen"] = {(t, s): (t in C.VARIANTS and C.uses_masks(t) and C.mask_type_of(s) in train_types)
                   for t in models for s in ctx["mask_type_tests"]}
    present = {"answer": True, "models": bool(ctx["robustness"]), "fits": bool(ctx["fits"]),
               "emotions": bool(ctx["per_emotion"]), "types": bool(ctx["mask_type_tests"]),
               "datasets": bool(ctx["cross"]), "validation": bool(ctx["validation"]),
               "visible": bool(ctx["visible"]), "saliency": bool(ctx["saliency_png"]), "outline": bool(ctx["outline"]),
               "masks": bool(masking or ctx["faces_png"]), "training": bool(ctx["curves_png"]), "caveats": True,
               "method": True}
    shown = [(i, title) for i, title, _ in SECTIONS if present[i]]
    ctx["sections"] = [(i, n, title) for n, (i, title) in enumerate(shown, 1)]
    ctx["number"] = {i: n for i, n, _ in ctx["sections"]}
    ctx["absent"] = [(title, hint) for i, title, hint in SECTIONS if not present[i] and hint]
    return ctx


def build_report(run_dir: str | Path) -> Path:
    """Write RUN_DIR/report.html (atomically) and return its path. Missing pieces leave their section out."""
    run = Path(run_dir)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                             autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
                             undefined=jinja2.StrictUndefined)
    html = env.get_template("report.html.j2").render(**context(run))
    out = run / "report.html"
    with atomic_path(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return out
