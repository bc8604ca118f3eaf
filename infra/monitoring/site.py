"""Where the monitored things are: the service-discovery URLs and the few singletons Prometheus scrapes directly.

A ``Site`` names no instance of a fleet: cache workers come from the cluster's own membership (any worker answers
``/admin/v1/cluster/targets``; the deploy's discovery server asks them and answers Prometheus, see
``infra.monitoring.discovery``), Spark workers from the master's worker list (the same server), Airflow's components
from a file the deploy writes. ``Site.default()`` is the local stack on its
default ports; ``infra/monitoring/generated/`` is generated for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.monitoring.discovery import CACHE_SD_PATH, SPARK_SD_PATH, WEBHOOK_PATH

DISCOVERY_URL = "http://127.0.0.1:9095"


@dataclass(frozen=True)
class Site:
    """The addresses the generated configuration points at."""

    cache_sd_urls: tuple[str, ...]
    """HTTP SD URLs listing the cache workers from the cluster's membership (the discovery server's, which asks
    the workers' ``/admin/v1/cluster/targets``)."""
    spark_master_url: str
    """The Spark master's web UI, whose ``/metrics/master/prometheus`` Prometheus scrapes."""
    spark_sd_url: str
    """HTTP SD listing the Spark workers the master knows (their web UI ``host:port``)."""
    airflow_sd_file: str
    """File SD the deploy writes: one target group per Airflow component, labelled ``component``. A relative path
    is relative to the directory of ``prometheus.yml``."""
    redis_exporter: str
    """``host:port`` of the Redis exporter (its ``redis_up`` says whether Redis answers)."""
    alertmanager_urls: tuple[str, ...]
    webhook_url: str
    """Where Alertmanager sends notifications (every receiver, told apart by the receiver's name in the payload)."""
    runbook_base_url: str = "docs/runbooks"
    """Prefix of every alert's ``runbook_url``; the repository's runbooks by default."""
    grafana_datasource_url: str = "http://127.0.0.1:9090"
    """The Prometheus that Grafana's provisioned data source queries."""
    grafana_dashboards_dir: str = "/var/lib/grafana/dashboards/lakecache"
    """Where the deploy puts ``generated/grafana/dashboards/`` for Grafana's file provisioning to read."""

    @classmethod
    def default(cls) -> Site:
        """The local stack's default ports: Spark's master UI on 8080, Redis's exporter on 9121, Prometheus on
        9090, Alertmanager on 9093, the deploy's discovery server (SD and webhook) on 9095."""
        return cls(
            cache_sd_urls=(f"{DISCOVERY_URL}{CACHE_SD_PATH}",),
            spark_master_url="http://127.0.0.1:8080",
            spark_sd_url=f"{DISCOVERY_URL}{SPARK_SD_PATH}",
            airflow_sd_file="targets/airflow.json",
            redis_exporter="127.0.0.1:9121",
            alertmanager_urls=("http://127.0.0.1:9093",),
            webhook_url=f"{DISCOVERY_URL}{WEBHOOK_PATH}",
        )
