"""Parsing of human-written sizes ("1MiB", "20GB") and durations ("30s", "5m")."""

from __future__ import annotations

import math
import re

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_NUMBER_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(value: str | int) -> int:
    """Return a byte count for ``value`` ("64KiB", "1.5GB", 4096).

    Raises ``ValueError`` naming the value when it is negative, malformed or has an unknown unit.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"size must not be negative: {value}")
        return value
    match = _NUMBER_UNIT.match(str(value))
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"not a size: {value!r} (use a number with B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)")
    size = float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    if not math.isfinite(size):
        raise ValueError(f"not a size: {value!r} is too large")
    return int(size)


def parse_duration(value: str | int | float) -> float:
    """Return seconds for ``value`` ("250ms", "30s", "5m", "1h", "2d", or a number of seconds).

    Raises ``ValueError`` naming the value when it is negative, malformed or has an unknown unit.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"duration must not be negative: {value}")
        return float(value)
    match = _NUMBER_UNIT.match(str(value))
    unit = match.group(2).lower() if match else None
    if not match or (unit not in _DURATION_UNITS and unit != ""):
        raise ValueError(f"not a duration: {value!r} (use a number with ms, s, m, h or d)")
    seconds = float(match.group(1)) * (_DURATION_UNITS[unit] if unit else 1.0)
    if not math.isfinite(seconds):
        raise ValueError(f"not a duration: {value!r} is too long")
    return seconds


def format_size(n: float) -> str:
    """Render a byte count for humans, in binary units ("1.5 GiB")."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
