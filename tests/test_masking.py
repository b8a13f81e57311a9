from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest
from skimage import data

from datasets import load_fer2013
from masking import (MASK_TYPES, LandmarkFinder, eye_centres, MaskConfig, MaskSpec, apply_mask, find_landmarks,
                     mask_dataset)
from masking.__main__ import main as masking_main
from masking.landmarks import plausible
from masking.placement import mask_alpha


@pytest.fixture(scope="module")
def crop_face(finder):
    """The astronaut's face as a 48x48 crop framed like FER2013, its HOG-detected landmarks and eye centres."""
    from masking.landmarks import FER_BOX
    img = data.astronaut()
    (x, y, w, h), = [box for _, box in finder.photo_landmarks(img)]
    side = w / (FER_BOX[2] - FER_BOX[0])
    left, top = int(x - FER_BOX[0] * side), int(y - FER_BOX[1] * side)
    crop = img[max(top, 0):top + int(side), max(left, 0):left + int(side)]
    face = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), (48, 48), interpolation=cv2.INTER_AREA)
    pts, status = finder.crop_landmarks(face)
    assert status == "detected"
    return face, pts, np.stack(eye_centres(pts))


def _eye_alpha(points, eyes, mask_type="surgical"):
    alpha = mask_alpha(points, MaskSpec(mask_type), 48, 48)
    return [float(alpha[int(round(y)), int(round(x))]) for x, y in eyes], alpha


def test_plausibility_rejects_broken_landmarks(finder, crop_face):
    _, pts, _ = crop_face
    assert finder.plausible(pts, 48, 48)
    centre = pts.mean(0)
    broken = {
        "scaled up": (pts - centre) * 1.9 + centre,
        "shifted up": pts - [0, 16],
        "upside down": np.stack([pts[:, 0], 48 - pts[:, 1]], 1),
        "squashed": np.stack([pts[:, 0], (pts[:, 1] - centre[1]) * 0.3 + centre[1]], 1),
        "tilted 60 degrees": (pts - centre) @ np.array([[0.5, -0.866], [0.866, 0.5]]).T + centre,
    }
    for name, bad in broken.items():
        assert not finder.plausible(bad.astype(np.float32), 48, 48), name


@pytest.mark.parametrize("mask_type", MASK_TYPES)
def test_detected_face_mask_below_eyes_over_mouth(crop_face, mask_type):
    face, pts, eyes = crop_face
    at_eyes, alpha = _eye_alpha(pts, eyes, mask_type)
    assert max(at_eyes) == 0.0
    mouth = pts[48:68].mean(0)
    assert alpha[int(round(mouth[1])), int(round(mouth[0]))] > 0.9
    assert alpha[int(round(pts[33, 1])), int(round(pts[33, 0]))] > 0.5, "the nose is under the mask"


def test_anchors_pulled_up_cannot_cover_eyes(crop_face):
    """Even when the nose and jaw landmarks say the mask belongs at eye height, the eyes stay free."""
    _, pts, eyes = crop_face
    bad = pts.copy()
    bad[27:36, 1] = eyes[:, 1].mean() - 2  # the nose drawn up into the eye line
    bad[0:17, 1] -= 8
    assert max(_eye_alpha(bad, eyes)[0]) == 0.0


def test_implausible_fallback_becomes_mean_shape_and_spares_the_eyes(crop_face, monkeypatch):
    """The fallback predictor's answer made implausible (shifted up and scaled up): the row gets the
    mean_shape status, and the mask drawn from it leaves the real (detected) eyes untouched."""
    face, true_pts, eyes = crop_face
    finder = LandmarkFinder()
    real_predict = finder._predict

    def broken(image, rect):
        p = real_predict(image, rect)
        c = p.mean(0)
        return ((p - c) * 1.5 + c - [0, 0.25 * image.shape[0]]).astype(np.float32)

    monkeypatch.setattr(finder, "_predict", broken)
    pts, status = finder.crop_landmarks(face, detect=False)
    assert status == "mean_shape"
    for mask_type in MASK_TYPES:
        out, cov = apply_mask(face, pts, MaskSpec(mask_type))
        diff = np.abs(out.astype(int) - face.astype(int))
        for x, y in eyes:
            assert diff[int(round(y)) - 1:int(round(y)) + 2, int(round(x)) - 1:int(round(x)) + 2].max() == 0
        mouth = true_pts[48:68].mean(0)
        assert diff[int(round(mouth[1])), int(round(mouth[0]))] > 0 and cov > 0.5


def test_status_per_path(crop_face, monkeypatch):
    face, pts, _ = crop_face
    finder = LandmarkFinder()
    assert finder.crop_landmarks(face)[1] == "detected"
    np.testing.assert_array_equal(finder.crop_landmarks(face)[0], pts)  # a detected face keeps its placement
    big = cv2.resize(face, (finder.config.upscale,) * 2)
    (hog_rect,), _, _ = finder.detector.run(big, 0, 0.0)

    class Detector:  # HOG stand-in: no window at all, or only windows scoring below HOG's own threshold
        def __init__(self, found):
            self.found = found

        def run(self, image, upsample, threshold):
            return ([hog_rect], [-0.5], [0]) if self.found else ([], [], [])

    monkeypatch.setattr(finder, "detector", Detector(found=False))  # HOG misses: the CNN detector's turn
    cnn_pts, status = finder.crop_landmarks(face)
    assert status == "detected_cnn"
    assert np.linalg.norm(cnn_pts - pts, axis=1).mean() < 0.15 * np.linalg.norm(pts[45] - pts[36])
    monkeypatch.setattr(finder, "cnn", lambda image, upsample: [])
    assert finder.crop_landmarks(face)[1] in ("fallback", "mean_shape")
    monkeypatch.setattr(finder, "detector", Detector(found=True))  # a window below HOG's threshold: still used
    weak_pts, status = finder.crop_landmarks(face)
    assert status == "detected_weak"
    np.testing.assert_allclose(weak_pts, pts, atol=1e-4)
    assert finder.crop_landmarks(np.full((48, 48), 77, np.uint8))[1] == "blank"
    assert plausible(finder.mean_shape(48, 48), 48, 48, finder._mean_unit)


@pytest.fixture(scope="module")
def finder():
    return LandmarkFinder()


@pytest.fixture(scope="module")
def astronaut_face(finder):
    img = data.astronaut()
    faces = finder.photo_landmarks(img)
    assert len(faces) == 1
    return img, faces[0][0]


@pytest.mark.parametrize("mask_type", MASK_TYPES)
def test_mask_covers_mouth_and_nose_not_eyes(astronaut_face, mask_type):
    img, pts = astronaut_face
    out, coverage = apply_mask(img, pts, MaskSpec(mask_type))
    assert out.shape == img.shape and out.dtype == np.uint8
    diff = np.abs(out.astype(int) - img.astype(int)).sum(-1)
    at = lambda idx: np.array([diff[int(round(y)), int(round(x))] for x, y in pts[idx]])  # noqa: E731
    assert (at(range(48, 68)) > 0).all(), "every mouth landmark is under the mask"
    assert (at(range(31, 36)) > 0).all(), "the nose tip is under the mask"
    assert (at(range(36, 48)) == 0).all(), "both eyes stay visible"
    assert coverage > 0.8


def test_grayscale_crop_stays_48x48_uint8(finder):
    face = cv2.resize(cv2.cvtColor(data.astronaut()[40:260, 150:300], cv2.COLOR_RGB2GRAY), (48, 48))
    pts, status = finder.crop_landmarks(face)
    assert status.startswith("detected"), "a frontal face that fills the crop is found"
    assert ((pts >= 0) & (pts < 48)).all() and pts[36:48, 1].max() < pts[48:68, 1].min(), "eyes above the mouth"
    out, _ = apply_mask(face, pts, MaskSpec("n95"))
    assert out.shape == (48, 48) and out.dtype == np.uint8
    changed = (out != face).any(1)
    assert changed[int(np.ceil(pts[48:68, 1].max()))] and not changed[:int(pts[36:48, 1].max()) + 1].any()


def test_fallback_path_on_small_faces(finder):
    faces = data.lfw_subset()[:10]  # 25x25 float faces: too small for the HOG window
    for f in faces:
        img = cv2.resize((f * 255).astype(np.uint8), (48, 48))
        pts, status = finder.crop_landmarks(img, detect=False)
        assert status in ("fallback", "mean_shape") and pts.shape == (68, 2)
        # eyes above the mouth inside the frame
        assert pts[36:48, 1].mean() < pts[48:68, 1].mean()


def test_blank_and_noise_get_a_status(finder):
    blank = np.full((48, 48), 128, np.uint8)
    pts, status = finder.crop_landmarks(blank)
    assert status == "blank"
    out, cov = apply_mask(blank, pts, MaskSpec("surgical"))
    assert (out != blank).any() and cov > 0.5
    noise = np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)
    pts, status = finder.crop_landmarks(noise)
    assert status not in ("detected", "blank"), "noise is not a face, nor blank"
    out, _ = apply_mask(noise, pts, MaskSpec("cloth", texture="checks"))
    changed = out != noise
    assert out.shape == (48, 48) and changed[30:].mean() > 0.5 and not changed[:16].any()


def test_same_seed_same_mask_any_worker_count(synth_csv, tmp_path):
    fer = load_fer2013(synth_csv, cache_dir=tmp_path).take(np.arange(80))  # 80 rows keep every assertion
    cfg = MaskConfig(seed=3, textures=("none", "stripes", "dots"))
    one = mask_dataset(fer, cfg, workers=1, use_cache=False)
    two = mask_dataset(fer, cfg, workers=2, use_cache=False)
    for k in ("images", "status", "mask_type", "color", "texture", "coverage"):
        np.testing.assert_array_equal(getattr(one, k), getattr(two, k))
    assert len(set(one.mask_type.tolist())) == 4  # all four types drawn
    other = mask_dataset(fer, MaskConfig(seed=4), workers=1, use_cache=False)
    assert (other.images != one.images).any()
    # a subset gets the same mask per row as the whole set: keyed by row id, not position
    sub = fer.take(np.arange(5, 40))
    part = mask_dataset(sub, cfg, workers=1, use_cache=False)
    np.testing.assert_array_equal(part.images, one.images[5:40])


def test_every_row_masked_and_cached(synth_csv, tmp_path, monkeypatch):
    fer = load_fer2013(synth_csv, cache_dir=tmp_path)
    masked = mask_dataset(fer, MaskConfig(), workers=2, cache_dir=tmp_path)
    assert len(masked.images) == len(fer) and (masked.images != fer.images).reshape(len(fer), -1).any(1).all()
    assert {p.name.split("-")[0] for p in tmp_path.glob("*.npz")} >= {"landmarks", "masked"}
    import masking.pipeline as pipeline

    def no_work(*a, **k):
        raise AssertionError("recomputed instead of read from the cache")
    monkeypatch.setattr(pipeline, "map_chunks", no_work)
    again = mask_dataset(fer, MaskConfig(), workers=2, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.images, masked.images)
    pts, status = find_landmarks(fer, cache_dir=tmp_path)
    assert pts.shape == (len(fer), 68, 2) and np.array_equal(status, masked.status)
    twin = masked.as_fer(fer)
    assert np.array_equal(twin.images, masked.images) and np.array_equal(twin.labels, fer.labels)
    assert np.array_equal(twin.rows, fer.rows) and twin.source_hash not in ("", fer.source_hash)
    with pytest.raises(ValueError, match="different rows"):
        masked.as_fer(fer.take(np.arange(5)))


def test_cli_csv(synth_csv, tmp_path, capsys):
    out = tmp_path / "masked.csv"
    rc = masking_main(["csv", str(synth_csv), str(out), "--mask-type", "kn95", "--workers", "1",
                       "--seed", "1", "--preview", "8", "--cache-dir", str(tmp_path / "c")])
    assert rc == 0
    text = capsys.readouterr().out
    assert "detected" in text and "total" in text
    fer = load_fer2013(out, cache_dir=tmp_path / "c2")
    src = load_fer2013(synth_csv, cache_dir=tmp_path / "c2")
    np.testing.assert_array_equal(fer.labels, src.labels)
    np.testing.assert_array_equal(fer.usage, src.usage)
    with open(tmp_path / "masked.meta.csv") as f:
        meta = list(csv.DictReader(f))
    assert len(meta) == len(src) and {m["mask_type"] for m in meta} == {"kn95"}
    assert [int(m["row"]) for m in meta] == list(range(len(src)))
    assert (tmp_path / "masked.preview.png").stat().st_size > 1000


def test_cli_bad_input_exit_2(tmp_path, capsys):
    assert masking_main(["csv", str(tmp_path / "nope.csv"), str(tmp_path / "o.csv")]) == 2
    assert "nope.csv" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()
    with pytest.raises(SystemExit) as e:
        masking_main(["csv", "a.csv", "b.csv", "--mask-type", "balaclava"])
    assert e.value.code == 2
    assert masking_main(["images", str(tmp_path / "missing"), str(tmp_path / "o")]) == 2


def test_cli_images(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "astronaut.png"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(src / "blank.png"), np.full((200, 200, 3), 90, np.uint8))
    (src / "broken.jpg").write_bytes(b"not an image")
    rc = masking_main(["images", str(src), str(tmp_path / "out"), "--preview", "2"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "masked 1 faces in 1 of 3 images" in text
    assert "no face found (1)" in text and "blank.png" in text
    assert "unreadable (1)" in text and "broken.jpg" in text
    out = cv2.imread(str(tmp_path / "out" / "astronaut.png"))
    assert out.shape == (512, 512, 3)
    assert not (tmp_path / "out" / "blank.png").exists()


def test_mask_config_and_engine_raise_config_errors_and_the_cli_names_the_option(capsys):
    from datasets.checks import ConfigError
    from datasets.engine import Engine
    from masking.__main__ import main as masking_main
    with pytest.raises(ConfigError) as e:
        MaskConfig(mask_types=("scarf",))
    assert e.value.field == "mask_types"
    with pytest.raises(ConfigError) as e:
        MaskConfig(geometry="cap")
    assert e.value.field == "geometry"
    with pytest.raises(ConfigError) as e:
        Engine("local", -1)
    assert e.value.field == "workers"
    with pytest.raises(SystemExit) as e:
        masking_main(["csv", "in.csv", "out.csv", "--workers", "-1"])
    assert e.value.code == 2 and "--workers must be 0 or more" in capsys.readouterr().err


def test_workers_0_means_one_per_core_on_masking_too(synth_csv, tmp_path, capsys, monkeypatch):
    """--workers 0 starts one process per core (the pool's size is read where it is made)."""
    import os
    import datasets.engine as engine_mod
    from masking.__main__ import main as masking_main
    sizes, real = [], engine_mod.ProcessPoolExecutor

    def pool(n, *a, **k):
        sizes.append(n)
        return real(n, *a, **k)
    monkeypatch.setattr(engine_mod, "ProcessPoolExecutor", pool)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert masking_main(["csv", str(synth_csv), str(tmp_path / "m.csv"), "--workers", "0",
                         "--cache-dir", str(tmp_path / "c")]) == 0
    assert "masked 210 rows" in capsys.readouterr().out
    assert sizes and set(sizes) == {2}, "one process per core"


def test_the_masking_cli_draws_every_condition_a_run_draws(synth_csv, smoke_run, tmp_path, capsys):
    """`masking csv` with a run's family, look and seed writes exactly the pixels of that run's conditions: the
    photo family (the smoke run's held-out test masks, in its samples.npz) and the surface family (its validation
    family), each row recorded with its family and drawn look in OUT.meta.csv."""
    import json
    from datasets import load_fer2013
    samples = np.load(smoke_run / "samples.npz")
    cfg = json.loads((smoke_run / "config.json").read_text())["config"]
    out = {}
    for family in ("photo", "surface"):
        path = tmp_path / f"{family}.csv"
        assert masking_main(["csv", str(synth_csv), str(path), "--mask-family", family, "--mask-appearance", "random",
                             "--seed", str(cfg["mask_seed"]), "--workers", "1", "--no-cache"]) == 0
        out[family] = load_fer2013(path)
        with open(path.with_name(f"{family}.meta.csv")) as f:
            meta = list(csv.DictReader(f))
        assert {m["family"] for m in meta} == {family} and {m["color"] for m in meta} == {"drawn"}
    photo = out["photo"]
    pos = {int(r): i for i, r in enumerate(photo.rows)}
    assert np.array_equal(photo.images[[pos[int(r)] for r in samples["rows"]]], samples["held_out"]), \
        "the run's held-out (photo) faces, pixel for pixel"
    surface = mask_dataset(load_fer2013(synth_csv), MaskConfig(family="surface", appearance="random"), workers=1,
                           use_cache=False)
    assert np.array_equal(out["surface"].images, surface.images)
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        masking_main(["csv", str(synth_csv), str(tmp_path / "x.csv"), "--mask-family", "surface",
                      "--mask-geometry", "rigid"])
    assert e.value.code == 2 and "--mask-geometry" in capsys.readouterr().err.splitlines()[-1]
