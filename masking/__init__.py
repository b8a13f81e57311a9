"""Masking stage: dlib 68 landmarks -> synthetic MaskTheFace-style masks on every row, with a status per row."""
from .landmarks import STATUSES, LandmarkConfig, LandmarkFinder, eye_centres, interocular
from .pipeline import MaskConfig, MaskedSet, crop_files, find_landmarks, mask_dataset, mask_key
from .placement import GEOMETRIES, anchors, apply_mask, mask_alpha
from .templates import COLORS, MASK_TYPES, TEXTURES, MaskSpec

__all__ = ["STATUSES", "LandmarkConfig", "LandmarkFinder", "eye_centres", "interocular", "MaskConfig", "MaskedSet",
           "crop_files", "find_landmarks", "mask_dataset", "mask_key", "GEOMETRIES", "anchors", "apply_mask", "mask_alpha", "COLORS", "MASK_TYPES", "TEXTURES",
           "MaskSpec"]
