"""Fixtures of the browser tests: a small cache on the S3 emulator, a three-worker cluster, Airflow's four components
wired to both, Chromium.

Airflow takes most of a minute to start, so one instance serves every browser test: its ``lakecache_default``
connection names the lone cache (the purge runbook's), ``lakecache_cluster`` the cluster's first worker (the status
page's ``?conn_id=``). The fixtures are package-scoped: ``tests/conftest.py`` hands the whole ``tests/browser``
folder to one test process, so they are built once, and torn down after its last test (Playwright's sync API runs an
event loop in the main thread while it is open, and an idle Airflow still takes CPU: neither may outlive the
folder).

The cache's disk tier is small (16 MiB) so that two days of events fill it past the purge form's default target
(0.6): a purge from the UI has something to do, and the status page shows usage move.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from infra.airflow import USERNAME, LocalAirflow
from infra.cache_process import CacheProcess
from infra.redis_server import RedisServer
from infra.s3_emulator import S3Emulator
from infra.stack import StackInfo
from tests.browser.airflow_ui import AirflowUi, launch
from tests.plugins.airflow_home import connection_json
from tests.support.admin import AdminClient
from tests.support.buckets import remove_bucket, unique_bucket_name
from tests.support.caches import CacheFactory

pytestmark = pytest.mark.browser
# A page that polls its API may take a while to show a change on a loaded 2-core machine: wait for it, don't sleep.
expect.set_options(timeout=30_000)

MIB = 2**20
DAYS = {"2026-11-20": 6 * MIB, "2026-11-21": 4 * MIB}
"""Bytes of events per day, in two files each: 10 MiB of a 16 MiB disk tier (62.5%) once loaded."""
DISK_CAPACITY = 16 * MIB
CLUSTER_CONN_ID = "lakecache_cluster"
WORKERS = 3
CLUSTER = {"cluster": {"block_size": "256KiB", "heartbeat_interval": "250ms"}, "store": {"page_size": "64KiB"}}
PAGES = 48
"""The cluster holds 3 MiB in pages of 64 KiB: twelve blocks of 256 KiB spread over the workers."""


def day_path(day: str) -> str:
    """The cache path of one day of events."""
    return f"/warehouse/events/dt={day}"


@pytest.fixture(scope="package")
def ui_cache(s3_emulator: S3Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CacheProcess]:
    """A started cache on a bucket of its own holding ``DAYS`` of events, not loaded yet."""
    client = s3_emulator.client()
    name = unique_bucket_name()
    client.create_bucket(Bucket=name)
    for day, size in DAYS.items():
        for part in range(2):
            client.put_object(Bucket=name, Key=f"warehouse/events/dt={day}/part-{part}", Body=b"e" * (size // 2))
    cache = CacheProcess(
        tmp_path_factory.mktemp("ui-cache"),
        s3_endpoint=s3_emulator.endpoint_url,
        mounts={"/warehouse": f"s3://{name}/warehouse"},
        memory_capacity=f"{DISK_CAPACITY}B",
        disk_capacity=f"{DISK_CAPACITY}B",
    )
    cache.start()
    try:
        yield cache
    finally:
        cache.stop()
        remove_bucket(client, name)


@pytest.fixture(scope="package")
def ui_admin(ui_cache: CacheProcess) -> AdminClient:
    """The tests' own admin client for the cache (setting up and checking, not what the UI does)."""
    return AdminClient(ui_cache.webhdfs_url, ui_cache.token)


@pytest.fixture(scope="package")
def ui_cluster(s3_emulator: S3Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[CacheProcess]]:
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
            yield workers
        finally:
            factory.stop_all()
            remove_bucket(client, name)


@pytest.fixture(scope="package")
def airflow(
    ui_cache: CacheProcess,
    ui_cluster: list[CacheProcess],
    s3_emulator: S3Emulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LocalAirflow]:
    """Airflow's API server, scheduler, DAG processor and triggerer with the repository's DAGs and plugins, its
    ``lakecache_default`` connection on ``ui_cache`` and ``lakecache_cluster`` on the cluster's first worker."""
    state_dir: Path = tmp_path_factory.mktemp("airflow")
    stack = StackInfo(
        state_dir=str(state_dir),
        s3_endpoint=s3_emulator.endpoint_url,
        webhdfs_url=ui_cache.webhdfs_url,
        webhdfs_uri=ui_cache.webhdfs_uri,
        s3_api_url=ui_cache.s3_url,
        admin_token=ui_cache.token,
        s3_emulator_pid=s3_emulator.pid or 0,
        cache_pid=ui_cache.pid or 0,
    )
    cluster_conn = {f"AIRFLOW_CONN_{CLUSTER_CONN_ID.upper()}": connection_json(ui_cluster[0])}
    with LocalAirflow(state_dir, stack, extra_env=cluster_conn) as running:
        yield running


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Debian's Chromium through Playwright."""
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def ui(browser: Browser, airflow: LocalAirflow) -> Iterator[AirflowUi]:
    """A fresh browser tab, logged in to Airflow as the admin user with the generated password."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    ui = AirflowUi(page, airflow.url)
    ui.log_in(USERNAME, airflow.password)
    yield ui
    context.close()
