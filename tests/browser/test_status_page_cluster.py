"""The Cache status page in a real browser when the connection names one worker of a three-worker cluster: a row
per worker, the cluster's totals, no degraded flag. The screenshot lands in docs/img/runbook/status-page-cluster.png.

This module's ``ui_cache`` is the first worker of a cluster on a Redis of its own; Airflow's four components
(``airflow`` in conftest) are wired to it as to any cache.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from infra.cache_process import CacheProcess
from infra.redis_server import RedisServer
from infra.s3_emulator import S3Emulator
from tests.browser.airflow_ui import AirflowUi
from tests.support.buckets import remove_bucket, unique_bucket_name
from tests.support.caches import CacheFactory, cluster_report

pytestmark = [pytest.mark.browser, pytest.mark.airflow]

WORKERS = 3
CLUSTER = {"cluster": {"block_size": "256KiB", "heartbeat_interval": "250ms"}, "store": {"page_size": "64KiB"}}


PAGES = 48
"""3 MiB in pages of 64 KiB: twelve blocks of 256 KiB spread over the workers."""


@pytest.fixture(scope="module")
def cluster(s3_emulator: S3Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[CacheProcess]]:
    """Three workers on a Redis of their own, holding 3 MiB of one object spread over them by block."""
    client = s3_emulator.client()
    name = unique_bucket_name()
    client.create_bucket(Bucket=name)
    data = bytes(range(256)) * 4096 * 3
    client.put_object(Bucket=name, Key="warehouse/events.bin", Body=data)
    factory = CacheFactory(tmp_path_factory.mktemp("ui-cluster"), s3_emulator.endpoint_url)
    with RedisServer(tmp_path_factory.mktemp("ui-redis")) as redis:
        try:
            workers = factory.cluster(WORKERS, {"/warehouse": f"s3://{name}/warehouse"}, redis.url, CLUSTER)
            # A WebHDFS read through one worker: each block's owner serves and caches it.
            url = f"{workers[0].webhdfs_url}/webhdfs/v1/warehouse/events.bin?op=OPEN&user.name=test"
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=30) as response:
                assert response.read() == data
            # The page shows what the workers' heartbeats carry: wait for the pages and for one ring.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                report = cluster_report(workers[0])
                if report["rings_agree"] and sum(m["pages"] for m in report["members"]) == PAGES:
                    break
                time.sleep(0.2)
            yield workers
        finally:
            factory.stop_all()
            remove_bucket(client, name)


@pytest.fixture(scope="module")
def ui_cache(cluster: list[CacheProcess]) -> CacheProcess:
    """What Airflow's connection names: the cluster's first worker."""
    return cluster[0]


def test_the_status_page_shows_every_worker_of_the_cluster(ui: AirflowUi, cluster: list[CacheProcess]) -> None:
    ids = [cluster_report(worker)["worker"] for worker in cluster]

    status = ui.status_page()

    expect(status.locator("#verdict")).to_have_attribute("data-verdict", "healthy")
    section = status.locator("#cluster")
    expect(section).to_be_visible()
    expect(section).to_have_attribute("data-degraded", "false")
    expect(section).to_have_attribute("data-rings-agree", "true")
    expect(section.locator("h2")).to_contain_text(f"{WORKERS} active of {WORKERS} workers")
    rows = status.locator("#cluster-workers tr[data-worker]")
    expect(rows).to_have_count(WORKERS)
    for worker, url in zip(ids, (w.webhdfs_url for w in cluster), strict=True):
        row = status.locator(f'#cluster-workers tr[data-worker="{worker}"]')
        expect(row).to_contain_text(url)
        expect(row).to_contain_text("active")
        expect(row).to_contain_text("33.3%")
    expect(status.locator(f'tr[data-worker="{ids[0]}"]')).to_contain_text("(this page)")
    totals = status.locator("#cluster-totals tr")
    expect(totals.filter(has_text="Active workers").locator("td")).to_have_text(str(WORKERS))
    expect(totals.filter(has_text="Pages").locator("td")).to_have_text(str(PAGES))
    expect(status.locator("#cluster-degraded")).to_have_count(0)
    expect(status.locator("#cluster-rings")).to_have_count(0)
    ui.shot("status-page-cluster", status.locator("#cluster"))
