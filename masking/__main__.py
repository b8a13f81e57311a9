"""`python -m masking csv IN.csv OUT.csv [...]` and `python -m masking images IN_DIR OUT_DIR [...]`."""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from datasets.atomic import atomic_path
from datasets.cli import InputError, build_or_exit, exit_code
from datasets.engine import ENGINES, Engine, map_chunks
from datasets import EMOTIONS, IMAGE_SUFFIXES, USAGES, load_dataset, write_fer_csv

from .landmarks import STATUSES, LandmarkFinder
from .pipeline import MaskConfig, mask_dataset
from .placement import GEOMETRIES, apply_mask
from .templates import COLORS, MASK_TYPES, TEXTURES

# The options that set MaskConfig's fields, where the name is not the field's (`datasets.cli.option_name`).
OPTIONS = {"mask_types": "--mask-type", "colors": "--color", "textures": "--texture", "geometry": "--mask-geometry",
           "fit": "--mask-fit"}


def _config(args) -> MaskConfig:
    types = MASK_TYPES if args.mask_type == "random" else (args.mask_type,)
    return MaskConfig(mask_types=types, colors=tuple(args.color or ()), textures=tuple(args.texture or ()),
                      seed=args.seed, geometry=args.mask_geometry, fit=args.mask_fit)


def _atomic_png(path: Path, image_bgr: np.ndarray) -> None:
    ok, buf = cv2.imencode(path.suffix or ".png", image_bgr)
    if not ok:
        raise OSError(f"{path}: could not encode image")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())


def _preview(path: Path, pairs: list[tuple[np.ndarray, np.ndarray]], size: int = 96) -> None:
    """PNG grid: originals on the top row of each pair, masked versions below."""
    tiles = []
    for a, b in pairs:
        a, b = (cv2.cvtColor(x, cv2.COLOR_GRAY2RGB) if x.ndim == 2 else x for x in (a, b))
        tiles.append(np.vstack([cv2.resize(a, (size, size)), cv2.resize(b, (size, size))]))
    cols = 8
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    grid = np.vstack([np.hstack(tiles[i:i + cols]) for i in range(0, len(tiles), cols)])
    _atomic_png(path, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    print(f"preview: {path}")


def cmd_csv(args) -> int:
    cfg = args.mask_config
    out = Path(args.out)
    if not out.parent.is_dir():
        raise InputError(f"{out.parent}: output folder does not exist")
    fer = load_dataset(args.input, cache_dir=args.cache_dir)
    t = time.perf_counter()
    masked = mask_dataset(fer, cfg, cache_dir=args.cache_dir, use_cache=not args.no_cache, engine=args.engine_config)
    secs = time.perf_counter() - t
    write_fer_csv(out, masked.images, fer.labels, fer.usage)
    meta = out.with_name(out.name.removesuffix(".gz").removesuffix(".csv") + ".meta.csv")
    with atomic_path(meta) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["row", "emotion", "usage", "status", "mask_type", "color", "texture", "coverage"])
        colors = list(COLORS)
        for i in range(len(fer)):
            w.writerow([int(fer.rows[i]), EMOTIONS[fer.labels[i]], USAGES[fer.usage[i]], STATUSES[masked.status[i]],
                        MASK_TYPES[masked.mask_type[i]], colors[masked.color[i]], TEXTURES[masked.texture[i]],
                        f"{masked.coverage[i]:.3f}"])
    print(f"masked {len(fer)} rows in {secs:.1f} s ({len(fer) / max(secs, 1e-9):.0f} rows/s) -> {out}, {meta}")
    print(f"{'':<10}" + "".join(f"{s:>11}" for s in STATUSES) + f"{'total':>11}")
    for k, e in enumerate(EMOTIONS):
        sel = masked.status[fer.labels == k]
        print(f"{e:<10}" + "".join(f"{int((sel == j).sum()):>11}" for j in range(len(STATUSES))) + f"{len(sel):>11}")
    print(f"{'total':<10}" + "".join(f"{int((masked.status == j).sum()):>11}" for j in range(len(STATUSES)))
          + f"{len(fer):>11}")
    if args.preview:
        idx = np.linspace(0, len(fer) - 1, min(args.preview, len(fer))).astype(int)
        _preview(out.with_name(meta.name.removesuffix(".meta.csv") + ".preview.png"),
                 [(fer.images[i], masked.images[i]) for i in idx])
    return 0


def _mask_photos(task) -> list[tuple[str, bytes | None, str]]:
    """(relative name, the masked photo encoded as its own format or None, "masked" | "no face" | "unreadable") per file of
    a chunk. task: ([(path, relative name, first mask index)], MaskConfig). Runs in an engine's worker."""
    files, cfg = task
    if cfg.landmarks not in _FINDERS:  # dlib's models load once per worker process, not once per chunk
        _FINDERS[cfg.landmarks] = LandmarkFinder(cfg.landmarks)
    finder = _FINDERS[cfg.landmarks]
    out = []
    for path, rel, k in files:
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            out.append((rel, None, "unreadable"))
            continue
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        faces = finder.photo_landmarks(rgb)
        masked = rgb
        for j, (points, _) in enumerate(faces):
            masked, _ = apply_mask(masked, points, cfg.spec_for(k * 1000 + j), geometry=cfg.geometry, fit=cfg.fit)
        ok, buf = cv2.imencode(Path(rel).suffix or ".png", cv2.cvtColor(masked, cv2.COLOR_RGB2BGR))
        out.append((rel, buf.tobytes() if faces and ok else None, f"masked {len(faces)}" if faces else "no face"))
    return out


_FINDERS: dict = {}  # one LandmarkFinder per worker process and landmark config


def cmd_images(args) -> int:
    cfg = args.mask_config
    src, dst = Path(args.input), Path(args.out)
    if not src.is_dir():
        raise InputError(f"{src}: not a folder")
    dst.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in src.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    listing = [(str(p), str(p.relative_to(src)), k) for k, p in enumerate(files)]
    tasks = [(listing[i:i + 16], cfg) for i in range(0, len(listing), 16)]
    results = [r for part in map_chunks(_mask_photos, tasks, len, args.engine_config, "photos", total=len(listing)) for r in part]
    no_face, unreadable, n_faces = [], [], 0
    for rel, png, status in results:  # workers send the pictures back: no shared disk needed
        if png is None:
            (unreadable if status == "unreadable" else no_face).append(src / rel)
            continue
        n_faces += int(status.split()[1])
        with atomic_path(dst / rel) as tmp:
            tmp.write_bytes(png)
    print(f"masked {n_faces} faces in {len(files) - len(no_face) - len(unreadable)} of {len(files)} images -> {dst}")
    for label, items in (("no face found", no_face), ("unreadable", unreadable)):
        if items:
            print(f"{label} ({len(items)}):")
            for p in items:
                print(f"  {p}")
    masked = [(rel, png) for rel, png, _ in results if png is not None][:args.preview or 0]
    if masked:
        pairs = [(cv2.cvtColor(cv2.imread(str(src / rel)), cv2.COLOR_BGR2RGB),
                  cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
                 for rel, png in masked]
        _preview(dst / "preview.png", pairs)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m masking", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, fn, help_in, help_out in (("csv", cmd_csv, "FER-format .csv/.csv.gz or image-folder root",
                                         "output FER-format .csv (OUT.meta.csv written beside it)"),
                                        ("images", cmd_images, "folder of photos", "output folder")):
        p = sub.add_parser(name)
        p.add_argument("input", help=help_in)
        p.add_argument("out", help=help_out)
        p.add_argument("--mask-type", default="random", choices=MASK_TYPES + ("random",))
        p.add_argument("--color", action="append", choices=list(COLORS), help="colour(s) to draw from (repeatable)")
        p.add_argument("--texture", action="append", choices=TEXTURES, help="texture(s) to draw from (repeatable)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--mask-geometry", choices=GEOMETRIES, default="landmark", help="landmark: the mask follows "
                       "the jaw (default); rigid: placed by the eyes and nose bridge, sized for an open mouth")
        p.add_argument("--mask-fit", default="nose", help="how the mask is worn: chin (pulled down, mouth "
                       "visible), mouth (under the nose), nose (over the nose; default) or high (up to the eyes' "
                       "clearance)")
        p.add_argument("--workers", type=int, default=0, help="local engine: processes (default: one per core)")
        p.add_argument("--engine", choices=ENGINES, default="local", help="local processes (default) or Ray tasks")
        p.add_argument("--address", help="ray engine: a running cluster's address (default: Ray on this machine)")
        p.add_argument("--preview", type=int, default=0, metavar="N", help="write a PNG grid of N before/after pairs")
        if name == "csv":
            p.add_argument("--cache-dir", default=None, help="landmark and mask cache (default: the user cache folder)")
            p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
        p.set_defaults(func=fn)
    args = parser.parse_args(argv)
    args.mask_config = build_or_exit(parser, lambda: _config(args), OPTIONS)
    args.engine_config = build_or_exit(parser, lambda: Engine(args.engine, args.workers, args.address))
    return exit_code(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
