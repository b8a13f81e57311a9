"""Outside models under masks: Keras (.keras, .h5), TFLite (float, int8) and ONNX models built here, whose
answers depend on the card's scale, channel order and label order, scored through their cards; bad cards exit
2 naming the field; `experiments.score` and `experiments.evaluate --model` write them into run folders."""
from __future__ import annotations

import json

import numpy as np
import pytest

from datasets import EMOTIONS
from datasets.checks import ConfigError
from experiments.backend import keras, tf
from experiments.outside.card import CardDefaults, read_card
from experiments.outside.model import OutsideModel
from experiments.outside.score import guard

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

GREYS = np.array([20, 55, 90, 125, 160, 195, 230])  # one uniform face per emotion: grey k "is" emotion k


def faces() -> np.ndarray:
    return np.stack([np.full((48, 48), g, np.uint8) for g in GREYS])


def bin_weights(centres, outputs: list[int], n_out: int, gain: float = 8.0):
    """Two dense layers that score a scalar feature f by -gain * |f - centre_k|, output outputs[k] for centre k:
    (14 relus of f - c and c - f, then their sum per centre). Unused outputs get a logit of -gain * 10."""
    c = np.asarray(centres, np.float32)
    w1 = np.concatenate([np.ones(7), -np.ones(7)])[None].astype(np.float32)
    b1 = np.concatenate([-c, c]).astype(np.float32)
    w2 = np.zeros((14, n_out), np.float32)
    b2 = np.full(n_out, -gain * 10, np.float32)
    for k, o in enumerate(outputs):
        w2[k, o] = w2[k + 7, o] = -gain
        b2[o] = 0.0
    return w1, b1, w2, b2


def keras_bins(path, centres, outputs=range(7), n_out=7, size=64):
    """64x64 grey input; the feature is the mean pixel (in the model's own scale); softmax output."""
    w1, b1, w2, b2 = bin_weights(centres, list(outputs), n_out)
    model = keras.Sequential([keras.Input((size, size, 1)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(14, activation="relu"), keras.layers.Dense(n_out),
                              keras.layers.Softmax()])
    model.layers[1].set_weights([w1, b1])
    model.layers[2].set_weights([w2, b2])
    model.save(path)
    return model


def onnx_bins(path, centres, outputs=range(7), n_out=7, side=56, mix=(6.0, 0.0, -5.0), batch="N",
              dtype=TensorProto.FLOAT, shift=0.0, probs=False, offset=0.0):
    """NCHW RGB input of `dtype` (cast to float inside) and batch `batch` ("N" free, or a fixed int); the feature
    is mix . (channel means) after the model's own normalisation; logits (+ shift) out, and with probs=True a
    second output "probs" (their softmax)."""
    w1, b1, w2, b2 = bin_weights(centres, list(outputs), n_out)
    inits = [helper.make_tensor(n, TensorProto.FLOAT, a.shape, a.flatten().tolist()) for n, a in (
        ("mix", np.array(mix, np.float32)[:, None]), ("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2 + shift),
        ("offset", np.array([offset], np.float32)))]
    nodes = [helper.make_node("Cast", ["x"], ["xc"], to=TensorProto.FLOAT),
             helper.make_node("Add", ["xc", "offset"], ["xf"]),  # an int8 model's pixels come shifted by -128
             helper.make_node("ReduceMean", ["xf"], ["m"], axes=[2, 3], keepdims=0),
             helper.make_node("MatMul", ["m", "mix"], ["f"]), helper.make_node("MatMul", ["f", "w1"], ["h0"]),
             helper.make_node("Add", ["h0", "b1"], ["h1"]), helper.make_node("Relu", ["h1"], ["h"]),
             helper.make_node("MatMul", ["h", "w2"], ["l0"]), helper.make_node("Add", ["l0", "b2"], ["logits"])]
    outs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, n_out])]
    if probs:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=-1))
        outs.append(helper.make_tensor_value_info("probs", TensorProto.FLOAT, [batch, n_out]))
    graph = helper.make_graph(nodes, "bins", [helper.make_tensor_value_info("x", dtype, [batch, 3, side, side])],
                              outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def card(tmp_path, stem, **fields) -> str:
    """A card file `stem`.toml with these fields."""
    lines = [f"{k} = {json.dumps(v)}" for k, v in fields.items()]
    path = tmp_path / f"{stem}.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def predicted(spec, defaults=CardDefaults()) -> list[str]:
    model = OutsideModel(read_card(spec, defaults))
    p = model.predict_proba(faces())
    assert p.shape == (7, 7) and np.allclose(p.sum(1), 1, atol=1e-5)
    return [EMOTIONS[k] for k in p.argmax(1)]


MINUS1_1 = GREYS / 127.5 - 1  # the feature each face gives on -1..1


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("keras")
    keras_bins(d / "m.keras", MINUS1_1)
    keras_bins(d / "m.h5", MINUS1_1)
    return d


@pytest.mark.parametrize("suffix", ["keras", "h5"])
def test_keras_model_answers_right_only_on_its_own_scale(keras_files, tmp_path, suffix):
    path = keras_files / f"m.{suffix}"
    assert predicted(card(tmp_path, "ok", file=str(path), scale="-1..1")) == list(EMOTIONS)
    for wrong in ("0..1", "0..255"):
        assert predicted(card(tmp_path, wrong.replace(".", ""), file=str(path), scale=wrong)) != list(EMOTIONS)


def test_the_card_fills_in_what_the_model_states(keras_files):
    model = OutsideModel(read_card(keras_files / "m.keras", CardDefaults(scale="-1..1")))
    assert (model.card.input, model.card.channels, model.card.layout) == ((64, 64), "grey", "nhwc")
    assert model.card.labels == EMOTIONS and model.name == "m" and len(model.sha256) == 64


@pytest.fixture(scope="module")
def tflite_files(keras_files, tmp_path_factory):
    d = tmp_path_factory.mktemp("tflite")
    model = keras.models.load_model(keras_files / "m.keras")
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    (d / "float.tflite").write_bytes(conv.convert())
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    conv.representative_dataset = lambda: ([np.full((1, 64, 64, 1), v, np.float32)] for v in rng.uniform(-1, 1, 64))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type, conv.inference_output_type = tf.int8, tf.int8
    (d / "int8.tflite").write_bytes(conv.convert())
    return d


@pytest.mark.parametrize("kind", ["float", "int8"])
def test_tflite_float_and_int8_answer_like_keras(tflite_files, tmp_path, kind):
    """The int8 file's input is quantised and its output dequantised by the adapter: the answers hold."""
    path = tflite_files / f"{kind}.tflite"
    assert predicted(card(tmp_path, kind, file=str(path), scale="-1..1")) == list(EMOTIONS)
    assert predicted(card(tmp_path, kind + "w", file=str(path), scale="0..1")) != list(EMOTIONS)


def _imagenet_feature(order: str) -> np.ndarray:
    """The ONNX model's feature 6 R - 5 B for each grey face under imagenet normalisation in `order`."""
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    if order == "bgr":
        mean, std = mean[::-1], std[::-1]
    v = (GREYS[:, None] / 255.0 - mean) / std
    return 6 * v[:, 0] - 5 * v[:, 2]


def test_onnx_nchw_rgb_model_answers_right_only_in_rgb(tmp_path):
    path = tmp_path / "rgb.onnx"
    onnx_bins(path, _imagenet_feature("rgb"))
    spec = card(tmp_path, "rgb", file=str(path), scale="imagenet", output="logits")
    model = OutsideModel(read_card(spec))
    assert (model.card.input, model.card.channels, model.card.layout) == ((56, 56), "rgb", "nchw")
    assert predicted(spec) == list(EMOTIONS)
    assert predicted(card(tmp_path, "bgr", file=str(path), scale="imagenet", output="logits", channels="bgr")) \
        != list(EMOTIONS)
    with pytest.raises(ConfigError) as e:  # logits read as probabilities: refused, not renormalised
        predicted(card(tmp_path, "probs", file=str(path), scale="imagenet"))
    assert e.value.field == "output"


def test_a_permuted_label_order_with_contempt_is_mapped_and_contempt_dropped(tmp_path):
    """Eight AffectNet-ordered outputs, contempt among them: the card's labels put each answer back in
    FER2013's order; a face the model reads as contempt gets its best FER2013 emotion instead."""
    affectnet = ["neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger", "contempt"]
    position = {EMOTIONS[k]: i for i, k in enumerate([6, 3, 4, 5, 2, 1, 0])}
    path = tmp_path / "affectnet.onnx"
    onnx_bins(path, _imagenet_feature("rgb"), outputs=[position[e] for e in EMOTIONS], n_out=8)
    spec = card(tmp_path, "aff", file=str(path), scale="imagenet", output="logits", labels=affectnet)
    assert predicted(spec) == list(EMOTIONS)
    assert predicted(card(tmp_path, "fer", file=str(path), scale="imagenet", output="logits",
                          labels=list(EMOTIONS) + ["contempt"])) != list(EMOTIONS)
    contempt = tmp_path / "contempt.onnx"  # the happy face's centre now scores contempt (output 7) best
    outs = [position[e] for e in EMOTIONS]
    outs[EMOTIONS.index("happy")] = 7
    onnx_bins(contempt, _imagenet_feature("rgb"), outputs=outs, n_out=8)
    got = predicted(card(tmp_path, "c", file=str(contempt), scale="imagenet", output="logits", labels=affectnet))
    assert "contempt" not in got and got[EMOTIONS.index("happy")] != "happy"
    assert [g for i, g in enumerate(got) if i != EMOTIONS.index("happy")] == [e for e in EMOTIONS if e != "happy"]


@pytest.mark.parametrize("case, field", [
    ("unknown format", "file"), ("not a model", "CARD"), ("no scale", "scale"), ("labels not emotions", "labels"),
    ("size the model does not take", "input"), ("8 labels for 7 outputs", "labels"), ("reserved name", "name"),
])
def test_bad_cards_are_refused_naming_the_field(case, field, keras_files, tmp_path):
    from datasets.cli import InputError
    k = str(keras_files / "m.keras")
    specs = {"unknown format": dict(file=str(tmp_path / "m.pt"), scale="0..1"),
             "no scale": dict(file=k), "labels not emotions": dict(file=k, scale="0..1", labels=["cat"] * 7),
             "size the model does not take": dict(file=k, scale="0..1", input=[48, 48]),
             "8 labels for 7 outputs": dict(file=k, scale="0..1", labels=list(EMOTIONS) + ["contempt"]),
             "reserved name": dict(file=k, scale="0..1", name="clean")}
    (tmp_path / "m.pt").write_bytes(b"torch")
    if case == "not a model":
        bad = tmp_path / "junk.onnx"
        bad.write_bytes(b"not an onnx graph")
        with pytest.raises(InputError, match="junk.onnx"):
            OutsideModel(read_card(card(tmp_path, "junk", file=str(bad), scale="0..1")))
        return
    with pytest.raises(ConfigError) as e:
        OutsideModel(read_card(card(tmp_path, "bad", **specs[case])))
    assert e.value.field == field


def test_the_guard_names_the_usual_causes(capsys):
    results = [{"train": "majority", "test": "clean", "accuracy": 0.25},
               {"train": "near", "test": "clean", "accuracy": 0.28}, {"train": "fine", "test": "clean", "accuracy": 0.4}]
    warnings = guard(results, ["near", "fine"])
    assert len(warnings) == 1 and "near" in warnings[0] and "scale" in warnings[0] and "label order" in warnings[0]
    assert "warning: near" in capsys.readouterr().out


# ------------------------------------------------------------------ models as people export them

RAW = GREYS.astype(float)  # the feature 6 R - 5 B of each grey face on raw pixels 0..255 is its grey


@pytest.mark.parametrize("batch, dtype", [("N", TensorProto.FLOAT), (1, TensorProto.FLOAT), (4, TensorProto.FLOAT),
                                          ("N", TensorProto.UINT8), ("N", TensorProto.FLOAT16), (1, TensorProto.UINT8)])
def test_onnx_fixed_batches_and_input_types_score_like_the_float_model(batch, dtype, tmp_path):
    """torch.onnx.export's default (a batch of 1), a fixed batch of 4 (seven faces: the last batch padded), and
    uint8 / float16 inputs: each fed in its own size and type, each answers as the float model does."""
    path = tmp_path / "m.onnx"
    onnx_bins(path, RAW, batch=batch, dtype=dtype)
    spec = card(tmp_path, "m", file=str(path), scale="0..255", output="logits")
    model = OutsideModel(read_card(spec))
    assert model.adapter.batch == (None if batch == "N" else batch)
    assert predicted(spec) == list(EMOTIONS)
    many = np.concatenate([faces()] * 40)  # 280 rows: more than one free batch, 70 padded batches of 4
    assert [EMOTIONS[k] for k in model.predict_proba(many).argmax(1)] == list(EMOTIONS) * 40
    if dtype == TensorProto.UINT8:  # integer pixels are pixels: another scale contradicts the model
        with pytest.raises(ConfigError) as e:
            OutsideModel(read_card(card(tmp_path, "w", file=str(path), scale="0..1", output="logits")))
        assert e.value.field == "scale"


def test_an_int8_input_takes_pixels_shifted_by_128_and_refuses_a_scale_it_cannot_hold(tmp_path, synth_csv, capsys):
    """A raw int8 input (no quantisation) holds -128..127: with scale "-128..127" (pixels minus 128) the model
    built to add 128 back answers as the float model does; "0..255" (every pixel above 127 clipped) is refused in
    one line naming --scale, and experiments.score stops before --out exists."""
    float_path, int8_path = tmp_path / "f.onnx", tmp_path / "i8.onnx"
    onnx_bins(float_path, RAW)
    onnx_bins(int8_path, RAW, dtype=TensorProto.INT8, offset=128.0)
    want = OutsideModel(read_card(card(tmp_path, "f", file=str(float_path), scale="0..255", output="logits")))
    got = OutsideModel(read_card(card(tmp_path, "i8", file=str(int8_path), scale="-128..127", output="logits")))
    many = np.concatenate([faces()] * 5)
    assert np.allclose(got.predict_proba(many), want.predict_proba(many), atol=1e-6)
    with pytest.raises(ConfigError) as e:
        OutsideModel(read_card(card(tmp_path, "bad", file=str(int8_path), scale="0..255", output="logits")))
    assert e.value.field == "scale" and "-128..127" in str(e.value)
    from experiments.score import main as score_main
    out = tmp_path / "out"
    rc = score_main([str(int8_path), "--scale", "0..255", "--output", "logits", "--data", str(synth_csv),
                     "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "--scale" in err.strip().splitlines()[-1] and not out.exists()


@pytest.fixture(scope="module")
def raw_tflite(tmp_path_factory):
    """A TFLite model with a raw uint8 input (no quantisation: scale 0) and one with a fixed batch of 1, both
    from a Keras model of the bins on raw pixels."""
    d = tmp_path_factory.mktemp("rawtflite")
    w1, b1, w2, b2 = bin_weights(RAW, list(range(7)), 7)
    for name, batch in (("raw", None), ("batch1", 1)):
        inp = keras.Input((64, 64, 1), batch_size=batch, dtype="uint8")
        x = keras.layers.Rescaling(1.0)(inp)  # uint8 -> float32
        x = keras.layers.GlobalAveragePooling2D()(x)
        dense1, dense2 = keras.layers.Dense(14, activation="relu"), keras.layers.Dense(7)
        model = keras.Model(inp, keras.layers.Softmax()(dense2(dense1(x))))
        dense1.set_weights([w1, b1])
        dense2.set_weights([w2, b2])
        (d / f"{name}.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return d


@pytest.mark.parametrize("name", ["raw", "batch1"])
def test_tflite_raw_uint8_and_fixed_batch_score_like_the_float_model(raw_tflite, tmp_path, name):
    spec = card(tmp_path, name, file=str(raw_tflite / f"{name}.tflite"), scale="0..255")
    model = OutsideModel(read_card(spec))
    assert model.adapter.dtype == np.uint8 and model.adapter.input["quantization"] == (0.0, 0)
    assert model.adapter.batch == (1 if name == "batch1" else None)
    assert predicted(spec) == list(EMOTIONS)


def test_a_model_with_two_outputs_needs_output_name(tmp_path):
    path = tmp_path / "two.onnx"
    onnx_bins(path, RAW, probs=True)
    with pytest.raises(ConfigError) as e:
        OutsideModel(read_card(card(tmp_path, "none", file=str(path), scale="0..255")))
    assert e.value.field == "output_name" and "'logits'" in str(e.value) and "'probs'" in str(e.value)
    with pytest.raises(ConfigError) as e:
        OutsideModel(read_card(card(tmp_path, "bad", file=str(path), scale="0..255", output_name="prob")))
    assert e.value.field == "output_name" and "'prob' is not an output" in str(e.value)
    assert predicted(card(tmp_path, "p", file=str(path), scale="0..255", output_name="probs")) == list(EMOTIONS)
    assert predicted(card(tmp_path, "l", file=str(path), scale="0..255", output_name="logits", output="logits")) \
        == list(EMOTIONS)
    logits_as_probs = OutsideModel(read_card(card(tmp_path, "lp", file=str(path), scale="0..255",
                                                  output_name="logits")))
    with pytest.raises(ConfigError) as e:
        logits_as_probs.probe(faces())
    assert e.value.field == "output"


def test_the_probe_catches_all_positive_logits_read_as_probabilities(tmp_path):
    path = tmp_path / "pos.onnx"
    onnx_bins(path, RAW, shift=2000.0)  # logits 520..2000: no negative value to give them away
    model = OutsideModel(read_card(card(tmp_path, "pos", file=str(path), scale="0..255")))
    assert (model.outputs(faces()) > 0).all()
    with pytest.raises(ConfigError) as e:
        model.probe(faces())
    assert e.value.field == "output" and "sum to" in str(e.value) and "logits" in str(e.value)
    OutsideModel(read_card(card(tmp_path, "ok", file=str(path), scale="0..255", output="logits"))).probe(faces())


def test_a_7_output_model_without_labels_says_the_order_is_assumed(tmp_path):
    path = tmp_path / "m.onnx"
    onnx_bins(path, RAW)
    plain = OutsideModel(read_card(card(tmp_path, "a", file=str(path), scale="0..255", output="logits")))
    assert "FER2013's order is assumed" in plain.describe() and "labels = [" in plain.describe()
    stated = OutsideModel(read_card(card(tmp_path, "b", file=str(path), scale="0..255", output="logits",
                                         labels=list(EMOTIONS))))
    assert "assumed" not in stated.describe()


def test_an_emotion_the_model_lacks_is_never_predicted(tmp_path):
    """Labels without angry (FER2013's 0): a row with all its mass on contempt goes evenly to the emotions the
    model has, never to angry (argmax of zeros would be 0)."""
    path = tmp_path / "m.onnx"
    onnx_bins(path, RAW)
    labels = ["contempt", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    model = OutsideModel(read_card(card(tmp_path, "m", file=str(path), scale="0..255", labels=labels)))
    p = model.probabilities(np.array([[1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0]], np.float32))
    assert p[:, 0].max() == 0 and p.argmax(1).tolist() == [1, 3] and np.allclose(p.sum(1), 1)
    assert np.allclose(p[0, 1:], 1 / 6)
