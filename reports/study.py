"""Build STUDY/report.html from a study folder's study.json (one self-contained HTML file, no TensorFlow)."""
from __future__ import annotations

from pathlib import Path

import jinja2
import numpy as np

from datasets.atomic import atomic_path
from experiments.runfolder import read_json

from experiments import conditions as C

from . import figures
from .figures import plt, to_uri


def _pm(s: dict, scale: float = 100.0) -> str:
    """"64.25 ± 0.31" (percent points), or "64.25 (one seed: no spread)"."""
    if s["sd"] is None:
        return f"{scale * s['mean']:.2f} (one seed: no spread)"
    return f"{scale * s['mean']:.2f} ± {scale * s['sd']:.2f}"


def _ci(s: dict, scale: float = 100.0) -> str:
    return "—" if s["ci95"] is None else f"[{scale * s['ci95'][0]:.2f}, {scale * s['ci95'][1]:.2f}]"


def headline(study: dict) -> list[str]:
    """One sentence per model: the cost of masks and the gain of mask-aware training (on its training family's
    masks and on the held-out family's), with their spread over seeds."""
    lines = []
    n = len(study["seeds"])
    seeds = f"{n} seed{'s' if n > 1 else ''}"

    def fig(e):
        return _pm(e) + (f" (95% CI {_ci(e)})" if n > 1 else "")
    for model in study["models"]:
        eff = {e["effect"]: e for e in study["effects"] if e["model"] == model}
        if "mask_cost" not in eff:
            continue
        parts = [f"{model}: masks cost the clean model {_pm(eff['mask_cost'])} points of accuracy ({seeds}"
                 + (f", 95% CI {_ci(eff['mask_cost'])})" if n > 1 else ")")]
        for what in ("masked", "mixed"):
            if f"{what}_gain" in eff:
                text = f"{what} training wins back {fig(eff[what + '_gain'])}"
                if f"{what}_gain_held_out" in eff:
                    text += f", and {fig(eff[what + '_gain_held_out'])} on the held-out family's masks"
                parts.append(text)
        if "masked_held_out_loss" in eff:
            parts.append(f"the masked model loses {fig(eff['masked_held_out_loss'])} on masks it never saw")
        lines.append("; ".join(parts) + ".")
    return lines


def fits_figure(study: dict) -> str | None:
    """Mean accuracy over seeds (95% t interval) from clean faces through the fits, one line per model and
    variant (each its own colour: two architectures never share one), the held-out family dashed
    (`figures.fits_figure`, as the run reports draw it). None when the runs scored no fits."""
    cells = {(c["model"], c["train"], c["test"]): c["accuracy"] for c in study["cells"]}
    fits = [f for f in C.FITS if any(k[2] == C.fit_condition(f) for k in cells)]
    if not fits:
        return None
    lines = []
    for (m, t) in dict.fromkeys((m, t) for m, t, _ in cells if t != C.BASELINE):
        for conds, held in (([C.fit_condition(f) for f in fits], False), ([C.held_out_condition(f) for f in fits], True)):
            keys = [(m, t, C.CLEAN)] + [(m, t, s) for s in conds]
            if not all(k in cells for k in keys):
                continue
            mean = np.array([cells[k]["mean"] for k in keys]) * 100
            half = np.array([0.0 if cells[k]["ci95"] is None else cells[k]["mean"] - cells[k]["ci95"][0]
                             for k in keys]) * 100
            lines.append({"model": f"{m} {t}", "held_out": held, "values": mean, "low": mean - half,
                          "high": mean + half})
    return figures.fits_figure(["clean"] + fits, lines, "how the mask is worn (low to high)",
                               "accuracy, % (mean, 95% CI)") if lines else None


def seed_dots(study: dict, model: str) -> str:
    """Each cell's accuracy per seed (dots) and the mean ± sd (bar), one model."""
    cells = [c for c in study["cells"] if c["model"] == model and c["train"] != "majority"]
    fig, ax = plt.subplots(figsize=(min(max(6.0, 0.3 * len(cells)), 11.0), 3.4))
    for i, c in enumerate(cells):
        acc = c["accuracy"]
        vals = 100 * np.array(list(acc["per_seed"].values()))
        ax.scatter(np.full(len(vals), i), vals, s=14, color="#2f6fdd", zorder=3)
        ax.errorbar(i, 100 * acc["mean"], yerr=0 if acc["sd"] is None else 100 * acc["sd"], fmt="_", ms=14,
                    color="black", capsize=3, zorder=2)
    ax.set_xticks(range(len(cells)), [f"{c['train']} / {c['test']}" for c in cells], rotation=60, ha="right",
                  fontsize=7)
    ax.set_xlim(-0.6, len(cells) - 0.4)
    ax.set_ylabel("accuracy, % (dots: seeds)")
    ax.set_title(model, fontsize=9)
    fig.tight_layout()
    return to_uri(fig)


def build_study_report(study_dir: str | Path) -> Path:
    """Write STUDY/report.html (atomically) from STUDY/study.json and return its path."""
    root = Path(study_dir)
    study = read_json(root / "study.json")
    if study is None:
        raise FileNotFoundError(f"{root}: no study.json")
    runs = [{**r, "report": f"{r['folder']}/report.html" if (root / r["folder"] / "report.html").exists() else None}
            for r in study["runs"]]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                             autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
                             undefined=jinja2.StrictUndefined)
    html = env.get_template("study.html.j2").render(
        study=study, runs=runs, headline=headline(study), pm=_pm, ci=_ci, fits_png=fits_figure(study),
        figures={m: seed_dots(study, m) for m in study["models"]},
        sections=[("answer", "The answer"), ("effects", "Effects, seed-paired"), ("cells", "Every cell"),
                  ("validation", "Validation and the ranking of recipes"), ("caveats", "Caveats"),
                  ("runs", "Runs and provenance")])
    out = root / "report.html"
    with atomic_path(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return out
