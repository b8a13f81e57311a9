"""`experiments.score` writes nothing or everything: an up-to-date rescore writes no file (the report included), a
model that fails part-way leaves the folder as it was, and results whose masks another version of a renderer drew
are scored again, never paired with new ones (`metrics.json["mask_keys"]`)."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from experiments.backend import keras
from experiments.outside.model import OutsideModel
from experiments.score import main as score_main


def _model(path, seed):
    rng = np.random.default_rng(seed)
    model = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(7), keras.layers.Softmax()])
    model.layers[1].set_weights([rng.normal(0, 1, (1, 7)).astype(np.float32), rng.normal(0, 1, 7).astype(np.float32)])
    model.save(path)
    return str(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("score-models")
    return _model(d / "a.keras", 0), _model(d / "b.keras", 1)


def _hashes(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _args(cards, synth_csv, out, cache):
    return [*cards, "--scale", "0..1", "--data", str(synth_csv), "--out", str(out), "--cache-dir", str(cache),
            "--workers", "1", "--test-mask-types", "n95", "--test-mask-fits", "nose"]


def test_an_up_to_date_score_writes_no_file_and_a_failure_leaves_the_folder_as_it_was(
        models, synth_csv, shared_cache, tmp_path, capsys, monkeypatch):
    out = tmp_path / "scored"
    assert score_main(_args(models[:1], synth_csv, out, shared_cache)) == 0
    before = _hashes(out)
    assert "report.html" in before and "metrics.json" in before
    assert score_main(_args(models[:1], synth_csv, out, shared_cache)) == 0
    assert "up to date" in capsys.readouterr().out
    assert _hashes(out) == before, "an up-to-date rescore writes no file, report.html included"

    calls = {"n": 0}
    real = OutsideModel.outputs

    def failing(self, images):  # the second model's runtime fails on its fifth batch (of seven conditions)
        if self.name == "b":
            calls["n"] += 1
            if calls["n"] >= 5:
                self.adapter.run = lambda x: (_ for _ in ()).throw(RuntimeError("device lost"))
        return real(self, images)
    monkeypatch.setattr(OutsideModel, "outputs", failing)
    assert score_main(_args(models, synth_csv, out, shared_cache)) == 2
    assert "device lost" in capsys.readouterr().err
    assert calls["n"] >= 5, "the failure came part-way through the scoring"
    assert _hashes(out) == before, "a failed rescore leaves every file as it was"
    assert not any(p.name.startswith(f".{out.name}") for p in tmp_path.iterdir()), "no work folder left behind"


@pytest.mark.slow
def test_results_drawn_by_another_renderer_version_are_scored_again(models, synth_csv, shared_cache, tmp_path,
                                                                      capsys, monkeypatch):
    from masking import pipeline
    out = tmp_path / "scored"
    assert score_main(_args(models[:1], synth_csv, out, shared_cache) + ["--no-report"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    keys = metrics["mask_keys"]
    assert keys["masked:held-out"]["family"] == "photo" and keys["masked"]["appearance"] == "random"
    assert all("masking_version" in k for k in keys.values())
    capsys.readouterr()
    monkeypatch.setattr(pipeline, "CLEARANCE_VERSION", pipeline.CLEARANCE_VERSION + 1)  # a new eye clearance
    assert score_main(_args(models, synth_csv, out, shared_cache) + ["--no-report"]) == 0
    said = capsys.readouterr().out
    assert "drawn by another version (differs in: clearance_version)" in said and "keeping" not in said
    again = json.loads((out / "metrics.json").read_text())
    assert again["mask_keys"]["masked"]["clearance_version"] == pipeline.CLEARANCE_VERSION
    assert {r["train"] for r in again["results"]} == {"majority", "a", "b"}


@pytest.mark.slow
def test_evaluate_refuses_to_pair_new_models_with_a_run_drawn_by_another_version(models, smoke_run, tmp_path,
                                                                                 capsys, monkeypatch):
    import shutil
    from experiments.evaluate import main as evaluate_main
    from masking import pipeline
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    before = _hashes(run)
    monkeypatch.setattr(pipeline, "CLEARANCE_VERSION", pipeline.CLEARANCE_VERSION + 1)
    assert evaluate_main([str(run), "--model", models[0], "--scale", "0..1", "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "drawn by another version" in err[0] and "clearance_version" in err[0]
    assert _hashes(run) == before, "nothing written"
