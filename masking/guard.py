"""The one check that `import datasets` found maskfer's first stage: Hugging Face's package of the same name,
first on sys.path, would shadow it. masking's `__init__` calls it before anything else, and the later stages
import masking (experiments) or experiments (reports) first, so every stage stops with the same one line. This
module imports nothing else of maskfer's, so it runs whichever `datasets` is found."""
import datasets


def require_maskfer_datasets() -> None:
    """SystemExit with one line naming the `datasets` that was found, unless it is maskfer's."""
    if not hasattr(datasets, "FERData"):
        raise SystemExit(f"error: 'import datasets' found {getattr(datasets, '__file__', None) or datasets}, not "
                         "maskfer's datasets stage (another package of that name, e.g. Hugging Face's, comes first "
                         "on sys.path); install maskfer in a virtual environment of its own (README: set-up)")
