"""What ``python -m infra.monitoring up`` leaves in ``.local/monitoring/monitoring.json``: where each of its servers
is, and its pid. Read by ``deploy`` and ``down``, and by ``python -m infra.airflow up`` (where Airflow pushes its
metrics); it imports nothing heavier than the standard library for that reason."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from infra.cache_process import REPO_ROOT
from infra.service_process import is_running
from infra.state_record import StateRecord

DEFAULT_STATE_DIR = REPO_ROOT / ".local" / "monitoring"
DISCOVERY_MARKER = "infra.monitoring.discovery"
BRIDGE_MARKER = "infra.monitoring.airflow_metrics"
OTLP_PATH = "/v1/metrics"


@dataclass(frozen=True)
class MonitoringInfo(StateRecord):
    """What ``monitoring.json`` records of the running monitoring: where each server is, and its pid."""

    FILE: ClassVar[str] = "monitoring.json"

    state_dir: str
    config_dir: str
    prometheus_url: str
    prometheus_pid: int
    alertmanager_url: str
    alertmanager_pid: int
    discovery_url: str
    discovery_pid: int
    redis_exporter: str = ""
    """``host:port`` of Redis's exporter, "" when the stack has no Redis."""
    redis_exporter_pid: int = 0
    spark_master_ui: str = ""
    """The Spark master's web UI, "" when no Spark standalone cluster was named."""
    airflow_metrics_url: str = ""
    """The Airflow metrics bridge (``infra.monitoring.airflow_metrics``): Airflow pushes OTLP to its ``/v1/metrics``."""
    airflow_metrics_pid: int = 0

    @property
    def pids(self) -> list[tuple[int, str]]:
        """Every recorded process with the marker that tells it from a recycled pid."""
        state = Path(self.state_dir)
        pairs = [
            (self.prometheus_pid, f"--storage.tsdb.path={state / 'prometheus-data'}"),
            (self.alertmanager_pid, f"--storage.path={state / 'alertmanager-data'}"),
            (self.discovery_pid, DISCOVERY_MARKER),
            (self.redis_exporter_pid, f"--web.listen-address={self.redis_exporter}"),
            (self.airflow_metrics_pid, BRIDGE_MARKER),
        ]
        return [(pid, marker) for pid, marker in pairs if pid]

    @property
    def airflow_metrics_endpoint(self) -> str:
        """Where Airflow pushes its metrics (``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``), "" without a bridge."""
        return self.airflow_metrics_url + OTLP_PATH if self.airflow_metrics_url else ""

    @property
    def running(self) -> bool:
        """True while every recorded process is alive."""
        return all(is_running(pid, marker) for pid, marker in self.pids)
