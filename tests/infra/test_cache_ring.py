"""What a cluster's workers report of it, read by ``infra.cache_ring`` from a real worker on a real Redis."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra.cache_ring import cluster_report, wait_for_ring, worker_id
from infra.redis_server import RedisServer
from infra.s3_emulator import S3Emulator
from tests.support.caches import lone_cluster_worker


def test_a_lone_worker_reports_its_id_and_a_ring_of_one(
    s3_emulator: S3Emulator, redis_server: RedisServer, tmp_path: Path
) -> None:
    with lone_cluster_worker(s3_emulator, tmp_path, redis_server, {"/lake": "s3://ring-report/lake"}) as worker:
        me = worker_id(worker)
        assert re.fullmatch(r"w-[0-9a-f]{12}", me)
        assert worker_id(worker.webhdfs_url) == me  # a worker or its URL alike
        assert [m["id"] for m in cluster_report(worker)["members"]] == [me]
        wait_for_ring([worker], 1, timeout=5)
        with pytest.raises(TimeoutError, match="1 workers do not see 2 active workers"):
            wait_for_ring([worker.webhdfs_url], 2, timeout=0.5)
        worker.stop()
        with pytest.raises(OSError):
            cluster_report(worker, timeout=2)
