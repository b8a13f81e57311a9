"""The benchmark scripts answer bad input like the CLIs: one error line and exit 2, never a traceback."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py"))


def test_every_benchmark_script_parses_its_arguments():
    """No script reads sys.argv by hand: each has an argparse parser, so bad input is one line and exit 2."""
    for name in SCRIPTS:
        text = (ROOT / "benchmarks" / name).read_text()
        assert "argparse" in text and "sys.argv[" not in text, name


def _run(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=cwd or ROOT,
                          timeout=300)


@pytest.mark.slow  # a process per script (TensorFlow's import in some): about two minutes
@pytest.mark.parametrize("script", SCRIPTS)
def test_an_unknown_option_exits_2_in_one_error_line(script):
    r = _run(ROOT / "benchmarks" / script, "--no-such-option")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert sum("error:" in line for line in r.stderr.splitlines()) == 1, r.stderr


@pytest.mark.slow
def test_soup_and_the_outside_generator_name_their_bad_input(tmp_path, smoke_run):
    model = smoke_run / "masked" / "model.keras"
    for args, named in (((tmp_path / "o.keras", model, model, "--weights", "x"), "--weights"),
                        ((tmp_path / "o.keras", model, model, "--weights", "0.2,0.2"), "summing to 1"),
                        ((tmp_path / "o.keras", tmp_path / "missing.keras"), "no such model file"),
                        ((tmp_path / "o.keras", model, "--validate", tmp_path), "not a run folder")):
        r = _run(ROOT / "benchmarks" / "soup.py", *args)
        assert r.returncode == 2 and "Traceback" not in r.stderr and named in r.stderr, r.stderr
        assert not (tmp_path / "o.keras").exists()
    r = _run(ROOT / "benchmarks" / "outside_masks.py", tmp_path)
    assert r.returncode == 2 and "not a run folder" in r.stderr and "Traceback" not in r.stderr
    for script, args, named in (("bench_recipe.py", ("x", "epochs"), "FIELD=VALUE"),
                                ("bench_recipe.py", ("x", "nope=1"), "unknown setting nope"),
                                ("bench_tflite.py", (tmp_path / "none.tflite",), "no such file"),
                                ("bench_precision.py", ("48", "fp8", "0"), "invalid choice"),
                                ("report_screenshot.py", (tmp_path, tmp_path / "o.png"), "no report.html")):
        r = _run(ROOT / "benchmarks" / script, *args)
        assert r.returncode == 2 and "Traceback" not in r.stderr and named in r.stderr, (script, r.stderr)
