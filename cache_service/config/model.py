"""The configuration's types: one frozen dataclass per TOML section, and ``ConfigError``."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from cache_service.namespace.mounts import MountConfig


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


def default_tiers() -> tuple[TierConfig, ...]:
    """The tiers of a worker whose file names none: 1 GiB of memory before 20 GiB of disk."""
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
    tiers: tuple[TierConfig, ...] = field(default_factory=default_tiers)

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
    staging_replicas: int = 2
    """In a cluster, how many workers' disks hold each staged file before its write is acknowledged (1: only the
    worker that took it). A worker alone keeps one copy whatever this says."""

    @cached_property
    def _staging_component(self) -> re.Pattern[str]:
        return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in self.staging_patterns))

    def is_staging(self, path: str) -> bool:
        """True when any component of the absolute ``path`` matches a staging pattern."""
        match = self._staging_component.match
        return any(match(part) for part in path.split("/") if part)

    def staging_root(self, path: str) -> str | None:
        """The staging directory ``path`` lies in: ``path`` up to its first staging component (a job's
        ``/out/_temporary``), or None when ``path`` is not staging data."""
        match = self._staging_component.match
        parts = [part for part in path.split("/") if part]
        for n, part in enumerate(parts):
            if match(part):
                return "/" + "/".join(parts[: n + 1])
        return None


@dataclass(frozen=True)
class GrantConfig:
    """One grant of an S3 API user: ``access`` (``read``, or ``write``, which implies read) to the keys of
    ``bucket`` (``*``: every bucket) that start with ``prefix`` ("" : the whole bucket)."""

    bucket: str
    prefix: str = ""
    access: str = ""


@dataclass(frozen=True)
class S3UserConfig:
    """A ``[[s3_api.users]]`` entry: an access key, its secret (``secret_key``, else the variable named by
    ``secret_key_env``) and what it may read and write."""

    access_key: str
    secret_key: str = field(default="", repr=False)
    secret_key_env: str = ""
    grants: tuple[GrantConfig, ...] = ()


@dataclass(frozen=True)
class S3ApiConfig:
    """Credentials that clients of the cache's S3 API sign with (default: the under store's).

    ``users`` each sign with their own key and get only their grants; the ``access_key`` pair, when set beside
    them, stays a key with every right (an admin's).
    """

    access_key: str = ""
    secret_key: str = field(default="", repr=False)
    secret_key_env: str = ""
    users: tuple[S3UserConfig, ...] = ()


@dataclass(frozen=True)
class ClusterConfig:
    """Membership of a cache cluster. An empty ``redis_url`` runs this worker alone, owning every block."""

    redis_url: str = ""
    """Redis holding the cluster's membership (``redis://host:port/db``); empty for a single worker."""
    advertise_host: str = ""
    """The host name other workers and clients reach this worker at (default ``server.host``); it also addresses
    buckets virtual-host style on the S3 API."""
    heartbeat_interval: float = 2.0
    member_timeout: float = 6.0
    """A worker without a heartbeat for this long is out of the ring."""
    block_size: int = 64 * 1024**2
    """Data is owned in blocks of this size: a block's pages are cached by its owner only."""
    peer_timeout: float = 5.0
    """How long a read waits on another worker before it tries the next one."""
    handoff_budget: int = 0
    """The most bytes of pages a draining worker hands to their new owners (0: all it holds)."""

    @property
    def enabled(self) -> bool:
        """True when this worker is one of a cluster."""
        return bool(self.redis_url)


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


SECTIONS: dict[str, Any] = {
    "server": ServerConfig,
    "admin": AdminConfig,
    "under_store": UnderStoreConfig,
    "store": StoreConfig,
    "metadata": MetadataConfig,
    "write": WriteConfig,
    "s3_api": S3ApiConfig,
    "cluster": ClusterConfig,
}
"""Each TOML section's name and the dataclass its keys are the fields of."""
