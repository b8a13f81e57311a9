"""`python -m masking csv IN.csv OUT.csv [...]` and `python -m masking images IN_DIR OUT_DIR [...]`."""
from __future__ import annotations

import argparse
import csv
import sys
import time
from itertools import islice
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from datasets.atomic import atomic_path
from datasets.cli import InputError, at_least, build_or_exit, exit_code, folder, seed
from datasets.engine import ENGINES, Engine, progress, stream
from datasets.photos import PhotoFolder, load_rgb, local_ref
from datasets import EMOTIONS, IMAGE_SUFFIXES, USAGES, load_dataset, write_fer_csv

from .landmarks import STATUSES
from .photos import CHUNK_PHOTOS, mask_photo_chunk
from .pipeline import DRAWN, FAMILIES, MaskConfig, mask_dataset
from .placement import GEOMETRIES
from .templates import COLORS, MASK_TYPES, TEXTURES

# The options that set MaskConfig's fields, where the name is not the field's (`datasets.cli.option_name`).
OPTIONS = {"mask_types": "--mask-type", "colors": "--color", "textures": "--texture", "geometry": "--mask-geometry",
           "fit": "--mask-fit", "family": "--mask-family", "appearance": "--mask-appearance"}


def _config(args) -> MaskConfig:
    types = MASK_TYPES if args.mask_type == "random" else (args.mask_type,)
    return MaskConfig(mask_types=types, colors=tuple(args.color or ()), textures=tuple(args.texture or ()),
                      seed=args.seed, geometry=args.mask_geometry, fit=args.mask_fit, family=args.mask_family,
                      appearance=args.mask_appearance)


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
    with args.engine_config.session():  # landmarks and masks share one Ray
        masked = mask_dataset(fer, cfg, cache_dir=args.cache_dir, use_cache=not args.no_cache,
                              engine=args.engine_config)
    secs = time.perf_counter() - t
    write_fer_csv(out, masked.images, fer.labels, fer.usage)
    meta = out.with_name(out.name.removesuffix(".gz").removesuffix(".csv") + ".meta.csv")
    with atomic_path(meta) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["row", "emotion", "usage", "status", "mask_type", "color", "texture", "coverage", "family",
                    "shade"])
        colors = list(COLORS)
        for i in range(len(fer)):
            color = "drawn" if masked.color[i] == DRAWN else colors[masked.color[i]]  # a look drawn per row
            w.writerow([int(fer.rows[i]), EMOTIONS[fer.labels[i]], USAGES[fer.usage[i]], STATUSES[masked.status[i]],
                        MASK_TYPES[masked.mask_type[i]], color, TEXTURES[masked.texture[i]],
                        f"{masked.coverage[i]:.3f}", FAMILIES[masked.family[i]], int(masked.shade[i])])
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



def cmd_images(args) -> int:
    cfg, engine = args.mask_config, args.engine_config
    src, dst = PhotoFolder(args.input), Path(args.out)
    if not src.is_dir():
        raise InputError(f"{src}: not a folder")
    files = src.files(src.root, IMAGE_SUFFIXES)
    dst.mkdir(parents=True, exist_ok=True)
    refs = src.refs(files)  # read (a local folder) only as each chunk is sent
    tasks = ((list(islice(refs, CHUNK_PHOTOS)), cfg, i) for i in range(0, len(files), CHUNK_PHOTOS))
    statuses, n_faces = {}, 0
    with engine.session(), progress(len(files), "photos") as bar:
        for done in stream(mask_photo_chunk, tasks, engine):
            for name, data, status in done.result:  # written as each chunk comes back: no shared disk needed
                statuses[name] = status
                if data is not None:
                    n_faces += int(status.split()[1])
                    with atomic_path(dst / name) as tmp:
                        tmp.write_bytes(data)
            bar.update(len(done.result))
    no_face = sorted(n for n, st in statuses.items() if st == "no face")
    unreadable = sorted(n for n, st in statuses.items() if st == "unreadable")
    print(f"masked {n_faces} faces in {len(files) - len(no_face) - len(unreadable)} of {len(files)} images -> {dst}")
    for label, items in (("no face found", no_face), ("unreadable", unreadable)):
        if items:
            print(f"{label} ({len(items)}):")
            for name in items:
                print(f"  {src}/{name}")
    shown = sorted(n for n, st in statuses.items() if st.startswith("masked"))[:args.preview or 0]
    if shown:  # the first photos by name, whichever order they were masked in
        by_name = {str(PurePosixPath(*p.relative_to(src.root).parts)): p for p in files}
        _preview(dst / "preview.png", [(load_rgb(next(src.refs([by_name[n]]))), load_rgb(local_ref(dst / n)))
                                       for n in shown])
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
        p.add_argument("--seed", type=seed, default=0)
        p.add_argument("--mask-geometry", choices=GEOMETRIES, default="landmark", help="landmark: the mask follows "
                       "the jaw (default); rigid: placed by the eyes and nose bridge, sized for an open mouth")
        p.add_argument("--mask-fit", default="nose", help="how the mask is worn: chin (pulled down, mouth "
                       "visible), mouth (under the nose), nose (over the nose; default) or high (up to the eyes' "
                       "clearance)")
        p.add_argument("--mask-family", default="template", help="which renderer draws the masks: template (default), "
                       "surface, photo (the test family) or both (template or surface per row), as experiments.run's "
                       "--train-mask-family and --test-mask-families")
        p.add_argument("--mask-appearance", default="fixed", help="the template family's look: fixed (each type's "
                       "colour; default), random (drawn per row, as a default run trains), mixed or flat (the "
                       "outline filled with one grey: the flat reference's masks)")
        p.add_argument("--workers", type=int, default=0, help="local engine: processes (default: one per core)")
        p.add_argument("--engine", choices=ENGINES, default="local", help="local processes (default) or Ray tasks")
        p.add_argument("--address", help="ray engine: a running cluster's address (default: Ray on this machine)")
        p.add_argument("--preview", type=at_least(0), default=0, metavar="N", help="write a PNG grid of N before/after pairs")
        if name == "csv":
            p.add_argument("--cache-dir", type=folder, default=None, help="landmark and mask cache (default: the user cache folder)")
            p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
        p.set_defaults(func=fn)
    args = parser.parse_args(argv)
    args.mask_config = build_or_exit(parser, lambda: _config(args), OPTIONS)
    args.engine_config = build_or_exit(parser, lambda: Engine(args.engine, args.workers, args.address))
    return exit_code(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
