"""Reading a configuration: a TOML file plus ``CACHE_<SECTION>_<KEY>`` environment overrides, each value coerced to
its key's type, then the whole checked (``checks``). Every mistake is one line of the one ``ConfigError`` raised."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cache_service.config.checks import MEDIA, validate
from cache_service.config.model import SECTIONS, CacheConfig, ConfigError, TierConfig, default_tiers
from cache_service.namespace.mounts import MountConfig
from cache_service.units import parse_duration, parse_size

_SIZE_KEYS = {"page_size", "capacity", "multipart_threshold", "multipart_chunksize", "block_size", "handoff_budget"}
_DURATION_KEYS = {
    "sync_interval",
    "pressure_check_interval",
    "connect_timeout",
    "read_timeout",
    "heartbeat_interval",
    "member_timeout",
    "peer_timeout",
}
# The keys of a [[mounts]] entry and of a [[store.tiers]] entry are their dataclasses' fields, as a section's keys
# are its dataclass's: one list of accepted keys, which docs/configuration.md is checked against.
_MOUNT_KEYS = frozenset(MountConfig.__dataclass_fields__)
_TIER_KEYS = frozenset(TierConfig.__dataclass_fields__)


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> CacheConfig:
    """Read ``path`` (TOML; optional), apply ``CACHE_<SECTION>_<KEY>`` overrides from ``env`` and validate.

    Raises ``ConfigError`` listing every problem found, or ``FileNotFoundError`` if ``path`` does not exist.
    """
    raw: dict[str, Any] = {}
    problems: list[str] = []
    if path is not None:
        text = Path(path).read_text()
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    _apply_env(raw, env if env is not None else os.environ, problems)
    config = _build(raw, problems)
    if problems:
        raise ConfigError(problems)
    assert config is not None
    return config


def _env_value(text: str) -> Any:
    """An env value is a TOML value when it parses as one ("8", "true", "[...]"), else a plain string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _apply_env(raw: dict[str, Any], env: Mapping[str, str], problems: list[str]) -> None:
    sections = sorted(SECTIONS, key=len, reverse=True)
    for name, text in env.items():
        if not name.startswith("CACHE_"):
            continue
        rest = name[len("CACHE_") :].lower()
        if rest == "mounts":
            raw["mounts"] = _env_value(text)
            continue
        section = next((s for s in sections if rest.startswith(s + "_")), None)
        if section is None:
            continue  # CACHE_ENDPOINT and friends belong to cachectl, not to the service
        key = rest[len(section) + 1 :]
        if key not in SECTIONS[section].__dataclass_fields__:
            problems.append(f"{name}: unknown key {key!r} in section [{section}]")
            continue
        default = getattr(SECTIONS[section](), key)
        # Strings stay strings even when they look like numbers (an all-digit access key is still a key).
        value = text if default is None or isinstance(default, str) else _env_value(text)
        raw.setdefault(section, {})[key] = value


def _build(raw: dict[str, Any], problems: list[str]) -> CacheConfig | None:
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "mounts":
            kwargs["mounts"] = _build_mounts(value, problems)
        elif key in SECTIONS:
            if not isinstance(value, dict):
                problems.append(f"[{key}] must be a table")
                continue
            kwargs[key] = _build_section(key, value, problems)
        else:
            problems.append(f"unknown section [{key}]")
    config = CacheConfig(**{k: v for k, v in kwargs.items() if v is not None})
    validate(config, problems)
    return config


def _coerce(section: str, key: str, value: Any, default: Any, problems: list[str]) -> Any:
    where = f"{section}.{key}"
    try:
        if key in _SIZE_KEYS:
            return parse_size(value)
        if key in _DURATION_KEYS:
            return parse_duration(value)
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return default
    if isinstance(default, bool):
        if not isinstance(value, bool):
            problems.append(f"{where}: expected true or false, got {value!r}")
            return default
        return value
    if isinstance(default, int) and not isinstance(default, bool):
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{where}: expected an integer, got {value!r}")
            return default
        return value
    if isinstance(default, float):
        if not isinstance(value, int | float) or isinstance(value, bool):
            problems.append(f"{where}: expected a number, got {value!r}")
            return default
        return float(value)
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(f"{where}: expected a list of strings, got {value!r}")
            return default
        return tuple(value)
    if default is None or isinstance(default, str):
        if not isinstance(value, str):
            problems.append(f"{where}: expected a string, got {value!r}")
            return default
        return value
    return value


def _build_section(section: str, values: dict[str, Any], problems: list[str]) -> Any:
    cls = SECTIONS[section]
    defaults = cls()
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in cls.__dataclass_fields__:
            problems.append(f"[{section}]: unknown key {key!r}")
            continue
        if section == "store" and key == "tiers":
            kwargs["tiers"] = _build_tiers(value, problems)
            continue
        kwargs[key] = _coerce(section, key, value, getattr(defaults, key), problems)
    return cls(**kwargs)


def _build_mounts(value: Any, problems: list[str]) -> tuple[MountConfig, ...]:
    if not isinstance(value, list):
        problems.append("mounts: expected a list of {path, uri} tables")
        return ()
    mounts = []
    for i, entry in enumerate(value):
        if not isinstance(entry, dict) or not {"path", "uri"} <= set(entry) <= _MOUNT_KEYS:
            problems.append(f"mounts[{i}]: expected the keys 'path', 'uri' and optionally 'quota', got {entry!r}")
            continue
        if not isinstance(entry["path"], str) or not isinstance(entry["uri"], str):
            problems.append(f"mounts[{i}]: 'path' and 'uri' must be strings")
            continue
        quota = _build_quota(f"mounts[{i}].quota", entry.get("quota", {}), problems)
        mounts.append(MountConfig(path=entry["path"], uri=entry["uri"], quota=quota))
    return tuple(mounts)


def _build_quota(where: str, value: Any, problems: list[str]) -> tuple[tuple[str, int | float], ...]:
    if not isinstance(value, dict):
        problems.append(f'{where}: expected a table like {{ memory = "1GiB", disk = 0.5 }}')
        return ()
    quota: list[tuple[str, int | float]] = []
    for medium, cap in value.items():
        if medium not in MEDIA:
            problems.append(f"{where}: unknown medium {medium!r}; expected one of {list(MEDIA)}")
        elif isinstance(cap, float):
            if not 0 < cap <= 1:
                problems.append(f"{where}.{medium}: a fraction must be in (0, 1], got {cap}")
            else:
                quota.append((medium, cap))
        else:
            try:
                quota.append((medium, parse_size(cap)))
            except ValueError as exc:
                problems.append(f"{where}.{medium}: {exc}")
    return tuple(quota)


def _build_tiers(value: Any, problems: list[str]) -> tuple[TierConfig, ...]:
    if not isinstance(value, list) or not value:
        problems.append("store.tiers: expected a non-empty list of tiers")
        return default_tiers()
    tiers = []
    for i, entry in enumerate(value):
        where = f"store.tiers[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected a table")
            continue
        unknown = set(entry) - _TIER_KEYS
        if unknown:
            problems.append(f"{where}: unknown key(s) {sorted(unknown)}")
        medium = entry.get("medium")
        if medium not in MEDIA:
            problems.append(f"{where}.medium: expected one of {list(MEDIA)}, got {medium!r}")
            continue
        # A tier with a mistake still counts as declared, so the mistake is reported once, not also as "missing".
        try:
            capacity = parse_size(entry.get("capacity", 0))
        except ValueError as exc:
            problems.append(f"{where}.capacity: {exc}")
            capacity = 1
        if capacity <= 0:
            problems.append(f"{where}.capacity: must be greater than zero")
        path = entry.get("path")
        if medium == "disk" and not isinstance(path, str):
            problems.append(f"{where}.path: a disk tier needs a path")
            path = ""
        tiers.append(TierConfig(medium=medium, capacity=capacity, path=path))
    return tuple(tiers)
