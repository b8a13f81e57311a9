"""Build STUDY/report.html from a study folder's study.json (one self-contained HTML file, no TensorFlow)."""
from __future__ import annotations

from pathlib import Path

import jinja2
import numpy as np

from datasets.atomic import atomic_path
from experiments.runfolder import read_json

from .figures import plt, to_uri


def _pm(s: dict, scale: float = 100.0) -> str:
    """"64.25 ± 0.31" (percent points), or "64.25 (one seed: no spread)"."""
    if s["sd"] is None:
        return f"{scale * s['mean']:.2f} (one seed: no spread)"
    return f"{scale * s['mean']:.2f} ± {scale * s['sd']:.2f}"


def _ci(s: dict, scale: float = 100.0) -> str:
    return "—" if s["ci95"] is None else f"[{scale * s['ci95'][0]:.2f}, {scale * s['ci95'][1]:.2f}]"


def headline(study: dict) -> list[str]:
    """One sentence per model: the cost of masks and the gain of mask-aware training, with their spread."""
    lines = []
    n = len(study["seeds"])
    seeds = f"{n} seed{'s' if n > 1 else ''}"
    for model in study["models"]:
        eff = {e["effect"]: e for e in study["effects"] if e["model"] == model}
        if "mask_cost" not in eff:
            continue
        parts = [f"{model}: masks cost the clean model {_pm(eff['mask_cost'])} points of accuracy ({seeds}"
                 + (f", 95% CI {_ci(eff['mask_cost'])})" if n > 1 else ")")]
        for key, what in (("masked_gain", "masked"), ("mixed_gain", "mixed")):
            if key in eff:
                parts.append(f"{what} training wins back {_pm(eff[key])}"
                             + (f" (95% CI {_ci(eff[key])})" if n > 1 else ""))
        lines.append("; ".join(parts) + ".")
    return lines


def seed_dots(study: dict, model: str) -> str:
    """Each cell's accuracy per seed (dots) and the mean ± sd (bar), one model."""
    cells = [c for c in study["cells"] if c["model"] == model and c["train"] != "majority"]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(cells)), 3.4))
    for i, c in enumerate(cells):
        acc = c["accuracy"]
        vals = 100 * np.array(list(acc["per_seed"].values()))
        ax.scatter(np.full(len(vals), i), vals, s=14, color="#2f6fdd", zorder=3)
        ax.errorbar(i, 100 * acc["mean"], yerr=0 if acc["sd"] is None else 100 * acc["sd"], fmt="_", ms=14,
                    color="black", capsize=3, zorder=2)
    ax.set_xticks(range(len(cells)), [f"{c['train']} / {c['test']}" for c in cells], rotation=60, ha="right",
                  fontsize=7)
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
        study=study, runs=runs, headline=headline(study), pm=_pm, ci=_ci,
        figures={m: seed_dots(study, m) for m in study["models"]})
    out = root / "report.html"
    with atomic_path(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
    return out
