"""A three-worker cluster on the session's Redis, for the tests of this folder."""

from __future__ import annotations

import pytest

from infra.cache_process import CacheProcess
from tests.support.caches import CacheFactory

CLUSTER = {
    "cluster": {"block_size": "1MiB", "heartbeat_interval": "250ms", "member_timeout": "3s", "peer_timeout": "2s"},
    "metadata": {"sync_interval": "1h"},  # only announcements can make a change visible at once
}


@pytest.fixture
def workers(cache_factory: CacheFactory, bucket: str, redis_url: str) -> list[CacheProcess]:
    """Three workers mounting ``/lake``, blocks of 1 MiB, a dead worker out of the ring after 3 s."""
    return cache_factory.cluster(3, {"/lake": f"s3://{bucket}/lake"}, redis_url, CLUSTER)
