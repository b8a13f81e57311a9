"""`python -m datasets info PATH [--json]` and `python -m datasets synth OUT.csv --rows N --seed S`."""
from __future__ import annotations

import argparse
import json
import sys

from . import EMOTIONS, USAGES, load_dataset, make_synthetic, write_fer_csv
from .cli import at_least, build_or_exit, exit_code, folder, seed
from .engine import ENGINES, Engine
from .prepare import parse_split, prepare_photos


def _info(args) -> int:
    fer = load_dataset(args.path, cache_dir=args.cache_dir, use_cache=not args.no_cache)
    counts = fer.counts()
    if args.json:
        print(json.dumps({"rows": len(fer), "sha256": fer.source_hash, "counts": counts}, indent=2))
        return 0
    w = max(len(e) for e in EMOTIONS) + 1
    print(f"{args.path}: {len(fer)} rows, sha256 {fer.source_hash[:16]}")
    print(f"{'':<12}" + "".join(f"{e:>{w}}" for e in EMOTIONS) + f"{'total':>{w}}")
    for u in USAGES:
        row = counts[u]
        print(f"{u:<12}" + "".join(f"{row[e]:>{w}}" for e in EMOTIONS) + f"{sum(row.values()):>{w}}")
    tot = {e: sum(counts[u][e] for u in USAGES) for e in EMOTIONS}
    print(f"{'total':<12}" + "".join(f"{tot[e]:>{w}}" for e in EMOTIONS) + f"{len(fer):>{w}}")
    return 0


def _synth(args) -> int:
    images, labels, usage = make_synthetic(args.rows, args.seed)
    write_fer_csv(args.out, images, labels, usage)
    print(f"wrote {len(labels)} synthetic rows to {args.out}")
    return 0


def _prepare(args) -> int:
    prepare_photos(args.photos, args.out, parse_split(args.split), args.seed, args.engine_config)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m datasets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="rows per Usage x emotion")
    p.add_argument("path", help="FER2013 .csv / .csv.gz, or an image-folder root")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--cache-dir", type=folder, default=None, help="parsed-dataset cache (default: user cache dir)")
    p.add_argument("--no-cache", action="store_true", help="parse without reading or writing the cache")
    p.set_defaults(func=_info)
    p = sub.add_parser("synth", help="write a small synthetic FER-format CSV")
    p.add_argument("out", help="output .csv or .csv.gz")
    p.add_argument("--rows", type=at_least(21), default=700, help="at least 21: each emotion in each split")
    p.add_argument("--seed", type=seed, default=0)
    p.set_defaults(func=_synth)
    p = sub.add_parser("prepare", help="a folder of face photos -> a prepared set (face crops in shards)")
    p.add_argument("photos", help="a folder of <emotion>/ or <split>/<emotion>/ folders of photos")
    p.add_argument("--out", type=folder, required=True, help="the prepared set's folder (outside PHOTOS); rerunning resumes")
    p.add_argument("--split", default="0.8,0.1,0.1", help="train,val,test fractions for a set without split "
                   "folders (stratified by emotion; default 0.8,0.1,0.1)")
    p.add_argument("--seed", type=seed, default=0, help="the split's seed")
    p.add_argument("--engine", choices=ENGINES, default="local", help="local processes (default) or Ray tasks")
    p.add_argument("--address", help="ray engine: a running cluster's address (default: Ray on this machine)")
    p.add_argument("--workers", type=int, default=0, help="local engine: processes (default: one per core)")
    p.set_defaults(func=_prepare)
    args = parser.parse_args(argv)
    if args.command == "prepare":
        args.engine_config = build_or_exit(parser, lambda: Engine(args.engine, args.workers, args.address))
    return exit_code(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
