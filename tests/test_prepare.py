"""Your own face datasets: a folder of photos prepared into shards (local and Ray, a two-node cluster, a worker
killed mid-prepare, resume), and a run trained on it."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

import datasets.prepare as prepare_mod
from datasets import EMOTIONS, USAGES, emotion_of, load_dataset, make_synthetic
from datasets.__main__ import main as datasets_main
from datasets.engine import Engine
from datasets.prepared import SHARD_ARRAYS, read_manifest, read_shards
from datasets.synth import write_photo_folder
from experiments.run import main as run_main
from raynodes import children, local_raylets

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """~330 images: LFW thumbnails (25 px crops, AffectNet folder 0 = neutral), drawn 48 px faces under
    synonym names, LFW faces pasted into 256 px and 640x480 photos, the astronaut, noise photos with no
    face, one unreadable file, and two folders that are no FER2013 emotion (contempt, AffectNet's 7)."""
    root = tmp_path_factory.mktemp("photos") / "set"
    lfw = (data.lfw_subset()[:100] * 255).astype(np.uint8)
    for name, faces in (("0", lfw[:60]), ("Happiness", lfw[60:100])):
        (root / name).mkdir(parents=True)
        for i, face in enumerate(faces):
            cv2.imwrite(str(root / name / f"lfw{i}.png"), face)
    images, labels, _ = make_synthetic(210, seed=4)
    names = {EMOTIONS.index("angry"): "ANGER", EMOTIONS.index("fear"): "03_fear", EMOTIONS.index("sad"): "sadness"}
    for i, (img, lab) in enumerate(zip(images, labels)):
        d = root / names.get(int(lab), EMOTIONS[int(lab)])
        d.mkdir(exist_ok=True)
        cv2.imwrite(str(d / f"drawn{i}.png"), img)
    write_photo_folder(root, lfw[:10], np.full(10, 5), {5: "surprised"}, (256, 256), seed=1)
    write_photo_folder(root, lfw[10:16], np.full(6, 6), {6: "calm"}, (640, 480), seed=2)
    cv2.imwrite(str(root / "Happiness" / "astronaut.jpg"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    rng = np.random.default_rng(0)
    for i in range(8):
        cv2.imwrite(str(root / "sadness" / f"noise{i}.png"), cv2.GaussianBlur(
            rng.integers(0, 256, (200, 300)).astype(np.uint8), (0, 0), 5))
    (root / "neutral").mkdir(exist_ok=True)
    (root / "neutral" / "broken.jpg").write_bytes(b"\xff\xd8 not a picture")
    for skip in ("contempt", "7"):
        (root / skip).mkdir()
        cv2.imwrite(str(root / skip / "x.png"), lfw[0])
    return root


@pytest.fixture(scope="module")
def prepared(photos, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prep") / "local"
    assert datasets_main(["prepare", str(photos), "--out", str(out), "--workers", "2"]) == 0
    return out


def test_affectnet_numbers_and_synonyms():
    assert emotion_of("0") == EMOTIONS.index("neutral") and emotion_of("6") == EMOTIONS.index("angry")
    assert emotion_of("7") is None and emotion_of("03_fear") == EMOTIONS.index("fear")


def test_prepare_counts_keeps_and_skips(photos, prepared):
    m = read_manifest(prepared)
    listed = sum(1 for p in photos.rglob("*") if p.is_file() and p.parent.name not in ("contempt", "7"))
    assert m["listed"] == listed and m["rows"] == listed - 1
    assert m["counts"]["unreadable"] == 1 and m["unreadable_files"] == ["neutral/broken.jpg"]
    assert set(m["skipped_folders"]) == {"contempt", "7"}
    assert m["counts"]["no_face"] >= 8, "the noise photos are kept, marked no_face"
    assert m["counts"]["face"] >= 1 and m["counts"]["crop"] >= 300
    fer = load_dataset(prepared)
    assert len(fer) == m["rows"] and fer.images.shape[1:] == (48, 48) and fer.images.dtype == np.uint8
    for u in USAGES:  # stratified 0.8 / 0.1 / 0.1: every emotion present in every split
        assert set(fer.labels[fer.usage == USAGES.index(u)].tolist()) == set(range(7))
    assert abs((fer.usage == 0).mean() - 0.8) < 0.03
    rows = (prepared / "rows.csv").read_text().splitlines()
    assert len(rows) == listed + 1 and "neutral/broken.jpg" in rows[-1] + "".join(rows)


def test_rerun_on_an_unchanged_folder_does_nothing(photos, prepared, monkeypatch, capsys):
    monkeypatch.setattr(prepare_mod, "_save_shard", lambda *a, **k: pytest.fail("a shard was made again"))
    before = (prepared / "manifest.json").read_bytes()
    assert datasets_main(["prepare", str(photos), "--out", str(prepared)]) == 0
    assert "up to date" in capsys.readouterr().out and (prepared / "manifest.json").read_bytes() == before


def test_resume_after_an_interrupted_prepare(photos, prepared, tmp_path, monkeypatch):
    out = tmp_path / "resumed"
    real, made = prepare_mod._save_shard, []

    def dies_on_the_third(path, *a, **k):
        if len(made) == 2:
            raise KeyboardInterrupt("killed")
        made.append(path.name)
        return real(path, *a, **k)
    monkeypatch.setattr(prepare_mod, "_save_shard", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        prepare_mod.prepare_photos(photos, out, shard_rows=64, engine=Engine("local", 1))
    assert not (out / "manifest.json").exists() and len(list(out.glob("shard-*.npz"))) == 2
    made.clear()
    monkeypatch.setattr(prepare_mod, "_save_shard", lambda path, *a, **k: (made.append(path.name), real(path, *a, **k)))
    prepare_mod.prepare_photos(photos, out, shard_rows=64, engine=Engine("local", 1))
    assert made[0] == "shard-00002.npz" and "shard-00000.npz" not in made, "it resumes at the first missing shard"
    a, b = read_shards(out), read_shards(prepared)
    assert all(np.array_equal(a[k], b[k]) for k in SHARD_ARRAYS), "the same rows, labels, splits and pixels"


def test_ray_prepare_gives_the_same_shards(photos, prepared, tmp_path, ray_session):
    out = tmp_path / "ray"
    assert datasets_main(["prepare", str(photos), "--out", str(out), "--engine", "ray"]) == 0
    a, b = read_shards(out), read_shards(prepared)
    assert all(np.array_equal(a[k], b[k]) for k in SHARD_ARRAYS)
    assert read_manifest(out)["sha256"] == read_manifest(prepared)["sha256"]


@pytest.mark.slow
def test_two_node_cluster_prepare(photos, prepared, tmp_path, no_ray_session):
    from ray.cluster_utils import Cluster
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address)
        assert len(ray.nodes()) == 2
        out = tmp_path / "cluster"
        assert datasets_main(["prepare", str(photos), "--out", str(out), "--engine", "ray"]) == 0
        assert read_manifest(out)["sha256"] == read_manifest(prepared)["sha256"]
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.mark.slow
def test_a_worker_killed_mid_prepare(photos, prepared, tmp_path, ray_session):
    killed = []

    raylets = local_raylets()  # this test's Ray: only its raylet's workers are candidates

    def killer():
        deadline = time.time() + 120
        while not killed and time.time() < deadline:
            for pid in children(raylets, b"ray::_call"):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                break
            time.sleep(0.05)
    thread = threading.Thread(target=killer)
    thread.start()
    out = tmp_path / "killed"
    rc = datasets_main(["prepare", str(photos), "--out", str(out), "--engine", "ray"])
    thread.join()
    assert killed and rc == 0
    assert read_manifest(out)["sha256"] == read_manifest(prepared)["sha256"]


@pytest.mark.slow
def test_smoke_run_trains_on_the_prepared_set_and_on_the_raw_folder(photos, prepared, tmp_path):
    for source, name in ((prepared, "prep"), (photos, "raw")):
        out = tmp_path / name
        assert run_main(["clean", "masked", "--profile", "smoke", "--data", str(source), "--out", str(out),
                         "--cache-dir", str(tmp_path / "c"), "--workers", "1", "--no-report",
                         "--test-mask-types", "surgical"]) == 0
        config = json.loads((out / "config.json").read_text())
        assert config["dataset_sha256"] == read_manifest(prepared)["sha256"], "the raw folder is prepared the same way"
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["test_rows"] == sum(read_manifest(prepared)["per_split"]["PrivateTest"].values())


@pytest.mark.parametrize("case, needle", [("empty", "the folder is empty"), ("noemotions", "no emotion folders"),
                                          ("split", "sum to 1"), ("inside", "inside the photo folder")])
def test_bad_prepare_input_exits_2(case, needle, photos, tmp_path, capsys):
    src, out, extra = photos, tmp_path / "o", []
    if case == "empty":
        src = tmp_path / "empty"
        src.mkdir()
    elif case == "noemotions":
        src = tmp_path / "noemo"
        (src / "contempt").mkdir(parents=True)
    elif case == "split":
        extra = ["--split", "0.8,0.1,0.2"]
    else:
        out = photos / "prepared"
    assert datasets_main(["prepare", str(src), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
    assert not (photos / "prepared").exists()


@pytest.mark.slow
def test_masking_takes_the_ray_engine_too(tmp_path, synth_csv, ray_session):
    from masking.__main__ import main as masking_main
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "astronaut.png"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    (src / "broken.png").write_bytes(b"no")
    outs = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        assert masking_main(["images", str(src), str(out), "--engine", engine, "--workers", "1"]) == 0
        outs[engine] = (out / "astronaut.png").read_bytes()
        csv_out = tmp_path / f"{engine}.csv"
        assert masking_main(["csv", str(synth_csv), str(csv_out), "--engine", engine, "--no-cache"]) == 0
        outs[engine + "csv"] = csv_out.read_bytes()
    assert outs["local"] == outs["ray"] and outs["localcsv"] == outs["raycsv"]


@pytest.mark.parametrize("missing", ["disgust", "angry"])
def test_the_split_is_stratified_when_an_emotion_is_missing(missing):
    """Each emotion a set has is split 80/10/10 (to the row), whichever emotion the set lacks."""
    counts = {e: n for e, n in zip(EMOTIONS, (50, 30, 60, 120, 84, 40, 90)) if e != missing}
    labels = np.random.default_rng(1).permutation(
        np.concatenate([np.full(n, EMOTIONS.index(e), np.uint8) for e, n in counts.items()]))
    usage = prepare_mod.stratified_usage(labels, (0.8, 0.1, 0.1), seed=0)
    for e, n in counts.items():
        per = np.bincount(usage[labels == EMOTIONS.index(e)], minlength=3)
        assert abs(per[1] - n * 0.1) <= 1 and abs(per[2] - n * 0.1) <= 1 and per.sum() == n, (e, per)
    assert np.array_equal(usage, prepare_mod.stratified_usage(labels, (0.8, 0.1, 0.1), seed=0))
    assert not np.array_equal(usage, prepare_mod.stratified_usage(labels, (0.8, 0.1, 0.1), seed=1))


def _splits(prepared_dir: Path) -> dict[str, str]:
    rows = (prepared_dir / "rows.csv").read_text().splitlines()[1:]
    return {r.split(",")[1]: r.split(",")[3] for r in rows}


def test_adding_an_emotion_folder_leaves_the_other_emotions_splits(tmp_path):
    """Each emotion's split comes from its own generator (seed, emotion): a new emotion folder moves no file of
    the others between Training, PublicTest and PrivateTest."""
    images, labels, _ = make_synthetic(140, seed=7)
    root = tmp_path / "photos"
    for i, (img, lab) in enumerate(zip(images, labels)):
        if EMOTIONS[int(lab)] in ("happy", "sad", "neutral"):
            (root / EMOTIONS[int(lab)]).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / EMOTIONS[int(lab)] / f"{i}.png"), img)
    assert datasets_main(["prepare", str(root), "--out", str(tmp_path / "before"), "--workers", "1"]) == 0
    extra = root / "surprise"
    extra.mkdir()
    for i, img in enumerate(images[labels == EMOTIONS.index("angry")]):
        cv2.imwrite(str(extra / f"x{i}.png"), img)
    assert datasets_main(["prepare", str(root), "--out", str(tmp_path / "after"), "--workers", "1"]) == 0
    before, after = _splits(tmp_path / "before"), _splits(tmp_path / "after")
    assert len(after) == len(before) + len(list(extra.iterdir())) and set(before) < set(after)
    assert {f: after[f] for f in before} == before
    assert {"Training", "PublicTest", "PrivateTest"} <= set(before.values())
    assert any(f.startswith("surprise/") and s != "Training" for f, s in after.items())
