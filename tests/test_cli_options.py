"""Every CLI names a bad option as the user typed it: one bad value per option that takes a value, for every
command, exits 2 with a message that names that option (`--test-mask-fits`, not the config field `fit`), and
nothing is written. A coverage test keeps the table in step with the parsers: a new option needs a row."""
from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import pytest

# (module, the arguments before the option, option, a bad value). "FILE" is a path to an existing plain file
# (a folder was expected), "MISSING" a path that does not exist; both are made per test.
RUN = ["clean", "masked", "--profile", "smoke"]
SCORE = ["MODEL", "--scale", "0..255", "--data", "CSV", "--out", "OUT"]
CASES = [
    *[("experiments.run", RUN, o, v) for o, v in [
        ("--profile", "huge"), ("--data", "MISSING"), ("--out", "FILE"), ("--epochs", "0"), ("--model", "vgg"),
        ("--width", "0"), ("--batch-size", "0"), ("--seed", "-1"), ("--crop", "100"), ("--erasing", "2"),
        ("--views", "all"), ("--precision", "fp8"), ("--masked-start", "warm"), ("--finetune-epochs", "-1"), ("--finetune-seed", "-1"),
        ("--distill-weight", "2"), ("--distill-temperature", "0"), ("--train-mask-types", "scarf"),
        ("--test-mask-types", "n95,scarf"), ("--train-mask-geometry", "flat"), ("--test-mask-geometry", "flat"),
        ("--train-mask-fit", "cap"), ("--test-mask-fits", "chin,cap"), ("--train-mask-family", "paper"),
        ("--train-mask-appearance", "shiny"), ("--test-mask-families", "paper"), ("--train-occlusion", "2"),
        ("--validation-mask-families", "photo"), ("--validation-data", "noequals"),
        ("--mask-seed", "-1"), ("--limit-rows", "-5"), ("--workers", "-1"), ("--threads", "-1"),
        ("--test-data", "noequals"), ("--cache-dir", "FILE")]],
    *[("experiments.study", RUN + ["--out", "OUT"], o, v) for o, v in [
        ("--seeds", "x"), ("--models", "vgg"), ("--out", "FILE"), ("--engine", "spark"), ("--parallel", "-1"),
        ("--address", "not-an-address"), ("--cpus-per-run", "-1"), ("--gpus-per-run", "-1")]],
    *[("experiments.evaluate", ["RUN", "--model", "MODEL", "--scale", "0..255"], o, v) for o, v in [
        ("--test-data", "noequals"), ("--model", "MISSING"), ("--workers", "-1"), ("--cache-dir", "FILE"),
        ("--scale", "0..2"), ("--labels", "cat"), ("--input", "big"), ("--channels", "cmyk"), ("--layout", "hwcn"),
        ("--output", "scores"), ("--output-name", "nope")]],
    *[("experiments.score", SCORE, o, v) for o, v in [
        ("--data", "MISSING"), ("--out", "FILE"), ("--test-data", "noequals"), ("--train-mask-types", "scarf"),
        ("--test-mask-types", "scarf"), ("--test-mask-geometry", "flat"), ("--test-mask-fits", "cap"),
        ("--train-mask-family", "paper"), ("--train-mask-appearance", "shiny"), ("--test-mask-families", "paper"),
        ("--mask-seed", "-1"), ("--mask-types", "scarf"), ("--mask-family", "paper"), ("--seed", "-1"), ("--workers", "-1"), ("--cache-dir", "FILE"), ("--scale", "0..2"), ("--labels", "cat"),
        ("--input", "big"), ("--channels", "cmyk"), ("--layout", "hwcn"), ("--output", "scores"),
        ("--output-name", "nope")]],
    *[("experiments.predict", ["MODEL", "PHOTOS"], o, v) for o, v in [
        ("--out", "FILE"), ("--mask-type", "scarf"), ("--every", "0")]],
    *[("experiments.export", ["MODEL", "--tflite"], o, v) for o, v in [
        ("--quantize", "int4"), ("--out", "FILE"), ("--data", "MISSING"), ("--condition", "dark"),
        ("--cache-dir", "FILE"), ("--check-rows", "-1")]],
    *[("datasets", ["info", "CSV"], "--cache-dir", "FILE")],
    *[("datasets", ["synth", "OUT.csv"], o, v) for o, v in [("--rows", "3"), ("--seed", "-1")]],
    *[("datasets", ["prepare", "PHOTOS", "--out", "OUT"], o, v) for o, v in [
        ("--out", "FILE"), ("--split", "0.5,0.5"), ("--seed", "-1"), ("--engine", "spark"),
        ("--address", "not-an-address"), ("--workers", "-1")]],
    *[("masking", [sub, "CSV" if sub == "csv" else "PHOTOS", "OUT.csv"], o, v) for sub in ("csv", "images") for o, v in [
        ("--mask-type", "scarf"), ("--color", "mauve"), ("--texture", "plaid"), ("--seed", "-1"),
        ("--mask-geometry", "flat"), ("--mask-fit", "cap"), ("--mask-family", "paper"), ("--mask-appearance", "shiny"),
        ("--workers", "-1"), ("--engine", "spark"),
        ("--address", "not-an-address"), ("--preview", "-1")]],
    ("masking", ["csv", "CSV", "OUT.csv"], "--cache-dir", "FILE"),
]


def error_line(err: str) -> str:
    """The message of a CLI's error line ("...error: MESSAGE"), never the usage line above it (which lists every
    option, so a check on the whole of stderr passes whatever the message names)."""
    lines = [line.split("error:", 1)[1] for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, f"expected one error line: {err.strip()}"
    return lines[0]


def _main(module: str):
    try:
        return importlib.import_module(module + ".__main__").main
    except ModuleNotFoundError:
        return importlib.import_module(module).main


def _value_options(module: str) -> set[tuple[str, str]]:
    """(subcommand, option) for every option that takes a value, read from the CLI's own parser."""
    grabbed = []

    def grab(self, args=None, namespace=None):
        grabbed.append(self)
        raise SystemExit(0)
    original = argparse.ArgumentParser.parse_known_args
    argparse.ArgumentParser.parse_known_args = grab
    try:
        _main(module)(["x"])
    except SystemExit:
        pass
    finally:
        argparse.ArgumentParser.parse_known_args = original
    found = set()

    def walk(p, sub):
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, child in a.choices.items():
                    walk(child, name)
            elif a.option_strings and a.nargs != 0 and "-h" not in a.option_strings and a.help != argparse.SUPPRESS:
                found.add((sub, a.option_strings[-1]))
    walk(grabbed[0], "")
    return found


@pytest.mark.parametrize("module", sorted({c[0] for c in CASES}))
def test_the_table_covers_every_option(module):
    listed = {(argv[0] if module in ("datasets", "masking") else "", opt) for m, argv, opt, _ in CASES if m == module}
    assert _value_options(module) <= listed, f"options without a bad-value row: {_value_options(module) - listed}"


@pytest.fixture
def paths(tmp_path, synth_csv, smoke_run) -> dict[str, str]:
    """Valid values for every other argument: the session's smoke run (read, never written: each command stops
    at the bad option) and its clean model, the synthetic CSV, a folder of one photo."""
    import cv2
    from datasets import make_synthetic
    (tmp_path / "file").write_text("a plain file")
    (tmp_path / "photos" / "happy").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "photos" / "happy" / "a.png"), make_synthetic(21, seed=0)[0][0])
    return {"FILE": str(tmp_path / "file"), "MISSING": str(tmp_path / "missing"), "CSV": str(synth_csv),
            "OUT": str(tmp_path / "out"), "OUT.csv": str(tmp_path / "out.csv"), "RUN": str(smoke_run),
            "MODEL": str(smoke_run / "clean" / "model.keras"), "PHOTOS": str(tmp_path / "photos")}


@pytest.mark.parametrize("module, before, option, value", CASES,
                         ids=[f"{m.split('.')[-1]} {b[0] if m in ('datasets', 'masking') else ''}{o}" for m, b, o, _ in CASES])
def test_a_bad_value_is_named_as_typed(module, before, option, value, paths, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [paths.get(a, a) for a in before]
    if option in before:  # the option's own place in the command
        argv[before.index(option) + 1] = paths.get(value, value)
    else:
        argv += [option, paths.get(value, value)]
    try:
        rc = _main(module)(argv)
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2, err
    assert sum(line.startswith(("error:", "usage:", "python -m")) for line in err.splitlines()) >= 1
    named = {"--mask-types": "--train-mask-types", "--mask-family": "--train-mask-family", "--seed": "--mask-seed"}
    line = error_line(err)
    if module == "experiments.score" and option in named:  # an old name: as typed, or the option's new name
        assert option in line or named[option] in line, err
    else:
        assert option in line, f"{option} not named in the error line: {err.strip()}"
    assert not Path(paths["OUT"]).exists() and not Path(paths["OUT.csv"]).exists(), "nothing written"


def test_the_mask_options_are_declared_once_with_one_name_on_every_cli():
    """run, study and score share one declaration of the mask options (the same names, defaults and help);
    score's old names (--mask-types, --mask-family, --mask-appearance, --seed) still parse, hidden from --help."""
    from experiments.options import run_parser
    from experiments.score import parse_args

    def mask_actions(parser):
        return {a.option_strings[-1]: (a.default, a.help) for a in parser._actions
                if a.option_strings and "mask" in a.option_strings[-1] and a.help != argparse.SUPPRESS}
    grabbed = []
    original = argparse.ArgumentParser.parse_args

    def grab(self, args=None, namespace=None):
        grabbed.append(self)
        return original(self, args, namespace)
    argparse.ArgumentParser.parse_args = grab
    try:
        with pytest.raises(SystemExit):
            parse_args(["m.keras", "--data", "/nope", "--out", "o"])
    finally:
        argparse.ArgumentParser.parse_args = original
    score, run = mask_actions(grabbed[0]), mask_actions(run_parser())
    shared = set(score)
    assert {"--train-mask-types", "--train-mask-family", "--train-mask-appearance", "--mask-seed",
            "--test-mask-types", "--test-mask-fits", "--test-mask-families", "--test-mask-geometry"} <= shared
    assert all(score[o] == run[o] for o in shared), "one declaration: the same defaults and help"
    old = grabbed[0].parse_args(["m", "--out", "o", "--mask-family", "surface", "--seed", "3", "--mask-types", "n95"])
    assert (old.train_mask_family, old.mask_seed, old.train_mask_types) == ("surface", 3, "n95")
    assert "--mask-family" not in grabbed[0].format_help()


def test_a_finetune_seed_without_a_fine_tuning_is_refused_in_one_line(capsys):
    from experiments.run import main as run_main
    for argv in (["clean", "--finetune-seed", "3"], ["masked", "--finetune-seed", "3"],
                 ["clean", "masked", "--masked-start", "scratch", "--finetune-seed", "3"]):
        with pytest.raises(SystemExit) as e:
            run_main([*argv, "--profile", "smoke"])
        assert e.value.code == 2 and "--finetune-seed" in error_line(capsys.readouterr().err)
