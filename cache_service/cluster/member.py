"""A worker as the cluster sees it: identity, the URLs it is reached at, its state and its last heartbeat."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from cache_service.cluster.identity import is_worker_id


class MemberState(StrEnum):
    """Where a worker is in its life in the cluster. Only active workers own blocks."""

    JOINING = "joining"
    ACTIVE = "active"
    DRAINING = "draining"
    GONE = "gone"


@dataclass(frozen=True)
class MemberStats:
    """What a worker reports of itself with each heartbeat, for ``cachectl cluster``."""

    pages: int = 0
    used_bytes: int = 0
    capacity_bytes: int = 0
    hits: int = 0
    misses: int = 0

    @property
    def hit_ratio(self) -> float | None:
        """Hits over page lookups since the worker started; None before its first lookup."""
        total = self.hits + self.misses
        return None if total == 0 else self.hits / total


@dataclass(frozen=True)
class Member:
    """One worker's record in Redis. ``heartbeat_at`` is Redis's clock (seconds) at its last heartbeat, so that every
    worker judges liveness against the same clock; ``ring`` is the digest of the ring the worker routes by."""

    id: str
    webhdfs_url: str
    s3_url: str
    state: MemberState = MemberState.JOINING
    started_at: float = 0.0
    heartbeat_at: float = 0.0
    ring: str = ""
    stats: MemberStats = field(default_factory=MemberStats)

    def encode(self) -> str:
        """The record as JSON (what Redis holds)."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def decode(cls, text: str | bytes) -> Member:
        """A record read from Redis. Raises ``ValueError`` naming what is wrong with one that is not a member."""
        try:
            raw = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"a member record is not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise ValueError("a member record is not a JSON object")
        try:
            member = cls(
                id=_text(raw, "id"),
                webhdfs_url=_text(raw, "webhdfs_url"),
                s3_url=_text(raw, "s3_url"),
                state=MemberState(raw.get("state", "joining")),
                started_at=float(raw.get("started_at", 0.0)),
                heartbeat_at=float(raw.get("heartbeat_at", 0.0)),
                ring=str(raw.get("ring", "")),
                stats=MemberStats(**{k: int(v) for k, v in dict(raw.get("stats") or {}).items()}),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"a member record is malformed: {exc}") from None
        if not is_worker_id(member.id):
            raise ValueError(f"a member record names {member.id!r}, not a worker id")
        return member


def _text(raw: dict[str, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value
