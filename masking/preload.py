"""Imported by each Ray worker as it starts, on a Ray that maskfer starts for `python -m masking` (Ray's
`preload_python_modules`, `datasets.raycluster.session`): dlib's models load while Ray is still starting up."""
from .landmarks import LandmarkConfig
from .pipeline import preload_finder

preload_finder(LandmarkConfig())
