"""What CPU this is, and the training precision it supports best. No TensorFlow here.

On a CPU with `amx_bf16` (Intel AMX) or `avx512_bf16` (Intel Cooper Lake and later, AMD Zen 4 and later)
oneDNN runs Keras's `mixed_bfloat16` convolutions about 2x faster than float32; elsewhere (AVX2-only
CPUs) bfloat16 is emulated and slower, so "auto" picks float32 there.
"""
from __future__ import annotations

from pathlib import Path

BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpuinfo_text(path: str | Path = "/proc/cpuinfo") -> str:
    """The text of /proc/cpuinfo ("" where there is none, e.g. macOS)."""
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _field(text: str, name: str) -> str:
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return ""


def cpu_model(text: str | None = None) -> str:
    """The CPU's model name from cpuinfo text (e.g. "AMD EPYC", "Intel(R) Xeon(R) Platinum 8488C")."""
    import platform
    return _field(cpuinfo_text() if text is None else text, "model name") or platform.processor() or "unknown"


def cpu_flags(text: str | None = None) -> set[str]:
    """The first processor's feature flags from cpuinfo text."""
    return set(_field(cpuinfo_text() if text is None else text, "flags").split())


def resolve_precision(requested: str, text: str | None = None) -> str:
    """"float32" or "bfloat16": `requested` itself, or for "auto" bfloat16 exactly where the cpuinfo
    flags include amx_bf16 or avx512_bf16."""
    if requested in ("float32", "bfloat16"):
        return requested
    if requested != "auto":
        raise ValueError(f"unknown precision {requested!r}; expected auto, float32 or bfloat16")
    return "bfloat16" if cpu_flags(text) & set(BF16_FLAGS) else "float32"
