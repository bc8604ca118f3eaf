"""Typed configuration of the cache service: a TOML file plus ``CACHE_<SECTION>_<KEY>`` environment overrides.

Everything is validated once, here, at the edge. Every mistake found becomes one line of ``ConfigError``, so an
operator fixes a broken file in one pass. No other module reads the environment.
"""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

# MountConfig, a [[mounts]] entry, belongs to the mount table; importing it from here keeps working.
from cache_service.namespace.mounts import MountConfig, MountTable
from cache_service.units import parse_duration, parse_size


class ConfigError(ValueError):
    """The configuration is invalid; ``problems`` holds one human-readable line per mistake."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class ServerConfig:
    """Where the service listens."""

    host: str = "127.0.0.1"
    webhdfs_port: int = 9870
    s3_port: int = 9878
    log_level: str = "info"


@dataclass(frozen=True)
class AdminConfig:
    """Admin API access: the bearer token every state-changing admin request must carry."""

    token: str = ""


@dataclass(frozen=True)
class UnderStoreConfig:
    """The real S3 behind the cache. An unset ``endpoint_url`` means AWS itself."""

    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    max_attempts: int = 5
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    max_connections: int = 64
    multipart_threshold: int = 64 * 1024**2
    multipart_chunksize: int = 16 * 1024**2


@dataclass(frozen=True)
class TierConfig:
    """One storage tier of the page store."""

    medium: str
    capacity: int
    path: str | None = None


def _default_tiers() -> tuple[TierConfig, ...]:
    return (
        TierConfig(medium="memory", capacity=1024**3),
        TierConfig(medium="disk", capacity=20 * 1024**3, path="/var/lib/lakecache"),
    )


@dataclass(frozen=True)
class StoreConfig:
    """The page store: page size, eviction policy, watermarks and tiers (fastest first)."""

    page_size: int = 1024**2
    eviction: str = "s3fifo"
    high_watermark: float = 0.90
    low_watermark: float = 0.75
    pressure_check_interval: float = 5.0
    readahead_pages: int = 4
    caching: bool = True
    """False serves every read straight from S3 (pass-through): the baseline benchmarks compare against."""
    tiers: tuple[TierConfig, ...] = field(default_factory=_default_tiers)

    @property
    def disk_tier(self) -> TierConfig | None:
        """The disk tier, if one is configured."""
        return next((t for t in self.tiers if t.medium == "disk"), None)


@dataclass(frozen=True)
class MetadataConfig:
    """How long file status and listings are trusted before S3 is asked again."""

    sync_interval: float = 30.0


@dataclass(frozen=True)
class WriteConfig:
    """Path components (glob patterns) that mark staging data, held in the cache until published."""

    staging_patterns: tuple[str, ...] = ("_temporary", ".spark-staging-*")

    @cached_property
    def _staging_component(self) -> re.Pattern[str]:
        return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in self.staging_patterns))

    def is_staging(self, path: str) -> bool:
        """True when any component of the absolute ``path`` matches a staging pattern."""
        match = self._staging_component.match
        return any(match(part) for part in path.split("/") if part)


@dataclass(frozen=True)
class S3ApiConfig:
    """Credentials that clients of the cache's S3 API sign with (default: the under store's)."""

    access_key: str = ""
    secret_key: str = ""
    secret_key_env: str = ""


@dataclass(frozen=True)
class ClusterConfig:
    """How clients address this worker. Every worker runs alone for now: membership comes with step 9."""

    advertise_url: str = ""
    """The URL clients reach this worker at; its host name also addresses buckets virtual-host style on the S3 API."""


@dataclass(frozen=True)
class CacheConfig:
    """The whole configuration of one cache worker."""

    server: ServerConfig = field(default_factory=ServerConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    under_store: UnderStoreConfig = field(default_factory=UnderStoreConfig)
    mounts: tuple[MountConfig, ...] = ()
    store: StoreConfig = field(default_factory=StoreConfig)
    metadata: MetadataConfig = field(default_factory=MetadataConfig)
    write: WriteConfig = field(default_factory=WriteConfig)
    s3_api: S3ApiConfig = field(default_factory=S3ApiConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)


# --- loading -----------------------------------------------------------------------------------------------

_SECTIONS: dict[str, Any] = {
    "server": ServerConfig,
    "admin": AdminConfig,
    "under_store": UnderStoreConfig,
    "store": StoreConfig,
    "metadata": MetadataConfig,
    "write": WriteConfig,
    "s3_api": S3ApiConfig,
    "cluster": ClusterConfig,
}
_SIZE_KEYS = {"page_size", "capacity", "multipart_threshold", "multipart_chunksize"}
_DURATION_KEYS = {
    "sync_interval",
    "pressure_check_interval",
    "connect_timeout",
    "read_timeout",
}
_EVICTION_POLICIES = ("lru", "s3fifo")
_MEDIA = ("memory", "disk")
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
    sections = sorted(_SECTIONS, key=len, reverse=True)
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
        if key not in _SECTIONS[section].__dataclass_fields__:
            problems.append(f"{name}: unknown key {key!r} in section [{section}]")
            continue
        default = getattr(_SECTIONS[section](), key)
        # Strings stay strings even when they look like numbers (an all-digit access key is still a key).
        value = text if default is None or isinstance(default, str) else _env_value(text)
        raw.setdefault(section, {})[key] = value


def _build(raw: dict[str, Any], problems: list[str]) -> CacheConfig | None:
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "mounts":
            kwargs["mounts"] = _build_mounts(value, problems)
        elif key in _SECTIONS:
            if not isinstance(value, dict):
                problems.append(f"[{key}] must be a table")
                continue
            kwargs[key] = _build_section(key, value, problems)
        else:
            problems.append(f"unknown section [{key}]")
    config = CacheConfig(**{k: v for k, v in kwargs.items() if v is not None})
    _validate(config, problems)
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
    cls = _SECTIONS[section]
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
        if medium not in _MEDIA:
            problems.append(f"{where}: unknown medium {medium!r}; expected one of {list(_MEDIA)}")
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
        return _default_tiers()
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
        if medium not in _MEDIA:
            problems.append(f"{where}.medium: expected one of {list(_MEDIA)}, got {medium!r}")
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


def _validate(config: CacheConfig, problems: list[str]) -> None:
    store = config.store
    if not 0 < store.low_watermark < store.high_watermark <= 1:
        problems.append(
            "store: watermarks out of order: need 0 < low_watermark < high_watermark <= 1, "
            f"got low={store.low_watermark} high={store.high_watermark}"
        )
    if store.page_size < 4096 or store.page_size > 64 * 1024**2:
        problems.append(f"store.page_size: must be between 4KiB and 64MiB, got {store.page_size} bytes")
    if store.eviction not in _EVICTION_POLICIES:
        problems.append(f"store.eviction: expected one of {list(_EVICTION_POLICIES)}, got {store.eviction!r}")
    media = [t.medium for t in store.tiers]
    if len(set(media)) != len(media):
        problems.append(f"store.tiers: at most one tier per medium, got {media}")
    if "disk" not in media:
        problems.append("store.tiers: a disk tier is required (staged writes and uploads are held there)")
    if media and media != sorted(media, key=_MEDIA.index):
        problems.append("store.tiers: list the memory tier before the disk tier (fastest first)")
    for port_name in ("webhdfs_port", "s3_port"):
        port = getattr(config.server, port_name)
        if not 0 <= port <= 65535:
            problems.append(f"server.{port_name}: not a port number: {port}")
    if config.server.webhdfs_port == config.server.s3_port and config.server.s3_port != 0:
        problems.append("server: webhdfs_port and s3_port must differ")
    if config.under_store.max_attempts < 1:
        problems.append("under_store.max_attempts: must be at least 1")
    if config.under_store.multipart_chunksize < 5 * 1024**2:
        problems.append("under_store.multipart_chunksize: S3 needs at least 5MiB")
    if not config.mounts:
        problems.append("mounts: at least one [[mounts]] entry is needed")
    if not config.write.staging_patterns:
        problems.append("write.staging_patterns: must not be empty")
    # Mount paths and URIs are checked by the mount table itself: one source of truth.
    try:
        MountTable(config.mounts)
    except ValueError as exc:
        problems.extend(str(exc).splitlines())
