"""How full a cache is, and filling it, through its admin API: what a test of a purge stands on."""

from __future__ import annotations

from collections.abc import Sequence

from infra.cache_process import CacheProcess
from tests.support.admin import AdminClient


def load(cache: CacheProcess, paths: Sequence[str]) -> None:
    """Load ``paths`` into ``cache`` and wait for the load job, which must succeed."""
    admin = AdminClient(cache.webhdfs_url, cache.token)
    job = admin.wait_job(admin.ok("POST", "load", {"paths": list(paths)})["id"])
    assert job["state"] == "succeeded", job


def usage(cache: CacheProcess) -> float:
    """The share of ``cache``'s capacity in use, as its status says: what purges compare with their thresholds."""
    status = AdminClient(cache.webhdfs_url, cache.token).ok("GET", "status")
    return status["used_bytes"] / status["capacity_bytes"]
