"""The incidents injected into a fleet day: what breaks, when, and for how long.

Times are minutes of the replayed day (0 is 00:00). Each incident's window is the time its fault is in effect; the
windows of one day never overlap, so a page inside a window can only be about that window's incident.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class IncidentKind(StrEnum):
    """The five faults of issue #15."""

    WORKER_CRASH = "worker_crash"
    S3_SLOWDOWN = "s3_slowdown"
    LATE_ETL = "late_etl"
    DISK_FILLING = "disk_filling"
    REDIS_DOWN = "redis_down"


@dataclass(frozen=True)
class Incident:
    """One fault, in effect over minutes [``start``, ``end``) of the day.

    ``hosts`` is how many cache workers it strikes (the crash, the disk filling); the fleet picks them among the
    workers running at ``start``.
    """

    kind: IncidentKind
    start: int
    end: int
    title: str
    hosts: int = 0

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"incident {self.kind} ends before it starts")

    @property
    def clock(self) -> str:
        """``HH:MM-HH:MM``."""
        return f"{hhmm(self.start)}-{hhmm(self.end)}"


def hhmm(minute: int) -> str:
    """Minute of the day as ``HH:MM``."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


DAY = (
    Incident(
        IncidentKind.DISK_FILLING,
        40,
        140,
        "a stalled backfill's staged output fills one worker's disk tier (killed at 02:20)",
        hosts=1,
    ),
    Incident(
        IncidentKind.LATE_ETL,
        150,
        535,
        "telemetry_daily_etl is stuck on a lost lock from 02:30 and succeeds only at 08:55",
    ),
    Incident(
        IncidentKind.WORKER_CRASH,
        640,
        690,
        "a corrupt object crashes the 3 cache workers that serve it; restarted at 11:30",
        hosts=3,
    ),
    Incident(
        IncidentKind.S3_SLOWDOWN,
        800,
        845,
        "S3 slows down: first bytes 1-5 s, 5% of requests time out, 10% throttled",
    ),
    Incident(IncidentKind.REDIS_DOWN, 1170, 1195, "Redis is down for 25 minutes"),
)
"""The day's incidents: one of each kind, between the day's load peaks and on them."""

SMOKE = (
    Incident(IncidentKind.REDIS_DOWN, 370, 390, "Redis is down for 20 minutes"),
    Incident(IncidentKind.S3_SLOWDOWN, 410, 450, "S3 slows down: first bytes 1-5 s, 5% of requests time out"),
)
"""Two incidents inside the smoke window (05:30-08:00, the morning scale-out)."""


def covering(incidents: tuple[Incident, ...], minute: float, grace: int) -> Incident | None:
    """The incident in effect at ``minute``, or else the last one ended at most ``grace`` minutes before it."""
    for incident in incidents:
        if incident.start <= minute < incident.end:
            return incident
    ended = [i for i in incidents if i.end <= minute < i.end + grace]
    return max(ended, key=lambda i: i.end) if ended else None
