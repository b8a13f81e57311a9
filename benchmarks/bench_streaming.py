"""Shards streaming on a two-node Ray cluster (`ray.cluster_utils.Cluster`, one CPU per node, on this machine):
`datasets prepare`'s map with every shard's chunks in flight at once (as it runs now) against one shard after
another (as it ran before issue 31: each shard a map of its own that had to finish before the next began).
Per variant: the wall time of the map, the CPU-seconds of work, how busy the two workers were, and per shard
the seconds from its first chunk sent to its file written.

    python benchmarks/bench_streaming.py /tmp/photos-256x256 --shard-rows 256
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import datasets.prepare as prepare_mod
from bench_engines import cpu_model
from datasets.engine import Engine


def timed_stream(log: list):
    real = prepare_mod.stream

    def stream(fn, tasks, engine, *a, **k):
        for done in real(fn, tasks, engine, *a, **k):
            log.append(done.seconds)
            yield done
    return stream


def one_shard_at_a_time(real_make):
    def make(src, out, todo, *a, **k):
        for shard in todo:  # the loop before issue 31: the next shard's map starts when this one's is done
            real_make(src, out, [shard], *a, **k)
    return make


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("photos")
    ap.add_argument("--shard-rows", type=int, default=256)
    a = ap.parse_args()
    import ray
    from ray.cluster_utils import Cluster
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address)
    real_make, rows = prepare_mod._make_shards, []
    try:
        for variant in ("one shard at a time", "streaming", "one shard at a time", "streaming"):
            work: list = []
            prepare_mod.stream = timed_stream(work)
            prepare_mod._make_shards = one_shard_at_a_time(real_make) if variant != "streaming" else real_make
            out = Path(tempfile.mkdtemp(prefix="stream-"))
            t = time.perf_counter()
            prepare_mod.prepare_photos(a.photos, out, shard_rows=a.shard_rows, engine=Engine("ray"))
            wall = time.perf_counter() - t
            shutil.rmtree(out)
            rows.append((variant, wall, sum(work)))
            print(f"{variant}: {wall:.1f} s, {sum(work):.1f} CPU-s of work, workers busy {sum(work) / (2 * wall):.0%}",
                  flush=True)
    finally:
        ray.shutdown()
        cluster.shutdown()
    print(f"\n{cpu_model()}; two nodes of one CPU; {a.shard_rows} rows per shard")
    print("| variant | wall | work (CPU-s) | workers busy | idle CPU-s |")
    print("|---|---|---|---|---|")
    for variant, wall, w in rows:
        print(f"| {variant} | {wall:.1f} s | {w:.1f} | {w / (2 * wall):.0%} | {2 * wall - w:.1f} |")


if __name__ == "__main__":
    main()
