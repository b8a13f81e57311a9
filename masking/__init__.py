"""Masking stage: dlib 68 landmarks -> synthetic MaskTheFace-style masks on every row, with a status per row."""
import datasets  # maskfer's first stage; Hugging Face's package of the same name would shadow it

if not hasattr(datasets, "FERData"):
    raise SystemExit(f"error: 'import datasets' found {getattr(datasets, '__file__', None) or datasets}, not maskfer's "
                     "datasets stage (another package of that name, e.g. Hugging Face's, comes first on sys.path); "
                     "install maskfer in a virtual environment of its own (README: set-up)")

from .landmarks import STATUSES, LandmarkConfig, LandmarkFinder, eye_centres, interocular
from .pipeline import APPEARANCES, FAMILIES, MaskConfig, MaskedSet, find_landmarks, mask_dataset, mask_key
from .placement import FITS, GEOMETRIES, anchors, apply_mask, mask_alpha
from .templates import COLORS, MASK_TYPES, TEXTURES, MaskSpec

__all__ = ["APPEARANCES", "FAMILIES", "STATUSES", "LandmarkConfig", "LandmarkFinder", "eye_centres", "interocular", "MaskConfig", "MaskedSet",
           "find_landmarks", "mask_dataset", "mask_key", "FITS", "GEOMETRIES", "anchors", "apply_mask", "mask_alpha", "COLORS", "MASK_TYPES", "TEXTURES",
           "MaskSpec"]
