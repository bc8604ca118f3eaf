"""A warmup asked of any worker warms the whole cluster: every block on its owner, every owner at once, one job that
adds up their progress."""

from __future__ import annotations

import json
import urllib.request
from typing import TYPE_CHECKING

from infra.cache_process import CacheProcess
from tests.cache_service.cluster.test_handoff import data_set, from_s3, read_all
from tests.cache_service.cluster.test_workers import owners_of
from tests.support.cachectl import cachectl
from tests.support.metrics import s3_bytes_read, scrape

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def test_a_load_through_one_worker_warms_every_block_on_its_owner(
    workers: list[CacheProcess], bucket: str, s3_client: S3Client
) -> None:
    objects = data_set(s3_client, bucket)
    total = sum(len(d) for d in objects.values())

    run = cachectl("load", "/lake/set", "--wait", "--json", endpoint=workers[1].webhdfs_url, token=workers[1].token)

    job = run.json()
    assert job["state"] == "succeeded", job
    assert job["progress"]["bytes_done"] == job["progress"]["bytes_total"] == total
    assert job["progress"]["bytes_from_s3"] == total
    owned = {w.webhdfs_port: 0 for w in workers}
    for key in objects:
        for owner in owners_of(workers, bucket, key, 8):
            owned[owner.webhdfs_port] += 1
    for worker in workers:  # each read from S3 exactly the blocks it owns, and holds them
        assert s3_bytes_read(worker.webhdfs_url) == owned[worker.webhdfs_port] << 20
        assert scrape(worker.webhdfs_url)['lakecache_tier_pages{tier="disk"}'] == owned[worker.webhdfs_port]
    assert len([n for n in owned.values() if n]) == 3

    before = from_s3(workers)
    read_all(workers[2], bucket, objects)
    assert from_s3(workers) == before  # warm everywhere


def test_a_load_of_one_workers_own_blocks_leaves_the_others_cold(
    workers: list[CacheProcess], bucket: str, s3_client: S3Client
) -> None:
    objects = data_set(s3_client, bucket, objects=1)
    request = urllib.request.Request(
        f"{workers[0].webhdfs_url}/admin/v1/load",
        data=json.dumps({"paths": ["/lake/set"], "owned_only": True}).encode(),
        headers={"Authorization": f"Bearer {workers[0].token}", "Content-Type": "application/json"},
        method="POST",
    )
    with NO_PROXY.open(request, timeout=10) as response:
        job = json.load(response)
    url = f"{workers[0].webhdfs_url}/admin/v1/jobs/{job['id']}"
    while job["state"] in ("queued", "running"):
        with NO_PROXY.open(url, timeout=10) as response:
            job = json.load(response)
    mine = sum(o is workers[0] for o in owners_of(workers, bucket, next(iter(objects)), 8))
    assert job["state"] == "succeeded" and job["progress"]["bytes_total"] == mine << 20
    assert s3_bytes_read(workers[0].webhdfs_url) == mine << 20
    assert s3_bytes_read(workers[1].webhdfs_url) == s3_bytes_read(workers[2].webhdfs_url) == 0
