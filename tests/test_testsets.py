"""Cross-dataset test sets: folder and CSV sets, synonyms, skipped folders, adding sets to a finished run."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
from skimage import data

from datasets import EMOTIONS, make_synthetic, write_fer_csv
from datasets import USAGES, emotion_of, list_emotion_folders
from experiments.config import ConfigError, RunConfig, parse_test_data
from experiments.evaluate import main as evaluate_main
from experiments.evaluation.testsets import load_test_set
from experiments.run import main as run_main


def test_emotion_folder_names():
    assert emotion_of("Anger") == EMOTIONS.index("angry") and emotion_of("HAPPINESS") == EMOTIONS.index("happy")
    assert emotion_of("sadness") == EMOTIONS.index("sad") and emotion_of("surprised") == EMOTIONS.index("surprise")
    assert emotion_of("03_fear") == EMOTIONS.index("fear") and emotion_of("neutral") == EMOTIONS.index("neutral")
    assert emotion_of("contempt") is None and emotion_of("unknown") is None


@pytest.fixture(scope="module")
def folder_set(tmp_path_factory):
    """happy/: the astronaut photo (256x256, a face to find) and a blank 256x256 image (no face);
    Sadness/: LFW thumbnails (25x25 face crops); ANGER/: synthetic 48x48 faces; contempt/: skipped;
    no fear, disgust, surprise or neutral folder; one unreadable file."""
    root = tmp_path_factory.mktemp("set") / "myset"
    for d in ("happy", "Sadness", "ANGER", "contempt"):
        (root / d).mkdir(parents=True)
    astro = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (256, 256), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(root / "happy" / "astronaut.jpg"), astro)
    cv2.imwrite(str(root / "happy" / "wall.png"), np.full((256, 256, 3), 120, np.uint8))
    (root / "happy" / "broken.png").write_bytes(b"not an image")
    for i, face in enumerate(data.lfw_subset()[:5]):
        cv2.imwrite(str(root / "Sadness" / f"lfw{i}.png"), (face * 255).astype(np.uint8))
    images, _, _ = make_synthetic(21, seed=2)
    for i, img in enumerate(images[:4]):
        cv2.imwrite(str(root / "ANGER" / f"s{i}.png"), img)
    cv2.imwrite(str(root / "contempt" / "c.png"), images[5])
    return root


def test_folder_set_listing_and_faces(folder_set):
    listing = list_emotion_folders(folder_set)
    assert listing.skipped == {"contempt": 1}
    assert sorted(set(listing.labels.tolist())) == [EMOTIONS.index(e) for e in ("angry", "happy", "sad")]
    ts = load_test_set("myset", str(folder_set), workers=1)
    assert len(ts.fer) == 11 and ts.fer.images.shape == (11, 48, 48) and ts.fer.images.dtype == np.uint8
    assert ts.counts == {"crop": 9, "face": 1, "no_face": 1, "unreadable": 1}
    assert ts.emotions == [0, 3, 4]
    face = ts.fer.images[list(ts.files).index("happy/astronaut.jpg")]
    assert face.std() > 20, "the aligned astronaut face, not a blank crop"


def test_split_folders_use_the_test_split(tmp_path, folder_set):
    root = tmp_path / "bysplit"
    shutil.copytree(folder_set / "ANGER", root / "test" / "angry")
    shutil.copytree(folder_set / "Sadness", root / "train" / "sad")
    listing = list_emotion_folders(root)
    by_usage = {USAGES[u]: set(listing.labels[listing.usage == u].tolist()) for u in set(listing.usage.tolist())}
    assert by_usage == {"PrivateTest": {EMOTIONS.index("angry")}, "Training": {EMOTIONS.index("sad")}}
    ts = load_test_set("bysplit", str(root), workers=1)
    assert set(ts.fer.labels.tolist()) == {EMOTIONS.index("angry")} and len(ts.fer) == 4
    assert ts.skipped == {"(Training split)": 5}


def test_csv_set_with_an_extra_column(tmp_path):
    images, labels, usage = make_synthetic(21, seed=3)
    plain = tmp_path / "plain.csv"
    write_fer_csv(plain, images, labels, usage)
    lines = plain.read_text().splitlines()
    extra = tmp_path / "extra.csv"
    extra.write_text("\n".join([lines[0] + ",subject"] + [ln + f",p{i}" for i, ln in enumerate(lines[1:])]) + "\n")
    ts = load_test_set("other", str(extra), cache_dir=str(tmp_path / "c"))
    np.testing.assert_array_equal(ts.fer.images, images)
    np.testing.assert_array_equal(ts.fer.labels, labels)
    assert ts.counts == {"crop": 21}


def test_bad_specs(tmp_path):
    for spec, message in (("nameonly", "expected NAME=PATH"), ("=x", "expected NAME=PATH"),
                          ("clean=" + str(tmp_path), "must not be"), ("masked=" + str(tmp_path), "must not be"),
                          ("a:b=" + str(tmp_path), "letters, digits"), ("ok=" + str(tmp_path / "nope"), "no such")):
        with pytest.raises(ConfigError, match=message) as e:
            RunConfig(test_data=parse_test_data([spec]))
        assert e.value.field == "test_data"
    with pytest.raises(ConfigError, match="used twice"):
        RunConfig(test_data=parse_test_data([f"x={tmp_path}", f"x={tmp_path}"]))


def test_add_a_set_to_a_finished_run(smoke_run, folder_set, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(smoke_run, run_dir)
    before = json.loads((run_dir / "metrics.json").read_text())
    rc = evaluate_main([str(run_dir), "--test-data", f"myset={folder_set}", "--workers", "1",
                        "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads((run_dir / "metrics.json").read_text())
    new = [r for r in metrics["results"] if r["test"].startswith("myset:")]
    assert {(r["train"], r["test"]) for r in new} == {(t, f"myset:{k}") for t in ("majority", "clean", "masked")
                                                     for k in ("clean", "masked")}
    assert all(r["n"] == 11 and r["emotions"] == ["angry", "happy", "sad"] for r in new)
    assert [r for r in metrics["results"] if not r["test"].startswith("myset:")] == before["results"]
    assert metrics["test_sets"]["myset"]["skipped_folders"] == {"contempt": 1}
    assert (run_dir / "predictions" / "masked__myset-masked.csv").exists()
    html = (run_dir / "report.html").read_text()
    assert 'id="set-myset"' in html and "contempt (1 images)" in html
    # adding it again replaces, not duplicates
    assert evaluate_main([str(run_dir), "--test-data", f"myset={folder_set}", "--workers", "1", "--no-report",
                          "--cache-dir", str(tmp_path / "cache")]) == 0
    assert len(json.loads((run_dir / "metrics.json").read_text())["results"]) == len(metrics["results"])


def test_bad_test_data_exits_2(tmp_path, folder_set, capsys):
    for args in (["clean", "--test-data", "noequals"], ["clean", "--test-data", f"clean={folder_set}"],
                 ["clean", "--test-data", f"x={tmp_path / 'missing'}"]):
        with pytest.raises(SystemExit) as e:
            run_main(args + ["--profile", "smoke"])
        assert e.value.code == 2
    err = capsys.readouterr().err
    assert "noequals" in err and "missing" in err
    assert evaluate_main([str(tmp_path), "--test-data", f"x={folder_set}"]) == 2
    assert "not a finished run folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    (empty / "contempt").mkdir(parents=True)
    write_fer_csv(tmp_path / "tiny.csv", *make_synthetic(21, seed=0))
    assert run_main(["clean", "--profile", "smoke", "--data", str(tmp_path / "tiny.csv"), "--out", str(tmp_path / "r"),
                     "--cache-dir", str(tmp_path / "c"), "--workers", "1", "--test-data", f"e={empty}"]) == 2
    assert "no emotion folders" in capsys.readouterr().err
