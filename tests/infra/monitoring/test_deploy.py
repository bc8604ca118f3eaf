"""``infra.monitoring.deploy`` against a real Prometheus and Alertmanager: a good configuration is reloaded and in
force, a bad one is refused with promtool's or amtool's words and the servers keep the one they had."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.monitoring.deploy import ConfigRejectedError, deploy, write_files
from infra.monitoring.servers import ALERTMANAGER_CONFIG, PROMETHEUS_CONFIG, Alertmanager, Prometheus

RULES = """groups:
- name: lakecache
  rules:
  - alert: {name}
    expr: vector(1) > 2
    labels: {{severity: page}}
    annotations: {{runbook_url: docs/runbooks/x.md}}
"""
RULE_FILE = Path("prometheus/rules/cache.yml")
ALERTMANAGER = """route: {receiver: nobody, group_wait: 1s}
receivers: [{name: nobody}]
"""


def files(rule: str, interval: str = "15s") -> dict[Path, str]:
    return {
        PROMETHEUS_CONFIG: f"global: {{scrape_interval: {interval}}}\nrule_files: [rules/*.yml]\n",
        RULE_FILE: RULES.format(name=rule),
        ALERTMANAGER_CONFIG: ALERTMANAGER,
    }


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def rule_names(prometheus: Prometheus) -> set[str]:
    groups = get(prometheus.url + "/api/v1/rules")["data"]["groups"]
    return {rule["name"] for group in groups for rule in group["rules"]}


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[Path, Prometheus, Alertmanager]]:
    config_dir = tmp_path / "config"
    write_files(files("CacheFirst"), config_dir)
    with Prometheus(config_dir, tmp_path) as prometheus, Alertmanager(config_dir, tmp_path) as alertmanager:
        yield config_dir, prometheus, alertmanager


def test_deploy_reloads_both_servers_with_the_new_files(servers: tuple[Path, Prometheus, Alertmanager]) -> None:
    config_dir, prometheus, alertmanager = servers
    assert rule_names(prometheus) == {"CacheFirst"}
    new = files("CacheSecond", interval="7s")
    new[ALERTMANAGER_CONFIG] = ALERTMANAGER.replace("group_wait: 1s", "group_wait: 3s")

    deploy(new, config_dir, prometheus_url=prometheus.url, alertmanager_url=alertmanager.url)

    assert rule_names(prometheus) == {"CacheSecond"}
    assert "scrape_interval: 7s" in get(prometheus.url + "/api/v1/status/config")["data"]["yaml"]
    assert "group_wait: 3s" in get(alertmanager.url + "/api/v2/status")["config"]["original"]


@pytest.mark.parametrize(
    ("path", "text", "tool"),
    [
        (RULE_FILE, RULES.format(name="Bad").replace("vector(1) > 2", "rate(x[5m"), "promtool"),
        (ALERTMANAGER_CONFIG, "route: {receiver: missing}\nreceivers: [{name: nobody}]\n", "amtool"),
    ],
)
def test_deploy_refuses_what_the_tools_reject_and_changes_nothing(
    servers: tuple[Path, Prometheus, Alertmanager], path: Path, text: str, tool: str
) -> None:
    config_dir, prometheus, alertmanager = servers
    before = {p: p.read_text() for p in config_dir.rglob("*") if p.is_file()}
    bad = files("CacheSecond")
    bad[path] = text

    with pytest.raises(ConfigRejectedError, match=tool) as refused:
        deploy(bad, config_dir, prometheus_url=prometheus.url, alertmanager_url=alertmanager.url)

    assert "FAILED" in str(refused.value)
    assert str(config_dir / path) in str(refused.value)
    assert {p: p.read_text() for p in config_dir.rglob("*") if p.is_file()} == before
    assert rule_names(prometheus) == {"CacheFirst"}
    assert not [p for p in config_dir.parent.iterdir() if p.name.startswith(".config-")]  # no staging left behind
