"""TensorFlow and Keras, imported once and quietly. Every maskfer module that needs them imports them from
here (`from experiments.backend import keras, tf`), so this is the one place that imports TensorFlow.

TensorFlow 2.21 prints its C++ start-up lines (absl's pre-init warning, the oneDNN banner) to file
descriptor 2 before any Python logging is set up, and TF_CPP_MIN_LOG_LEVEL no longer silences them. So
the import runs with that descriptor pointed at /dev/null, unless the user set TF_CPP_MIN_LOG_LEVEL
(then TensorFlow prints what that level lets through, start-up lines included). Python exceptions are
unaffected: an import error is still raised and printed.
"""
from __future__ import annotations

import os
from contextlib import contextmanager


@contextmanager
def _stderr_to_devnull(enabled: bool):
    if not enabled:
        yield
        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# Quiet unless the user set the level; the marker passes maskfer's choice on to its worker processes.
_QUIET = "TF_CPP_MIN_LOG_LEVEL" not in os.environ or os.environ.get("MASKFER_TF_QUIET") == "1"
if _QUIET:
    os.environ.update(TF_CPP_MIN_LOG_LEVEL="2", MASKFER_TF_QUIET="1")
with _stderr_to_devnull(_QUIET):
    import keras  # noqa: E402
    import tensorflow as tf  # noqa: E402

__all__ = ["keras", "tf"]


def pin_threads(threads: int = 0) -> dict[str, int]:
    """Fix TensorFlow's intra-op and inter-op thread pools at `threads` each (0: os.cpu_count()), so a run's
    arithmetic does not depend on where it runs (a Ray worker, a shell). Call before any TensorFlow op; a
    later call that asks for other counts raises RuntimeError (TensorFlow cannot change them once running).
    Returns the counts in force, for config.json."""
    cores = os.cpu_count() or 1
    n = threads or cores
    now = tf.config.threading

    def in_force():  # TensorFlow reports 0 for its default, one thread per core
        return {"intra_op": now.get_intra_op_parallelism_threads() or cores,
                "inter_op": now.get_inter_op_parallelism_threads() or cores}
    if in_force() != {"intra_op": n, "inter_op": n}:
        now.set_intra_op_parallelism_threads(n)
        now.set_inter_op_parallelism_threads(n)
    return in_force()
