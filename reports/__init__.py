"""Reports stage: one self-contained HTML comparison per run folder."""
from .build import build_report

__all__ = ["build_report"]
