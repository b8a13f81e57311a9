"""Reports stage: one self-contained HTML comparison per run folder."""
import datasets  # maskfer's first stage; Hugging Face's package of the same name would shadow it

if not hasattr(datasets, "FERData"):
    raise SystemExit(f"error: 'import datasets' found {getattr(datasets, '__file__', None) or datasets}, not maskfer's "
                     "datasets stage (another package of that name, e.g. Hugging Face's, comes first on sys.path); "
                     "install maskfer in a virtual environment of its own (README: set-up)")

from .build import build_report

__all__ = ["build_report"]
