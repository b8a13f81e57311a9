"""The rigid mask geometry, the masked:rigid condition and the outline probe."""
from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from datasets import USAGES, FERData
from experiments import conditions as C
from experiments.evaluation.outline import outline_features, outline_probe
from experiments.run import main as run_main
from masking import GEOMETRIES, LandmarkFinder, MaskConfig, MaskSpec, mask_alpha
from masking.__main__ import main as masking_main
from masking.landmarks import interocular


@pytest.fixture(scope="module")
def face48():
    """The astronaut's landmarks moved into a 48x48 frame, FER2013-like."""
    import cv2
    gray = cv2.cvtColor(data.astronaut()[30:270, 130:330], cv2.COLOR_RGB2GRAY)
    (points, _), = LandmarkFinder().photo_landmarks(gray)
    lo, hi = points.min(0), points.max(0)
    return ((points - lo) / (hi - lo).max() * 40 + 4).astype(np.float32)


def _open_mouth(points: np.ndarray, drop: float) -> np.ndarray:
    """The same face with the jaw dropped by `drop` inter-ocular distances: the lower lip, the inner lower lip,
    the jaw's lower part and the chin move down; eyes and nose stay."""
    out = points.copy()
    moved = list(range(4, 13)) + list(range(55, 60)) + [65, 66, 67]
    out[moved, 1] += drop * interocular(points)
    return out


def test_rigid_outline_ignores_the_mouth_and_jaw(face48):
    opened = _open_mouth(face48, 0.3)
    spec = MaskSpec("surgical")
    rigid = [mask_alpha(p, spec, 48, 48, geometry="rigid") for p in (face48, opened)]
    landmark = [mask_alpha(p, spec, 48, 48) for p in (face48, opened)]
    np.testing.assert_array_equal(rigid[0], rigid[1])
    assert np.abs(landmark[0] - landmark[1]).sum() > 5, "the landmark mask follows the dropped jaw"


def test_rigid_mask_covers_mouth_and_nose_with_the_mouth_open(face48):
    opened = _open_mouth(face48, 0.3)
    for mask_type in ("surgical", "n95", "kn95", "cloth"):
        alpha = mask_alpha(opened, MaskSpec(mask_type), 48, 48, geometry="rigid")
        for idx in (range(48, 68), range(31, 36)):  # mouth, nose tip and nostrils
            pts = np.clip(np.round(opened[list(idx)]).astype(int), 0, 47)
            assert (alpha[pts[:, 1], pts[:, 0]] > 0.5).all(), mask_type
        eyes = np.clip(np.round(opened[36:48]).astype(int), 0, 47)
        assert (alpha[eyes[:, 1], eyes[:, 0]] == 0).all(), "the eyes stay clear"


def _fake_set(face48, drops, labels):
    n = len(labels)
    points = np.stack([_open_mouth(face48, d) for d in drops])
    usage = np.where(np.arange(n) % 5 == 0, USAGES.index("PrivateTest"), USAGES.index("Training")).astype(np.uint8)
    fer = FERData(np.zeros((n, 48, 48), np.uint8), labels.astype(np.uint8), usage, np.arange(n, dtype=np.int64))
    return fer, points, np.zeros(n, np.uint8)  # status 0: detected


@pytest.mark.parametrize("leaks", [True, False])
def test_outline_probe_reads_the_label_only_where_the_outline_carries_it(face48, leaks):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    drops = labels * 0.15 + rng.normal(0, 0.02, 300) if leaks else rng.uniform(0, 0.3, 300)
    fer, points, status = _fake_set(face48, drops, labels)
    for geometry in GEOMETRIES:
        cfg = MaskConfig(mask_types=("surgical",), geometry=geometry)
        probe = outline_probe(fer, outline_features(points, status, fer.rows, cfg))
        if leaks and geometry == "landmark":
            assert probe["accuracy"] > 0.9, probe
        else:  # the outline says nothing of the label: about chance (a third), never near the leak
            assert probe["accuracy"] < 0.55, (geometry, probe)
        assert set(probe["recall"]) >= {"angry", "disgust", "fear"}


def test_geometry_names_agree_and_conditions_parse():
    assert C.GEOMETRIES == GEOMETRIES
    assert C.geometry_of("masked:rigid") == "rigid" and C.mask_type_of("masked:rigid") is None
    assert C.mask_type_of("masked:n95") == "n95" and C.geometry_of("masked:n95") is None


def test_bad_mask_geometry_exits_2(synth_csv, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        masking_main(["csv", str(synth_csv), str(tmp_path / "o.csv"), "--mask-geometry", "floppy"])
    assert e.value.code == 2 and "floppy" in capsys.readouterr().err
    for opt in ("--train-mask-geometry", "--test-mask-geometry"):
        with pytest.raises(SystemExit) as e:
            run_main(["clean", "masked", "--profile", "smoke", opt, "floppy"])
        err = capsys.readouterr().err
        assert e.value.code == 2 and opt in err and "floppy" in err
