"""Routine maintenance of a Lakecache cache, for a nightly DAG."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator, Context

from lakecache_airflow.hooks.cache import CacheHook


class CacheTtlSweepOperator(BaseOperator):
    """Free every cached object whose TTL has run out; returns (and pushes) ``freed_bytes`` and ``freed_pages``.

    The cache sweeps on its own schedule too; running the sweep from Airflow makes it happen before the jobs that
    need the room, and leaves a record of what it freed.

    :param lakecache_conn_id: the ``lakecache`` connection of the cache.
    """

    ui_color = "#e8f8f5"

    def __init__(self, *, lakecache_conn_id: str = CacheHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lakecache_conn_id = lakecache_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        """Sweep and report."""
        report = CacheHook(self.lakecache_conn_id).sweep_ttl()
        self.log.info("TTL sweep freed %d bytes (%d pages)", report["freed_bytes"], report["freed_pages"])
        return report
