"""Ray Data against maskfer's own streaming tasks (`datasets.engine.stream`) for the face-crop map of `datasets
prepare`, on the same photos and the same fresh local Ray: `read_binary_files` (driver-local, `local://`) ->
`map_batches` on an actor pool (dlib's models loaded once per actor) -> the crops, in order. Each variant runs in
a process of its own, Ray's start-up and shutdown included; they alternate. Needs `pip install 'ray[data]'`.

    python benchmarks/bench_raydata.py /tmp/photos-256x256 --repeats 3
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench_engines import cpu_model


def ray_data(photos: str, out: str) -> None:
    import ray
    from datasets.faces import FaceFinder, face_crop
    from datasets.photos import decode_rgb
    from datasets.raycluster import session

    class Crop:
        def __init__(self):
            self.finder = FaceFinder(1)

        def __call__(self, batch):
            images, status = [], []
            for data in batch["bytes"]:
                rgb = decode_rgb(bytes(data))
                crop, st = face_crop(rgb, self.finder) if rgb is not None else (np.zeros((48, 48), np.uint8), "unreadable")
                images.append(crop)
                status.append(st)
            return {"path": batch["path"], "image": np.stack(images), "status": np.array(status)}

    files = sorted(str(p) for p in Path(photos).rglob("*.png"))
    with session():
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        # reads on the driver's node (local://: no shared disk), a tenth of a CPU each, so that they are not
        # starved by the actors, which take the rest (with num_cpus=1 each, the reads never ran: a deadlock)
        ds = ray.data.read_binary_files(["local://" + f for f in files], include_paths=True,
                                        ray_remote_args={"num_cpus": 0.1})
        cpus = int(ray.cluster_resources()["CPU"])
        rows = ds.map_batches(Crop, batch_size=32, compute=ray.data.ActorPoolStrategy(size=cpus),
                              num_cpus=0.9).take_all()
    by_path = {r["path"]: r["image"] for r in rows}
    np.save(out, np.stack([by_path[f.lstrip("/")] if f.lstrip("/") in by_path else by_path[f] for f in files]))


def tasks(photos: str, out: str) -> None:
    from datasets.engine import Engine
    from datasets.faces import crop_files
    files = sorted(str(p) for p in Path(photos).rglob("*.png"))
    engine = Engine("ray")
    with engine.session():
        images, _ = crop_files(files, engine=engine, chunk=32)
    np.save(out, images)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("photos")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.variant:
        {"ray_data": ray_data, "tasks": tasks}[a.variant](a.photos, a.out)
        return
    times = {"tasks": [], "ray_data": []}
    for i in range(a.repeats):
        for v in times:
            t = time.perf_counter()
            subprocess.run([sys.executable, __file__, a.photos, "--variant", v, "--out", f"/tmp/bench-{v}.npy"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[v].append(time.perf_counter() - t)
            print(f"run {i + 1} {v}: {times[v][-1]:.2f} s", flush=True)
    same = np.array_equal(np.load("/tmp/bench-tasks.npy"), np.load("/tmp/bench-ray_data.npy"))
    print(f"\n{cpu_model()}; the same crops from both: {same}")
    print("| Ray engine | median wall | min | max |")
    print("|---|---|---|---|")
    for v, ts in times.items():
        print(f"| {v} | {statistics.median(ts):.2f} s | {min(ts):.2f} s | {max(ts):.2f} s |")


if __name__ == "__main__":
    main()
