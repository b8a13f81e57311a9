"""Outside models in run folders: `experiments.score` writes a run folder of them (rescoring keeps what is there,
a wrong card stops before --out exists, a training run is never overwritten) and `experiments.evaluate --model`
adds them to a finished run, paired with its own models. The models are test_outside's, built in the tests."""
from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from datasets import EMOTIONS
from test_outside import RAW, _imagenet_feature, card, keras_files, onnx_bins  # noqa: F401  (keras_files: a fixture)

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

def test_score_writes_a_run_folder_of_outside_models(keras_files, synth_csv, tmp_path, shared_cache, capsys):
    from experiments.score import main as score_main
    onnx_path = tmp_path / "rgb.onnx"
    onnx_bins(onnx_path, _imagenet_feature("rgb"))
    spec = card(tmp_path, "onnxcard", name="onnx-bins", file=str(onnx_path), scale="imagenet", output="logits")
    out = tmp_path / "scored"
    assert score_main([str(keras_files / "m.keras"), spec, "--scale=-1..1", "--data", str(synth_csv),
                       "--out", str(out), "--cache-dir", str(shared_cache), "--workers", "1",
                       "--test-mask-types", "n95"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    cells = {(r["train"], r["test"]) for r in metrics["results"]}
    assert cells == {(m, s) for m in ("majority", "m", "onnx-bins") for s in (
        "clean", "masked", "masked:rigid", "masked:n95", "masked@chin", "masked@mouth", "masked@nose", "masked@high",
        "masked:held-out", "masked:held-out@chin", "masked:held-out@mouth", "masked:held-out@nose",
        "masked:held-out@high")}
    assert metrics["mask_family"]["train"] == "template" and metrics["mask_family"]["held_out"] == "photo"
    assert set(metrics["mask_fit"]["mean"]) == {"majority", "m", "onnx-bins"}
    config = json.loads((out / "config.json").read_text())
    assert set(config["outside_models"]) == {"m", "onnx-bins"} and config["outside_models"]["m"]["source"] == ""
    with open(out / "robustness.csv") as f:
        table = list(csv.DictReader(f))
    assert {r["model"] for r in table} == {"m", "onnx-bins"}
    assert [r["rank"] for r in table] == ["1", "2"] and float(table[0]["masked_accuracy"]) >= float(table[1]["masked_accuracy"])
    html = (out / "report.html").read_text()
    assert "Models under masks" in html and config["outside_models"]["m"]["sha256"] in html
    assert "warning: m scores" in capsys.readouterr().out  # uniform-grey bins read synthetic faces at chance


def test_bad_score_input_exits_2_naming_the_field(keras_files, synth_csv, tmp_path, capsys):
    from experiments.score import main as score_main
    common = ["--data", str(synth_csv), "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c")]
    assert score_main([str(keras_files / "m.keras"), *common]) == 2  # a bare file without --scale
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "scale is missing" in err[0]
    assert score_main([str(keras_files / "m.keras"), str(keras_files / "m.keras"), "--scale", "0..1", *common]) == 2
    assert "name 'm' is used twice" in capsys.readouterr().err
    assert not (tmp_path / "o").exists(), "a bad card stops the command before --out is made"


def test_evaluate_adds_outside_models_to_a_finished_run(smoke_run, keras_files, tmp_path, capsys):
    from experiments.evaluate import main as evaluate_main
    run_dir = tmp_path / "copy"
    shutil.copytree(smoke_run, run_dir)
    spec = card(tmp_path, "k", name="bins", file=str(keras_files / "m.keras"), scale="-1..1")
    assert evaluate_main([str(run_dir), "--model", spec, "--workers", "1"]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    conditions = set(metrics["conditions"])
    assert {r["test"] for r in metrics["results"] if r["train"] == "bins"} == conditions
    from experiments.runfolder import read_predictions
    ours = read_predictions(run_dir / "predictions" / "masked__masked.csv")[0]
    theirs = read_predictions(run_dir / "predictions" / "bins__masked.csv")[0]
    assert np.array_equal(ours, theirs), "the same rows, paired"
    html = (run_dir / "report.html").read_text()
    assert 'id="outside-vs-masked"' in html and "bins" in html
    with open(run_dir / "robustness.csv") as f:
        assert {r["model"] for r in csv.DictReader(f)} == {"clean", "masked", "bins"}
    assert evaluate_main([str(run_dir), "--model", card(tmp_path, "r", name="masked", file=str(keras_files / "m.keras"),
                                                         scale="0..1")]) == 2
    assert "name 'masked' is reserved" in capsys.readouterr().err


@pytest.mark.parametrize("option,value", [("--test-mask-fits", "chin,cap"), ("--test-mask-geometry", "flat"),
                                          ("--test-mask-types", "scarf"), ("--train-mask-types", "scarf"),
                                          ("--train-mask-family", "paper"), ("--train-mask-appearance", "shiny"),
                                          ("--test-mask-families", "template,paper")])
def test_a_bad_mask_option_of_score_is_named_as_typed(option, value, synth_csv, tmp_path, capsys):
    from experiments.score import main as score_main
    with pytest.raises(SystemExit) as e:
        score_main(["m.keras", "--data", str(synth_csv), "--out", str(tmp_path / "o"), option, value])
    assert e.value.code == 2 and f"error: {option} " in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_score_never_overwrites_a_run_it_did_not_write(smoke_run, keras_files, synth_csv, tmp_path, capsys):
    import hashlib
    from experiments.score import main as score_main
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)

    def hashes():
        return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run.rglob("*")) if p.is_file()}
    before = hashes()
    assert score_main([str(keras_files / "m.keras"), "--scale=-1..1", "--data", str(synth_csv), "--out", str(run),
                       "--cache-dir", str(tmp_path / "c"), "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "experiments.score did not write" in err[0] and "experiments.evaluate" in err[0]
    assert hashes() == before, "every file as it was"


@pytest.mark.parametrize("case, field", [("all-positive logits", "output"), ("wrong output_name", "output_name"),
                                         ("fails at run time", "CARD")])
def test_a_wrong_card_exits_2_before_out_exists(case, field, synth_csv, tmp_path, capsys):
    from experiments.score import main as score_main
    path = tmp_path / f"{field}.onnx"
    if case == "fails at run time":  # loads, then cannot reshape 3x56x56 values into rows of 5
        onnx_bins(path, RAW)
        m = onnx.load(str(path))
        m.graph.initializer.append(helper.make_tensor("bad", TensorProto.INT64, [2], [-1, 5]))
        m.graph.node.insert(1, helper.make_node("Reshape", ["xf", "bad"], ["oops"]))
        m.graph.node[-1].input[1] = "b2"
        m.graph.node.append(helper.make_node("ReduceSum", ["oops"], ["junk"], keepdims=0))
        m.graph.output.append(helper.make_tensor_value_info("junk", TensorProto.FLOAT, []))
        onnx.save(m, str(path))
        spec = card(tmp_path, "rt", file=str(path), scale="0..255", output="logits", output_name="junk",
                    labels=["happy"])
    else:
        onnx_bins(path, RAW, shift=2000.0, probs=case == "wrong output_name")
        spec = card(tmp_path, "c", file=str(path), scale="0..255",
                    **({"output_name": "logitz"} if case == "wrong output_name" else {}))
    out = tmp_path / "out"
    assert score_main([spec, "--data", str(synth_csv), "--out", str(out), "--cache-dir", str(tmp_path / "c"),
                       "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and (field in err[0] if field != "CARD" else f"{path}" in err[0]), err
    assert not out.exists(), "nothing masked, no --out"


def test_evaluate_goes_on_when_a_scored_model_file_has_moved(smoke_run, keras_files, tmp_path, capsys):
    """A recorded outside model whose file is gone keeps its results; a test set added later scores the rest."""
    import cv2
    from datasets import make_synthetic
    from experiments.evaluate import main as evaluate_main
    run_dir = tmp_path / "copy"
    shutil.copytree(smoke_run, run_dir)
    moved = tmp_path / "moved.keras"
    shutil.copy(keras_files / "m.keras", moved)
    assert evaluate_main([str(run_dir), "--model", card(tmp_path, "k", name="bins", file=str(moved), scale="-1..1"),
                          "--workers", "1", "--no-report"]) == 0
    before = [r for r in json.loads((run_dir / "metrics.json").read_text())["results"] if r["train"] == "bins"]
    moved.unlink()
    images, labels, _ = make_synthetic(21, seed=3)
    for i, (img, lab) in enumerate(zip(images, labels)):
        (tmp_path / "set" / EMOTIONS[int(lab)]).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / "set" / EMOTIONS[int(lab)] / f"{i}.png"), img)
    capsys.readouterr()
    assert evaluate_main([str(run_dir), "--test-data", f"more={tmp_path / 'set'}", "--workers", "1",
                          "--cache-dir", str(tmp_path / "cache")]) == 0
    assert f"model bins: {moved} is not there any more" in capsys.readouterr().out
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert [r for r in metrics["results"] if r["train"] == "bins"] == before, "its recorded results stay"
    assert {r["train"] for r in metrics["results"] if r["test"].startswith("more:")} == {"majority", "clean", "masked"}
    assert "bins" in (run_dir / "report.html").read_text()


def test_rescoring_into_its_own_folder_keeps_what_is_there(keras_files, synth_csv, tmp_path, capsys, monkeypatch):
    import hashlib
    import experiments.outside.score as score_mod
    from experiments.score import main as score_main
    out, cache = tmp_path / "scored", tmp_path / "c"
    common = ["--data", str(synth_csv), "--out", str(out), "--cache-dir", str(cache), "--workers", "1", "--no-report",
              "--test-mask-types", "n95", "--test-mask-fits", "nose"]
    onnx_path = tmp_path / "two.onnx"
    onnx_bins(onnx_path, _imagenet_feature("rgb"))
    second = card(tmp_path, "second", name="second", file=str(onnx_path), scale="imagenet", output="logits")
    first = card(tmp_path, "first", name="first", file=str(keras_files / "m.keras"), scale="-1..1")
    assert score_main([first, *common]) == 0

    def files():
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (out / "predictions").glob("*.csv")}
    before, metrics = files(), json.loads((out / "metrics.json").read_text())
    real = score_mod.private_conditions
    monkeypatch.setattr(score_mod, "private_conditions", lambda *a, **k: pytest.fail("masked again"))
    capsys.readouterr()
    assert score_main([first, *common]) == 0
    assert "is up to date (first)" in capsys.readouterr().out
    assert files() == before and json.loads((out / "metrics.json").read_text()) == metrics
    monkeypatch.setattr(score_mod, "private_conditions", real)
    assert score_main([first, second, *common]) == 0
    assert "keeping the results of first; scoring second" in capsys.readouterr().out
    after = files()
    assert {k: after[k] for k in before} == before and any(k.startswith("second__") for k in after)
    results = json.loads((out / "metrics.json").read_text())["results"]
    assert [r for r in results if r["train"] != "second"] == metrics["results"]
    assert assert_cells(results) == {"majority", "first", "second"}
    assert score_main([second, *common]) == 0  # first is no longer asked for: its results and files go
    assert {r["train"] for r in json.loads((out / "metrics.json").read_text())["results"]} == {"majority", "second"}
    assert not any(k.startswith("first__") for k in files())
    assert score_main([second, *common[:-4], "--test-mask-types", "cloth", "--test-mask-fits", "nose"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "other settings (--test-mask-types)" in err[0] and "--overwrite" in err[0]
    assert score_main([second, *common[:-4], "--test-mask-types", "cloth", "--test-mask-fits", "nose",
                       "--overwrite"]) == 0
    assert "masked:cloth" in {r["test"] for r in json.loads((out / "metrics.json").read_text())["results"]}


def assert_cells(results) -> set[str]:
    """The models of a results list, after checking each has the same conditions as the baseline."""
    conds = {}
    for r in results:
        conds.setdefault(r["train"], []).append(r["test"])
    assert all(v == conds["majority"] for v in conds.values()), conds
    return set(conds)
