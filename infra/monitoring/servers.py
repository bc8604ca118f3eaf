"""Prometheus and Alertmanager as child processes: Debian's ``prometheus`` and ``prometheus-alertmanager`` on loopback.

Each reads its configuration from a file in ``config_dir`` (the layout ``infra.monitoring.generate`` writes:
``prometheus/prometheus.yml``, ``alertmanager/alertmanager.yml``) and keeps its data under ``state_dir``. Both run
with their lifecycle API on (``POST /-/reload``), which is how ``infra.monitoring.deploy`` gives them new files.
Alertmanager's gossip is off: one local instance has no peers.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from infra.ports import LOOPBACK, free_port
from infra.service_process import ProcessService, ServiceProcess, http_ok

PROMETHEUS_CONFIG = Path("prometheus/prometheus.yml")
ALERTMANAGER_CONFIG = Path("alertmanager/alertmanager.yml")


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"{name} is not installed: `make system-deps` installs Debian's package")
    return path


class MonitoringServer(ProcessService):
    """A server of the monitoring as a child process: its URL, readiness (``/-/ready``, as Prometheus and
    Alertmanager answer it and ours do too) and stop."""

    _process: ServiceProcess

    def __init__(self, name: str, argv: list[str], *, host: str, port: int, log_path: Path, detach: bool) -> None:
        self.host = host
        self.port = port
        self.log_path = log_path
        self._process = ServiceProcess(name, argv, log_path=log_path, env=dict(os.environ), detach=detach)

    @property
    def url(self) -> str:
        """The server's HTTP base URL (UI, API, ``/-/reload``)."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until ``/-/ready`` answers 200. Raises ``ServiceStartError`` with its log."""
        self._process.start(lambda: http_ok(self.url + "/-/ready"), timeout)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL)."""
        self._process.stop()


class Prometheus(MonitoringServer):
    """``prometheus`` reading ``config_dir/prometheus/prometheus.yml``, its TSDB in ``state_dir/prometheus-data``."""

    def __init__(
        self,
        config_dir: Path,
        state_dir: Path,
        *,
        host: str = LOOPBACK,
        port: int | None = None,
        retention: str = "2d",
        detach: bool = False,
    ) -> None:
        port = port or free_port(host)
        self.config_path = config_dir / PROMETHEUS_CONFIG
        self.data_dir = state_dir / "prometheus-data"
        argv = [
            _binary("prometheus"),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--storage.tsdb.retention.time={retention}",
            f"--web.listen-address={host}:{port}",
            "--web.enable-lifecycle",
        ]
        super().__init__("Prometheus", argv, host=host, port=port, log_path=state_dir / "prometheus.log", detach=detach)

    @property
    def marker(self) -> str:
        """In this process's command line only (its data dir): finds it by pid after a restart of ours."""
        return f"--storage.tsdb.path={self.data_dir}"


class Alertmanager(MonitoringServer):
    """``prometheus-alertmanager`` reading ``config_dir/alertmanager/alertmanager.yml``, its silences and
    notification log in ``state_dir/alertmanager-data``."""

    def __init__(
        self, config_dir: Path, state_dir: Path, *, host: str = LOOPBACK, port: int | None = None, detach: bool = False
    ) -> None:
        port = port or free_port(host)
        self.config_path = config_dir / ALERTMANAGER_CONFIG
        self.data_dir = state_dir / "alertmanager-data"
        argv = [
            _binary("prometheus-alertmanager"),
            f"--config.file={self.config_path}",
            f"--storage.path={self.data_dir}",
            f"--web.listen-address={host}:{port}",
            f"--web.external-url=http://{host}:{port}",
            "--cluster.listen-address=",
        ]
        super().__init__(
            "Alertmanager", argv, host=host, port=port, log_path=state_dir / "alertmanager.log", detach=detach
        )

    @property
    def marker(self) -> str:
        """In this process's command line only (its data dir): finds it by pid after a restart of ours."""
        return f"--storage.path={self.data_dir}"


class RedisExporter(MonitoringServer):
    """``prometheus-redis-exporter`` for the Redis at ``redis_url``: ``redis_up`` and Redis's own statistics."""

    def __init__(
        self, redis_url: str, state_dir: Path, *, host: str = LOOPBACK, port: int | None = None, detach: bool = False
    ) -> None:
        port = port or free_port(host)
        self.marker = f"--web.listen-address={host}:{port}"
        argv = [_binary("prometheus-redis-exporter"), f"--redis.addr={redis_url}", self.marker]
        super().__init__(
            "Redis exporter", argv, host=host, port=port, log_path=state_dir / "redis-exporter.log", detach=detach
        )

    def start(self, timeout: float = 30.0) -> None:
        """Start the exporter and wait until its ``/metrics`` answers."""
        self._process.start(lambda: http_ok(self.url + "/metrics"), timeout)
