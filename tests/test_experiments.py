from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

import experiments.pipeline as run_mod
from datasets import EMOTIONS, USAGES, load_dataset, load_fer2013
from experiments.backend import keras
from experiments.config import (PROFILES, SMOKE_ROWS, AugmentConfig, ConfigError, RunConfig, TrainConfig,
                                profile_config)
from experiments.training.config import MODEL_NAMES
from experiments.model.architectures import MODELS, build_model
from experiments.model.inference import load_model, predict_proba
from experiments.run import main as run_main
from experiments.masks import make_masks
from experiments.pipeline import run
from experiments.run import parse_args
from experiments.runfolder import read_predictions
from experiments.training import train as train_mod
from experiments.training.data import class_weights, train_dataset
from masking import MaskConfig, mask_dataset


def test_smoke_run_writes_the_whole_run_folder(smoke_run):
    for name in ("config.json", "metrics.json", "masking.json", "samples.npz", "report.html"):
        assert (smoke_run / name).exists(), name
    config = json.loads((smoke_run / "config.json").read_text())
    assert config["dataset_sha256"] and "keras" in config["versions"] and "durations" in config
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    cells = {(r["train"], r["test"]) for r in metrics["results"]}
    tests = {"clean", "masked", "masked:rigid", "masked:surgical", "masked:n95", "masked:kn95", "masked:cloth",
             "masked@chin", "masked@mouth", "masked@nose", "masked@high", "masked:held-out",
             "masked:held-out@chin", "masked:held-out@mouth", "masked:held-out@nose", "masked:held-out@high"}
    assert cells == {(t, s) for t in ("majority", "clean", "masked") for s in tests}
    family = metrics["mask_family"]  # trained on the template family, the photo family held out for testing
    assert (family["train"], family["appearance"], family["held_out"]) == ("template", "random", "photo")
    acc = {(r["train"], r["test"]): r["accuracy"] for r in metrics["results"]}
    for model in ("clean", "masked"):
        gap = family["gap"][model]
        assert gap["loss"] == pytest.approx(acc[(model, "masked")] - acc[(model, "masked:held-out")])
    held = {r["train"]: r["accuracy"] for r in metrics["results"] if r["test"] == "masked:held-out@nose"}
    assert held == {r["train"]: r["accuracy"] for r in metrics["results"] if r["test"] == "masked:held-out"}
    for r in metrics["results"]:
        assert 0 <= r["accuracy"] <= 1 and 0 <= r["macro_f1"] <= 1
        assert np.array(r["confusion"]).sum() == metrics["test_rows"]
        assert set(r["per_class"]) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
    assert metrics["mask_fit"]["train"] == "nose" and metrics["mask_fit"]["test"] == ["chin", "mouth", "nose", "high"]
    for model, mean in metrics["mask_fit"]["mean"].items():  # the mean over the four fits, per model
        fits = [r["accuracy"] for r in metrics["results"] if r["train"] == model and r["test"].startswith("masked@")]
        assert len(fits) == 4 and mean["accuracy"] == pytest.approx(sum(fits) / 4)
    nose = {r["train"]: r["accuracy"] for r in metrics["results"] if r["test"] == "masked@nose"}
    assert nose == {r["train"]: r["accuracy"] for r in metrics["results"] if r["test"] == "masked"}, \
        "masked@nose is the masked condition's own pixels"
    probe = metrics["outline_probe"]
    assert set(probe) == {"landmark", "rigid"} and all(0 <= p["accuracy"] <= 1 for p in probe.values())
    with open(smoke_run / "clean" / "history.csv") as f:
        hist = list(csv.DictReader(f))
    assert len(hist) == 1 and {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"} <= set(hist[0])
    for r in metrics["results"]:  # every figure is the predictions file's own
        rows, true, pred, proba = read_predictions(smoke_run / "predictions" /
                                                   f"{r['train']}__{r['test'].replace(':', '-')}.csv")
        assert len(rows) == metrics["test_rows"] and np.array_equal(pred, proba.argmax(1))
        assert r["accuracy"] == pytest.approx((true == pred).mean())


def test_smoke_run_scores_the_validation_conditions_on_publictest_and_names_the_roles(smoke_run, synth_csv):
    """metrics.json["validation"]: every model on PublicTest clean, under the training masks and under the
    validation family (surface), each figure its predictions file's own, on the PublicTest rows and never on a
    PrivateTest row; "roles" names what trains, what validates and what tests, and the report shows both."""
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    assert metrics["roles"]["train"]["families"] == ["template"]
    assert metrics["roles"]["validate"] == {"families": ["surface"], "rows": "PublicTest", "sets": []}
    assert metrics["roles"]["test"]["families"] == ["photo"] and metrics["roles"]["test"]["rows"] == "PrivateTest"
    cells = {(r["train"], r["test"]) for r in metrics["validation"]}
    assert cells == {(t, s) for t in ("majority", "clean", "masked") for s in ("clean", "masked", "masked(surface)")}
    public = load_fer2013(synth_csv).split("PublicTest")
    for r in metrics["validation"]:
        rows, true, pred, _ = read_predictions(smoke_run / "predictions" / "validation" /
                                               f"{r['train']}__{r['test'].replace(':', '-')}.csv")
        assert np.array_equal(rows, public.rows) and np.array_equal(true, public.labels)
        assert r["accuracy"] == pytest.approx((true == pred).mean())
    html = (smoke_run / "report.html").read_text()
    assert 'id="validation-table"' in html and 'id="roles"' in html and "masked(surface)" in html


def test_saved_model_alone_gives_the_reported_predictions(smoke_run):
    """model.keras, loaded by itself, reproduces the run's predictions file on the same PrivateTest rows."""
    config = json.loads((smoke_run / "config.json").read_text())
    test = load_dataset(config["data"], cache_dir=config["config"]["cache_dir"]).split("PrivateTest")
    rows, true, _, proba = read_predictions(smoke_run / "predictions" / "clean__clean.csv")
    position = {r: i for i, r in enumerate(test.rows.tolist())}
    images = test.images[[position[r] for r in rows.tolist()]]
    assert [EMOTIONS[k] for k in true] == [EMOTIONS[k] for k in test.labels[[position[r] for r in rows.tolist()]]]
    p = predict_proba(load_model(smoke_run / "clean" / "model.keras"), images)
    np.testing.assert_allclose(p, proba, atol=1e-4)  # the file rounds to 5 decimals


def _rerun_args(run_dir, cfg, *extra):
    return ["clean", "masked", "--profile", "smoke", "--data", cfg["data"], "--out", str(run_dir), "--no-report",
            "--cache-dir", cfg["config"]["cache_dir"], "--workers", "1", "--test-mask-types", "n95",
            "--test-mask-fits", "nose", *extra]  # fewer test conditions: reuse is what these tests check


def test_rerun_reuses_variants_with_the_same_settings(smoke_run, tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "copy"
    shutil.copytree(smoke_run, run_dir)

    def boom(*a, **k):
        raise AssertionError("a finished variant was trained again")
    monkeypatch.setattr(run_mod, "train_model", boom)
    cfg = json.loads((run_dir / "config.json").read_text())
    run(parse_args(_rerun_args(run_dir, cfg)))
    assert capsys.readouterr().out.count("finished earlier with the same settings") == 2


def test_rerun_with_other_settings_stops_before_work(smoke_run, tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "copy"
    shutil.copytree(smoke_run, run_dir)
    cfg = json.loads((run_dir / "config.json").read_text())
    before = {p.name: p.read_bytes() for p in run_dir.glob("*.json")}
    monkeypatch.setattr(run_mod, "make_masks", lambda *a: (_ for _ in ()).throw(AssertionError("masking ran")))
    assert run_main(_rerun_args(run_dir, cfg, "--epochs", "2")) == 2
    err = capsys.readouterr().err
    assert "train.epochs" in err and "--overwrite" in err and "clean" in err
    assert run_main(_rerun_args(run_dir, cfg, "--train-mask-types", "n95")) == 2
    err = capsys.readouterr().err
    assert "train_masks.mask_types" in err and "masked" in err and "train.epochs" not in err
    assert {p.name: p.read_bytes() for p in run_dir.glob("*.json")} == before, "nothing rewritten"
    assert not [p for p in run_dir.rglob(".*") if p.is_file()], "no temporary files left"


def test_overwrite_retrains_only_what_changed(smoke_run, tmp_path, monkeypatch):
    run_dir = tmp_path / "copy"
    shutil.copytree(smoke_run, run_dir)
    cfg = json.loads((run_dir / "config.json").read_text())
    trained = []
    trained_before = load_model(smoke_run / "masked" / "model.keras")  # what training returns: no need to train
    monkeypatch.setattr(run_mod, "train_model",
                        lambda train, val, c, out_dir, **kw: (trained.append(out_dir.name), trained_before)[1])
    run(parse_args(_rerun_args(run_dir, cfg, "--train-mask-types", "n95", "--overwrite")))
    assert trained == ["masked"]
    new = json.loads((run_dir / "config.json").read_text())
    assert new["config"]["train_mask_types"] == ["n95"]
    assert new["models"]["masked"]["train_masks"]["mask_types"] == ["n95"]
    assert json.loads((run_dir / "masked" / "done.json").read_text())["fingerprint"] == new["models"]["masked"]


def test_overwrite_keeps_the_old_model_when_input_is_bad(smoke_run, tmp_path, capsys):
    run_dir = tmp_path / "copy"
    shutil.copytree(smoke_run, run_dir)
    cfg = json.loads((run_dir / "config.json").read_text())
    (tmp_path / "noemotions" / "contempt").mkdir(parents=True)
    before = (run_dir / "masked" / "model.keras").read_bytes()
    args = _rerun_args(run_dir, cfg, "--train-mask-types", "n95", "--overwrite", "--test-data",
                       f"x={tmp_path / 'noemotions'}")
    assert run_main(args) == 2 and "no emotion folders" in capsys.readouterr().err
    assert (run_dir / "masked" / "model.keras").read_bytes() == before, "nothing deleted before the error"


def test_profile_applies_when_the_config_is_built():
    cfg = RunConfig(profile="smoke")
    assert cfg.train == PROFILES["smoke"] and cfg.limit_rows == SMOKE_ROWS
    assert RunConfig().train == PROFILES["default"] and RunConfig().limit_rows == 0
    with pytest.raises(ConfigError, match="variants 'masks' is unknown"):
        RunConfig(variants=("clean", "masks"))


def test_unwritable_out_exits_2(synth_csv, capsys):
    assert run_main(["clean", "--profile", "smoke", "--data", str(synth_csv), "--out", "/proc/maskfer"]) == 2
    assert "/proc/maskfer" in capsys.readouterr().err


def test_mixed_trains_on_both_copies_of_each_row(synth_csv, tmp_path, shared_cache, monkeypatch):
    seen = {}

    def spy(train, val, cfg, out_dir, **kw):
        seen[out_dir.name] = (train, val)
        raise KeyboardInterrupt  # the data is all this test needs
    monkeypatch.setattr(run_mod, "train_model", spy)
    with pytest.raises(KeyboardInterrupt):
        run(parse_args(["mixed", "--profile", "smoke", "--data", str(synth_csv), "--out", str(tmp_path / "r"),
                        "--cache-dir", str(shared_cache), "--workers", "1", "--no-report"]))
    train, val = seen["mixed"]
    fer = load_fer2013(synth_csv, cache_dir=tmp_path).split("Training")
    n = len(fer)
    assert len(train) == 2 * n and np.array_equal(train.rows[:n], train.rows[n:])
    np.testing.assert_array_equal(train.images[:n], fer.images)
    masked = mask_dataset(fer, MaskConfig(appearance="random"), workers=1, cache_dir=shared_cache).images
    np.testing.assert_array_equal(train.images[n:], masked)
    assert (train.images[n:] != train.images[:n]).reshape(n, -1).any(1).all(), "every second copy is masked"
    assert len(val) % 2 == 0 and np.array_equal(val.rows[:len(val) // 2], val.rows[len(val) // 2:])


def test_private_test_never_reaches_training(smoke_run, synth_csv, tmp_path, shared_cache, monkeypatch):
    fer = load_fer2013(synth_csv, cache_dir=tmp_path)
    private_rows = set(fer.split("PrivateTest").rows.tolist())
    seen = []
    real = train_mod.train_model
    trained = load_model(smoke_run / "clean" / "model.keras")  # what training returns: the data is what counts

    def spy(train, val, cfg, out_dir, **kw):
        seen.append((set(train.rows.tolist()), set(np.unique(train.usage).tolist()),
                     set(val.rows.tolist()), set(np.unique(val.usage).tolist())))
        return trained

    monkeypatch.setattr(run_mod, "train_model", spy)
    run(parse_args(["clean", "mixed", "--profile", "smoke", "--data", str(synth_csv), "--out", str(tmp_path / "r"),
                    "--cache-dir", str(shared_cache), "--workers", "1", "--no-report", "--test-mask-types", "n95",
                    "--test-mask-fits", "nose"]))
    assert len(seen) == 2
    for train_rows, train_usage, val_rows, val_usage in seen:
        assert train_usage == {USAGES.index("Training")} and val_usage == {USAGES.index("PublicTest")}
        assert not (train_rows | val_rows) & private_rows
    with pytest.raises(RuntimeError, match="PrivateTest"):
        real(fer, fer.split("PrivateTest"), profile_config("smoke"), tmp_path / "x")


def test_resume_after_interruption(synth_csv, tmp_path, monkeypatch):
    fer = load_fer2013(synth_csv, cache_dir=tmp_path)
    train, val = fer.split("Training"), fer.split("PublicTest")
    cfg = profile_config("smoke", epochs=2)
    original = keras.callbacks.BackupAndRestore.on_epoch_end

    def interrupt(self, epoch, logs=None):
        original(self, epoch, logs)
        raise KeyboardInterrupt("killed after epoch 1")

    monkeypatch.setattr(keras.callbacks.BackupAndRestore, "on_epoch_end", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train_mod.train_model(train, val, cfg, tmp_path / "v", verbose=0)
    monkeypatch.setattr(keras.callbacks.BackupAndRestore, "on_epoch_end", original)
    assert (tmp_path / "v" / "backup").exists()
    begun = []
    monkeypatch.setattr(train_mod.LogLearningRate, "on_epoch_begin", lambda self, epoch, logs=None: begun.append(epoch))
    model = train_mod.train_model(train, val, cfg, tmp_path / "v", verbose=0)
    assert begun == [1], "the resumed run starts at the second epoch"
    with open(tmp_path / "v" / "history.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [0, 1]
    assert not (tmp_path / "v" / "backup").exists() and model.output_shape == (None, 7)


def test_same_seed_same_pipeline_output(synth_arrays):
    images, labels, _ = synth_arrays
    def first_batches(seed):
        ds = train_dataset(images[:96], labels[:96], 32, seed, AugmentConfig())
        return [(x.numpy(), y.numpy()) for x, y in ds.take(2)]
    a, b, c = first_batches(0), first_batches(0), first_batches(1)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a[0][0], c[0][0])
    assert a[0][0].dtype == np.float32 and a[0][0].shape == (32, 48, 48, 1) and a[0][0].max() <= 255


@pytest.mark.parametrize("name", sorted(MODELS))
def test_registry_models_take_pixels_and_give_probabilities(name):
    model = build_model(name, width=8, dropout=0.1)
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 7)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("vgg99")


def test_cli_model_names_match_the_registry():
    assert set(MODEL_NAMES) == set(MODELS)
    with pytest.raises(ConfigError, match="model 'vgg99' is unknown") as e:
        TrainConfig(model="vgg99")
    assert e.value.field == "model"


def test_cli_errors_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        run_main(["clean", "sunglasses"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        run_main(["clean", "--epochs", "0"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        run_main(["masked", "--train-mask-types", "scarf"])
    assert e.value.code == 2 and "scarf" in capsys.readouterr().err
    assert run_main(["clean", "--data", str(tmp_path / "none.csv"), "--out", str(tmp_path / "o")]) == 2
    assert "none.csv" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("emotion,pixels,Usage\n9,1 2,Training\n")
    assert run_main(["clean", "--data", str(bad), "--out", str(tmp_path / "o2"), "--cache-dir", str(tmp_path)]) == 2
    assert "line 2" in capsys.readouterr().err


def test_default_profile_refuses_to_guess_data(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("FER2013_CSV", raising=False)
    assert run_main(["clean", "--out", str(tmp_path / "o")]) == 2
    assert "--data" in capsys.readouterr().err


def test_flip_tta_averages_the_horizontal_mirror():
    """predict_proba with flip_tta is invariant to mirroring faces left-right, and only to that."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Rescaling(1 / 255), keras.layers.Flatten(),
                              keras.layers.Dense(7, "softmax", kernel_initializer=keras.initializers.RandomNormal(0, 0.3))])
    x = np.random.default_rng(0).integers(0, 256, (6, 48, 48), dtype=np.uint8)
    p = predict_proba(model, x, flip_tta=True)
    np.testing.assert_allclose(p, predict_proba(model, x[:, :, ::-1], flip_tta=True), atol=1e-5)
    assert not np.allclose(p, predict_proba(model, x[:, ::-1, :], flip_tta=True), atol=1e-3)
    assert not np.allclose(p, predict_proba(model, x[:, :, ::-1], flip_tta=False), atol=1e-3)


def test_class_weights_change_the_loss(synth_arrays):
    images = synth_arrays[0][:100]
    labels = np.array([3] * 70 + [0] * 20 + [1] * 10, np.uint8)  # imbalanced, like FER2013
    weights = class_weights(labels)
    assert weights[3] < weights[0] < weights[1] and weights[2] == 0
    totals = np.bincount(labels, weights=weights[labels], minlength=7)
    assert np.allclose(totals[[0, 1, 3]], len(labels) / 3)  # every present class weighs the same in the loss
    assert np.allclose(class_weights(np.repeat(np.arange(7), 5)), 1.0), "a balanced set weighs 1 per row"
    model = build_model("maskfer_cnn", width=8, dropout=0.0)
    model.compile("sgd", keras.losses.CategoricalCrossentropy())
    plain = train_dataset(images, labels, 64, 0, None)
    weighted = train_dataset(images, labels, 64, 0, None, weights)
    x, y, w = next(iter(weighted))
    assert np.allclose(w.numpy(), weights[np.argmax(y.numpy(), 1)])
    assert not np.isclose(model.evaluate(plain, verbose=0), model.evaluate(weighted, verbose=0), rtol=1e-3)


def test_learning_rate_warms_up_then_decays_to_zero():
    cfg = profile_config("default", epochs=4, warmup_epochs=1.0, learning_rate=0.05)
    sched = train_mod.learning_rate_schedule(cfg, steps_per_epoch=10)
    rates = [float(sched(s)) for s in range(41)]
    assert rates[0] == 0.0 and abs(rates[10] - 0.05) < 1e-6 and max(rates) <= 0.05 + 1e-6
    assert all(a <= b for a, b in zip(rates[:10], rates[1:11])) and all(a >= b for a, b in zip(rates[10:], rates[11:]))
    assert rates[40] < 1e-6


def test_a_clean_only_run_masks_no_training_row(synth_csv, shared_cache, capsys):
    """Mask only what a run uses: `experiments.run clean` masks PublicTest and PrivateTest (validation and test
    conditions) and finds no landmark on a Training row; the log says how many rows it masks. A run that trains a
    mask-aware variant masks every row, and the same rows' masks are the same pixels either way."""
    fer = load_fer2013(synth_csv, cache_dir=shared_cache)
    clean = make_masks(RunConfig(variants=("clean",), profile="smoke", cache_dir=str(shared_cache),
                                         workers=1), fer)
    said = capsys.readouterr().out
    train = fer.usage == USAGES.index("Training")
    assert not np.isin(clean.masked.rows, fer.rows[train]).any() and len(clean.masked.rows) == (~train).sum()
    assert f"masking {(~train).sum()} of {len(fer)} rows" in said and "no Training row" in said
    both = make_masks(RunConfig(variants=("clean", "masked"), profile="smoke", cache_dir=str(shared_cache),
                                        workers=1), fer)
    assert len(both.masked.rows) == len(fer) and f"masking {len(fer)} of {len(fer)} rows" in capsys.readouterr().out
    keep = np.isin(both.masked.rows, clean.masked.rows)
    assert np.array_equal(both.masked.images[keep], clean.masked.images)
    assert set(clean.per_condition) == set(both.per_condition)
    for cond, images in clean.per_condition.items():
        assert np.array_equal(images, both.per_condition[cond]), cond
