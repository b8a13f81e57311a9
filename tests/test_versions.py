"""Versions in every key: each piece of code whose output a cache key or a model fingerprint stands for has a
version number there, and this test pins each number to a hash of that code and its constants. Change the code
and this test fails until the version is bumped (and the new hash pinned), so a cache or a finished model made
by the old code is never read as the new code's."""
from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path

from experiments.training import config as training_config
from masking import MaskConfig, landmarks, photo, pipeline, placement, surface

# name: (version, sha256 of the code and constants it versions), pinned when the version was set
PINNED = {
    "look": (1, '0ac9551fe700dd5f'),
    "clearance": (1, '094df39583940af6'),
    "occluder": (2, '4d9da21f4fc45c2a'),
    "surface": (2, '9243099948a6cf72'),
    "photo": (2, '012430bc8ac4ad50'),
}


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps([p if isinstance(p, (int, float, str, list, dict)) else repr(p)
                                      for p in parts]).encode()).hexdigest()[:16]


def current() -> dict[str, tuple[int, str]]:
    occlusion = Path(training_config.__file__).with_name("occlusion.py").read_text()
    return {
        "look": (pipeline.LOOK_VERSION, _digest(inspect.getsource(MaskConfig.spec_for))),
        "clearance": (pipeline.CLEARANCE_VERSION, _digest(
            pipeline.EYE_CLEARANCE, pipeline.UNCONFIRMED_CLEARANCE, pipeline.HIGH_RISE, pipeline.HIGH_MIN_CLEARANCE,
            placement.EYE_MARGIN, landmarks.FER_LOW_EYE_Y, inspect.getsource(pipeline.eye_clearance),
            inspect.getsource(placement.below_eyes))),
        "occluder": (training_config.OCCLUDER_VERSION, _digest(occlusion)),
        "surface": (pipeline.SURFACE_VERSION, _digest(Path(surface.__file__).read_text())),
        "photo": (photo.PHOTO_VERSION, _digest(Path(photo.__file__).read_text())),
    }


def test_every_versioned_piece_of_code_matches_its_pinned_hash():
    for name, (version, digest) in current().items():
        pinned_version, pinned = PINNED[name]
        assert (version, digest) == (pinned_version, pinned), (
            f"{name}: the code changed (hash {digest}) but its version is still {version}: bump the version "
            f"constant and pin PINNED[{name!r}] = ({version + 1}, {digest!r})" if version == pinned_version else
            f"{name}: version {version} is pinned as {pinned_version}: pin ({version}, {digest!r})")


def test_the_versions_enter_the_keys_they_concern(monkeypatch):
    plain = MaskConfig(appearance="random").identity()
    monkeypatch.setattr(pipeline, "LOOK_VERSION", 2)
    assert MaskConfig(appearance="random").identity() != plain, "a new look gives new mask keys"
    assert MaskConfig().identity() == MaskConfig().identity() and "look_version" not in MaskConfig().identity()
    monkeypatch.setattr(pipeline, "CLEARANCE_VERSION", 2)
    assert MaskConfig().identity()["clearance_version"] == 2, "a new clearance gives new keys to every mask"


def test_the_occluder_version_enters_the_fingerprint_of_models_trained_with_occluders(monkeypatch):
    from experiments import provenance
    from experiments.config import RunConfig
    cfg = RunConfig(variants=("clean", "masked"))
    fp = provenance.fingerprint(cfg, "masked", "x")
    assert fp["train_masks"]["occluder_version"] == training_config.OCCLUDER_VERSION
    monkeypatch.setattr(provenance, "OCCLUDER_VERSION", training_config.OCCLUDER_VERSION + 1)
    assert provenance.fingerprint(cfg, "masked", "x") != fp, "a new occluder retrains the model"
    assert provenance.fingerprint(cfg, "clean", "x") == provenance.fingerprint(
        cfg, "clean", "x") and "train_masks" not in provenance.fingerprint(cfg, "clean", "x")
