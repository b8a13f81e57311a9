"""Reports stage: one self-contained HTML comparison per run folder."""
import experiments  # noqa: F401  first: its __init__ checks that `datasets` is maskfer's (masking.guard)

from .build import build_report

__all__ = ["build_report"]
