"""Job records: what a background job was asked, how far it got, and what went wrong."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    """Life cycle of a job."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """True for the end states."""
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


@dataclass
class JobProgress:
    """Counters a job updates as it goes; rate and ETA are derived."""

    files_total: int = 0
    files_done: int = 0
    bytes_total: int = 0
    bytes_done: int = 0
    bytes_from_s3: int = 0
    bytes_skipped: int = 0
    rate_bytes_per_s: float = 0.0
    eta_seconds: float | None = None


@dataclass(frozen=True)
class FileError:
    """One file a job could not process."""

    path: str
    error: str


@dataclass
class Job:
    """One background job."""

    id: str
    kind: str
    request: dict[str, Any]
    state: JobState = JobState.QUEUED
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    progress: JobProgress = field(default_factory=JobProgress)
    errors: list[FileError] = field(default_factory=list)
    message: str = ""

    def update_rate(self, now: float) -> None:
        """Recompute rate and ETA from the bytes done so far."""
        if self.started_at is None:
            return
        elapsed = max(now - self.started_at, 1e-6)
        p = self.progress
        p.rate_bytes_per_s = p.bytes_done / elapsed
        remaining = p.bytes_total - p.bytes_done
        p.eta_seconds = remaining / p.rate_bytes_per_s if p.rate_bytes_per_s > 0 else None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        data = asdict(self)
        data["state"] = str(self.state)
        return data
