"""Wall time of `python -m datasets prepare` on the local engine and on Ray (a fresh Ray on this machine, its
start-up and shutdown included), run alternately so that both see the same machine; each run is a new process
into an empty output folder, as a user runs it.

    python benchmarks/make_photo_set.py $FER2013_CSV /tmp/photos-256x256 --rows 1000 --size 256x256
    python benchmarks/bench_engines.py /tmp/photos-256x256 --repeats 5
"""
from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor()


def once(photos: str, engine: str, extra: list[str]) -> float:
    out = Path(tempfile.mkdtemp(prefix=f"bench-{engine}-"))
    shutil.rmtree(out)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "datasets", "prepare", photos, "--out", str(out), "--engine", engine, *extra],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - t
    shutil.rmtree(out)
    return seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("photos")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--engines", default="local,ray")
    a = ap.parse_args()
    engines = a.engines.split(",")
    times = {e: [] for e in engines}
    for i in range(a.repeats):
        for e in engines:
            times[e].append(once(a.photos, e, []))
            print(f"run {i + 1} {e}: {times[e][-1]:.2f} s", flush=True)
    print(f"\n{cpu_model()}, {len(list(Path(a.photos).rglob('*.png')))} photos, {a.repeats} runs each, alternating")
    print("| engine | median wall | min | max | median / local |")
    print("|---|---|---|---|---|")
    base = statistics.median(times[engines[0]])
    for e in engines:
        m = statistics.median(times[e])
        print(f"| {e} | {m:.2f} s | {min(times[e]):.2f} s | {max(times[e]):.2f} s | {m / base:.2f}x |")


if __name__ == "__main__":
    main()
