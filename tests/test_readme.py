"""The README's command table matches every CLI's --help: the same options, no more and no fewer."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# README command -> (module whose main() parses it, the subcommand's words)
COMMANDS = {
    "python -m datasets info": ("datasets.__main__", ["info"]),
    "python -m datasets synth": ("datasets.__main__", ["synth"]),
    "python -m datasets prepare": ("datasets.__main__", ["prepare"]),
    "python -m masking csv": ("masking.__main__", ["csv"]),
    "python -m masking images": ("masking.__main__", ["images"]),
    "python -m experiments.run": ("experiments.run", []),
    "python -m experiments.study": ("experiments.study", []),
    "python -m experiments.evaluate": ("experiments.evaluate", []),
    "python -m experiments.score": ("experiments.score", []),
    "python -m experiments.predict": ("experiments.predict", []),
    "python -m experiments.export": ("experiments.export", []),
    "python -m reports": ("reports.__main__", []),
}
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def readme_rows(text: str | None = None) -> dict[str, set[str]]:
    """{command: the options its row of the README's command table names}."""
    rows = {}
    for line in (text or (ROOT / "README.md").read_text()).splitlines():
        m = re.match(r"\| `(python -m [\w.]+(?: (?:info|synth|prepare|csv|images))?)\b([^`]*)` \|", line)
        if m and m.group(1) in COMMANDS:
            rows[m.group(1)] = set(OPTION.findall(m.group(2)))
    return rows


def help_options(module: str, words: list[str], capsys) -> set[str]:
    """The options a CLI's --help lists (its options section: lines that start with the option)."""
    with pytest.raises(SystemExit) as e:
        importlib.import_module(module).main([*words, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    return {m.group(2) for line in text.splitlines()
            if (m := re.match(r"^  (-\w, )?(--[a-z][a-z0-9-]*)", line))} - {"--help"}


def test_the_readme_has_a_row_for_every_command():
    assert set(readme_rows()) == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_readme_options_match_help(command, capsys):
    module, words = COMMANDS[command]
    listed, actual = readme_rows()[command], help_options(module, words, capsys)
    if command != "python -m reports":  # (takes folders only)
        assert actual, f"{command}: no options found in --help"
    assert listed == actual, f"{command}: README lacks {sorted(actual - listed)}, --help lacks {sorted(listed - actual)}"


def test_the_row_parser_sees_a_missing_option():
    """A README row that drops an option no longer matches (the check can fail)."""
    text = (ROOT / "README.md").read_text()
    assert "--json" in readme_rows(text)["python -m datasets info"]
    assert "--json" not in readme_rows(text.replace("[--json]", "", 1))["python -m datasets info"]


def _run_folder_block() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## The run folder")
    return text[start:text.index("```", text.index("```", start) + 3)]


def test_the_readme_names_every_key_of_the_run_folders_files(smoke_run):
    """Every top-level key of config.json, metrics.json, masking.json and each variant's train.json and
    done.json, and of a metrics entry, is named (quoted) in the README's run-folder layout."""
    import json
    block = _run_folder_block()
    files = [smoke_run / n for n in ("config.json", "metrics.json", "masking.json")] + [
        smoke_run / v / n for v in ("clean", "masked") for n in ("train.json", "done.json")]
    keys = {k for f in files for k in json.loads(f.read_text())}
    keys |= set(json.loads((smoke_run / "metrics.json").read_text())["results"][0])
    missing = sorted(k for k in keys if f'"{k}"' not in block)
    assert missing == [], f"the README's run folder layout lacks {missing}"


def _allowed() -> dict[str, tuple[str, ...]]:
    """{option: the values the code accepts} for every option whose values the README's command table spells
    out (`--opt a\\|b\\|c`), read from the code, never copied."""
    from experiments import conditions as C
    from experiments.config import PROFILES
    from experiments.training.config import MODEL_NAMES, PRECISIONS, TRANSFER_METHODS, VIEWS
    from datasets.engine import ENGINES
    from masking import APPEARANCES, FAMILIES, FITS, GEOMETRIES, MASK_TYPES
    from masking.pipeline import BOTH
    return {"--profile": tuple(PROFILES), "--model": MODEL_NAMES, "--views": VIEWS, "--precision": PRECISIONS,
            "--masked-start": TRANSFER_METHODS, "--train-mask-geometry": GEOMETRIES, "--mask-geometry": GEOMETRIES,
            "--train-mask-fit": FITS, "--mask-fit": FITS, "--train-mask-family": C.MIXABLE + (BOTH,),
            "--mask-family": FAMILIES + (BOTH,), "--train-mask-appearance": APPEARANCES,
            "--mask-appearance": APPEARANCES, "--engine": ENGINES, "--mask-type": MASK_TYPES + ("random",)}


def test_the_readme_lists_every_value_each_option_accepts():
    """Where a row spells out an option's values, they are the code's: `mixed` (or `flat`, or a family) cannot
    go missing from the README again. score's --train-mask-family also takes the photo family (it trains nothing)."""
    allowed = _allowed()
    for line in (ROOT / "README.md").read_text().splitlines():
        m = re.match(r"\| `(python -m [\w.]+(?: (?:info|synth|prepare|csv|images))?)\b([^`]*)` \|", line)
        if not m or m.group(1) not in COMMANDS:
            continue
        for opt, values in re.findall(r"\[(--[a-z][a-z0-9-]*) ([a-z0-9_]+(?:\\\|[a-z0-9_]+)+)\]", m.group(2)):
            if opt not in allowed:
                continue
            want = set(allowed[opt])
            if m.group(1) == "python -m experiments.score" and opt == "--train-mask-family":
                want = set(allowed["--mask-family"]) - {"both"}
            assert set(values.split("\\|")) == want, f"{m.group(1)} {opt}: README {values} against the code's {want}"
