"""What the workers of a cache cluster say of it (``GET /admin/v1/cluster``): the report, a worker's id, and waiting
until workers route by one ring. For the local stack, the benchmarks and the tests alike."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.cache_process import CacheProcess

# Straight to loopback: a proxy configured in the environment must not sit between us and the workers.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def cluster_report(worker: CacheProcess | str, timeout: float = 10.0) -> dict[str, Any]:
    """``GET /admin/v1/cluster`` of ``worker`` (a worker, or its WebHDFS URL). Raises ``OSError`` if it does not
    answer, ``ValueError`` if its answer is not JSON."""
    url = worker if isinstance(worker, str) else worker.webhdfs_url
    with _DIRECT.open(f"{url}/admin/v1/cluster", timeout=timeout) as response:
        report: dict[str, Any] = json.load(response)
    return report


def worker_id(worker: CacheProcess | str) -> str:
    """The worker's id in its cluster (``w-`` and 12 hex digits)."""
    return str(cluster_report(worker)["worker"])


def wait_for_ring(workers: Iterable[CacheProcess | str], active: int, timeout: float = 60.0) -> None:
    """Wait until each of ``workers`` counts ``active`` active workers. Raises ``TimeoutError``."""
    deadline = time.monotonic() + timeout
    pending = list(workers)
    while pending:
        counts = [sum(m["state"] == "active" for m in cluster_report(w)["members"]) for w in pending]
        pending = [w for w, n in zip(pending, counts, strict=True) if n != active]
        if pending and time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} workers do not see {active} active workers: {counts}")
        time.sleep(0.1)
