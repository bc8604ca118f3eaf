"""What management operations answer: plain dataclasses, rendered as JSON by the admin API and as tables by cachectl."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


class InvalidFieldError(ValueError):
    """A management request has a bad value; ``field`` names it (``target``, ``paths[2]``, ``ttl``...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class PathNotFoundError(FileNotFoundError):
    """A path (or glob) named in a management request matches nothing; ``field`` names the request field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class JsonReport:
    """A report the admin API answers: ``to_json`` gives its fields, nested reports included, as plain data."""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(cast("DataclassInstance", self))


@dataclass(frozen=True)
class TierReport:
    """One tier's capacity and use."""

    medium: str
    capacity_bytes: int
    used_bytes: int
    pages: int


@dataclass(frozen=True)
class StatusReport(JsonReport):
    """The whole cache at a glance (``cachectl status``)."""

    capacity_bytes: int
    used_bytes: int
    pinned_bytes: int
    staged_bytes: int
    hit_ratio: float
    reads: int  # page lookups (hits + misses) since start: 0 means the hit ratio says nothing yet
    high_watermark: float
    low_watermark: float
    page_size: int
    eviction: str
    tiers: list[TierReport]
    mounts: list[dict[str, Any]]
    jobs_running: int


@dataclass(frozen=True)
class PathReport(JsonReport):
    """One path as cache management sees it (``cachectl stat``)."""

    path: str
    is_dir: bool
    length: int
    cached_bytes: int
    pinned: bool
    persisted: bool
    ttl_seconds: float | None
    uri: str | None


STAGED_REASON = "staged data is held only in the cache until a rename publishes it to S3; it is never dropped"
PINNED_REASON = "pinned: unpin it first to let its pages go"
READING_REASON = "in pages being read: a page stays while a read uses it; purge again once the reads end"


@dataclass(frozen=True)
class Refusal:
    """Part of a request that was refused, and why (e.g. staged data that is not yet in S3)."""

    path: str
    reason: str


@dataclass(frozen=True)
class FreeReport(JsonReport):
    """What ``free`` dropped."""

    freed_bytes: int
    freed_pages: int
    refused: list[Refusal] = field(default_factory=list)


@dataclass(frozen=True)
class EvictedPath:
    """Bytes a purge removed (or would remove) from one file."""

    path: str
    bytes: int


@dataclass(frozen=True)
class PurgeReport(JsonReport):
    """What a purge did, or with ``dry_run`` would do."""

    target: float
    dry_run: bool
    used_bytes_before: int
    used_bytes_after: int
    freed_bytes: int
    evicted: list[EvictedPath]
    refused: list[Refusal]
    reached_target: bool
    shortfall: str | None
    """None when the target was reached; otherwise one sentence on what kept the cache above it."""
