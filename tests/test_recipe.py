"""The recipe's parts: crops with test-time views inside the saved model, distillation from the clean
twin of each row, the method in the run record, and the training precision chosen from the CPU."""
from __future__ import annotations

import json

import numpy as np
import pytest

from datasets import FERData
from experiments import conditions as C
from experiments.backend import keras
from experiments.config import AugmentConfig, RunConfig, TrainConfig, TransferConfig
from experiments.model.architectures import build_model
from experiments.model.inference import load_model, predict_proba
from experiments.model.views import crop_offsets, with_views
from experiments.training.data import train_dataset
from experiments.training.precision import cpu_model, resolve_precision
from experiments.training.train import DistillationLoss
from experiments.training.transfer import method_of, teacher_targets, training_order


def test_saved_model_takes_48px_and_averages_its_crops(smoke_run):
    model = load_model(smoke_run / "clean" / "model.keras")
    backbone = model.get_layer("backbone")
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 7)
    assert backbone.input_shape == (None, 40, 40, 1)  # the smoke profile trains on 40 px crops
    assert {layer.compute_dtype for layer in backbone.layers} == {"float32"}  # saved in float32 whatever trained it
    x = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    p = predict_proba(model, x)
    np.testing.assert_allclose(p.sum(1), 1, rtol=1e-4)
    # the same average computed by hand: centre and four corners of 40 px, each also mirrored
    views = [x[:, t:t + 40, l:l + 40] for t, l in ((4, 4), (0, 0), (0, 8), (8, 0), (8, 8))]
    views += [v[:, :, ::-1] for v in views]
    by_hand = np.mean([backbone.predict(v[..., None].astype("float32"), verbose=0) for v in views], axis=0)
    np.testing.assert_allclose(p, by_hand, atol=1e-5)
    np.testing.assert_allclose(p, predict_proba(model, x[:, :, ::-1]), atol=1e-5)  # ten views: mirror-invariant
    assert not np.allclose(p, predict_proba(model, x[:, ::-1, :]), atol=1e-4)
    config = json.loads((smoke_run / "config.json").read_text())
    assert config["config"]["train"]["crop"] == 40 and config["config"]["train"]["views"] == "ten"


def test_view_sets_and_the_full_image():
    assert crop_offsets(48, 40, "centre") == [(4, 4, False), (4, 4, True)]
    assert len(crop_offsets(48, 40, "five")) == 5 and len(crop_offsets(48, 40, "ten")) == 10
    assert crop_offsets(48, 48, "ten") == [(0, 0, False), (0, 0, True)]  # no crop: the image and its mirror
    with pytest.raises(ValueError, match="views"):
        crop_offsets(48, 40, "twelve")
    model = with_views(build_model("maskfer_cnn", width=8, side=44), "five")
    x = np.random.default_rng(1).uniform(0, 255, (2, 48, 48, 1)).astype("float32")
    assert model.predict(x, verbose=0).shape == (2, 7)


def _split(n=12):
    rng = np.random.default_rng(0)
    clean = FERData(rng.integers(0, 256, (n, 48, 48), dtype=np.uint8), rng.integers(0, 7, n).astype(np.uint8),
                    np.zeros(n, np.uint8), np.arange(100, 100 + n), "x")
    masked_images = clean.images.copy()
    masked_images[:, 24:] = 200  # the lower half covered
    masked = FERData(masked_images, clean.labels, clean.usage, clean.rows, "y")
    return {(C.CLEAN, "Training"): clean, (C.MASKED, "Training"): masked}


def _fingerprint_teacher(images: np.ndarray) -> np.ndarray:
    """A stand-in teacher whose output identifies the image it saw (its mean grey of the lower half)."""
    m = images[:, 24:].reshape(len(images), -1).mean(1)
    p = np.zeros((len(images), 7), np.float32)
    p[:, 0] = m / 255.0
    p[:, 1] = 1 - p[:, 0]
    return p


def test_distillation_targets_come_from_the_clean_twin_of_each_row():
    split = _split()
    clean, masked = split[(C.CLEAN, "Training")], split[(C.MASKED, "Training")]
    t = teacher_targets(_fingerprint_teacher, split, C.MASKED)
    np.testing.assert_array_equal(t, _fingerprint_teacher(clean.images))
    assert not np.allclose(t, _fingerprint_teacher(masked.images))
    mixed = teacher_targets(_fingerprint_teacher, split, C.MIXED)  # clean copy, then masked copy: both clean twins
    np.testing.assert_array_equal(mixed, np.concatenate([t, t]))
    order = np.random.default_rng(3).permutation(len(clean))  # misaligned masked rows must be refused
    split[(C.MASKED, "Training")] = masked.take(order)
    with pytest.raises(ValueError, match="same order"):
        teacher_targets(_fingerprint_teacher, split, C.MASKED)


def test_training_batches_keep_each_row_with_its_teacher_targets():
    split = _split(40)
    masked = split[(C.MASKED, "Training")]
    teacher = _fingerprint_teacher(split[(C.CLEAN, "Training")].images)
    ds = train_dataset(masked.images, masked.labels, 16, seed=5, augment=None, teacher=teacher)
    x, y = next(iter(ds))
    x, y = x.numpy()[..., 0].astype(np.uint8), y.numpy()
    assert y.shape == (16, 14)
    for xi, yi in zip(x, y):  # find each shuffled image's row, then check its label and teacher columns
        row = int(np.flatnonzero((masked.images == xi).all(axis=(1, 2)))[0])
        assert yi[:7].argmax() == masked.labels[row]
        np.testing.assert_allclose(yi[7:], teacher[row], atol=1e-6)


def test_distillation_loss():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(7), 8).astype("float32")
    q = rng.dirichlet(np.ones(7), 8).astype("float32")
    onehot = np.eye(7, dtype="float32")[rng.integers(0, 7, 8)]
    ce = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(onehot, p)
    only_labels = DistillationLoss(alpha=0.0, temperature=4.0, label_smoothing=0.1)(np.hstack([onehot, q]), p)
    np.testing.assert_allclose(float(only_labels), float(ce), rtol=1e-4)
    same = DistillationLoss(alpha=1.0, temperature=4.0)(np.hstack([onehot, p]), p)
    other = DistillationLoss(alpha=1.0, temperature=4.0)(np.hstack([onehot, q]), p)
    assert abs(float(same)) < 1e-5 < float(other)


def test_transfer_method_in_the_run_record(smoke_run):
    config = json.loads((smoke_run / "config.json").read_text())
    assert config["models"]["masked"]["transfer"]["method"] == "clean_init" == config["transfer"]["masked"]
    assert config["models"]["masked"]["teacher"] == config["models"]["clean"]
    assert "transfer" not in config["models"]["clean"]
    train = json.loads((smoke_run / "masked" / "train.json").read_text())
    assert train["start"] == "clean model" and train["distilled"] is None
    assert json.loads((smoke_run / "clean" / "train.json").read_text())["start"] == "random weights"
    assert config["precision"] in ("float32", "bfloat16") and config["cpu"]


def test_without_a_clean_model_masked_trains_from_scratch():
    assert method_of(RunConfig(variants=("masked",), profile="smoke"), C.MASKED) == "scratch"
    assert method_of(RunConfig(variants=("mixed", "clean"), profile="smoke"), C.MIXED) == "clean_init"
    cfg = RunConfig(variants=("masked", "clean"), profile="smoke", transfer=TransferConfig(method="clean_init"))
    assert method_of(cfg, C.MASKED) == "clean_init" and method_of(cfg, C.CLEAN) is None
    assert training_order(("masked", "mixed", "clean")) == ["clean", "masked", "mixed"]


AVX2_ONLY = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B12
flags\t\t: fpu sse sse2 avx avx2 fma bmi2
"""
XEON_AMX = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8488C
flags\t\t: fpu avx avx2 avx512f avx512_bf16 amx_bf16 amx_tile
"""
ZEN4 = AVX2_ONLY.replace("bmi2", "bmi2 avx512f avx512_bf16").replace("7B12", "9B14")


def test_precision_follows_the_cpu_flags():
    assert resolve_precision("auto", AVX2_ONLY) == "float32"
    assert resolve_precision("auto", XEON_AMX) == "bfloat16"
    assert resolve_precision("auto", ZEN4) == "bfloat16"
    assert resolve_precision("auto", "") == "float32"
    assert resolve_precision("float32", XEON_AMX) == "float32"
    assert resolve_precision("bfloat16", AVX2_ONLY) == "bfloat16"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp8", AVX2_ONLY)
    assert cpu_model(XEON_AMX) == "Intel(R) Xeon(R) Platinum 8488C" and cpu_model(AVX2_ONLY) == "AMD EPYC 7B12"
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="half")


def test_bfloat16_model_computes_in_bfloat16_and_keeps_float32_weights_and_output():
    model = build_model("maskfer_cnn", "bfloat16", width=8, side=40)
    conv = model.get_layer("s1a_conv")
    assert conv.compute_dtype == "bfloat16" and conv.kernel.dtype == "float32"
    assert model.get_layer("probabilities").compute_dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"  # the policy was set only while building


def test_recomputed_batchnorm_statistics_are_the_mean_over_the_given_images():
    from experiments.training.precisebn import batchnorm_layers, recompute_batchnorm
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.BatchNormalization(momentum=0.99)])
    x = np.random.default_rng(0).normal(3.0, 2.0, (64, 4, 4, 1)).astype("float32")
    recompute_batchnorm(model, x, batch_size=16)
    bn = batchnorm_layers(model)[0]
    batch_means = [x[i:i + 16].mean() for i in range(0, 64, 16)]
    batch_vars = [x[i:i + 16].var() for i in range(0, 64, 16)]
    np.testing.assert_allclose(float(bn.moving_mean.numpy()[0]), np.mean(batch_means), rtol=1e-4)
    np.testing.assert_allclose(float(bn.moving_variance.numpy()[0]), np.mean(batch_vars), rtol=1e-3)
    assert bn.momentum == 0.99  # restored
    nested = with_views(build_model("maskfer_cnn", width=8, side=40))
    assert len(batchnorm_layers(nested)) == 6  # found inside the saved model's backbone too


def _retrain_masked(smoke_run, run_dir, *options) -> bytes:
    """Copy the smoke run to run_dir and rerun it there with `options` and --overwrite; returns the clean
    model's bytes from before."""
    import shutil
    from experiments.pipeline import run
    from experiments.run import parse_args
    shutil.copytree(smoke_run, run_dir)
    cfg = json.loads((run_dir / "config.json").read_text())
    clean_before = (run_dir / "clean" / "model.keras").read_bytes()
    run(parse_args(["clean", "masked", "--profile", "smoke", "--data", cfg["data"], "--out", str(run_dir),
                    "--no-report", "--cache-dir", cfg["config"]["cache_dir"], "--workers", "1", *options,
                    "--overwrite"]))
    return clean_before


@pytest.mark.slow
def test_distill_run_retrains_only_the_masked_model(smoke_run, tmp_path, capsys):
    run_dir = tmp_path / "copy"
    clean_before = _retrain_masked(smoke_run, run_dir, "--masked-start", "distill", "--distill-weight", "0.3")
    out = capsys.readouterr().out
    assert "clean: finished earlier" in out and "distilled from its predictions on the clean twins" in out
    assert (run_dir / "clean" / "model.keras").read_bytes() == clean_before
    train = json.loads((run_dir / "masked" / "train.json").read_text())
    assert train["distilled"] == {"alpha": 0.3, "temperature": 4.0}
    assert json.loads((run_dir / "config.json").read_text())["transfer"] == {"masked": "distill"}


@pytest.mark.slow
def test_a_finetune_seed_retrains_the_masked_model_on_the_same_clean_model(smoke_run, tmp_path, capsys):
    run_dir = tmp_path / "seeded"
    masked_before = load_model(smoke_run / "masked" / "model.keras").get_weights()
    clean_before = _retrain_masked(smoke_run, run_dir, "--finetune-seed", "7")
    assert "clean: finished earlier" in capsys.readouterr().out
    assert (run_dir / "clean" / "model.keras").read_bytes() == clean_before
    masked_after = load_model(run_dir / "masked" / "model.keras").get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(masked_before, masked_after))
    models = json.loads((run_dir / "config.json").read_text())["models"]
    assert models["masked"]["transfer"]["seed"] == 7 and models["masked"]["teacher"]["train"]["seed"] == 0
    assert json.loads((run_dir / "masked" / "train.json").read_text())["seed"] == 7


def test_the_finetune_seed_enters_only_the_fine_tuned_models_fingerprint():
    from experiments.provenance import fingerprint
    plain = RunConfig(variants=("clean", "masked"))
    seeded = RunConfig(variants=("clean", "masked"), transfer=TransferConfig(seed=3))
    assert fingerprint(plain, C.CLEAN, "sha") == fingerprint(seeded, C.CLEAN, "sha")
    assert "seed" not in fingerprint(plain, C.MASKED, "sha")["transfer"]  # as runs made before it record
    assert fingerprint(seeded, C.MASKED, "sha")["transfer"]["seed"] == 3
    with pytest.raises(ValueError, match="transfer.seed"):
        TransferConfig(seed=-1)


@pytest.mark.parametrize("args, needle", [(["--crop", "60"], "--crop"), (["--distill-weight", "2"], "--distill-weight"),
                                          (["--erasing", "1.5"], "--erasing must be 0..1"),
                                          (["--precision", "half"], "--precision"),
                                          (["--finetune-epochs", "0"], "--finetune-epochs"),
                                          (["--finetune-seed", "-2"], "--finetune-seed"),
                                          (["--distill-temperature", "0"], "--distill-temperature must be positive"),
                                          (["--epochs", "0"], "--epochs must be at least 1"),
                                          (["--limit-rows", "-1"], "--limit-rows must be 0 or more"),
                                          (["--train-mask-types", ","], "--train-mask-types needs at least one")])
def test_recipe_options_are_checked(args, needle, capsys):
    from experiments.run import main
    with pytest.raises(SystemExit) as e:
        main(["clean", "masked", *args])
    assert e.value.code == 2 and needle in capsys.readouterr().err


@pytest.mark.parametrize("erasing", [0.0, 0.5, 1.0])
def test_random_erasing_alters_the_asked_share_of_training_crops(erasing):
    flat = np.full((256, 48, 48), 128, np.uint8)  # any erased patch (noise) shows against a flat grey
    augment = AugmentConfig(0, 0, 0, 0, False, erasing=erasing)
    x, _ = next(iter(train_dataset(flat, np.zeros(256, int), 256, seed=3, augment=augment, crop=40)))
    altered = (np.abs(x.numpy()[..., 0] - 128) > 0.5).any(axis=(1, 2))
    assert x.shape == (256, 40, 40, 1)
    assert abs(altered.mean() - erasing) < 0.1
    if erasing:  # the patch is a part of the crop, never all of it
        share = (np.abs(x.numpy()[altered, ..., 0] - 128) > 0.5).mean(axis=(1, 2))
        assert share.max() < 0.9


def test_later_fields_enter_the_fingerprint_only_when_used():
    from experiments.provenance import fingerprint
    old = RunConfig(variants=("clean",), train=TrainConfig(validate_from=0.0))
    new = RunConfig(variants=("clean",), train=TrainConfig(validate_from=0.5, augment=AugmentConfig(erasing=0.25)))
    assert "erasing" not in fingerprint(old, C.CLEAN, "sha")["train"]["augment"]  # as runs made before them record
    assert "validate_from" not in fingerprint(old, C.CLEAN, "sha")["train"]
    assert fingerprint(new, C.CLEAN, "sha")["train"]["augment"]["erasing"] == 0.25
    assert fingerprint(new, C.CLEAN, "sha")["train"]["validate_from"] == 0.5


def test_squeeze_excitation_gates_every_stage_and_keeps_the_model_contract():
    plain = build_model("maskfer_cnn", width=8, side=40)
    se = build_model("maskfer_se", width=8, side=40)
    gates = [layer.name for layer in se.layers if layer.name.endswith("_gate")]
    assert gates == ["s1_se_gate", "s2_se_gate", "s3_se_gate"]
    assert se.count_params() > plain.count_params()
    p = se.predict(np.random.default_rng(0).uniform(0, 255, (4, 40, 40, 1)).astype("float32"), verbose=0)
    assert p.shape == (4, 7) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)


def test_publictest_is_scored_from_validate_from_on(tmp_path):
    from experiments.runfolder import read_history
    from experiments.training.train import first_validated_epoch, train_model
    split = _split(64)
    cfg = TrainConfig(epochs=4, batch_size=32, width=8, warmup_epochs=0.0, crop=40, validate_from=0.5,
                      jit_compile=False, precision="float32")
    assert first_validated_epoch(cfg) == 2 and first_validated_epoch(TrainConfig(epochs=1)) == 0
    train = split[(C.CLEAN, "Training")]
    val = FERData(train.images[:32], train.labels[:32], np.ones(32, np.uint8), np.arange(32), "v")
    train_model(train, val, cfg, tmp_path, verbose=0)
    h = read_history(tmp_path / "history.csv")
    assert len(h["loss"]) == len(h["val_accuracy"]) == 4  # one value per epoch, NaN where none was scored
    assert np.isnan(h["val_accuracy"][:2]).all() and not np.isnan(h["val_accuracy"][2:]).any()
    record = json.loads((tmp_path / "train.json").read_text())
    assert record["best_val_accuracy_centre_crop"] == max(h["val_accuracy"][2:])


def test_report_cnn_is_the_masked_comparison_reports_network():
    """`--model report_cnn` is the network the masked-comparison student report lists: unpadded convolutions
    (46-44, pooled 22-20, pooled 10-8, pooled 4), the first block unpooled, and 343,655 parameters (342,183
    trainable) at 48x48, as its summary counts them."""
    import numpy as np
    from experiments.model.architectures import report_cnn
    m = report_cnn()
    assert m.count_params() == 343_655
    assert sum(int(np.prod(w.shape)) for w in m.trainable_weights) == 342_183
    assert [l.output.shape[1] for l in m.layers if l.name.endswith(("_conv", "_pool"))] == [46, 44, 22, 20, 10, 8, 4]
