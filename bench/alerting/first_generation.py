"""The first generation's configuration, the baseline the generated one is measured against: written as a team
writes it by hand before monitoring as code.

- **Static host lists.** ``lakecache-hosts`` and ``spark-hosts`` list every host provisioning ever added (pruned by
  hand at 00:00 of the replayed day): a terminated host stays a target whose ``up`` is 0.
- **Per-host rules copied for each host**, with the thresholds found in most hand-written configs (and in the
  community's collections of sample rules): a target down for 5 minutes, a disk over 85% for 15 minutes (warning)
  or over 95% for 5 minutes (critical), a host's read error ratio over 1% or its p99 read latency over 1 s, a host's
  failed S3 requests over one every 2 s, a host that lost Redis, a Spark worker using more than 90% of its cores for
  15 minutes. Then one rule each for Redis, the ETL's freshness, the Spark master and Airflow's scheduler.
- **Alertmanager** sends critical alerts to the pager and the rest to the team's mailbox, with ``group_by: ['...']``
  (every alert is its own notification), Alertmanager's default timers (30 s, 5 m, 4 h) and no inhibition.

``PerHostRule.expr_for`` is the rule copied for one host; ``PerHostRule.expr_for_hosts`` is the same rule for a set
of hosts at once (the host's matcher becomes a regex of all of them, every aggregation keeps ``instance``), which
returns exactly the union of the per-host rules' results: the replay evaluates that, one query instead of a thousand.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from bench.alerting.engine import AlertRule, parse_duration
from bench.alerting.series import CACHE_PORT, SPARK_PORT

EVALUATION_INTERVAL = 60.0
"""Prometheus's default ``evaluation_interval`` (1m), which hand-written configs keep."""
HOST = "{host}"


@dataclass(frozen=True)
class PerHostRule:
    """A rule written once and copied into each host's group with the host's address in place of ``{host}``."""

    name: str
    template: str
    for_: str
    severity: str
    summary: str
    port: int

    def expr_for(self, address: str) -> str:
        """The rule's expression in one host's group."""
        return self.template.replace(HOST, f"{address}:{self.port}")

    def expr_for_hosts(self, addresses: Sequence[str]) -> str:
        """The union of every listed host's copy, as one expression (``instance=~"a|b|..."``)."""
        pattern = "|".join(re.escape(f"{a}:{self.port}") for a in addresses).replace("\\", "\\\\")
        return self.template.replace(f'instance="{HOST}"', f'instance=~"{pattern}"')


PER_HOST = (
    PerHostRule(
        "LakecacheDown",
        'up{job="lakecache-hosts",instance="{host}"} == 0',
        "5m",
        "critical",
        "cache worker down",
        CACHE_PORT,
    ),
    PerHostRule(
        "SparkWorkerDown",
        'up{job="spark-hosts",instance="{host}"} == 0',
        "5m",
        "critical",
        "Spark worker down",
        SPARK_PORT,
    ),
    PerHostRule(
        "LakecacheDiskAlmostFull",
        'lakecache_tier_used_bytes{instance="{host}",tier="disk"} / lakecache_tier_capacity_bytes{instance="{host}",'
        'tier="disk"} > 0.85',
        "15m",
        "warning",
        "disk over 85%",
        CACHE_PORT,
    ),
    PerHostRule(
        "LakecacheDiskFull",
        'lakecache_tier_used_bytes{instance="{host}",tier="disk"} / lakecache_tier_capacity_bytes{instance="{host}",'
        'tier="disk"} > 0.95',
        "5m",
        "critical",
        "disk over 95%",
        CACHE_PORT,
    ),
    PerHostRule(
        "LakecacheErrors",
        'sum by (instance) (rate(lakecache_requests_total{instance="{host}",status=~"5.."}[5m])) / sum by (instance) '
        '(rate(lakecache_requests_total{instance="{host}"}[5m])) > 0.01',
        "5m",
        "critical",
        "more than 1% of reads fail",
        CACHE_PORT,
    ),
    PerHostRule(
        "LakecacheSlowReads",
        "histogram_quantile(0.99, sum by (instance, le) "
        '(rate(lakecache_request_seconds_bucket{instance="{host}"}[5m]))) > 1',
        "10m",
        "warning",
        "p99 read latency over 1 s",
        CACHE_PORT,
    ),
    PerHostRule(
        "LakecacheS3Errors",
        'sum by (instance) (rate(lakecache_s3_requests_total{instance="{host}",outcome!="ok"}[5m])) > 0.5',
        "5m",
        "warning",
        "S3 requests failing",
        CACHE_PORT,
    ),
    PerHostRule(
        "LakecacheRedisLost",
        'lakecache_cluster_degraded{instance="{host}"} == 1',
        "1m",
        "critical",
        "cache worker cannot reach Redis",
        CACHE_PORT,
    ),
    PerHostRule(
        "SparkWorkerSaturated",
        'metrics_worker_coresUsed_Value{instance="{host}"} / (metrics_worker_coresUsed_Value{instance="{host}"} + '
        'metrics_worker_coresFree_Value{instance="{host}"}) > 0.9',
        "15m",
        "warning",
        "Spark worker cores over 90% busy",
        SPARK_PORT,
    ),
)

SINGLE = (
    AlertRule("RedisDown", "redis_up == 0", 60.0, 0.0, {"severity": "critical"}),
    AlertRule(
        "TelemetryEtlLate",
        'time() - airflow_dag_run_last_success_timestamp_seconds{dag_id="telemetry_daily_etl"} > 27 * 3600',
        600.0,
        0.0,
        {"severity": "critical"},
    ),
    AlertRule("SparkMasterDown", 'up{job="spark-master"} == 0', 300.0, 0.0, {"severity": "critical"}),
    AlertRule("AirflowSchedulerDown", 'up{job="airflow-scheduler"} == 0', 300.0, 0.0, {"severity": "critical"}),
    AlertRule("SparkAppsWaiting", "metrics_master_waitingApps_Value > 0", 900.0, 0.0, {"severity": "warning"}),
)


def rules_for_evaluation(addresses: Sequence[str]) -> list[AlertRule]:
    """The whole rule set for hosts ``addresses``: each per-host rule once over all hosts, and the single rules."""
    per_host = [
        AlertRule(r.name, r.expr_for_hosts(addresses), parse_duration(r.for_), 0.0, {"severity": r.severity})
        for r in PER_HOST
    ]
    return per_host + list(SINGLE)


def rule_file(addresses: Sequence[str]) -> str:
    """The rule file as the team keeps it: one group per host, each a copy of the per-host rules, then the rest."""
    groups: list[dict[str, Any]] = [
        {
            "name": f"host-{address}",
            "rules": [
                {
                    "alert": r.name,
                    "expr": r.expr_for(address),
                    "for": r.for_,
                    "labels": {"severity": r.severity},
                    "annotations": {"summary": f"{address}: {r.summary}"},
                }
                for r in PER_HOST
            ],
        }
        for address in addresses
    ]
    groups.append(
        {
            "name": "services",
            "rules": [
                {"alert": r.name, "expr": r.expr, "for": f"{int(r.for_seconds)}s", "labels": dict(r.labels)}
                for r in SINGLE
            ],
        }
    )
    return yaml.safe_dump({"groups": groups}, sort_keys=False, width=200)


def alertmanager_config(webhook_url: str) -> dict[str, Any]:
    """Alertmanager as first configured: no grouping, default timers, critical to the pager, the rest to mail."""
    return {
        "route": {
            "receiver": "oncall-mail",
            "group_by": ["..."],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [{"matchers": ['severity="critical"'], "receiver": "oncall-pager"}],
        },
        "receivers": [
            {"name": "oncall-pager", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]},
            {"name": "oncall-mail", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]},
        ],
    }
