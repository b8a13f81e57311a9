"""Masking stage: dlib 68 landmarks -> synthetic MaskTheFace-style masks on every row, with a status per row."""
from .guard import require_maskfer_datasets

require_maskfer_datasets()  # before any module that imports it

from .landmarks import STATUSES, LandmarkConfig, LandmarkFinder, eye_centres, interocular
from .pipeline import APPEARANCES, BOTH, FAMILIES, MaskConfig, MaskedSet, find_landmarks, mask_dataset, mask_key
from .placement import FITS, GEOMETRIES, anchors, apply_mask, mask_alpha
from .templates import COLORS, MASK_TYPES, TEXTURES, MaskSpec

__all__ = ["APPEARANCES", "BOTH", "FAMILIES", "STATUSES", "LandmarkConfig", "LandmarkFinder", "eye_centres", "interocular", "MaskConfig", "MaskedSet",
           "find_landmarks", "mask_dataset", "mask_key", "FITS", "GEOMETRIES", "anchors", "apply_mask", "mask_alpha", "COLORS", "MASK_TYPES", "TEXTURES",
           "MaskSpec"]
