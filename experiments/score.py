"""`python -m experiments.score CARD [CARD ...] --data FER2013 --out DIR`: outside models under masks.

Every model (a model card, or a bare `.keras`, `.h5`, `.tflite` or `.onnx` file with the card's fields as
options) is scored on every PrivateTest condition (clean, masked, masked:<type>, masked:<geometry>) and on
each --test-data set clean and masked, beside the majority baseline; no training. The run folder holds
config.json (each model's card, file and sha256), metrics.json, predictions, report.html and robustness.csv.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from datasets.cli import InputError, build_or_exit, exit_code, folder

from .config import parse_test_data
from .options import OPTIONS, add_card_arguments, add_mask_arguments, card_defaults, comma_list
from .outside.score import ScoreConfig, score_run
from .reporting import report_run


# The masked condition's options carry run's names (--train-mask-*, --mask-seed); score's old names still work.
OLD_NAMES = {"--mask-types": "--train-mask-types", "--mask-family": "--train-mask-family",
             "--mask-appearance": "--train-mask-appearance", "--seed": "--mask-seed"}
SCORE_OPTIONS = {"mask_types": "--train-mask-types", "mask_family": "--train-mask-family",
                 "mask_appearance": "--train-mask-appearance", "mask_seed": "--mask-seed"}


def parse_args(argv: list[str] | None) -> ScoreConfig:
    p = argparse.ArgumentParser(prog="python -m experiments.score", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cards", nargs="+", metavar="CARD", help="a model card (.toml) or a model file")
    p.add_argument("--data", help="FER2013 .csv/.csv.gz or image folders (default: $FER2013_CSV)")
    p.add_argument("--out", type=folder, required=True, help="the run folder to write")
    p.add_argument("--test-data", action="append", default=[], metavar="NAME=PATH",
                   help="another face dataset to test on, clean and masked (repeatable), as experiments.run's")
    add_mask_arguments(p, aliases=OLD_NAMES)
    p.add_argument("--workers", type=int, default=0, help="masking processes (default: one per core)")
    p.add_argument("--cache-dir", type=folder, help="parsed data, landmarks and masks (default: the user cache folder)")
    p.add_argument("--no-report", action="store_true", help="stop before report.html")
    p.add_argument("--overwrite", action="store_true", help="score again into an --out that was scored with "
                   "other settings (by default that stops; the same settings keep its results)")
    add_card_arguments(p)
    a = p.parse_args(argv)
    data = a.data or os.environ.get("FER2013_CSV")
    if not data or not Path(data).exists():
        p.error(f"--data {data or ''}: no such file or folder (pass --data PATH or set FER2013_CSV)".replace(
            "--data : ", "--data: "))
    return build_or_exit(p, lambda: ScoreConfig(
        cards=tuple(a.cards), data=data, out=a.out, defaults=card_defaults(a),
        mask_types=comma_list(a.train_mask_types), mask_seed=a.mask_seed, test_mask_types=comma_list(a.test_mask_types),
        test_mask_geometries=comma_list(a.test_mask_geometry), test_mask_fits=comma_list(a.test_mask_fits),
        mask_family=a.train_mask_family, mask_appearance=a.train_mask_appearance,
        test_mask_families=comma_list(a.test_mask_families), test_data=parse_test_data(a.test_data), workers=a.workers, cache_dir=a.cache_dir, report=not a.no_report,
        overwrite=a.overwrite),
        {**OPTIONS, **SCORE_OPTIONS})


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    command = "python -m experiments.score " + " ".join(sys.argv[1:] if argv is None else argv)

    def body():
        out, written = score_run(cfg, command)
        if cfg.report and written:
            report_run(out)
        print(f"run folder: {out}", flush=True)
    return exit_code(body, InputError)


if __name__ == "__main__":
    sys.exit(main())
