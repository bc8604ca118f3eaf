"""The status page read from real workers: a worker alone shows no cluster, a worker of a three-worker cluster shows
every worker and the totals, and one that lost Redis says its view is degraded."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest

from infra.cache_process import CacheProcess
from infra.cache_ring import cluster_report
from infra.redis_server import RedisServer
from lakecache_airflow.plugin import read_cache
from lakecache_airflow.status_page import render_page
from tests.plugins.airflow_home import connection_json
from tests.support.caches import CacheFactory

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.airflow

CLUSTER = {
    "cluster": {"block_size": "256KiB", "heartbeat_interval": "250ms", "member_timeout": "3s", "peer_timeout": "2s"},
    "store": {"page_size": "64KiB"},
}
CONN_ID = "lakecache_cluster_page"


def _page(monkeypatch: pytest.MonkeyPatch, worker: CacheProcess) -> str:
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", connection_json(worker))
    return render_page(read_cache(CONN_ID))


def _read_all(worker: CacheProcess, path: str) -> bytes:
    # WebHDFS OPEN through one worker: blocks it does not own are redirected to their owners, which cache them.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{worker.webhdfs_url}/webhdfs/v1{path}?op=OPEN&user.name=test", timeout=30) as response:
        data: bytes = response.read()
    return data


def _rows(page: str) -> dict[str, list[str]]:
    rows = re.findall(r'<tr class="state-[^"]+" data-worker="([^"]+)">(.*?)</tr>', page)
    return {
        worker: [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td>(.*?)</td>", row)] for worker, row in rows
    }


def _reformed(report: dict[str, Any], workers: int) -> bool:
    """True when a worker's cluster report is current again and agrees with ``workers`` workers."""
    return report["degraded"] is None and report["rings_agree"] and len(report["members"]) == workers


def _wait(condition: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.2)


def test_a_worker_alone_answers_as_a_cluster_of_one_and_its_page_shows_no_cluster(
    cache_factory: CacheFactory, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = cache_factory({"/lake": f"s3://{bucket}/lake"})

    report = cluster_report(worker)
    assert report["clustered"] is False
    assert [m["id"] for m in report["members"]] == [report["worker"]]
    assert report["members"][0]["state"] == "active" and report["members"][0]["ring_share"] == 1.0
    with urllib.request.urlopen(f"{worker.webhdfs_url}/admin/v1/status", timeout=5) as response:
        assert "cluster" not in json.load(response)

    page = _page(monkeypatch, worker)
    assert 'data-verdict="healthy"' in page
    assert 'id="cluster' not in page and report["worker"] not in page


def test_a_cluster_workers_page_shows_every_worker_and_the_totals(
    cache_factory: CacheFactory, redis_url: str, bucket: str, s3_client: S3Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    workers = cache_factory.cluster(3, {"/lake": f"s3://{bucket}/lake"}, redis_url, CLUSTER)
    data = bytes(range(256)) * 4096 * 3  # 3 MiB: twelve blocks of 256 KiB, spread over the three workers
    s3_client.put_object(Bucket=bucket, Key="lake/events.bin", Body=data)
    assert _read_all(workers[0], "/lake/events.bin") == data
    ids = [cluster_report(w)["worker"] for w in workers]

    def heartbeats_carry_the_pages() -> bool:  # as every worker sees them: the page reads the second one
        pages = [sum(m["pages"] for m in cluster_report(w)["members"]) for w in workers]
        return pages == [len(data) // (64 * 1024)] * len(workers)

    _wait(heartbeats_carry_the_pages)
    page = _page(monkeypatch, workers[1])

    assert 'data-verdict="healthy"' in page
    assert '<section id="cluster" data-degraded="false" data-rings-agree="true">' in page
    rows = _rows(page)
    assert sorted(rows) == sorted(ids)
    report = cluster_report(workers[1])
    for member in report["members"]:
        worker, url, state, share, pages, disk, _ratio, age = rows[member["id"]]
        assert worker.startswith(member["id"])
        assert url == member["webhdfs_url"] and state == "active" and share == "33.3%"
        assert int(pages.replace(",", "")) == member["pages"]
        assert disk.endswith(" / 4.0 GiB") and age.endswith(" s ago")
    assert rows[ids[1]][0] == f"{ids[1]} (this page)"
    assert sum(int(cells[4]) > 0 for cells in rows.values()) >= 2, rows  # the blocks live on several workers
    totals = re.search(r'<table id="cluster-totals">(.*?)</table>', page)
    assert totals is not None
    assert "<tr><th>Active workers</th><td>3</td></tr>" in totals.group(1)
    assert "<tr><th>Pages</th><td>48</td></tr>" in totals.group(1)
    assert "of 12.0 GiB" in totals.group(1)


def test_a_worker_that_lost_redis_says_its_view_is_degraded(
    cache_factory: CacheFactory, bucket: str, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    with RedisServer(tmp_path_factory.mktemp("redis-page")) as redis:
        workers = cache_factory.cluster(2, {"/lake": f"s3://{bucket}/lake"}, redis.url, CLUSTER)
        # Just after a join the workers' heartbeats still carry the ring each had before it: the page says the
        # rings disagree until the next heartbeat.
        _wait(lambda: cluster_report(workers[0])["rings_agree"])
        assert 'data-verdict="healthy"' in _page(monkeypatch, workers[0])
        redis.stop()
        _wait(lambda: bool(cluster_report(workers[0])["degraded"]))

        page = _page(monkeypatch, workers[0])

        assert 'data-verdict="cluster-degraded"><strong>Cluster degraded</strong>' in page
        assert '<section id="cluster" data-degraded="true"' in page
        assert '<p id="cluster-degraded" class="error">Degraded: this worker cannot reach Redis (' in page
        assert len(_rows(page)) == 2  # it still shows the workers it knew
        redis.start()
        # Redis comes back empty: each worker registers again at its next heartbeat, and until both have, and
        # heartbeat once more with the ring of both, the rings disagree.
        _wait(lambda: _reformed(cluster_report(workers[0]), len(workers)))
        assert 'data-verdict="healthy"' in _page(monkeypatch, workers[0])
