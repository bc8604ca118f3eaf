"""The Cache status page in a real browser when the connection names one worker of a three-worker cluster: a row
per worker, the cluster's totals, no degraded flag. The screenshot lands in docs/img/runbook/status-page-cluster.png.

The cluster (``ui_cluster`` in conftest) is on a Redis of its own; Airflow's ``lakecache_cluster`` connection names its
first worker, and the page is opened with ``?conn_id=lakecache_cluster`` as an engineer with several caches would.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from infra.cache_process import CacheProcess
from infra.cache_ring import cluster_report
from tests.browser.airflow_ui import AirflowUi
from tests.browser.conftest import CLUSTER_CONN_ID, PAGES, WORKERS

pytestmark = [pytest.mark.browser, pytest.mark.airflow]


def _wait_for_heartbeats(workers: list[CacheProcess]) -> None:
    """The page shows what the workers' heartbeats carry: wait for every page and for one ring."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        report = cluster_report(workers[0])
        if report["rings_agree"] and sum(m["pages"] for m in report["members"]) == PAGES:
            return
        time.sleep(0.2)


def test_the_status_page_shows_every_worker_of_the_cluster(ui: AirflowUi, ui_cluster: list[CacheProcess]) -> None:
    cluster = ui_cluster
    _wait_for_heartbeats(cluster)
    ids = [cluster_report(worker)["worker"] for worker in cluster]

    status = ui.status_page(CLUSTER_CONN_ID)

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
