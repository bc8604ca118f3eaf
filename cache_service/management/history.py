"""The worker's own record of its purges, newest first, kept on the disk tier so it survives restarts.

Every manual purge (dry runs too, marked as such) and every purge under pressure is recorded with what it was asked
(trigger, target, paths), what it did (bytes before, after, freed) and, when it fell short, why. On-call reads it
through ``GET /admin/v1/purges`` to answer "did the cache purge, when, and did it get there?" without the logs.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

Trigger = Literal["manual", "pressure"]
DEFAULT_KEEP = 100


@dataclass(frozen=True)
class PurgeRecord:
    """One purge as the record keeps it. Byte counts are those of the last tier, as in ``PurgeReport``."""

    time: str  # ISO 8601, UTC, to the second
    trigger: Trigger
    dry_run: bool
    target: float
    paths: list[str] | None  # None: the whole cache
    used_bytes_before: int
    used_bytes_after: int
    freed_bytes: int
    reached_target: bool
    shortfall: str | None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def utc_now() -> str:
    """The current time as the record writes it: ``2026-12-05T09:30:00Z``."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class PurgeHistory:
    """The last ``keep`` purges, newest first, persisted as JSON in ``state_dir/purges.json``."""

    def __init__(self, state_dir: Path, keep: int = DEFAULT_KEEP) -> None:
        self._file = state_dir / "purges.json"
        self._keep = keep
        state_dir.mkdir(parents=True, exist_ok=True)
        self._records = self._load()

    def _load(self) -> list[PurgeRecord]:
        if not self._file.exists():
            return []
        names = {f.name for f in fields(PurgeRecord)}
        try:
            saved = json.loads(self._file.read_text())
            return [PurgeRecord(**{k: v for k, v in r.items() if k in names}) for r in saved["purges"]][: self._keep]
        except (OSError, ValueError, TypeError, KeyError) as exc:
            # The record only explains the past: a damaged file must not keep the worker from starting.
            log.warning("purge record %s is unreadable (%s); starting a new one", self._file, exc)
            return []

    def _save(self) -> None:
        tmp = self._file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"purges": [r.to_json() for r in self._records]}, indent=1))
        os.replace(tmp, self._file)

    def add(self, record: PurgeRecord) -> None:
        """Record ``record`` as the newest purge, dropping the oldest beyond ``keep``."""
        self._records = [record, *self._records][: self._keep]
        try:
            self._save()
        except OSError as exc:
            # A full or failing disk must not fail the purge that is trying to free it; the record stays in memory.
            log.warning("could not save the purge record to %s: %s", self._file, exc)

    def latest(self) -> PurgeRecord | None:
        """The newest purge, if any."""
        return self._records[0] if self._records else None

    def list(self, limit: int | None = None) -> list[PurgeRecord]:
        """Up to ``limit`` purges (all kept when None), newest first."""
        return list(self._records if limit is None else self._records[:limit])
