"""Real Prometheus and Alertmanager over a real three-worker cache cluster: each incident raises its alert in
Alertmanager's API (labels and runbook), notifies the webhook, and resolves once it is fixed.

Prometheus finds the workers through their own HTTP service discovery (``/admin/v1/cluster/targets``), scrapes every
second and evaluates every second; the rules' ``for`` durations are shortened in a copy of the generated files. The
cluster has its own S3 emulator, since stopping S3 is one of the incidents.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from aiohttp import web

from infra.cache_process import REPO_ROOT, CacheProcess
from infra.cache_ring import cluster_report
from infra.monitoring.deploy import install
from infra.monitoring.discovery import CACHE_SD_PATH, DiscoveryServer
from infra.monitoring.generate import generate
from infra.monitoring.loading import load_spec
from infra.monitoring.servers import ALERTMANAGER_CONFIG, PROMETHEUS_CONFIG, Alertmanager, Prometheus
from infra.monitoring.site import Site
from infra.ports import LOOPBACK, free_port
from infra.s3_emulator import S3Emulator
from tests.support.admin import AdminClient
from tests.support.caches import CacheFactory
from tests.support.fill import load
from tests.support.waiting import wait_until

CACHE_RULES = Path("prometheus/rules/cache.yml")
S3_RULES = Path("prometheus/rules/s3.yml")
BUCKET = "lake"
PAGE = 64 * 1024
WORKERS = {
    "cluster": {"heartbeat_interval": "250ms", "member_timeout": "2s", "peer_timeout": "1s", "block_size": "128KiB"},
    "store": {"page_size": "64KiB", "pressure_check_interval": "1h"},  # no purge under pressure: it stays full
    "metadata": {"sync_interval": "1s"},
}


@dataclass
class Webhook:
    """Alertmanager's webhook receiver: every notification it was sent, in order."""

    notifications: list[dict[str, Any]] = field(default_factory=list)
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/alerts"

    def receivers(self, alert: str) -> set[str]:
        """The receivers notified of ``alert``."""
        return {n["receiver"] for n in self.notifications for a in n["alerts"] if a["labels"]["alertname"] == alert}

    def sent(self, alert: str, status: str) -> bool:
        """True once a notification said ``alert`` is ``status`` (firing or resolved)."""
        return any(
            a["labels"]["alertname"] == alert and a["status"] == status for n in self.notifications for a in n["alerts"]
        )


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    loop = asyncio.new_event_loop()

    async def receive(request: web.Request) -> web.Response:
        hook.notifications.append(await request.json())
        return web.Response()

    async def serve() -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/alerts", receive)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, LOOPBACK, hook.port).start()
        return runner

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner = asyncio.run_coroutine_threadsafe(serve(), loop).result(10)
    yield hook
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[S3Emulator]:
    with S3Emulator(tmp_path / "s3", buckets=[BUCKET]) as emulator:
        yield emulator


@pytest.fixture
def workers(s3: S3Emulator, redis_url: str, tmp_path: Path) -> Iterator[list[CacheProcess]]:
    factory = CacheFactory(tmp_path / "caches", s3.endpoint_url)
    try:
        yield factory.cluster(  # disk tiers of 32 pages
            3, {"/lake": f"s3://{BUCKET}/lake"}, redis_url, WORKERS, memory_capacity="512KiB", disk_capacity="2MiB"
        )
    finally:
        factory.stop_all()


def site_for(discovery: DiscoveryServer, alertmanager_port: int, webhook: Webhook) -> Site:
    """The generated configuration's addresses for this test: its discovery server, Alertmanager and webhook."""
    return replace(
        Site.default(),
        cache_sd_urls=(discovery.url + CACHE_SD_PATH,),
        alertmanager_urls=(f"http://{LOOPBACK}:{alertmanager_port}",),
        webhook_url=webhook.url,
    )


def shortened(files: dict[Path, str]) -> dict[Path, str]:
    """A copy of the generated files for a test of seconds: the cache and S3 rules only, scraped and evaluated
    every second, every ``for`` 1 s, S3's 5-minute ratio over 15 s, and Alertmanager grouping for 1 s."""
    prometheus = yaml.safe_load(files[PROMETHEUS_CONFIG])
    prometheus["global"].update(scrape_interval="1s", evaluation_interval="1s", scrape_timeout="1s")
    prometheus["rule_files"] = [str(CACHE_RULES.relative_to("prometheus")), str(S3_RULES.relative_to("prometheus"))]
    prometheus["scrape_configs"] = [job for job in prometheus["scrape_configs"] if job["job_name"] == "cache"]
    for job in prometheus["scrape_configs"]:
        for sd in job.get("http_sd_configs", []):
            sd["refresh_interval"] = "1s"
    copies = {PROMETHEUS_CONFIG: yaml.safe_dump(prometheus)}
    for path in (CACHE_RULES, S3_RULES):
        rules = yaml.safe_load(files[path])
        for rule in (r for group in rules["groups"] for r in group["rules"]):
            if "for" in rule:
                rule["for"] = "1s"
            if path == S3_RULES:
                rule["expr"] = rule["expr"].replace("[5m]", "[15s]")
        copies[path] = yaml.safe_dump(rules)
    alertmanager = yaml.safe_load(files[ALERTMANAGER_CONFIG])
    _hurry(alertmanager["route"])
    copies[ALERTMANAGER_CONFIG] = yaml.safe_dump(alertmanager)
    return copies


def _hurry(route: dict[str, Any]) -> None:
    for key, value in (("group_wait", "1s"), ("group_interval", "1s"), ("repeat_interval", "1m")):
        if key in route:
            route[key] = value
    for child in route.get("routes", []):
        _hurry(child)


@dataclass
class Monitoring:
    prometheus: Prometheus
    alertmanager: Alertmanager
    webhook: Webhook

    def alerts(self, name: str) -> list[dict[str, Any]]:
        """Alertmanager's active alerts named ``name`` (API v2)."""
        url = f"{self.alertmanager.url}/api/v2/alerts?active=true&filter=alertname%3D%22{name}%22"
        with urllib.request.urlopen(url, timeout=5) as response:
            answer: list[dict[str, Any]] = json.load(response)
        return answer

    def fires(self, name: str, timeout: float = 45) -> dict[str, Any]:
        """Wait until ``name`` is active in Alertmanager and the webhook was told; its first alert."""
        try:
            wait_until(lambda: self.alerts(name) and self.webhook.sent(name, "firing"), timeout, f"{name} firing")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; {self.explain(name)}") from None
        return self.alerts(name)[0]

    def explain(self, name: str) -> str:
        """What Prometheus says of rule ``name`` now, and what the webhook was told: a failed wait's message."""
        with urllib.request.urlopen(f"{self.prometheus.url}/api/v1/rules", timeout=5) as response:
            groups = json.load(response)["data"]["groups"]
        rule = [r for g in groups for r in g["rules"] if r["name"] == name]
        return f"Prometheus's rule now: {json.dumps(rule)[:1500]}; notifications: {self.webhook.notifications}"

    def resolves(self, name: str, timeout: float = 45) -> None:
        """Wait until ``name`` is no longer active in Alertmanager and the webhook was told it resolved."""
        wait_until(lambda: not self.alerts(name) and self.webhook.sent(name, "resolved"), timeout, f"{name} resolved")

    def value(self, expr: str) -> float | None:
        """The value of PromQL ``expr`` now (its first series), None when it has none."""
        url = f"{self.prometheus.url}/api/v1/query?query={urllib.parse.quote(expr)}"
        with urllib.request.urlopen(url, timeout=5) as response:
            result = json.load(response)["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def targets_up(self) -> int:
        with urllib.request.urlopen(f"{self.prometheus.url}/api/v1/targets?state=active", timeout=5) as response:
            active = json.load(response)["data"]["activeTargets"]
        return sum(t["health"] == "up" for t in active)


@pytest.fixture
def monitoring(workers: list[CacheProcess], webhook: Webhook, tmp_path: Path) -> Iterator[Monitoring]:
    state_dir = tmp_path / "monitoring"
    config_dir = state_dir / "config"
    alertmanager_port = free_port()
    with DiscoveryServer(state_dir, cache_workers=[w.webhdfs_url for w in workers]) as discovery:
        site = site_for(discovery, alertmanager_port, webhook)
        install(shortened(generate(load_spec(), site)), config_dir)
        with (
            Alertmanager(config_dir, state_dir, port=alertmanager_port) as alertmanager,
            Prometheus(config_dir, state_dir) as prometheus,
        ):
            found = Monitoring(prometheus, alertmanager, webhook)
            wait_until(lambda: found.targets_up() == 3, timeout=30, what="three workers discovered and scraped")
            yield found


def read_through(worker: CacheProcess, path: str) -> int:
    """GET ``path`` through ``worker``'s WebHDFS API; the HTTP status."""
    url = f"{worker.webhdfs_url}/webhdfs/v1{path}?op=OPEN&user.name=test"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def assert_alert(alert: dict[str, Any], *, severity: str, service: str, scope: str, runbook: str) -> None:
    """``alert`` (as Alertmanager's API gives it) carries the labels every alert carries, and its runbook exists."""
    labels, annotations = alert["labels"], alert["annotations"]
    assert (labels["severity"], labels["service"], labels["team"], labels["scope"]) == (
        severity,
        service,
        "cache",
        scope,
    )
    assert annotations["runbook_url"] == f"docs/runbooks/{runbook}.md"
    assert (REPO_ROOT / annotations["runbook_url"]).is_file()
    assert annotations["summary"] and annotations["description"]


def test_a_killed_worker_raises_worker_lost_until_it_is_back(
    workers: list[CacheProcess], monitoring: Monitoring
) -> None:
    victim = workers[2]
    victim_id = cluster_report(victim)["worker"]
    victim.kill()
    alert = monitoring.fires("CacheWorkerLost")
    assert_alert(alert, severity="warning", service="cache", scope="instance", runbook="cache-worker-lost")
    assert alert["labels"]["worker"] == victim_id
    assert monitoring.webhook.receivers("CacheWorkerLost") == {"cache-ticket"}
    assert monitoring.alerts("CacheCapacityLost") == []  # one worker is not more than one worker's capacity

    victim.start()  # same disk tier, same worker id: it heartbeats again
    monitoring.resolves("CacheWorkerLost")


def test_s3_stopped_raises_s3_unavailable_until_it_answers(
    workers: list[CacheProcess], monitoring: Monitoring, s3: S3Emulator
) -> None:
    client = s3.client()
    for i in range(3):
        client.put_object(Bucket=BUCKET, Key=f"lake/s3/{i}", Body=bytes([i]) * PAGE)
    assert read_through(workers[0], "/lake/s3/0") == 200

    s3.stop()
    deadline = time.monotonic() + 60
    while not monitoring.alerts("S3Unavailable") and time.monotonic() < deadline:
        # Objects never read: their reads need S3 (object 0 is cached, and served while S3 is away).
        assert read_through(workers[0], f"/lake/s3/{1 + int(time.monotonic()) % 2}") >= 500
    alert = monitoring.fires("S3Unavailable", timeout=10)
    assert_alert(alert, severity="critical", service="s3", scope="service", runbook="s3-errors")
    assert monitoring.webhook.receivers("S3Unavailable") == {"cache-page"}

    s3.start()  # an empty S3 again, with the bucket
    for i in range(3):
        client.put_object(Bucket=BUCKET, Key=f"lake/s3/{i}", Body=bytes([i]) * PAGE)
    wait_until(lambda: read_through(workers[0], "/lake/s3/1") == 200, timeout=30, what="reads through S3 again")
    deadline = time.monotonic() + 60
    while monitoring.alerts("S3Unavailable") and time.monotonic() < deadline:
        read_through(workers[0], f"/lake/s3/{int(time.monotonic()) % 3}")  # successes bring the error ratio down
    monitoring.resolves("S3Unavailable", timeout=10)


def test_a_cache_filled_past_its_watermark_raises_it_until_purged(
    workers: list[CacheProcess], monitoring: Monitoring, s3: S3Emulator
) -> None:
    client = s3.client()
    for i in range(12):  # 12 MiB over 3 x 2 MiB of disk: every worker full, and no purge under pressure
        client.put_object(Bucket=BUCKET, Key=f"lake/fill/{i}", Body=bytes([i]) * 1024 * 1024)
    load(workers[0], ["/lake/fill"])
    alert = monitoring.fires("CacheAboveHighWatermarkNotPurging")
    assert_alert(alert, severity="warning", service="cache", scope="instance", runbook="cache-pressure")
    assert alert["labels"]["instance"] in {urlsplit(w.webhdfs_url).netloc for w in workers}
    assert monitoring.webhook.receivers("CacheAboveHighWatermarkNotPurging") == {"cache-ticket"}

    AdminClient(workers[0].webhdfs_url, workers[0].token).ok("POST", "purge", {"target": 0.5})  # every worker
    monitoring.resolves("CacheAboveHighWatermarkNotPurging")
