"""What every maskfer CLI shares: bad input is one `error: ...` line on stderr and exit code 2, and a bad
option value is reported under the option's name.

Bad input is one of `INPUT_ERRORS`: a malformed dataset (`DatasetError`), a config value out of range
(`ConfigError`), any other input a command refuses (`InputError`: a missing model, a folder that is not a run
folder) or a file the system refuses (`OSError`). Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from .checks import ConfigError
from .fer2013 import DatasetError


class InputError(ValueError):
    """Input a command refuses that is neither a dataset row nor a config value; the message names the file or
    option."""


INPUT_ERRORS = (DatasetError, ConfigError, InputError, OSError)


def exit_code(body: Callable[[], int | None], *errors: type[BaseException]) -> int:
    """Run a CLI's body and return its exit code (0 when it returns None). An exception of `INPUT_ERRORS` or
    of `errors` (bad input: its message names the file, line or option) is printed as `error: <message>` on
    stderr and gives 2; Ctrl-C prints `interrupted` and gives 130; any other exception propagates (a bug, with
    its traceback)."""
    try:
        code = body()
    except INPUT_ERRORS + errors as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: whatever the command started has been stopped on the way out
        print("interrupted", file=sys.stderr)
        return 130
    return 0 if code is None else int(code)


def at_least(minimum: int) -> Callable[[str], int]:
    """argparse type of an integer >= `minimum`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r}: must be at least {minimum}")
        return value
    parse.__name__ = f"integer >= {minimum}"
    return parse


def seed(text: str) -> int:
    """argparse type of a seed: an integer 0 .. 2**32 - 1 (numpy's generators take no other), so a bad one is
    reported under the option as typed."""
    value = at_least(0)(text)
    if value >= 2 ** 32:
        raise argparse.ArgumentTypeError(f"{text!r}: a seed is an integer from 0 to 2**32 - 1")
    return value


def folder(text: str) -> str:
    """argparse type of a folder to write (an output or cache folder): refused when the path is a file."""
    if Path(text).exists() and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text}: a file, not a folder")
    return text


def existing(text: str) -> str:
    """argparse type of an input path that must exist (a file or a folder)."""
    if not Path(text).exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file or folder")
    return text


def option_name(field: str, options: dict[str, str]) -> str:
    """The option that sets a config field: `options[field]`, else the field's last dotted part as an option
    (`workers` -> `--workers`)."""
    return options.get(field) or "--" + field.rpartition(".")[2].replace("_", "-")


def build_or_exit(parser: argparse.ArgumentParser, make: Callable, options: dict[str, str] | None = None):
    """`make()`, with a ConfigError reported by `parser.error` under the option's name (exit 2)."""
    try:
        return make()
    except ConfigError as e:
        parser.error(f"{option_name(e.field, options or {})} {e.problem}")
