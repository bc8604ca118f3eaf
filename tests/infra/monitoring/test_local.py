"""``python -m infra.monitoring up|deploy|down`` against a real two-worker local stack: Prometheus finds the workers,
Redis's exporter and the Airflow components' targets from the running stack alone; a redeploy is reloaded; down
leaves nothing running."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.monitoring.__main__ import main
from infra.monitoring.local import down, redeploy, up
from infra.monitoring.record import MonitoringInfo
from infra.service_process import is_running
from infra.stack import LocalStack
from tests.support.waiting import wait_until


def targets(prometheus_url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(prometheus_url + "/api/v1/targets?state=active", timeout=5) as response:
        active: list[dict[str, Any]] = json.load(response)["data"]["activeTargets"]
    return active


def healthy(prometheus_url: str, job: str) -> int:
    return sum(t["health"] == "up" for t in targets(prometheus_url) if t["labels"]["job"] == job)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    with LocalStack(tmp_path / "stack", workers=2) as running:
        yield running


def test_up_monitors_the_running_stack_deploy_reloads_and_down_stops_everything(
    stack: LocalStack, tmp_path: Path
) -> None:
    state_dir = tmp_path / "monitoring"
    info = up(state_dir, stack.state_dir)
    try:
        assert MonitoringInfo.read(state_dir) == info and info.running
        wait_until(lambda: healthy(info.prometheus_url, "cache") == 2, timeout=60, what="both workers scraped")
        wait_until(lambda: healthy(info.prometheus_url, "redis") == 1, timeout=60, what="Redis's exporter scraped")
        airflow = [t for t in targets(info.prometheus_url) if t["labels"]["job"] == "airflow-scheduler"]
        assert [t["scrapeUrl"] for t in airflow] == [info.airflow_metrics_url + "/metrics?component=scheduler"]

        assert main(["deploy", "--state-dir", str(state_dir), "--stack-dir", str(stack.state_dir)]) == 0
        assert redeploy(state_dir) == info
    finally:
        assert down(state_dir)
    assert not any(is_running(pid, marker) for pid, marker in info.pids)
    assert MonitoringInfo.read(state_dir) is None


def test_up_refuses_without_a_stack(tmp_path: Path) -> None:
    assert main(["up", "--state-dir", str(tmp_path / "m"), "--stack-dir", str(tmp_path / "nothing")]) == 1
