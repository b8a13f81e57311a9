from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
from skimage import data

from experiments.deploy import export as export_mod
from experiments.deploy.tflite import TFLiteModel
from experiments.export import main as export_main
from experiments.model.inference import load_model
from experiments.predict import main as predict_main


@pytest.fixture(scope="module")
def model_path(smoke_run):
    return smoke_run / "clean" / "model.keras"


@pytest.fixture(scope="module")
def float_tflite(model_path) -> bytes:
    """The clean smoke model as a float TFLite flatbuffer, converted once for the tests that only need a file."""
    return export_mod.convert(load_model(model_path), None)


@pytest.fixture(scope="module")
def astronaut_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    return path


def test_predict_image_json(model_path, astronaut_png, tmp_path, capsys):
    assert predict_main([str(model_path), str(astronaut_png), "--out", str(tmp_path), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert len(res) == 1 and len(res[0]["faces"]) == 1
    face = res[0]["faces"][0]
    assert sum(face["probabilities"].values()) == pytest.approx(1, abs=1e-4)
    assert face["label"] == max(face["probabilities"], key=face["probabilities"].get)
    x, y, w, h = face["box"]
    assert 100 < x < 260 and 30 < y < 150 and w > 60  # the astronaut's face
    out = cv2.imread(str(tmp_path / "astronaut_annotated.png"))
    assert out.shape == (512, 512, 3)


def test_predict_with_mask(model_path, astronaut_png, tmp_path, capsys):
    assert predict_main([str(model_path), str(astronaut_png), "--out", str(tmp_path), "--mask"]) == 0
    assert "astronaut.png:" in capsys.readouterr().out
    plain = cv2.imread(str(astronaut_png))
    masked = cv2.imread(str(tmp_path / "astronaut_annotated.png"))
    from masking import LandmarkFinder
    points = LandmarkFinder().photo_landmarks(data.astronaut())[0][0]
    diff = np.abs(masked.astype(int) - plain.astype(int)).sum(-1)
    mouth = [diff[int(y), int(x)] for x, y in points[48:68]]
    assert min(mouth) > 0, "the classified face wore a mask"


def test_predict_video_frequency_table(model_path, tmp_path, capsys):
    video = tmp_path / "clip.mp4"
    img = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (256, 256))
    for k in range(6):
        w.write(cv2.resize(np.roll(img, 4 * k, axis=1), (256, 256)))
    w.release()
    assert predict_main([str(model_path), str(video), "--out", str(tmp_path / "o")]) == 0
    assert "6 frames" in capsys.readouterr().out
    with open(tmp_path / "o" / "clip_emotions.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 7 and sum(int(r["count"]) for r in rows) == 6
    assert sum(float(r["share"]) for r in rows) == pytest.approx(1)
    assert (tmp_path / "o" / "clip_annotated.mp4").stat().st_size > 0


def test_no_face_and_bad_inputs(model_path, tmp_path, capsys):
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 120, np.uint8))
    assert predict_main([str(model_path), str(blank), "--out", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"input": str(blank), "faces": []}]
    assert predict_main([str(model_path), str(blank), "--out", str(tmp_path)]) == 0
    assert "no face found" in capsys.readouterr().out
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really")
    assert predict_main([str(model_path), str(broken), "--out", str(tmp_path)]) == 2
    assert "broken.jpg" in capsys.readouterr().err
    assert predict_main([str(tmp_path / "nope.keras"), str(blank)]) == 2
    assert "nope.keras" in capsys.readouterr().err


def test_export_tflite_agrees_with_keras(model_path, tmp_path, capsys):
    rc = export_main([str(model_path), "--tflite", "--quantize", "float16", "--out", str(tmp_path),
                      "--check-rows", "500"])
    text = capsys.readouterr().out
    assert rc == 0, text
    agreements = [float(line.rsplit(" ", 1)[1].rstrip("%")) for line in text.splitlines() if "agreement" in line]
    assert len(agreements) == 2 and min(agreements) >= 99.0, text
    for name in ("model.tflite", "model.float16.tflite"):
        assert (tmp_path / name).stat().st_size > 1000, name
    assert export_main([str(tmp_path / "missing.keras"), "--tflite"]) == 2


def test_export_int8_is_calibrated_and_checked(model_path, tmp_path, capsys):
    # The smoke model is barely trained (near-uniform outputs), so int8 may flip low-margin rows here;
    # the >= 99% agreement of int8 on a trained model is measured in BENCHMARKS.md. The check still runs
    # and its verdict drives the exit code.
    args = [str(model_path), "--tflite", "--quantize", "int8", "--out", str(tmp_path), "--check-rows", "200"]
    export_main(args)
    line = [x for x in capsys.readouterr().out.splitlines() if "int8.tflite" in x][0]
    printed = float(line.rsplit(" ", 1)[1].rstrip("%"))
    # the agreement, measured here on the same check rows with the file export wrote
    _, check, _ = export_mod.check_rows(export_mod._synthetic(200 + 200), "clean", 200, {})
    x = check[..., None].astype(np.float32)
    keras_top = load_model(model_path).predict(x, verbose=0).argmax(1)
    int8_top = TFLiteModel.from_file(tmp_path / "model.int8.tflite").predict(x).argmax(1)
    assert printed == pytest.approx(100 * (keras_top == int8_top).mean(), abs=0.05)
    assert (tmp_path / "model.int8.tflite").stat().st_size < (tmp_path / "model.tflite").stat().st_size


def test_export_exit_code_follows_the_agreement_bar(model_path, float_tflite, tmp_path, monkeypatch, capsys):
    args = [str(model_path), "--tflite", "--out", str(tmp_path), "--check-rows", "30"]
    monkeypatch.setattr(export_mod, "convert", lambda *a, **k: float_tflite)  # the check is under test, not the converter
    monkeypatch.setattr(export_mod, "AGREEMENT_MIN", 1.01)  # no file can agree on more than every row
    assert export_main(args) == 1 and "agreement below 101%" in capsys.readouterr().err
    monkeypatch.setattr(export_mod, "AGREEMENT_MIN", 0.0)
    assert export_main(args) == 0


def test_check_rows_follow_the_condition(synth_csv, shared_cache):
    from datasets import load_dataset
    from masking import MaskConfig, mask_dataset
    check_rows = export_mod.check_rows
    fer = load_dataset(synth_csv, cache_dir=shared_cache)
    run_config = {"train_mask_types": ["cloth"], "mask_seed": 3}
    test = fer.split("PrivateTest").take(np.arange(10))
    masked = mask_dataset(test, MaskConfig(mask_types=("cloth",), seed=3), cache_dir=shared_cache).images
    calib, check, labels = check_rows(fer, "clean", 10, run_config, str(shared_cache))
    train_images = {img.tobytes() for img in fer.split("Training").images}
    assert len(calib) == len(train_images) and all(img.tobytes() in train_images for img in calib)
    assert np.array_equal(check, test.images) and np.array_equal(labels, test.labels)
    _, check_m, labels_m = check_rows(fer, "masked", 10, run_config, str(shared_cache))
    assert np.array_equal(check_m, masked) and not np.array_equal(check_m, test.images)
    assert np.array_equal(labels_m, test.labels)  # the same rows, only the pixels differ
    calib_x, check_x, labels_x = check_rows(fer, "mixed", 10, run_config, str(shared_cache))
    # mixed means what the mixed model trained on: every row clean, then the same rows masked
    assert np.array_equal(check_x, np.concatenate([test.images, masked]))
    assert np.array_equal(labels_x, np.concatenate([test.labels, test.labels])) and len(calib_x) == 2 * len(calib)


def test_export_masked_model_checks_masked_rows(smoke_run, synth_csv, tmp_path, shared_cache, capsys):
    model = smoke_run / "masked" / "model.keras"
    args = [str(model), "--tflite", "--quantize", "int16x8", "--out", str(tmp_path), "--data", str(synth_csv),
            "--cache-dir", str(shared_cache), "--check-rows", "20"]
    rc = export_main(args)
    out = capsys.readouterr().out
    assert "check: 20 masked PrivateTest rows" in out, out
    line = [x for x in out.splitlines() if "int16x8.tflite" in x][0]
    assert rc in (0, 1) and float(line.rsplit(" ", 1)[1].rstrip("%")) > 50
    assert 0 < (tmp_path / "model.int16x8.tflite").stat().st_size < (tmp_path / "model.tflite").stat().st_size
    export_main(args[:4] + ["--condition", "clean"] + args[4:])
    assert "check: 20 clean PrivateTest rows" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        export_main([str(model), "--tflite", "--check-rows", "0"])
    assert e.value.code == 2 and "--check-rows" in capsys.readouterr().err


def test_export_bad_run_config_and_missing_split(smoke_run, synth_csv, tmp_path, capsys):
    import shutil
    from datasets import FERData
    check_rows = export_mod.check_rows
    run = tmp_path / "run"
    (run / "masked").mkdir(parents=True)
    shutil.copy(smoke_run / "masked" / "model.keras", run / "masked" / "model.keras")
    (run / "config.json").write_text("{not json")
    assert export_main([str(run / "masked" / "model.keras"), "--tflite", "--out", str(tmp_path)]) == 2
    assert "config.json" in capsys.readouterr().err
    no_test = FERData(np.zeros((3, 48, 48), np.uint8), np.zeros(3, np.uint8), np.zeros(3, np.uint8), np.arange(3))
    with pytest.raises(ValueError, match="no PrivateTest rows"):
        check_rows(no_test, "clean", 10, {})


def test_predict_with_an_exported_tflite_file(model_path, float_tflite, astronaut_png, tmp_path, capsys):
    (tmp_path / "model.tflite").write_bytes(float_tflite)
    results = {}
    for name, path in (("keras", model_path), ("tflite", tmp_path / "model.tflite")):
        assert predict_main([str(path), str(astronaut_png), "--out", str(tmp_path / name), "--json"]) == 0
        results[name] = json.loads(capsys.readouterr().out)[0]["faces"][0]
    assert results["tflite"]["box"] == results["keras"]["box"]
    for emotion, p in results["keras"]["probabilities"].items():
        assert results["tflite"]["probabilities"][emotion] == pytest.approx(p, abs=1e-4)
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"TFL3 not a flatbuffer")
    assert predict_main([str(broken), str(astronaut_png), "--out", str(tmp_path)]) == 2
    assert "broken.tflite" in capsys.readouterr().err


def _template_model(path, face: np.ndarray, emotion: str):
    """A model that knows one face: logits are the correlation of the input with `face` for `emotion` and with
    fixed noise for the other six, so that face (and it alone) reads as `emotion`."""
    from datasets import EMOTIONS
    from experiments.backend import keras
    rng = np.random.default_rng(0)
    templates = rng.normal(0, 1, (7, 48 * 48)).astype(np.float32)
    f = face.astype(np.float32).reshape(-1)
    templates[EMOTIONS.index(emotion)] = (f - f.mean()) / (f.std() + 1e-6)
    templates /= np.linalg.norm(templates, axis=1, keepdims=True)
    model = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Rescaling(1 / 255.0, -0.5),
                              keras.layers.Flatten(), keras.layers.Dense(7, use_bias=False),
                              keras.layers.Rescaling(40.0), keras.layers.Softmax()])
    model.layers[2].set_weights([templates.T])
    model.save(path)
    return path


@pytest.mark.parametrize("emotion", ["happy", "sad"])
def test_predict_names_the_emotion_the_model_knows(emotion, astronaut_png, tmp_path, capsys):
    """Photo -> face crop -> model: a model that reads the astronaut's own crop as `emotion` is answered with it,
    and with the probabilities the model gives that crop directly."""
    from datasets.faces import FaceFinder, face_crop
    from experiments.model.inference import predict_proba
    crop, status = face_crop(data.astronaut(), FaceFinder())
    assert status == "face"
    model = _template_model(tmp_path / "knows.keras", crop, emotion)
    assert predict_main([str(model), str(astronaut_png), "--out", str(tmp_path), "--json"]) == 0
    face = json.loads(capsys.readouterr().out)[0]["faces"][0]
    direct = predict_proba(load_model(model), crop[None])[0]
    assert face["label"] == emotion and face["probabilities"][emotion] > 0.9
    assert face["probabilities"][emotion] == pytest.approx(float(direct.max()), abs=1e-4)
