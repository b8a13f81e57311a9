"""A local study worker's watch on its driver, in a module of its own that imports no TensorFlow (so the test
that kills a driver starts its processes fast)."""
from __future__ import annotations

import os
import threading
import time


def exit_with_driver(driver: int, poll: float = 1.0) -> threading.Thread:
    """In a local worker: a daemon thread that ends this process (exit status 3) within `poll` seconds of the
    driver process `driver` going away, however it went (Ctrl-C, SIGTERM, SIGKILL): the worker is then
    re-parented, so its parent id changes. No run trains on unseen after its study was stopped."""
    def watch():
        while os.getppid() == driver:
            time.sleep(poll)
        os._exit(3)
    thread = threading.Thread(target=watch, name="maskfer-driver-watch", daemon=True)
    thread.start()
    return thread
