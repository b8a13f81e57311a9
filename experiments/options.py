"""The run's command-line options, defined once: `add_run_arguments` (the parser of `experiments.run`, whose
options `experiments.study` also takes), `run_config` (the RunConfig they ask for) and `OPTIONS`, the option
that sets each checked config field, for every experiments CLI's messages (the configs check the values)."""
from __future__ import annotations

import argparse
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from datasets.checks import ConfigError
from datasets.cli import build_or_exit, folder, seed
from masking import FITS, MASK_TYPES

from . import conditions as C
from .outside.card import CHANNELS, LAYOUTS, OUTPUTS, SCALES, CardDefaults, emotion_name
from .config import PROFILES, TRANSFER, RunConfig, TransferConfig, parse_test_data, profile_config
from .training.config import MODEL_NAMES, PRECISIONS, TRANSFER_METHODS, VIEWS

# Fields whose option is not `--<field with dashes>` (`datasets.cli.option_name`).
OPTIONS = {"transfer.method": "--masked-start", "transfer.epochs": "--finetune-epochs",
           "transfer.seed": "--finetune-seed",
           "transfer.alpha": "--distill-weight", "transfer.temperature": "--distill-temperature",
           "test_mask_geometries": "--test-mask-geometry", "variants": "VARIANT", "cards": "CARD"}


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """Every option of `python -m experiments.run`, and its positional VARIANT list."""
    p.add_argument("variants", nargs="+", choices=list(C.VARIANTS), metavar="VARIANT",
                   help=f"variants to train: {', '.join(C.VARIANTS)}")
    p.add_argument("--profile", default="default", choices=list(PROFILES))
    p.add_argument("--data", help="FER2013 .csv/.csv.gz or image folders (default: $FER2013_CSV; smoke: synthetic)")
    p.add_argument("--out", type=folder, help="run folder (default runs/<timestamp>); rerunning into it resumes")
    p.add_argument("--overwrite", action="store_true", help="retrain variants whose settings changed")
    p.add_argument("--epochs", type=int)
    p.add_argument("--model", choices=MODEL_NAMES)
    p.add_argument("--width", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=seed, help="initial weights, shuffling and augmentation")
    p.add_argument("--class-weights", action="store_true", default=None, help="inverse-frequency class weights")
    p.add_argument("--crop", type=int, help="training crop side in pixels, random position (48 = no crop)")
    p.add_argument("--erasing", type=float, help="probability of erasing one random patch of each training crop "
                   "(Keras RandomErasing; default 0 = off)")
    p.add_argument("--views", choices=VIEWS, help="test-time views averaged inside the saved model: the centre "
                   "crop and its mirror, centre and four corners, or those ten with mirrors")
    p.add_argument("--precision", choices=PRECISIONS,
                   help="auto: bfloat16 where /proc/cpuinfo shows amx_bf16 or avx512_bf16, else float32")
    p.add_argument("--masked-start", choices=TRANSFER_METHODS,
                   help="how masked and mixed models train when the run also trains clean: from scratch, from "
                        "the clean weights, or from them plus distillation from the clean model on each row's "
                        f"clean twin (default {TransferConfig.method})")
    p.add_argument("--finetune-epochs", type=int, help="epochs of a masked/mixed model that starts from the clean "
                   "weights (default: the profile's)")
    p.add_argument("--finetune-seed", type=seed, help="the masked/mixed fine-tuning's own seed (default: --seed); "
                   "the clean model keeps --seed, so one clean model can start several fine-tunings")
    p.add_argument("--distill-weight", type=float, help=f"alpha, 0..1 (default {TransferConfig.alpha})")
    p.add_argument("--distill-temperature", type=float, help=f"default {TransferConfig.temperature}")
    add_mask_arguments(p)
    p.add_argument("--train-mask-geometry", default="landmark", help="geometry of the training masks: landmark "
                   "(the mask follows the jaw; default) or rigid (placed by the eyes and nose bridge; template family)")
    p.add_argument("--train-mask-fit", default="nose", help="how the masked and mixed models' training masks are "
                   "worn: chin, mouth, nose (default) or high")
    p.add_argument("--validation-mask-families", default="surface", help="comma-separated families to validate on "
                   "(PublicTest: metrics.json's validation table, where recipes are compared; default surface); never "
                   "a test family")
    p.add_argument("--train-occlusion", type=float, default=0.5, metavar="P", help="share of the mask-aware "
                   "models' training rows that get a random lower-face occluder each epoch (0..1; default 0.5; 0 = off)")
    p.add_argument("--limit-rows", type=int, help="at most this many rows per split (smoke: 300)")
    p.add_argument("--workers", type=int, default=0, help="masking processes (default: one per core)")
    p.add_argument("--threads", type=int, default=0, help="TensorFlow's intra- and inter-op threads, recorded in "
                   "config.json (default: one per core)")
    p.add_argument("--test-data", action="append", default=[], metavar="NAME=PATH",
                   help="another face dataset to test on, clean and masked (repeatable): a FER-format CSV or a "
                        "folder of <emotion>/ (or <split>/<emotion>/) image folders")
    p.add_argument("--validation-data", action="append", default=[], metavar="NAME=PATH",
                   help="another face dataset to validate on (repeatable; as --test-data): clean and under each "
                        "validation family, in the validation table")
    p.add_argument("--cache-dir", type=folder, help="parsed data, landmarks and masks (default: $MASKFER_CACHE_DIR or the "
                   "user cache folder)")
    p.add_argument("--no-report", action="store_true", help="stop before report.html")
    p.add_argument("--verbose", action="store_true", help="Keras's own per-epoch output (TensorFlow's start-up "
                   "lines: set TF_CPP_MIN_LOG_LEVEL=0)")


def add_mask_arguments(p: argparse.ArgumentParser, aliases: dict[str, str] | None = None) -> None:
    """The mask options every experiments CLI that draws masks shares, declared once (run, study, score): the
    masked condition's masks (--train-mask-types, --train-mask-family, --train-mask-appearance, --mask-seed: what a
    run trains its mask-aware models on) and the test conditions (--test-mask-types, --test-mask-geometry,
    --test-mask-fits, --test-mask-families). aliases: {old option: new option}, accepted but not shown in --help
    (kept for one release)."""
    p.add_argument("--train-mask-types", default=",".join(MASK_TYPES), help="comma-separated mask types of the "
                   "masked condition (a run trains on them), one drawn per row (default: all)")
    p.add_argument("--test-mask-types", default=",".join(MASK_TYPES), help="comma-separated: one test condition each")
    p.add_argument("--test-mask-geometry", default="rigid", help="comma-separated geometries: one more test "
                   "condition each, masked:<geometry> (default rigid; the template family's only)")
    p.add_argument("--test-mask-fits", default=",".join(FITS), help="comma-separated fits: one more test condition "
                   "each, masked@<fit> (default all four: chin,mouth,nose,high)")
    p.add_argument("--train-mask-family", default="template", help="the masked condition's family (a run trains "
                   "on it): template (a drawn template warped onto the landmarks; default), surface (a shaded curved "
                   "sheet) or both (each row one of the two at even odds); photo is for testing only")
    p.add_argument("--train-mask-appearance", default="random", help="the masked condition's look (template "
                   "family): random (colour over the whole grey range, texture and edge drawn per row; default), "
                   "fixed (each type's own colour), mixed (each row one or the other) or flat (the outline, one grey)")
    p.add_argument("--test-mask-families", default=",".join(C.TEST_ONLY), help="comma-separated families to test on "
                   f"(PrivateTest); the first the masked condition does not draw gives masked:held-out (default "
                   f"{','.join(C.TEST_ONLY)})")
    p.add_argument("--mask-seed", type=seed, default=0, help="the masks' seed (type, look per row)")
    for old, new in (aliases or {}).items():
        action = next(a for a in p._actions if new in a.option_strings)
        p.add_argument(old, dest=action.dest, type=action.type, default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def run_parser(description: str | None = None) -> argparse.ArgumentParser:
    """The parser of `python -m experiments.run`."""
    p = argparse.ArgumentParser(prog="python -m experiments.run", description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p)
    return p


def parse_run_args(argv: list[str] | None, description: str | None = None) -> RunConfig:
    """The RunConfig of `python -m experiments.run` options; a bad value exits 2 naming its option."""
    p = run_parser(description)
    a = p.parse_args(argv)
    return build_or_exit(p, lambda: run_config(a), OPTIONS)


def add_card_arguments(p: argparse.ArgumentParser) -> None:
    """The model-card fields as options, for bare model files (a card's own field wins)."""
    g = p.add_argument_group("model card fields for bare model files (a card's own field wins)")
    g.add_argument("--scale", choices=SCALES, help="how pixels 0..255 become the model's input (never guessed)")
    g.add_argument("--labels", help="comma-separated: the emotion of each output, in order (synonyms and "
                   "contempt accepted; default FER2013's order for a 7-output model)")
    g.add_argument("--input", help="HEIGHT,WIDTH where the model does not state it")
    g.add_argument("--channels", choices=CHANNELS, help="where the model does not state it (3 channels: rgb)")
    g.add_argument("--layout", choices=LAYOUTS, help="where the model's input shape leaves a doubt")
    g.add_argument("--output", choices=OUTPUTS, help="probabilities (default) or logits")
    g.add_argument("--output-name", help="the output to score, for a model with several outputs")


def card_defaults(a: argparse.Namespace) -> CardDefaults:
    size = None
    if a.input:
        try:
            size = tuple(int(v) for v in a.input.split(","))
        except ValueError:
            raise ConfigError("input", f"{a.input!r}: expected HEIGHT,WIDTH") from None
    labels = tuple(emotion_name(lab) for lab in comma_list(a.labels)) if a.labels else None  # named --labels
    return CardDefaults(scale=a.scale, labels=labels, input=size,
                        channels=a.channels, layout=a.layout, output=a.output, output_name=a.output_name)


def comma_list(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def run_config(a: argparse.Namespace) -> RunConfig:
    """The RunConfig the options ask for; ConfigError (from the config classes) names a bad value's field."""
    train = profile_config(a.profile, epochs=a.epochs, model=a.model, width=a.width, batch_size=a.batch_size,
                           seed=a.seed, class_weights=a.class_weights, crop=a.crop, views=a.views,
                           precision=a.precision)
    if a.erasing is not None:
        train = replace(train, augment=replace(train.augment, erasing=a.erasing))
    transfer = replace(TRANSFER[a.profile], **{k: v for k, v in (
        ("method", a.masked_start), ("epochs", a.finetune_epochs), ("alpha", a.distill_weight),
        ("temperature", a.distill_temperature), ("seed", a.finetune_seed)) if v is not None})
    out = a.out or str(Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S"))
    return RunConfig(variants=tuple(dict.fromkeys(a.variants)), profile=a.profile, data=a.data, out=out, train=train,
                     train_mask_types=comma_list(a.train_mask_types), test_mask_types=comma_list(a.test_mask_types),
                     train_mask_geometry=a.train_mask_geometry, test_mask_geometries=comma_list(a.test_mask_geometry),
                     train_mask_fit=a.train_mask_fit, test_mask_fits=comma_list(a.test_mask_fits),
                     train_mask_family=a.train_mask_family, train_mask_appearance=a.train_mask_appearance,
                     test_mask_families=comma_list(a.test_mask_families),
                     validation_mask_families=comma_list(a.validation_mask_families), train_occlusion=a.train_occlusion,
                     transfer=transfer, mask_seed=a.mask_seed, limit_rows=a.limit_rows, workers=a.workers,
                     threads=a.threads, cache_dir=a.cache_dir, report=not a.no_report, overwrite=a.overwrite,
                     verbose=a.verbose, test_data=parse_test_data(a.test_data),
                     validation_data=parse_test_data(a.validation_data, "validation_data"))
