"""Imported by each Ray worker as it starts, on a Ray that maskfer starts for `datasets prepare` (Ray's
`preload_python_modules`, `datasets.raycluster.session`): dlib's face models load while Ray is still starting
up, not in each worker's first chunk (BENCHMARKS.md section 15)."""
from .faces import _init_finder
from .prepare import PHOTO_UPSAMPLE

_init_finder(PHOTO_UPSAMPLE)
