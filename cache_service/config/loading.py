"""Reading a configuration: a TOML file plus ``CACHE_<SECTION>_<KEY>`` environment overrides, each value coerced to
its key's type, then the whole checked (``checks``). Every mistake is one line of the one ``ConfigError`` raised."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cache_service.access import LEVELS
from cache_service.config.checks import MEDIA, validate
from cache_service.config.model import (
    SECTIONS,
    CacheConfig,
    ConfigError,
    GrantConfig,
    S3UserConfig,
    TierConfig,
    default_tiers,
)
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
_USER_KEYS = frozenset(S3UserConfig.__dataclass_fields__)
_GRANT_KEYS = frozenset(GrantConfig.__dataclass_fields__)


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> CacheConfig:
    """Read ``path`` (TOML; optional), apply ``CACHE_<SECTION>_<KEY>`` overrides from ``env`` and validate.

    Raises ``ConfigError`` listing every problem found, or ``FileNotFoundError`` if ``path`` does not exist.
    """
    raw: dict[str, Any] = {}
    problems: list[str] = []
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_bytes().decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ConfigError([f"{path}: not UTF-8: {exc}"]) from None
        except (tomllib.TOMLDecodeError, RecursionError) as exc:  # RecursionError: arrays nested thousands deep
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
    except (tomllib.TOMLDecodeError, RecursionError):
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
        if section == "s3_api" and key == "users":
            kwargs["users"] = _build_users(value, problems)
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
            problems.append(
                f"mounts[{i}]: expected the keys 'path', 'uri' and optionally 'quota', 'read_only', 'users', "
                f"got {entry!r}"
            )
            continue
        if not isinstance(entry["path"], str) or not isinstance(entry["uri"], str):
            problems.append(f"mounts[{i}]: 'path' and 'uri' must be strings")
            continue
        quota = _build_quota(f"mounts[{i}].quota", entry.get("quota", {}), problems)
        read_only = entry.get("read_only", False)
        if not isinstance(read_only, bool):
            problems.append(f"mounts[{i}].read_only: expected true or false, got {read_only!r}")
            read_only = False
        users = _build_mount_users(f"mounts[{i}].users", entry.get("users"), problems)
        mounts.append(MountConfig(path=entry["path"], uri=entry["uri"], quota=quota, read_only=read_only, users=users))
    return tuple(mounts)


def _build_mount_users(where: str, value: Any, problems: list[str]) -> tuple[tuple[str, str], ...] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append(f'{where}: expected a table of user = "read" or "write", like {{ etl = "write" }}')
        return ()
    users = []
    for user, access in value.items():
        if access not in LEVELS:
            problems.append(f'{where}.{user}: expected "read" or "write", got {access!r}')
        else:
            users.append((user, access))
    return tuple(users)


def _build_users(value: Any, problems: list[str]) -> tuple[S3UserConfig, ...]:
    """``[[s3_api.users]]`` entries, their keys typed; what they mean together is checked by ``checks``. No line
    quotes a value other than an access key, bucket or prefix: secrets stay out of the log."""
    if not isinstance(value, list):
        problems.append("s3_api.users: expected a list of [[s3_api.users]] tables")
        return ()
    users = []
    for where, entry in _tables("s3_api.users", value, _USER_KEYS, problems):
        strings = {k: entry.get(k, "") for k in ("access_key", "secret_key", "secret_key_env")}
        wrong = [k for k, v in strings.items() if not isinstance(v, str)]
        if wrong:
            problems.append(f"{where}: {', '.join(wrong)} must be strings")
            continue
        grants = _build_grants(f"{where} ({strings['access_key']})", entry.get("grants", []), problems)
        users.append(S3UserConfig(**strings, grants=grants))
    return tuple(users)


def _build_grants(where: str, value: Any, problems: list[str]) -> tuple[GrantConfig, ...]:
    example = '[{ bucket = "lake", prefix = "warehouse/", access = "write" }]'
    if not isinstance(value, list):
        problems.append(f"{where}.grants: expected a list of grants like {example}")
        return ()
    grants = []
    for j, grant in enumerate(value):
        if not isinstance(grant, dict) or not set(grant) <= _GRANT_KEYS:
            problems.append(f"{where}.grants[{j}]: expected a table of bucket, prefix and access, like {example}")
            continue
        fields = {k: grant[k] for k in _GRANT_KEYS if k in grant}
        if not all(isinstance(v, str) for v in fields.values()):
            problems.append(f"{where}.grants[{j}]: bucket, prefix and access must be strings")
            continue
        grants.append(GrantConfig(**{"bucket": "", **fields}))
    return tuple(grants)


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


def _tables(
    name: str, value: list[Any], keys: frozenset[str], problems: list[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each table of the array of tables ``name`` with what problem lines call it (``name[i]``); an entry that is not
    a table is one line (and skipped), its unknown keys another."""
    for i, entry in enumerate(value):
        where = f"{name}[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected a table")
            continue
        unknown = set(entry) - keys
        if unknown:
            problems.append(f"{where}: unknown key(s) {sorted(unknown)}")
        yield where, entry


def _build_tiers(value: Any, problems: list[str]) -> tuple[TierConfig, ...]:
    if not isinstance(value, list) or not value:
        problems.append("store.tiers: expected a non-empty list of tiers")
        return default_tiers()
    tiers = []
    for where, entry in _tables("store.tiers", value, _TIER_KEYS, problems):
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
