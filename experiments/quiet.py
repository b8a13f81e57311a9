"""Quiet output: TensorFlow's C++ start-up lines (the oneDNN banner, absl's pre-init warning) go to file
descriptor 2 before any Python logging is set up, and TF_CPP_MIN_LOG_LEVEL no longer silences them in
TF 2.21; so, unless --verbose, TensorFlow and Keras are imported with that descriptor pointed at /dev/null.
Python exceptions are unaffected: an import error is still raised and printed."""
from __future__ import annotations

import os
from contextlib import contextmanager


@contextmanager
def _stderr_to_devnull():
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def quiet_tensorflow(verbose: bool) -> None:
    """Import TensorFlow and Keras now, silently unless `verbose`; call before anything imports them."""
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _stderr_to_devnull():
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
