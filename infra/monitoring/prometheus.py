"""Prometheus's side of the spec: the scrape configuration (targets from service discovery only) and one rule file
per service (its recording rules, SLO burn-rate alerts and cause alerts)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from infra.monitoring.model import Discovery, MonitoringSpec, Service
from infra.monitoring.site import Site
from infra.monitoring.standards import burn_alerts, burn_rule, cause_rule, slo_recording_rules

SCRAPE_INTERVAL = "15s"
EVALUATION_INTERVAL = "30s"
SD_REFRESH = "30s"
RULES_DIR = "rules"


def rule_file(service: Service) -> str:
    """A service's rule file, relative to ``prometheus.yml``."""
    return f"{RULES_DIR}/{service.name}.yml"


def scrape_config(spec: MonitoringSpec, site: Site) -> dict[str, Any]:
    """``prometheus.yml``: one job per scraped service, each labelled with its ``service``, and Alertmanager."""
    alertmanagers = [urlsplit(u) for u in site.alertmanager_urls]
    return {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            "evaluation_interval": EVALUATION_INTERVAL,
            "external_labels": {"platform": "lakecache"},
        },
        "rule_files": [rule_file(s) for s in spec.services if has_rules(s)],
        "alerting": {
            "alertmanagers": [
                {
                    "scheme": alertmanagers[0].scheme,
                    "static_configs": [{"targets": [u.netloc for u in alertmanagers]}],
                }
            ]
        },
        "scrape_configs": [job for s in spec.services if (job := _job(s, site)) is not None],
    }


def has_rules(service: Service) -> bool:
    """True if the service gets a rule file (anything to record or alert on)."""
    return bool(service.slos or service.alerts or service.records)


def _job(service: Service, site: Site) -> dict[str, Any] | None:
    discovery = service.scrape.discovery
    if discovery is Discovery.DERIVED:
        return None
    job: dict[str, Any] = {"job_name": service.job, "metrics_path": service.scrape.metrics_path}
    relabel: list[dict[str, Any]] = []
    if discovery is Discovery.CACHE_CLUSTER:
        job["http_sd_configs"] = [{"url": url, "refresh_interval": SD_REFRESH} for url in site.cache_sd_urls]
    elif discovery is Discovery.SPARK_WORKERS:
        job["http_sd_configs"] = [{"url": site.spark_sd_url, "refresh_interval": SD_REFRESH}]
    elif discovery is Discovery.AIRFLOW:
        job["file_sd_configs"] = [{"files": [site.airflow_sd_file], "refresh_interval": "1m"}]
        relabel.append(
            {"source_labels": ["component"], "regex": service.scrape.component, "action": "keep"},
        )
    elif discovery is Discovery.SPARK_MASTER:
        master = urlsplit(site.spark_master_url)
        job["scheme"] = master.scheme
        job["static_configs"] = [{"targets": [master.netloc]}]
    elif discovery is Discovery.REDIS_EXPORTER:
        job["static_configs"] = [{"targets": [site.redis_exporter]}]
    relabel.append({"target_label": "service", "replacement": service.name})
    job["relabel_configs"] = relabel
    return job


def rule_groups(service: Service, site: Site) -> dict[str, Any]:
    """A service's rule file: its SLOs' recording rules, then its burn-rate alerts, then its records and cause
    alerts (records first in their group, so an alert reads what was recorded in the same evaluation)."""
    groups: list[dict[str, Any]] = []
    if service.slos:
        groups.append(
            {
                "name": f"{service.name}-slo-records",
                "rules": [rule for slo in service.slos for rule in slo_recording_rules(service, slo)],
            }
        )
        groups.append(
            {
                "name": f"{service.name}-slo-alerts",
                "rules": [
                    burn_rule(service, slo, burn, site.runbook_base_url)
                    for slo in service.slos
                    for burn in burn_alerts(slo)
                ],
            }
        )
    if service.records or service.alerts:
        rules: list[dict[str, Any]] = [{"record": r.record, "expr": r.expr.strip()} for r in service.records]
        rules += [cause_rule(service, alert, site.runbook_base_url) for alert in service.alerts]
        groups.append({"name": f"{service.name}-alerts", "rules": rules})
    return {"groups": groups}
