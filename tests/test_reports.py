from __future__ import annotations

import html
import html as html_lib
import re
import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from reports import build_report
from reports.__main__ import main as reports_main
from reports.stats import bootstrap_ci, mcnemar_exact


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.cells, self.refs, self.text, self.tags = [], [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "data-metric" in a:
            self.cells.append(a)
        for key in ("src", "href"):
            if key in a:
                self.refs.append(a[key])
        if tag == "link" or tag == "script":
            self.refs.append(a.get("src") or a.get("href") or tag)

    def handle_data(self, data):
        self.text.append(data)


def _parse(path: Path) -> _Collect:
    p = _Collect()
    p.feed(path.read_text())
    p.close()
    return p


def test_report_numbers_match_metrics(smoke_run):
    html = smoke_run / "report.html"
    parsed = _parse(html)
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    expected = {(r["train"], r["test"], m): r[m] for r in metrics["results"] for m in ("accuracy", "macro_f1")}
    got = {(c["data-train"], c["data-test"], c["data-metric"]): float(c["data-value"]) for c in parsed.cells}
    assert got.keys() == expected.keys()
    for k, v in expected.items():
        assert got[k] == pytest.approx(v)
    text = html.read_text()
    for r in metrics["results"]:
        assert f"{100 * r['accuracy']:.2f}" in text
    sections = ("The answer", "Models under masks", "How the mask is worn", "Per emotion", "Per mask type",
                "Validation: where choices are made", "Where the models look", "What the mask's shape gives away",
                "How the masks were made", "Training", "Caveats", "Method and provenance")
    for n, section in enumerate(sections, 1):  # numbered in the reading order, each in the contents
        assert '<h2 id="' in text and f'">{n}. {section}</h2>' in html_lib.unescape(text).replace("&#39;", "'")
        assert f">{section}</a></li>" in html_lib.unescape(text)
    assert "Paired tests" in text and "Confusion matrices" in text and 'class="note"' not in text


def test_report_is_self_contained(smoke_run):
    parsed = _parse(smoke_run / "report.html")
    assert parsed.refs, "figures are embedded"
    for ref in parsed.refs:
        assert ref.startswith("data:image/png;base64,") or ref.startswith("#"), ref[:60]
    assert "script" not in parsed.tags and "link" not in parsed.tags
    assert "http://" not in (smoke_run / "report.html").read_text()


def test_strings_are_escaped_and_missing_pieces_noted(smoke_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    config = json.loads((run / "config.json").read_text())
    config["command"] = "<script>alert('x')</script>"
    (run / "config.json").write_text(json.dumps(config))
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["results"] = [r for r in metrics["results"] if r["train"] != "masked"]  # a clean-only run
    (run / "metrics.json").write_text(json.dumps(metrics))
    for p in ("masking.json", "samples.npz", "occlusion.npz"):
        (run / p).unlink()
    shutil.rmtree(run / "masked")
    shutil.rmtree(run / "clean")
    html = build_report(run).read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html
    assert 'class="note"' not in html, "no empty boxes: a section without its data is left out"
    absent = html[html.index('id="absent"'):]
    absent = absent[:absent.index("</p>")]
    for section, hint in (("training", "python -m experiments.run"), ("where the models look", "occlusion maps"),
                          ("how the masks were made", "masking.json")):
        assert section in absent and hint in absent
        assert f">{section.capitalize()}</a>" not in html
    assert "clean model on masked test" in html  # the clean-model paired test is still there


def test_reports_cli_reads_the_folder_without_tensorflow(smoke_run, tmp_path, capsys):
    assert reports_main([str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    (run / "report.html").unlink()
    code = ("import sys; from reports.__main__ import main; rc = main([sys.argv[1]]); "
            "print('modules', 'tensorflow' in sys.modules, 'keras' in sys.modules); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "modules False False" in done.stdout, "the report stage imports no TensorFlow and runs no model"
    assert (run / "report.html").stat().st_size > 10_000 and "Where the models look" in (run / "report.html").read_text()
    assert "No saliency maps" not in (run / "report.html").read_text()


def test_headline_matches_metrics(smoke_run):
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    acc = {(r["train"], r["test"]): r["accuracy"] for r in metrics["results"]}
    text = html.unescape(" ".join((smoke_run / "report.html").read_text().split()))
    cc, cm, mm = acc[("clean", "clean")], acc[("clean", "masked")], acc[("masked", "masked")]
    ch, mh = acc[("clean", "masked:held-out")], acc[("masked", "masked:held-out")]
    for sentence, diff in ((f"Masks cost the clean model {100 * (cc - cm):.1f} points [", cc - cm),
                           ("Masked training (started from the clean model's weights) wins back "
                            f"{100 * (mm - cm):.1f} points [", mm - cm),
                           (f"and {100 * (mh - ch):.1f} points [", mh - ch),
                           (f"it loses {100 * (mm - mh):.1f} points [", mm - mh)):
        assert sentence in text
        low, high = map(float, re.match(r"(-?[\d.]+), (-?[\d.]+)\]", text[text.index(sentence) + len(sentence):]).groups())
        assert low - 0.05 <= 100 * diff <= high + 0.05, "the interval holds its own difference"
    assert f"({100 * cc:.1f}% on clean faces, {100 * cm:.1f}% on the same faces masked;" in text
    assert f"({100 * mm:.1f}% on masked faces)" in text and "held-out photo family" in text
    assert "no model saw in training and no choice looked at" in text


def test_stats():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 7, 500)
    p = np.where(rng.random(500) < 0.7, t, rng.integers(0, 7, 500))
    lo, hi = bootstrap_ci(t, p, "accuracy")
    acc = (t == p).mean()
    assert lo < acc < hi and hi - lo < 0.1
    lo_f, hi_f = bootstrap_ci(t, p, "macro_f1")
    assert 0 < lo_f < hi_f < 1
    a = np.array([1] * 30 + [0] * 5 + [1] * 60, bool)
    b = np.array([0] * 30 + [1] * 5 + [1] * 60, bool)
    res = mcnemar_exact(a, b)
    assert (res["a_only"], res["b_only"]) == (30, 5) and res["p_value"] < 0.001
    assert mcnemar_exact(a, a)["p_value"] == 1.0


def test_vectorised_macro_f1_is_scikit_learns():
    """The bootstrap's macro-F1 (every resample at once) equals the score's, row by row, absent labels included."""
    from experiments.evaluation.metrics import macro_f1
    from reports.stats import macro_f1_along
    rng = np.random.default_rng(2)
    t = rng.integers(0, 5, (40, 60))  # labels 5 and 6 never true
    p = np.where(rng.random((40, 60)) < 0.5, t, rng.integers(0, 6, (40, 60)))  # 6 never predicted either
    for labels in (None, [0, 1, 2, 3, 4, 5], [2, 6]):
        got = macro_f1_along(t, p, labels)
        want = [macro_f1(t[i], p[i], labels) for i in range(len(t))]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(macro_f1_along(t.T, p.T, axis=0), macro_f1_along(t, p), atol=1e-12)


def test_macro_f1_interval_is_drawn_around_the_sets_own_figure():
    """On a set without neutral the score averages over six emotions; so must its interval."""
    from experiments.evaluation.metrics import macro_f1
    rng = np.random.default_rng(1)
    t = rng.integers(0, 6, 600)  # no neutral (6)
    p = np.where(rng.random(600) < 0.6, t, rng.integers(0, 7, 600))
    six = list(range(6))
    figure = macro_f1(t, p, six)
    lo, hi = bootstrap_ci(t, p, "macro_f1", six)
    assert lo < figure < hi
    lo7, hi7 = bootstrap_ci(t, p, "macro_f1")  # averaging over seven puts the interval elsewhere
    assert hi7 < figure


def test_every_interval_in_the_report_contains_its_figure(smoke_run, tmp_path):
    """A run with a six-emotion cross-dataset set: each printed interval holds the figure printed beside it."""
    import re
    from datasets import make_synthetic, write_fer_csv
    from experiments.evaluate import main as evaluate_main
    images, labels, usage = make_synthetic(420, seed=5)
    keep = labels != 6
    write_fer_csv(tmp_path / "six.csv", images[keep], labels[keep], usage[keep])
    run_dir = tmp_path / "run"
    shutil.copytree(smoke_run, run_dir)
    assert evaluate_main([str(run_dir), "--test-data", f"six={tmp_path / 'six.csv'}", "--workers", "1",
                          "--cache-dir", str(tmp_path / "c")]) == 0
    html = (run_dir / "report.html").read_text()
    cells = re.findall(r'data-test="([^"]+)" data-metric="(\w+)" data-value="([^"]+)">[0-9.]+(?:<br>| )'
                       r'<span class="ci">\[([0-9.]+), ([0-9.]+)\]</span>', html)
    six = [c for c in cells if c[0].startswith("six:")]
    assert len(six) == 12 and {c[1] for c in six} == {"accuracy", "macro_f1"}
    outside = [c for c in cells if not float(c[3]) <= round(100 * float(c[2]), 2) <= float(c[4])]
    assert outside == []


def test_the_report_shows_how_the_mask_is_worn(smoke_run):
    """The fits section: one row per model with its accuracy at clean and at each fit (the metrics' own
    figures), the two curve figures and the faces per fit."""
    html = (smoke_run / "report.html").read_text()
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    assert 'id="fits-table"' in html and 'id="fits-first"' in html and "example faces per fit" in html
    for r in metrics["results"]:
        if r["test"].startswith("masked@") and r["train"] != "majority":
            assert f'data-fit="{r["train"]}|{r["test"]}" data-value="{r["accuracy"]}"' in html


def test_robustness_table_and_mcnemar_against_a_hand_computation():
    """Ten paired rows: the cost of masks, its bootstrap interval's bracket, the rank, relative robustness and the
    McNemar counts and p-value, each worked out by hand."""
    from experiments import conditions as C
    from reports.robustness import against_masked_model, table
    rows = np.arange(10)
    labels = np.zeros(10, int)
    right = lambda k: np.array([0] * k + [1] * (10 - k))  # noqa: E731  (predictions with k rows right)
    preds = {("m", C.CLEAN): (rows, right(8), labels), ("m", C.MASKED): (rows, right(5), labels),
             ("o", C.CLEAN): (rows, right(6), labels), ("o", C.MASKED): (rows, right(6), labels),
             (C.MASKED, C.MASKED): (rows, right(5), labels)}
    cells = {(m, s): {"accuracy": np.mean(p[1] == p[2]), "macro_f1": 0.0} for (m, s), p in preds.items()}
    got = {r["model"]: r for r in table(cells, preds, ["m", "o"], {"o": {}})}
    assert got["m"]["mask_cost"] == pytest.approx(0.3) and got["o"]["mask_cost"] == pytest.approx(0.0)
    assert 0 <= got["m"]["mask_cost_low"] <= 0.3 <= got["m"]["mask_cost_high"] <= 0.6 + 1e-9, "never below 0: masked right implies clean right"
    assert got["o"]["mask_cost_low"] == got["o"]["mask_cost_high"] == 0.0, "no discordant row: no spread"
    assert (got["o"]["rank"], got["m"]["rank"]) == (1, 2) and got["m"]["relative_robustness"] == pytest.approx(0.625)
    (mc,) = against_masked_model(preds, {"o": {}})
    # o right on rows 0..5, the masked model on rows 0..4: o alone right on row 5, the masked model never alone
    assert (mc["a_only"], mc["b_only"]) == (1, 0) and mc["p_value"] == pytest.approx(1.0)
    m = mcnemar_exact(np.array([1] * 8 + [0] * 2, bool), np.array([0] * 8 + [1] * 2, bool))
    assert (m["a_only"], m["b_only"]) == (8, 2) and m["p_value"] == pytest.approx(2 * 56 / 1024)  # 2 P(X<=2), n=10


def test_first_failures_names_the_first_fit_that_halves_an_emotions_recall():
    from datasets import EMOTIONS
    from experiments import conditions as C
    from reports.fits import first_failures
    recall = {C.CLEAN: 0.8, C.fit_condition("chin"): 0.7, C.fit_condition("mouth"): 0.4, C.fit_condition("nose"): 0.1}
    cells = {("m", s): {"per_class": {e: {"recall": r if e == "happy" else (0.0 if e == "disgust" else 0.5)}
                                      for e in EMOTIONS}} for s, r in recall.items()}
    points = [("clean", C.CLEAN)] + [(f, C.fit_condition(f)) for f in ("chin", "mouth", "nose")]
    got = first_failures(cells, "m", points)
    assert got["happy"] == "mouth", "0.4 is half of 0.8: the first fit at or below half"
    assert got["disgust"] is None, "no clean recall to lose"
    assert got["sad"] is None, "0.5 at every fit holds"


def test_the_answer_names_what_the_masked_model_trained_on():
    """The answer's sentence says which masks a gain is measured on: the training family beside the held-out one,
    or, for a model trained on both families, that none is held out (and no held-out sentence)."""
    from reports.answer import sentences
    rng = np.random.default_rng(0)
    rows, labels = np.arange(200), rng.integers(0, 7, 200)
    def guess(right):  # predictions right on that share of rows
        return np.where(rng.random(200) < right, labels, (labels + 1) % 7)
    preds = {(m, c): (rows, labels, guess(r)) for m, c, r in (
        ("clean", "clean", 0.7), ("clean", "masked", 0.3), ("clean", "masked:held-out", 0.3),
        ("masked", "clean", 0.65), ("masked", "masked", 0.6), ("masked", "masked:held-out", 0.5))}
    cfg = {"transfer": {"masked": "clean_init"}}
    held = " ".join(sentences("run", preds, ["clean", "masked"], cfg, {"train": "template", "held_out": "surface"}))
    assert "the family it trained on" in held and "held-out surface family" in held
    both = " ".join(sentences("run", {k: v for k, v in preds.items() if k[1] != "masked:held-out"},
                              ["clean", "masked"], cfg, {"train": "both", "held_out": None}))
    assert "both of maskfer's families, which it trained on, none held out" in both and "held-out" not in both
