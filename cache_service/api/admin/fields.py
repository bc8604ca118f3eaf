"""Reading an admin request: its query and JSON body, and each field checked at the edge, before the manager sees it.

Every function raises ``AdminError`` (400 ``InvalidArgument`` naming the field, or ``MalformedJSON``) for bad input.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, NoReturn

from aiohttp import web

from cache_service.api.admin.errors import AdminError, invalid
from cache_service.namespace.paths import normalize
from cache_service.units import parse_duration, parse_size


def query(request: web.Request, allowed: frozenset[str]) -> dict[str, str]:
    """The query parameters, each at most once and each in ``allowed``."""
    values: dict[str, str] = {}
    for name, value in request.query.items():
        if name not in allowed:
            invalid(name, f"unknown query parameter {name!r}{_expected(allowed)}")
        if name in values:
            invalid(name, f"{name} is given more than once")
        values[name] = value
    return values


async def body(request: web.Request, allowed: frozenset[str] | None) -> dict[str, Any]:
    """The JSON object body with only ``allowed`` fields ({} for none); ``allowed`` None: the request takes no body."""
    if allowed is None:
        return {}
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise AdminError(413, "PayloadTooLarge", "the request body is too large") from None
    if not raw.strip():
        return {}  # an empty body is an empty object: `curl -X POST .../ttl/sweep` needs none
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise AdminError(400, "MalformedJSON", f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise AdminError(400, "MalformedJSON", "the request body must be a JSON object")
    for name in data:
        if name not in allowed:
            invalid(name, f"unknown field {name!r}{_expected(allowed)}")
    return data


def _no_constant(name: str) -> NoReturn:
    # NaN and Infinity are not JSON, whatever Python's json module accepts.
    raise ValueError(f"{name} is not a JSON value")


def _expected(allowed: frozenset[str]) -> str:
    return f" (expected: {', '.join(sorted(allowed))})" if allowed else " (this endpoint takes none)"


def required(body: Mapping[str, Any], name: str) -> Any:
    """Field ``name`` of ``body``, which must be there and not null."""
    if body.get(name) is None:
        invalid(name, f"{name} is required")
    return body[name]


def path(value: Any, field: str) -> str:
    """``value`` as a normalised cache path; ``field`` names it in errors."""
    if value is None:
        invalid(field, f"{field} is required")
    if not isinstance(value, str) or not value:
        invalid(field, f"{field} must be a non-empty string")
    try:
        return normalize(value)
    except ValueError as exc:
        invalid(field, f"{field}: {exc}")


def paths(body: Mapping[str, Any], name: str) -> list[str]:
    """Field ``name``: a non-empty list of cache paths, normalised."""
    value = required(body, name)
    if not isinstance(value, list) or not value:
        invalid(name, f"{name} must be a non-empty list of paths")
    return [path(item, f"{name}[{i}]") for i, item in enumerate(value)]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def fraction(body: Mapping[str, Any], name: str) -> float:
    """Field ``name``: a number in [0, 1]."""
    value = required(body, name)
    if not _is_number(value) or not 0 <= value <= 1:
        invalid(name, f"{name} must be a number in [0, 1]")
    return float(value)


def integer(body: Mapping[str, Any], name: str, *, default: int, low: int, high: int) -> int:
    """Field ``name``: an integer in [``low``, ``high``], or ``default`` when absent."""
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        invalid(name, f"{name} must be an integer in [{low}, {high}]")
    return value


def count(query: Mapping[str, str], name: str, *, low: int, high: int) -> int | None:
    """An optional whole number from the query string (``?limit=20``); None when absent."""
    raw = query.get(name)
    if raw is None:
        return None
    # Digits only, not int(): int() also takes " 20", "+20", "2_0" and other scripts' digits, which no client means.
    if not re.fullmatch(r"[0-9]{1,9}", raw) or not low <= int(raw) <= high:
        invalid(name, f"{name} must be a whole number in [{low}, {high}], got {raw!r}")
    return int(raw)


def flag(body: Mapping[str, Any], name: str, *, default: bool) -> bool:
    """Field ``name``: true or false, or ``default`` when absent."""
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        invalid(name, f"{name} must be true or false")
    return value


def choice(body: Mapping[str, Any], name: str, choices: tuple[str, ...], *, default: str) -> str:
    """Field ``name``: one of ``choices``, or ``default`` when absent."""
    value = body.get(name)
    if value is None:
        return default
    if value not in choices:
        invalid(name, f"{name} must be one of {', '.join(choices)}")
    return str(value)


def bandwidth(body: Mapping[str, Any]) -> int | None:
    """Bytes per second, from ``"50MiB"`` (or ``"50MiB/s"``) or an integer; null means unlimited."""
    value = body.get("bandwidth")
    if value is None:
        return None
    problem = 'bandwidth must be a size per second ("50MiB"), a positive number of bytes per second, or null'
    if isinstance(value, str):
        value = value.strip().removesuffix("/s")
    elif not isinstance(value, int) or isinstance(value, bool):
        invalid("bandwidth", problem)
    try:
        rate = parse_size(value)
    except ValueError as exc:
        invalid("bandwidth", f"{problem}: {exc}")
    if rate <= 0:
        invalid("bandwidth", problem)
    return rate


def ttl(body: Mapping[str, Any]) -> float | None:
    """Seconds, from ``"1h"`` or a number; an explicit null clears the TTL (so the key itself is required)."""
    if "ttl" not in body:
        invalid("ttl", 'ttl is required: a duration ("1h"), a number of seconds, or null to clear it')
    value = body["ttl"]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        invalid("ttl", 'ttl must be a duration ("1h"), a number of seconds, or null')
    if (isinstance(value, str) and value.strip().startswith("-")) or (not isinstance(value, str) and value < 0):
        invalid("ttl", "ttl must not be negative")
    if not isinstance(value, str) and not math.isfinite(value):
        invalid("ttl", "ttl must be finite")
    try:
        return parse_duration(value)
    except ValueError as exc:
        invalid("ttl", f"ttl must be a duration (250ms, 30s, 5m, 1h, 2d), a number of seconds, or null: {exc}")
