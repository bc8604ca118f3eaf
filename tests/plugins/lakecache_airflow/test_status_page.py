"""The status page's rendering, from readings as the cache answers them: each verdict, the usage bar, the purges.

The page against a real cache and a real API server is in ``test_plugin.py``; here every case is a reading built
from the admin API's JSON shapes, so the cases a live cache rarely shows (not ready, a purge a second ago) are too.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import airflow
import pytest

from lakecache_airflow.status_page import PURGE_DAG_HREF, PURGE_RUNS_HREF, Reading, render_page, verdict

NOW = datetime(2026, 12, 5, 9, 30, 0, tzinfo=UTC)
MiB = 1024**2


def _status(used: int = 40 * MiB, **changes: Any) -> dict[str, Any]:
    status = {
        "capacity_bytes": 100 * MiB,
        "used_bytes": used,
        "pinned_bytes": 3 * MiB,
        "staged_bytes": 5000,
        "hit_ratio": 0.8,
        "reads": 250,
        "high_watermark": 0.9,
        "low_watermark": 0.75,
        "page_size": 65536,
        "eviction": "lru",
        "tiers": [
            {"medium": "memory", "capacity_bytes": 8 * MiB, "used_bytes": MiB, "pages": 16},
            {"medium": "disk", "capacity_bytes": 100 * MiB, "used_bytes": used, "pages": 640},
        ],
        "mounts": [
            {
                "path": "/warehouse",
                "uri": "s3://lake/warehouse",
                "quota": {"disk": 64 * MiB},
                "used": {"memory": MiB, "disk": 30 * MiB},
                "cached_bytes": 30 * MiB,
                "staged_bytes": 5000,
            },
            {
                "path": "/raw",
                "uri": "s3://lake/raw",
                "quota": {},
                "used": {"memory": 0, "disk": 10 * MiB},
                "cached_bytes": 10 * MiB,
                "staged_bytes": 0,
            },
        ],
        "jobs_running": 0,
    }
    return {**status, **changes}


def _purge(ago: timedelta, **changes: Any) -> dict[str, Any]:
    purge = {
        "time": (NOW - ago).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "trigger": "manual",
        "dry_run": False,
        "target": 0.6,
        "paths": None,
        "used_bytes_before": 95 * MiB,
        "used_bytes_after": 60 * MiB,
        "freed_bytes": 35 * MiB,
        "reached_target": True,
        "shortfall": None,
    }
    return {**purge, **changes}


def _reading(**changes: Any) -> Reading:
    values: dict[str, Any] = {
        "conn_id": "lakecache_default",
        "url": "http://cache.internal:9870",
        "read_at": NOW,
        "ready": True,
        "status": _status(),
        "purges": [_purge(timedelta(hours=2))],
        "pins": ["/warehouse/dim"],
    }
    return Reading(**{**values, **changes})


class _Elements(HTMLParser):
    """Every element's attributes by id, and the text inside each id'd element (its pieces one space apart)."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.attrs: dict[str, dict[str, str]] = {}
        self.pieces: dict[str, list[str]] = {}
        self.open: list[tuple[str, str | None]] = []
        self.feed(page)
        self.text = {key: " ".join(" ".join(pieces).split()) for key, pieces in self.pieces.items()}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if "id" in found:
            self.attrs[found["id"]] = found
            self.pieces[found["id"]] = []
        if tag not in ("meta", "br", "img", "input", "link"):
            self.open.append((tag, found.get("id")))

    def handle_endtag(self, tag: str) -> None:
        while self.open:
            name, _ = self.open.pop()
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, element_id in self.open:
            if element_id is not None:
                self.pieces[element_id].append(data)


def _verdict_of(page: str) -> tuple[str, str]:
    elements = _Elements(page)
    return elements.attrs["verdict"]["data-verdict"], elements.text["verdict"]


def test_a_cache_below_its_high_watermark_is_healthy() -> None:
    page = render_page(_reading())
    assert _verdict_of(page) == ("healthy", "Healthy 40% used, below the high watermark 90%")


def test_a_cache_above_its_high_watermark_says_so_and_why_its_last_purge_fell_short() -> None:
    short = _purge(
        timedelta(seconds=20),
        trigger="pressure",
        target=0.75,
        reached_target=False,
        shortfall="Reaching 75% needed 17.0 MiB freed, but 17.0 MiB is pinned under /warehouse/dim (unpin to free).",
    )
    page = render_page(_reading(status=_status(used=92 * MiB), purges=[short]))
    key, text = _verdict_of(page)
    assert key == "above-high"
    assert text.startswith("Above the high watermark 92% used, above the high watermark 90%")
    assert text.endswith("its last purge fell short: " + short["shortfall"])
    # ... and not "Purging", though that purge was 20 s ago: above the watermark is the more urgent news.
    assert "fell short: Reaching 75% needed 17.0 MiB freed" in _Elements(page).text["purges"]


def test_a_purge_in_the_last_minute_makes_the_cache_purging() -> None:
    recent = _purge(timedelta(seconds=12), trigger="pressure", freed_bytes=20 * MiB)
    assert _verdict_of(render_page(_reading(purges=[recent]))) == (
        "purging",
        "Purging purged under pressure 12 s ago: freed 20.0 MiB, now 40% used",
    )
    # A dry run evicts nothing, and a purge two minutes ago is over.
    assert verdict(_reading(purges=[_purge(timedelta(seconds=5), dry_run=True)])).key == "healthy"
    assert verdict(_reading(purges=[_purge(timedelta(minutes=2))])).key == "healthy"


def test_a_cache_whose_readyz_fails_is_not_ready() -> None:
    page = render_page(_reading(ready=False))
    key, text = _verdict_of(page)
    assert key == "not-ready" and text.startswith("Not ready /readyz answers 503")
    assert _Elements(page).text["readiness"] == "not ready (/readyz answers 503)"


def test_an_unreachable_cache_still_gets_a_page_with_the_error_and_the_time() -> None:
    error = "cannot reach the Lakecache cache at http://cache.internal:9870: connection refused"
    page = render_page(Reading(conn_id="lakecache_default", url="http://cache.internal:9870", read_at=NOW, error=error))
    assert _verdict_of(page) == ("unreachable", f"Unreachable {error}")
    elements = _Elements(page)
    assert elements.attrs["read-at"]["datetime"] == "2026-12-05T09:30:00Z"
    assert "purge-link" in elements.attrs and "usage-bar" not in elements.attrs
    assert page.rstrip().endswith("</html>")


def test_the_page_says_when_it_was_read_and_that_it_refreshes() -> None:
    page = render_page(_reading())
    elements = _Elements(page)
    assert elements.text["read-at"] == "2026-12-05T09:30:00Z"
    assert elements.text["readiness"] == "ready"
    assert '<meta http-equiv="refresh" content="15">' in page
    assert "refreshes every 15 s" in page


def test_the_hit_ratio_reads_no_reads_yet_before_the_first_read() -> None:
    assert "<td>no reads yet</td>" in render_page(_reading(status=_status(hit_ratio=0.0, reads=0)))
    assert "<td>80% of 250 page reads</td>" in render_page(_reading())


def test_the_usage_bar_is_filled_to_the_usage_with_both_watermarks_marked() -> None:
    page = render_page(_reading(status=_status(used=80 * MiB)))
    bar = re.search(r'<div id="usage-bar".*?</div></div>', page)
    assert bar is not None
    assert 'aria-valuenow="80.0"' in bar.group()
    assert '<div class="fill fill-mid" style="width: 80.00%">' in bar.group()  # between the watermarks
    assert (
        '<div class="mark mark-low" style="left: 75.00%" title="low watermark 75%"><span>low 75%</span>' in bar.group()
    )
    assert '<div class="mark mark-high" style="left: 90.00%" title="high watermark 90%"><span>high 90%</span>' in (
        bar.group()
    )


def test_mounts_pins_and_purges_are_listed() -> None:
    short = _purge(
        timedelta(hours=1),
        dry_run=True,
        paths=["/warehouse/a"],
        target=0.1,
        reached_target=False,
        shortfall="The path /warehouse/a holds only 293.0 KiB of cached pages; reaching 10% needed 771.8 KiB freed.",
    )
    page = render_page(_reading(purges=[short, _purge(timedelta(hours=2))]))
    elements = _Elements(page)
    mounts = elements.text["mounts"]
    assert "/warehouse s3://lake/warehouse 30.0 MiB 4.9 KiB disk 64.0 MiB memory 1.0 MiB, disk 30.0 MiB" in mounts
    assert "/raw s3://lake/raw 10.0 MiB 0 B none" in mounts
    assert elements.text["pins"] == "/warehouse/dim"
    purges = elements.text["purges"]
    assert (
        "2026-12-05T08:30:00Z manual yes 10% /warehouse/a 35.0 MiB (would free) 95.0 MiB → 60.0 MiB "
        "fell short: The path /warehouse/a holds only 293.0 KiB" in purges
    )
    assert "2026-12-05T07:30:00Z manual no 60% whole cache 35.0 MiB 95.0 MiB → 60.0 MiB reached the target" in purges
    assert "No purge recorded yet." in render_page(_reading(purges=[]))


def test_the_purge_link_opens_the_cache_purge_dag_in_the_whole_ui() -> None:
    elements = _Elements(render_page(_reading()))
    link = elements.attrs["purge-link"]
    assert link["href"] == "../dags/cache_purge" and link["target"] == "_top"
    assert "press Trigger" in " ".join(render_page(_reading()).split()).replace("<strong>", "").replace("</strong>", "")
    runs = elements.attrs["purge-runs-link"]
    assert runs["href"] == "../dags/cache_purge/runs" and runs["target"] == "_top"
    # Airflow 3.3's iframe is sandboxed without allow-top-navigation: the page's script moves the UI's router instead.
    assert 'window.top.history.pushState(null, "", link.href)' in render_page(_reading())


def test_the_installed_airflow_ui_has_the_routes_the_links_open() -> None:
    # Airflow 3.3's UI router is in its bundle: the DAG page and its runs tab must exist, and if a release adds a
    # route that opens the trigger form, the purge link should use it instead ("press Trigger" would be a detour).
    bundles = list((Path(airflow.__file__).parent / "ui" / "dist" / "assets").glob("index-*.js"))
    router = next(text for b in bundles if "path:`dags/:dagId`" in (text := b.read_text(errors="replace")))
    dag_routes = router[router.index("path:`dags/:dagId`") - 1500 : router.index("path:`dags/:dagId`")]
    assert "path:`runs`" in dag_routes
    assert PURGE_DAG_HREF.removeprefix("../") == "dags/cache_purge"
    assert PURGE_RUNS_HREF.removeprefix("../") == "dags/cache_purge/runs"
    assert not re.search(r"path:`[^`]*trigger[^`]*`", router), "this Airflow routes a trigger form: link to it"


@pytest.mark.parametrize("field", ["conn_id", "url", "pins", "mount", "shortfall"])
def test_values_from_the_cache_are_escaped(field: str) -> None:
    evil = "<script>alert(1)</script>"
    status = _status()
    status["mounts"][0]["path"] = evil if field == "mount" else "/warehouse"
    reading = _reading(
        conn_id=evil if field == "conn_id" else "c",
        url=evil if field == "url" else "http://c:9870",
        pins=[evil] if field == "pins" else [],
        status=status,
        purges=[_purge(timedelta(hours=1), reached_target=False, shortfall=evil)] if field == "shortfall" else [],
    )
    page = render_page(reading)
    assert evil not in page and "&lt;script&gt;" in page


def _member(worker: str, state: str = "active", **changes: Any) -> dict[str, Any]:
    port = 9870 + int(worker[-1])
    member = {
        "id": worker,
        "webhdfs_url": f"http://10.0.0.{worker[-1]}:{port}",
        "s3_url": f"http://10.0.0.{worker[-1]}:9878",
        "state": state,
        "ring_share": 1 / 3 if state == "active" else 0.0,
        "pages": 1200,
        "used_bytes": 300 * MiB,
        "capacity_bytes": 4096 * MiB,
        "hit_ratio": 0.75,
        "heartbeat_at": NOW.timestamp() - 1.25,
        "heartbeat_age_seconds": 1.25,
    }
    return {**member, **changes}


def _cluster(**changes: Any) -> dict[str, Any]:
    cluster = {
        "clustered": True,
        "worker": "w-000000000001",
        "degraded": False,
        "ring": "9f2c4e1ab37d5566",
        "rings_agree": True,
        "block_size": 64 * MiB,
        "members": [
            _member("w-000000000001"),
            _member("w-000000000002", pages=800, hit_ratio=None),
            _member("w-000000000003", used_bytes=100 * MiB),
            _member("w-000000000004", "gone", heartbeat_age_seconds=93.5),
        ],
    }
    return {**cluster, **changes}


def _cluster_status(used: int = 40 * MiB, **changes: Any) -> dict[str, Any]:
    totals = {
        "workers": 3,
        "pages": 3200,
        "used_bytes": 700 * MiB,
        "capacity_bytes": 3 * 4096 * MiB,
        "hit_ratio": 0.625,
        "degraded": False,
    }
    return _status(used, cluster={**totals, **changes})


def test_a_worker_alone_answers_as_a_cluster_of_one_and_the_page_shows_no_cluster() -> None:
    alone = _cluster(clustered=False, members=[_member("w-000000000001")])
    page = render_page(_reading(cluster=alone))
    elements = _Elements(page)
    assert not [key for key in elements.attrs if key.startswith("cluster")]
    assert "Cluster" not in page and "w-000000000001" not in page
    assert _verdict_of(page)[0] == "healthy"
    assert page == render_page(_reading())  # the same page as from a cache that cannot say


def test_on_a_cluster_every_worker_has_a_row_and_the_totals_are_shown() -> None:
    page = render_page(_reading(status=_cluster_status(), cluster=_cluster()))
    elements = _Elements(page)

    assert elements.attrs["cluster"]["data-degraded"] == "false"
    assert elements.attrs["cluster"]["data-rings-agree"] == "true"
    assert "cluster-degraded" not in elements.attrs and "cluster-rings" not in elements.attrs
    assert _verdict_of(page)[0] == "healthy"
    rows = re.findall(r'<tr class="state-[^"]+" data-worker="[^"]+">.*?</tr>', page)
    assert len(rows) == 4
    text = [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in rows]
    assert text[0] == (
        "w-000000000001 (this page) http://10.0.0.1:9871 active 33.3% 1,200 300.0 MiB / 4.0 GiB 75% 1.2 s ago"
    )
    assert text[1] == "w-000000000002 http://10.0.0.2:9872 active 33.3% 800 300.0 MiB / 4.0 GiB no reads yet 1.2 s ago"
    assert text[2].endswith("active 33.3% 1,200 100.0 MiB / 4.0 GiB 75% 1.2 s ago")
    assert text[3] == "w-000000000004 http://10.0.0.4:9874 gone 0% 1,200 300.0 MiB / 4.0 GiB 75% 93.5 s ago"
    assert 'class="state-gone"' in rows[3]
    assert elements.text["cluster-totals"] == (
        "Active workers 3 Pages 3,200 Disk used 700.0 MiB of 12.0 GiB (5.7%) Hit ratio 62.5%"
    )
    heading = re.search(r"<h2>Cluster <small>(.*?)</small></h2>", page)
    assert heading is not None
    assert heading.group(1) == "3 active of 4 workers · this page reads w-000000000001 · ring 9f2c4e1ab37d"


def test_a_degraded_view_or_rings_that_disagree_are_flagged_first() -> None:
    why = "Redis at redis://10.0.0.9:6379/0 does not answer: connection refused"
    degraded = render_page(_reading(status=_cluster_status(degraded=why), cluster=_cluster(degraded=why)))
    key, text = _verdict_of(degraded)
    assert key == "cluster-degraded"
    assert text.startswith(f"Cluster degraded this worker cannot reach Redis ({why}): it routes by the last ring")
    elements = _Elements(degraded)
    assert elements.attrs["cluster"]["data-degraded"] == "true"
    assert elements.text["cluster-degraded"].startswith(f"Degraded: this worker cannot reach Redis ({why})")
    assert "cluster-rings" not in elements.attrs

    split = render_page(_reading(status=_cluster_status(), cluster=_cluster(rings_agree=False)))
    key, text = _verdict_of(split)
    assert key == "cluster-degraded" and "the active workers route by different rings" in text
    elements = _Elements(split)
    assert elements.attrs["cluster"]["data-rings-agree"] == "false"
    assert elements.text["cluster-rings"].startswith("Rings disagree: the active workers route by different rings")

    # Above the high watermark is still the first news.
    full = _reading(status=_cluster_status(used=95 * MiB), cluster=_cluster(degraded=True))
    assert verdict(full).key == "above-high"


def test_values_from_the_cluster_are_escaped() -> None:
    evil = "<script>alert(1)</script>"
    cluster = _cluster(worker=evil, members=[_member("w-000000000001", id=evil, webhdfs_url=evil, state=evil)])
    page = render_page(_reading(status=_cluster_status(), cluster=cluster))
    assert evil not in page and "&lt;script&gt;" in page
