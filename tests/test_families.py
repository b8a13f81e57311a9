"""Two families of masks (template, surface), random appearance, lower-face occluders and the held-out conditions:
each family covers what each fit claims on real faces and keeps the eyes clear, both keep every row and its mask
type, appearance spans the grey range, occluders touch only the rows and the region they should."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from datasets import load_fer2013
from test_cli_options import error_line
from experiments import conditions as C
from experiments.config import ConfigError, RunConfig, held_out_config
from masking import BOTH, FAMILIES, FITS, LandmarkFinder, MaskConfig, mask_dataset, mask_key
from masking.photo import photo_layers
from masking.pipeline import DRAWN, MIXABLE
from masking.surface import surface_layers

MOUTH_LINE, NOSE_TIP, EYES = [51, 57, 62, 66], [30], range(36, 48)


@pytest.fixture(scope="module")
def faces():
    """(size, landmarks) of real faces: the astronaut and the LFW faces dlib finds on 4x upscaled thumbnails."""
    finder = LandmarkFinder()
    img = data.astronaut()
    out = [(img.shape[:2], finder.photo_landmarks(img)[0][0])]
    for face in (data.lfw_subset()[:40] * 255).astype(np.uint8):
        big = cv2.resize(face, (100, 100), interpolation=cv2.INTER_CUBIC)
        found = finder.photo_landmarks(cv2.copyMakeBorder(big, 50, 50, 50, 50, cv2.BORDER_REPLICATE))
        if found:
            out.append(((200, 200), found[0][0]))
    assert len(out) >= 6
    return out


def _covered(alpha, points, idx):
    h, w = alpha.shape
    return np.array([alpha[min(h - 1, int(round(y))), min(w - 1, int(round(x)))] > 0.5 for x, y in points[list(idx)]])


@pytest.mark.parametrize("layers", [surface_layers, photo_layers], ids=["surface", "photo"])
@pytest.mark.parametrize("mask_type", ["surgical", "n95", "kn95", "cloth"])
def test_the_surface_and_photo_families_cover_what_each_fit_claims_and_spare_the_eyes(faces, mask_type, layers):
    for i, ((h, w), pts) in enumerate(faces):
        a = {fit: layers(pts, mask_type, np.random.default_rng([i, 3]), w, h, fit=fit)[0] for fit in FITS}
        assert not _covered(a["chin"], pts, range(48, 68)).any(), "chin: the mouth is visible"
        assert not _covered(a["mouth"], pts, NOSE_TIP).any(), "mouth: the nose tip is free"
        for fit in ("mouth", "nose", "high"):
            assert _covered(a[fit], pts, MOUTH_LINE).all(), f"{fit}: the lips are covered"
        assert _covered(a["nose"], pts, NOSE_TIP).all() and _covered(a["high"], pts, NOSE_TIP).all()
        for fit in FITS:
            assert not _covered(a[fit], pts, EYES).any(), f"{fit}: every eye landmark stays clear"
        area = [float((a[fit] > 0.5).sum()) for fit in FITS]
        assert area[0] < area[1] < area[2] <= area[3] * 1.02, "each fit covers more than the one below it"


def test_families_keep_every_row_and_its_type_and_differ_in_pixels(synth_csv, shared_cache):
    fer = load_fer2013(synth_csv, cache_dir=shared_cache).split("PrivateTest")
    sets = {f: mask_dataset(fer, MaskConfig(family=f, appearance="random"), workers=1, cache_dir=shared_cache)
            for f in FAMILIES}
    t = sets["template"]
    for k, f in enumerate(FAMILIES):
        s = sets[f]
        assert np.array_equal(s.rows, fer.rows) and np.array_equal(t.mask_type, s.mask_type)
        assert np.array_equal(t.status, s.status) and (s.family == k).all()
        changed = (s.images != fer.images).reshape(len(fer), -1).any(1)
        assert changed.mean() > 0.95, f"the {f} family draws on (almost) every row"
        assert s.coverage.mean() > 0.4
    for a, b in ((0, 1), (0, 2), (1, 2)):
        x, y = sets[FAMILIES[a]].images, sets[FAMILIES[b]].images
        assert (x != y).reshape(len(fer), -1).any(1).all(), "the families look different on every row"
    # the held-out masks are seeded per row: the same rows masked in another order and chunking are the same
    sub = fer.take(np.arange(len(fer))[::-1] % 2 == 0)
    for f in ("surface", "photo"):
        again = mask_dataset(sub, MaskConfig(family=f, appearance="random"), workers=2, use_cache=False)
        assert np.array_equal(again.images, sets[f].images[np.isin(fer.rows, sub.rows)])


def test_random_appearance_spans_the_grey_range_and_fixed_keeps_todays_key(synth_csv, shared_cache):
    fer = load_fer2013(synth_csv, cache_dir=shared_cache)
    fixed = mask_dataset(fer, MaskConfig(), workers=1, cache_dir=shared_cache)
    drawn = mask_dataset(fer, MaskConfig(appearance="random"), workers=1, cache_dir=shared_cache)
    surface = mask_dataset(fer, MaskConfig(family="surface"), workers=1, cache_dir=shared_cache)
    photo = mask_dataset(fer, MaskConfig(family="photo"), workers=1, cache_dir=shared_cache)
    assert (drawn.color == DRAWN).all() and not (fixed.color == DRAWN).any()
    for masked in (drawn, surface, photo):  # black masks and white ones, and everything between
        assert (masked.shade < 60).mean() > 0.1 and (masked.shade > 180).mean() > 0.1
        assert np.percentile(masked.shade, 75) - np.percentile(masked.shade, 25) > 50
    for t in np.unique(fixed.mask_type):  # a fixed look is one colour per type; a drawn one is any colour
        def iqr(masked):
            return np.subtract(*np.percentile(masked.shade[masked.mask_type == t], [75, 25]))
        assert iqr(fixed) < 0.6 * iqr(drawn)
    assert MaskConfig().identity() == MaskConfig(family="template", appearance="fixed").identity()
    assert "family" not in MaskConfig().identity() and "appearance" not in MaskConfig().identity()
    keys = {mask_key(fer, MaskConfig(family=f, appearance=a)) for f in FAMILIES for a in ("fixed", "random")}
    assert len(keys) == 6
    mixed = mask_dataset(fer, MaskConfig(appearance="mixed"), workers=1, cache_dir=shared_cache)
    own = mixed.color != DRAWN  # rows that kept the fixed look: the fixed set's very pixels
    assert 0.3 < own.mean() < 0.7 and np.array_equal(mixed.images[own], fixed.images[own])
    assert (mixed.mask_type == fixed.mask_type).all(), "the same type on every row"


def test_both_families_draw_each_row_as_one_of_them_would(synth_csv, shared_cache):
    """Training on "both": each row is the template or the surface family's very mask for that row, about half
    each; the photo family (for testing only) is never drawn, and is the one held out."""
    fer = load_fer2013(synth_csv, cache_dir=shared_cache).split("PrivateTest")
    sets = {f: mask_dataset(fer, MaskConfig(family=f, appearance="random"), workers=1, cache_dir=shared_cache)
            for f in (*FAMILIES, "both")}
    both = sets["both"]
    assert 0.3 < (both.family == 1).mean() < 0.7 and not (both.family == 2).any()
    for k, f in enumerate(MIXABLE):
        rows = both.family == k
        assert np.array_equal(both.images[rows], sets[f].images[rows]), f"{f} rows are that family's masks"
    assert np.array_equal(both.mask_type, sets["template"].mask_type)
    assert mask_key(fer, MaskConfig(family="both")) not in {mask_key(fer, MaskConfig(family=f)) for f in FAMILIES}
    assert held_out_config(MaskConfig(family="both"), MIXABLE) is None
    assert RunConfig(profile="smoke", train_mask_family="both").held_out_config.family == "photo"
    assert RunConfig(profile="smoke", train_mask_family="both").validation_configs == {}, "surface was trained on"


def test_held_out_conditions_name_the_test_family_and_roles_keep_families_apart():
    cfg = RunConfig(profile="smoke")
    assert cfg.mask_config.family == "template" and cfg.held_out_config.family == "photo"
    assert list(cfg.validation_configs) == ["surface"] and cfg.validation_configs["surface"].seed == cfg.mask_seed
    assert cfg.roles()["train"]["families"] == ["template"] and cfg.roles()["validate"]["families"] == ["surface"]
    assert cfg.roles()["test"]["families"] == ["photo"]
    assert held_out_config(MaskConfig(family="surface"), FAMILIES).family == "template"
    assert RunConfig(profile="smoke", test_mask_families=("template",)).held_out_config is None
    assert C.FAMILIES == FAMILIES and C.BOTH == BOTH and C.MIXABLE == MIXABLE
    with pytest.raises(ConfigError, match="validates choices cannot test them"):
        RunConfig(profile="smoke", validation_mask_families=("photo",))
    with pytest.raises(ConfigError, match="train_mask_family"):
        RunConfig(profile="smoke", train_mask_family="photo")
    with pytest.raises(ConfigError, match="only the template family draws it"):
        RunConfig(profile="smoke", train_mask_family="surface", train_mask_geometry="rigid")
    with pytest.raises(ConfigError, match="template family only"):
        MaskConfig(family="surface", geometry="rigid")
    assert C.validation_family_of(C.validation_condition("surface", "web")) == "surface"
    assert C.is_held_out("masked:held-out") and C.is_held_out("masked:held-out@chin") and not C.is_held_out("masked")
    assert C.held_out_fit_of("masked:held-out@chin") == "chin" and C.fit_of("masked:held-out@chin") is None
    assert C.mask_type_of("masked:held-out") is None and C.mask_type_of("masked:n95") == "n95"
    conds = C.test_conditions(("n95",), ("rigid",), ("chin",), held_out=True)
    assert conds == ("clean", "masked", "masked:held-out", "masked:rigid", "masked:n95", "masked@chin",
                     "masked:held-out@chin")


def test_bad_family_options_exit_2_naming_the_option(capsys):
    from experiments.run import main as run_main
    for option, value in (("--train-mask-family", "paper"), ("--test-mask-families", "template,paper"),
                          ("--train-mask-appearance", "shiny"), ("--train-occlusion", "1.5"),
                          ("--validation-mask-families", "photo"), ("--train-mask-family", "photo")):
        with pytest.raises(SystemExit) as e:
            run_main(["clean", "masked", option, value])
        assert e.value.code == 2 and option in error_line(capsys.readouterr().err)


def test_occluders_cover_the_lower_face_of_masked_rows_only():
    from experiments.training.data import train_dataset
    rng = np.random.default_rng(0)
    images = rng.integers(90, 110, (64, 48, 48), dtype=np.uint8)
    labels = np.arange(64) % 7
    tops = np.where(np.arange(64)[:, None] % 2 == 0, [30.0, 12.0], np.nan).astype(np.float32)
    kw = dict(batch_size=64, seed=3, augment=None, crop=48)
    plain = next(iter(train_dataset(images, labels, **kw)))[0].numpy()[..., 0]
    occ = train_dataset(images, labels, occlusion=1.0, tops=tops, **kw)
    first = next(iter(occ))[0].numpy()[..., 0]
    again = next(iter(train_dataset(images, labels, occlusion=1.0, tops=tops, **kw)))[0].numpy()[..., 0]
    assert np.array_equal(first, again), "seeded: the same occluders each run"
    # the dataset shuffles: find each batch row's source by its pixels
    order = [int(np.argmin(np.abs(plain - img[None]).reshape(64, -1).sum(1))) for img in images.astype(np.float32)]
    diff = np.abs(first - plain)
    for row, pos in enumerate(order):
        if np.isnan(tops[row, 0]):
            assert diff[pos].max() == 0, "a clean row never gets an occluder"
        else:
            assert diff[pos, :12].max() == 0, "the upper face stays as it was"
            assert diff[pos, 40:].max() > 0, "the lower face is occluded"
    lower = [(diff[pos, 40:] > 0).mean() for row, pos in enumerate(order) if not np.isnan(tops[row, 0])]
    assert np.mean(lower) > 0.6, "occluders cover most of the lower face"
    levels = [first[pos, 40:].mean() for row, pos in enumerate(order) if not np.isnan(tops[row, 0])]
    assert max(levels) - min(levels) > 80, "occluders of many intensities"
    with pytest.raises(ValueError, match="tops"):
        train_dataset(images, labels, occlusion=0.5, **kw)


def _in_fer_frame(size, points):
    """Real-face landmarks moved into a 48x48 FER-style crop (the face's landmark box, widened, scaled to 48)."""
    lo, hi = points.min(0), points.max(0)
    centre, side = (lo + hi) / 2, float((hi - lo).max()) * 1.15
    return ((points - centre) / side * 48 + 24 + np.array([0.0, 3.0])).astype(np.float32)


def test_no_occluder_reaches_an_eye_landmark_on_real_faces(faces):
    """Occluders keep the masks' eye clearance by landmark status: on the astronaut's and LFW faces' own
    landmarks, with every status, 300 draws each (random heights, tilts and curves), no occluder alpha touches
    the pixel of any eye landmark, nor anything above the status's ceiling."""
    from experiments.backend import tf
    from experiments.training.occlusion import occluder_tops, occluders
    from masking import STATUSES
    points = np.stack([_in_fer_frame(size, pts) for size, pts in faces])
    gen = tf.random.Generator.from_seed(0)
    reached = []
    for status in range(len(STATUSES) - 1):  # blank rows are masked from the mean shape like mean_shape ones
        tops = occluder_tops(points, np.full(len(points), status, np.uint8))
        assert (tops[:, 1] > points[:, 36:48, 1].max(1) + 0.5).all(), "the ceiling lies below every eye landmark"
        for _ in range(300 // 50):
            a = occluders(50 * len(points), np.repeat(tops, 50, 0), gen, 1.0)[0].numpy()[..., 0]
            a = a.reshape(len(points), 50, 48, 48)
            for i, pts in enumerate(points):
                eyes = np.clip(np.round(pts[36:48]).astype(int), 0, 47)
                assert a[i][:, eyes[:, 1], eyes[:, 0]].max() == 0, f"{STATUSES[status]}: an eye landmark occluded"
                rows = np.arange(48) < tops[i, 1]
                assert a[i][:, rows].max() == 0, "nothing above the ceiling"
                reached.append(a[i][:, 40:].mean())
    assert np.mean(reached) > 0.5, "the occluders still cover the lower face"


def test_flat_masks_are_the_template_outline_filled_with_one_grey_level(synth_csv, shared_cache):
    """The flat appearance: the template family's outline on each row's landmarks (eye clearance included), one
    grey level per row inside it, nothing else; the levels span the grey range; the surface family has none."""
    from masking import find_landmarks, mask_alpha
    from masking.pipeline import eye_clearance
    fer = load_fer2013(synth_csv, cache_dir=shared_cache).split("PrivateTest")
    cfg = MaskConfig(appearance="flat")
    flat = mask_dataset(fer, cfg, workers=1, cache_dir=shared_cache)
    points, status = find_landmarks(fer, workers=1, cache_dir=shared_cache)
    for i in range(len(fer)):
        a = mask_alpha(points[i], cfg.spec_for(fer.rows[i]).resolved(), 48, 48, *eye_clearance(status[i], 48))
        inside = a > 0.999
        assert inside.sum() > 50, "a flat mask covers the lower face"
        level = round(cfg.flat_level(fer.rows[i]))
        assert np.abs(flat.images[i][inside].astype(int) - level).max() <= 1, "one grey level inside the outline"
        assert np.array_equal(flat.images[i][a == 0], fer.images[i][a == 0]), "nothing drawn outside it"
    assert np.ptp([cfg.flat_level(r) for r in fer.rows]) > 200
    with pytest.raises(ConfigError, match="flat masks"):
        MaskConfig(family="surface", appearance="flat")


@pytest.mark.slow
def test_a_flat_reference_trains_like_the_masked_model_and_is_scored_on_flat_masks(tmp_path, synth_csv, shared_cache):
    from experiments.run import main as run_main
    import json
    out = tmp_path / "run"
    assert run_main(["clean", "masked", "flat", "--profile", "smoke", "--data", str(synth_csv), "--out", str(out),
                     "--cache-dir", str(shared_cache), "--workers", "1", "--no-report"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    tests = {r["test"] for r in metrics["results"] if r["train"] == "flat"}
    assert {"flat", "flat@chin", "flat@nose", "masked", "masked:held-out"} <= tests
    assert ("flat", "flat") in {(r["train"], r["test"]) for r in metrics["validation"]}
    done = json.loads((out / "flat" / "done.json").read_text())["fingerprint"]
    assert done["train_masks"]["appearance"] == "flat" and "occlusion" not in done["train_masks"]
    assert done["transfer"]["method"] == "clean_init", "fine-tuned from the clean model, as the masked model is"
    masked = json.loads((out / "masked" / "done.json").read_text())["fingerprint"]
    assert masked["train_masks"]["occlusion"] == 0.5 and masked["transfer"]["epochs"] == done["transfer"]["epochs"]
    from reports.build import build_report
    html = build_report(out).read_text()
    assert 'id="visible-table"' in html and 'data-visible="masked|masked:held-out"' in html


def test_the_outline_probe_reads_the_outline_of_the_family_it_reports(faces):
    """The probe's alpha is the drawn mask's own: the surface family's sheet for a surface-trained run (not the
    template's outline), the template's for a template run."""
    from experiments.evaluation.outline import outline_alpha
    from masking.placement import mask_alpha
    (h, w), pts = faces[0]
    pts = _in_fer_frame((h, w), pts)
    for family, layers in (("surface", surface_layers), ("photo", photo_layers)):
        cfg = MaskConfig(family=family, appearance="random")
        rng = cfg.surface_rng(7) if family == "surface" else cfg.photo_rng(7)
        want = layers(pts, cfg.spec_for(7).mask_type, rng, 48, 48, False, 0.12, None)[0]
        assert np.allclose(outline_alpha(pts, 0, 7, cfg), want)
    template = MaskConfig(appearance="random")
    assert np.allclose(outline_alpha(pts, 0, 7, template), mask_alpha(pts, template.spec_for(7), 48, 48, 0.12))
    assert not np.allclose(outline_alpha(pts, 0, 7, MaskConfig(family="surface")), outline_alpha(pts, 0, 7, template))
