"""The report's first screen: the answer to *how much does a mask hurt these models, and what does mask-aware
training win back*, in sentences with 95% intervals, and one figure (accuracy from clean faces through the four
fits, one line per model). It adapts to the folder: a run (maskfer's models), a score folder (outside models
only) or a run with outside models added by `experiments.evaluate --model`."""
from __future__ import annotations

import numpy as np

from experiments import conditions as C

from .figures import cell_line, fits_figure
from .stats import compare

_HOW = {"scratch": "trained from scratch", "clean_init": "started from the clean model's weights",
        "distill": "started from the clean model's weights and distilled from its predictions on the clean twins"}


def kind(config: dict, models: list[str]) -> str:
    """"score" (outside models only), "run+outside" (a run with outside models added) or "run"."""
    outside = set(config.get("outside_models", {}))
    if config.get("kind") == "score" or (outside and not set(models) - outside):
        return "score"
    return "run+outside" if outside else "run"


def _correct(preds: dict, model: str, condition: str):
    p = preds.get((model, condition))
    return None if p is None else (p[0], p[1] == p[2])


def paired(preds: dict, a: tuple[str, str], b: tuple[str, str]) -> dict | None:
    """Accuracy of a minus accuracy of b on the same rows (`stats.compare`): {"diff", "low", "high", "p", "a",
    "b"}; None where either is missing or the rows differ."""
    c = compare(preds, a, b)
    return None if c is None else {"diff": c["diff"], "low": c["low"], "high": c["high"], "p": c["p_value"],
                                   "a": c["acc_a"], "b": c["acc_b"]}


def _pts(d: dict) -> str:
    return f"{100 * d['diff']:.1f} points [{100 * d['low']:.1f}, {100 * d['high']:.1f}]"


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def _trained(family: dict | None) -> str:
    if (family or {}).get("train") == C.BOTH:
        return "both of maskfer's families, which it trained on, none held out"
    return "the family it trained on"


def sentences(kind_: str, preds: dict, models: list[str], config: dict, family: dict | None) -> list[str]:
    """The answer in sentences, every difference with its 95% paired bootstrap interval (in brackets)."""
    held = (family or {}).get("held_out")
    out = []
    if kind_ in ("run", "run+outside"):
        cost = paired(preds, (C.CLEAN, C.CLEAN), (C.CLEAN, C.MASKED))
        if cost:
            out.append(f"Masks cost the clean model {_pts(cost)} of accuracy ({100 * cost['a']:.1f}% on clean faces, "
                       f"{100 * cost['b']:.1f}% on the same faces masked; {_p(cost['p'])}).")
        how = config.get("transfer") or {}
        for v in (C.MASKED, C.MIXED):
            gain = paired(preds, (v, C.MASKED), (C.CLEAN, C.MASKED))
            if not gain:
                continue
            text = (f"{v.capitalize()} training{' (' + _HOW[how[v]] + ')' if how.get(v) in _HOW else ''} wins back "
                    f"{_pts(gain)} on masks of {_trained(family)} ({100 * gain['a']:.1f}% on masked faces)")
            gain_h = paired(preds, (v, C.HELD_OUT), (C.CLEAN, C.HELD_OUT))
            loss = paired(preds, (v, C.MASKED), (v, C.HELD_OUT))
            if gain_h and loss:
                text += (f", and {_pts(gain_h)} on masks of the held-out {held} family, which no model saw in "
                         f"training{' and no choice looked at' if held in C.TEST_ONLY else ''} "
                         f"({100 * gain_h['a']:.1f}%): it loses {_pts(loss)} when the masks are not of its "
                         "training family")
            out.append(text + ".")
            clean = paired(preds, (v, C.CLEAN), (C.CLEAN, C.CLEAN))
            if clean:
                out.append(f"On clean faces the {v} model scores {100 * clean['a']:.1f}% ({_pts(clean)} against the "
                           "clean model).")
    if kind_ in ("score", "run+outside"):
        outside = list(config.get("outside_models", {}))
        ranked = sorted((m for m in outside if (m, C.MASKED) in preds),
                        key=lambda m: -float(np.mean(preds[(m, C.MASKED)][1] == preds[(m, C.MASKED)][2])))
        parts = []
        for i, m in enumerate(ranked, 1):
            cost = paired(preds, (m, C.CLEAN), (m, C.MASKED))
            if not cost:
                continue
            text = (f"{i}. {m}: {100 * cost['b']:.1f}% on masked faces, {100 * cost['a']:.1f}% on clean ones "
                    f"(masks cost {_pts(cost)})")
            ho = _correct(preds, m, C.HELD_OUT)
            if ho is not None:
                text += f", {100 * ho[1].mean():.1f}% on the {held} family's masks"
            vs = paired(preds, (m, C.MASKED), (C.MASKED, C.MASKED)) if kind_ == "run+outside" else None
            if vs:
                text += (f"; against maskfer's masked model on masked faces {'+' if vs['diff'] >= 0 else ''}"
                         f"{_pts(vs)} (exact McNemar {_p(vs['p'])})")
            parts.append(text)
        if parts:
            out.append("Outside models, ranked by accuracy on masked faces: " + "; ".join(parts) + ".")
    if not out:  # a folder without the clean model and without outside models: each model's own figures
        for m in models:
            c, k = _correct(preds, m, C.CLEAN), _correct(preds, m, C.MASKED)
            if c is not None and k is not None:
                out.append(f"The {m} model: {100 * c[1].mean():.1f}% on clean faces, {100 * k[1].mean():.1f}% on "
                           "the same faces masked.")
    return out


def figure(cells: dict, models: list[str], colours: dict) -> str | None:
    """Accuracy (95% bootstrap intervals) from clean faces through the fits, one line per model; the held-out
    family's masks dashed, with open markers (`figures.fits_figure`). Without fits: clean, masked and held-out as
    the axis."""
    fits = [f for f in C.FITS if any((m, C.fit_condition(f)) in cells for m in models)]
    axis = ([("clean", C.CLEAN, C.CLEAN)] + [(f, C.fit_condition(f), C.held_out_condition(f)) for f in fits]
            if fits else [("clean", C.CLEAN, C.CLEAN), ("masked", C.MASKED, C.HELD_OUT)])
    shown = [m for m in models if all((m, s) in cells for _, s, _ in axis)]
    if not shown:
        return None
    lines = []
    for m in shown:
        lines.append(cell_line(cells, m, [t[1] for t in axis], False))
        held = [t[2] for t in axis]
        if all((m, s) in cells for s in held):
            lines.append(cell_line(cells, m, held, True))
    return fits_figure([t[0] for t in axis], lines, "how the mask is worn (low to high)" if fits else "test faces",
                       "accuracy, % (95% CI)", colours)
