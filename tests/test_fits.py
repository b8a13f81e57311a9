"""How the mask is worn: chin, mouth, nose, high. Each fit covers what it claims on real faces (scikit-image's
astronaut and LFW faces), in both geometries; `nose` keeps today's cache keys; bad fits exit 2."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from datasets import FERData
from experiments import conditions as C
from masking import FITS, GEOMETRIES, STATUSES, LandmarkFinder, MaskConfig, MaskSpec, mask_alpha, mask_key
from masking.pipeline import HIGH_MIN_CLEARANCE, HIGH_RISE, eye_clearance

MOUTH, NOSE_TIP, NOSTRILS, EYES = range(48, 68), [30], range(31, 36), range(36, 48)


@pytest.fixture(scope="module")
def faces():
    """(alpha-drawing size, landmarks) of real faces: the astronaut photo and LFW faces found by dlib on
    the 4x upscaled 25 px thumbnails."""
    finder = LandmarkFinder()
    img = data.astronaut()
    out = [(img.shape[:2], finder.photo_landmarks(img)[0][0])]
    lfw = (data.lfw_subset()[:40] * 255).astype(np.uint8)
    for face in lfw:
        big = cv2.resize(face, (100, 100), interpolation=cv2.INTER_CUBIC)
        found = finder.photo_landmarks(cv2.copyMakeBorder(big, 50, 50, 50, 50, cv2.BORDER_REPLICATE))
        if found:
            out.append(((200, 200), found[0][0]))
    assert len(out) >= 6, "dlib finds the astronaut and several LFW faces"
    return out


def covered(alpha: np.ndarray, points: np.ndarray, idx) -> np.ndarray:
    h, w = alpha.shape
    return np.array([alpha[min(h - 1, int(round(y))), min(w - 1, int(round(x)))] > 0.5 for x, y in points[list(idx)]])


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_each_fit_covers_what_it_claims(faces, geometry):
    """Landmark geometry: on every face. Rigid geometry (its cuts are fixed distances below the nose tip, so
    that no mouth landmark moves its outline): on the frontal astronaut, and on most LFW faces for the lips."""
    lips = []
    for i, ((h, w), pts) in enumerate(faces):
        a = {fit: mask_alpha(pts, MaskSpec("surgical").resolved(), w, h, geometry=geometry, fit=fit) for fit in FITS}
        if geometry == "landmark":
            assert not covered(a["chin"], pts, MOUTH).any(), "chin: the mouth is visible"
        assert not covered(a["chin"], pts, NOSE_TIP).any()
        lips.append(covered(a["mouth"], pts, [51, 57, 62, 66]).all())
        assert not covered(a["mouth"], pts, NOSE_TIP).any(), "mouth: the nose tip is free"
        assert covered(a["nose"], pts, NOSE_TIP).all() and covered(a["high"], pts, NOSE_TIP).all()
        for fit in FITS:
            assert not covered(a[fit], pts, EYES).any(), f"{fit}: every eye landmark stays clear"
        area = [float((a[fit] > 0.5).sum()) for fit in FITS]
        assert area == sorted(area), "each fit covers more of the face than the one below it"
    if geometry == "landmark":
        assert all(lips), "mouth: the lips' centre line is covered on every face"
    else:
        assert lips[0] and np.mean(lips) >= 0.75, f"mouth (rigid): lips covered on {np.mean(lips):.0%} of faces"


def test_high_keeps_the_eyes_as_clear_as_nose(faces):
    """The same eye clearance bounds both: the highest covered pixel of `high` is no nearer the eyes than
    that clearance, and it never starts below `nose`'s top edge."""
    from masking.placement import eye_frame
    for i, ((h, w), pts) in enumerate(faces):
        F = eye_frame(pts)
        yy, xx = np.mgrid[0:h, 0:w]
        depth = F[1, 0] * xx + F[1, 1] * yy + F[1, 2]
        lowest_eye = float((pts[36:48] @ F[1, :2] + F[1, 2]).max())
        tops = {fit: depth[mask_alpha(pts, MaskSpec("n95").resolved(), w, h, fit=fit) > 0.5].min() for fit in ("nose", "high")}
        assert tops["high"] <= tops["nose"] and tops["high"] >= lowest_eye + 0.1
        if i == 0:  # the astronaut: `high` covers more (the cheeks up to the clearance) than `nose`
            area = {fit: (mask_alpha(pts, MaskSpec("n95").resolved(), w, h, fit=fit) > 0.5).sum() for fit in ("nose", "high")}
            assert area["high"] > 1.1 * area["nose"]


@pytest.mark.parametrize("status", ["detected", "detected_cnn"])
def test_high_reaches_the_upper_nose_bridge_and_no_eye(faces, status):
    """With the pipeline's clearance for a landmark status, `high` covers the upper nose bridge (landmark 28) on
    many more faces than `nose` (detected landmarks: 46% against 11% of these 37, alpha > 0.5 at its pixel; on
    LFW's framing 28 often lies level with the lower eyelid, where no mask may go), and still no eye landmark.
    FER2013's figures against independent landmarks: BENCHMARKS 17."""
    bridge = {"nose": [], "high": []}
    top = {"nose": [], "high": []}  # the mask's top edge above the nose (alpha > 0.5), in inter-ocular distances
    for (h, w), pts in faces:
        iod = float(np.hypot(*(pts[45] - pts[36])))
        x = int(round(pts[28, 0]))
        for fit in bridge:
            margin, floor = eye_clearance(STATUSES.index(status), h, fit)
            a = mask_alpha(pts, MaskSpec("surgical").resolved(), w, h, margin, floor, fit=fit)
            assert not covered(a, pts, EYES).any(), f"{fit}: every eye landmark stays clear"
            bridge[fit].append(bool(covered(a, pts, [28]).all()))
            top[fit].append(np.flatnonzero(a[:, x] > 0.5)[0] / iod)
    nose, high = np.array(bridge["nose"]), np.array(bridge["high"])
    rise = np.array(top["nose"]) - np.array(top["high"])
    print(status, f"upper bridge covered: nose {nose.mean():.0%}, high {high.mean():.0%} of {len(nose)} faces; "
          f"top edge raised by {rise.mean():.3f} IOD (min {rise.min():.3f})")
    assert (high >= nose).all() and (rise >= -1e-6).all(), "high never lower than nose"
    # the margin that holds for every status named: high's edge comes HIGH_RISE closer to the eyes than nose's
    # clearance, so it rises by a good part of that on average; detected rows also reach 28 far more often
    assert rise.min() >= 0.4 * HIGH_RISE and rise.mean() >= 0.6 * HIGH_RISE, f"{status}: high's edge barely rises"
    if status == "detected":
        assert high.mean() >= nose.mean() + 0.3


def test_a_fit_changes_the_cache_key_and_nose_keeps_todays():
    fer = FERData(np.zeros((2, 48, 48), np.uint8), np.zeros(2, np.uint8), np.zeros(2, np.uint8), np.arange(2), "abc")
    assert "fit" not in MaskConfig().identity() and MaskConfig(fit="nose").identity() == MaskConfig().identity()
    keys = {fit: mask_key(fer, MaskConfig(fit=fit)) for fit in FITS}
    assert len(set(keys.values())) == 4 and keys["nose"] == mask_key(fer, MaskConfig())
    assert keys["nose"] == "992b6be6b42f6cce47ec88f8", "the key masks worn over the nose have had since before fits"
    assert MaskConfig(fit="high").identity()["high_clearance"] == [HIGH_RISE, HIGH_MIN_CLEARANCE]
    assert C.FITS == FITS and C.fit_of(C.fit_condition("mouth")) == "mouth" and C.fit_of("masked:n95") is None


def test_bad_mask_fit_exits_2_naming_the_option(tmp_path, capsys):
    from experiments.run import main as run_main
    from masking.__main__ import main as masking_main
    with pytest.raises(SystemExit) as e:
        masking_main(["csv", "in.csv", str(tmp_path / "o.csv"), "--mask-fit", "cap"])
    assert e.value.code == 2 and "--mask-fit 'cap' is unknown" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        run_main(["clean", "masked", "--test-mask-fits", "chin,cap"])
    assert e.value.code == 2 and "--test-mask-fits 'cap' is unknown" in capsys.readouterr().err
