"""Every query of the generated dashboards against a real Prometheus scraping a real three-worker cache cluster (the
live alerts' fixtures, from ``conftest.py``: 1 s scrapes and evaluations, the cache's and S3's rules): each parses,
the cache dashboard's answer series (its alerts panel may be quiet), and the dashboard is drawn as a PNG."""

from __future__ import annotations

import time
from pathlib import Path

from infra.cache_process import CacheProcess
from infra.monitoring.servers import PROMETHEUS_CONFIG, Prometheus
from infra.monitoring.snapshot_plots import formatted, render
from infra.monitoring.snapshots import (
    DASHBOARDS_DIR,
    Panel,
    Target,
    Window,
    check,
    generated_panels,
    report,
    scrape_interval,
)
from infra.s3_emulator import S3Emulator
from tests.infra.monitoring.test_live_alerts import BUCKET, PAGE, Monitoring, read_through
from tests.support.waiting import wait_until

READ_LATENCY = 'slo:sli_error:ratio_rate5m{service="cache",slo="read-latency"}'


def test_every_dashboard_query_parses_and_the_cache_dashboard_answers_series(
    workers: list[CacheProcess], monitoring: Monitoring, s3: S3Emulator, tmp_path: Path
) -> None:
    start = time.time()
    for i in range(3):
        s3.client().put_object(Bucket=BUCKET, Key=f"lake/snap/{i}", Body=bytes([i]) * PAGE)
        assert read_through(workers[i], f"/lake/snap/{i}") == 200  # reads: the read SLOs have requests to count
    # Reads go on while waiting: a worker's counters start at their first request, and a rate needs an increase
    # between two scrapes (an SLO ratio records nothing for a window without traffic).
    wait_until(
        lambda: read_through(workers[0], "/lake/snap/0") == 200 and monitoring.value(READ_LATENCY) is not None,
        timeout=30,
        what="the read SLOs recorded",
    )
    time.sleep(2)  # a query over the window evaluates once a second from its start: let it reach the records
    window = Window(start - 10, time.time(), scrape_interval(monitoring.prometheus.url))

    outcomes = check(monitoring.prometheus.url, generated_panels(DASHBOARDS_DIR), window)

    lines = "\n".join(report(outcomes))
    assert {o.panel.dashboard for o in outcomes} >= {"cache", "s3", "redis", "etl", "overview"}
    assert not [o for o in outcomes if o.status == "error"], lines
    cache = [o for o in outcomes if o.panel.dashboard == "cache"]
    assert not [o for o in cache if o.failed], lines

    png = render(cache, window, tmp_path / "cache.png", "Cache workers")
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 20_000


def test_a_query_prometheus_refuses_is_an_error_and_one_without_series_is_empty(tmp_path: Path) -> None:
    config = tmp_path / "config" / PROMETHEUS_CONFIG
    config.parent.mkdir(parents=True)
    config.write_text("global: {scrape_interval: 1s}\n")  # no targets: it only answers queries
    window = Window(time.time() - 60, time.time(), 1.0)
    panel = Panel("t", "t", "timeseries", "", (Target("A", "sum(rate(x[$__rate_interval])"), Target("B", "nothing")))
    with Prometheus(tmp_path / "config", tmp_path) as prometheus:
        broken, empty = check(prometheus.url, [panel], window)
    assert broken.status == "error" and "parse" in broken.error
    assert broken.query == "sum(rate(x[4s])"  # Grafana's $__rate_interval: four scrape intervals here
    assert empty.status == "empty" and empty.failed


def test_values_are_shown_in_their_panels_units() -> None:
    assert formatted(0.999, "percentunit") == "99.9%"
    assert formatted(3 * 1024**3, "bytes") == "3 GiB"
    assert formatted(1536, "Bps") == "1.5 KiB/s"
    assert formatted(2.5, "reqps") == "2.5 req/s"
