"""One way to check options: every config class raises `ConfigError` naming its field, and every CLI reports
it under the option's name (`option_error`). Lives in the first stage so that every later stage's configs
(`masking.MaskConfig`, `datasets.engine.Engine`, `experiments`' recipe and run configs) share it."""
from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value out of range. `field` names it ("crop", "transfer.alpha", ...); the message
    reads "<field> <problem>"."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field} {problem}")
        self.field, self.problem = field, problem


def check(ok: bool, field: str, problem: str) -> None:
    """Raise ConfigError(field, problem) unless ok."""
    if not ok:
        raise ConfigError(field, problem)


def check_choice(value, choices, field: str) -> None:
    check(value in choices, field, f"{value!r} is unknown; expected one of {', '.join(choices)}")
