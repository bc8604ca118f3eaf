"""The tables the telemetry pipeline publishes, as Airflow Assets, and how each is registered in the catalog.

An asset's URI names the table by its cache path (``lakecache://warehouse/events_clean``): the same in every
deployment, whatever bucket the mount table puts behind ``/warehouse``.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow.sdk import Asset

DATABASE = "telemetry"


@dataclass(frozen=True)
class PublishedTable:
    """A table under a cache path, partitioned by ``partition_keys``, registered as ``DATABASE.name``."""

    name: str
    path: str
    partition_keys: tuple[str, ...] = ("dt",)

    @property
    def asset(self) -> Asset:
        """The Airflow asset that runs producing this table update."""
        return Asset(name=f"{DATABASE}.{self.name}", uri=f"lakecache:/{self.path}")

    def to_dict(self) -> dict[str, object]:
        """The table as operator arguments."""
        return {"database": DATABASE, "name": self.name, "path": self.path, "partition_keys": list(self.partition_keys)}


EVENTS_CLEAN = PublishedTable("events_clean", "/warehouse/events_clean")
EVENTS_QUARANTINE = PublishedTable("events_quarantine", "/warehouse/events_quarantine")
AGGREGATES = (
    PublishedTable("daily_active_users", "/warehouse/agg/daily_active_users"),
    PublishedTable("sessions_daily", "/warehouse/agg/sessions_daily"),
    PublishedTable("revenue_daily", "/warehouse/agg/revenue_daily"),
    PublishedTable("retention_cohorts", "/warehouse/agg/retention_cohorts", ("cohort_dt",)),
)
PUBLISHED = (EVENTS_CLEAN, EVENTS_QUARANTINE, *AGGREGATES)
