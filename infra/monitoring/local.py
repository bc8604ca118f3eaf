"""Monitoring of the local stack: ``python -m infra.monitoring up|deploy|down``.

``up`` starts, on loopback, Prometheus and Alertmanager (``infra.monitoring.servers``), the discovery server
(``infra.monitoring.discovery``: the cache workers, the Spark workers, the webhook), Airflow's metrics bridge
(``infra.monitoring.airflow_metrics``, where ``python -m infra.airflow up`` then has Airflow push its metrics), and
Redis's exporter when the stack has a Redis, all detached, their data and logs under ``.local/monitoring/``.
Prometheus and Alertmanager read the files ``generate(spec, site)`` makes for the running stack's ``Site``
(``stack_site``: every address read from ``.local/stack/stack.json`` and from what ``up`` started, none typed in),
checked by promtool and amtool before anything starts. ``deploy`` generates them again and hands them to the running
servers (``infra.monitoring.deploy``: refused if the tools reject them, reloaded and confirmed otherwise). ``down``
stops what ``up`` started. ``.local/monitoring/monitoring.json`` records it all (``infra.monitoring.record``).

The preferred ports are those of ``Site.default()`` (Prometheus 9090, Alertmanager 9093, discovery 9095, Redis's
exporter 9121) and 9096 for the bridge; a port already taken is replaced by a free one, and the record says which.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path
from urllib.parse import urlsplit

from infra.monitoring.airflow_metrics import AirflowMetricsBridge
from infra.monitoring.deploy import deploy, install
from infra.monitoring.discovery import CACHE_SD_PATH, SPARK_SD_PATH, WEBHOOK_PATH, DiscoveryServer
from infra.monitoring.generate import generate
from infra.monitoring.loading import load_spec
from infra.monitoring.record import DEFAULT_STATE_DIR, MonitoringInfo
from infra.monitoring.servers import Alertmanager, Prometheus, RedisExporter
from infra.monitoring.site import Site
from infra.ports import LOOPBACK, free_port, is_listening
from infra.service_process import ManagedService, ServiceStartError, stop_pid
from infra.stack import DEFAULT_STATE_DIR as STACK_DIR
from infra.stack import StackInfo

PREFERRED_PORTS = {"prometheus": 9090, "alertmanager": 9093, "discovery": 9095, "bridge": 9096, "redis_exporter": 9121}
AIRFLOW_TARGETS = Path("prometheus/targets/airflow.json")
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def stack_site(info: MonitoringInfo) -> Site:
    """The ``Site`` of the running stack and monitoring: every address comes from ``info``."""
    default = Site.default()
    return replace(
        default,
        cache_sd_urls=(info.discovery_url + CACHE_SD_PATH,),
        spark_master_url=info.spark_master_ui or default.spark_master_url,
        spark_sd_url=info.discovery_url + SPARK_SD_PATH,
        airflow_sd_file=str(AIRFLOW_TARGETS.relative_to("prometheus")),
        redis_exporter=info.redis_exporter or default.redis_exporter,
        alertmanager_urls=(info.alertmanager_url,),
        webhook_url=info.discovery_url + WEBHOOK_PATH,
        grafana_datasource_url=info.prometheus_url,
    )


def airflow_targets(bridge_url: str) -> list[dict[str, object]]:
    """The file SD of Airflow's components: one target group per component, each the bridge asked for that
    component's metrics (``?component=``, set by the ``__param_component`` label)."""
    address = urlsplit(bridge_url).netloc
    return [
        {"targets": [address], "labels": {"component": name, "__param_component": name}} for name in AIRFLOW_COMPONENTS
    ]


def monitoring_files(info: MonitoringInfo) -> dict[Path, str]:
    """What Prometheus and Alertmanager are given for the running stack: the generated files, and the Airflow
    components' targets at the metrics bridge."""
    files = generate(load_spec(), stack_site(info))
    targets = airflow_targets(info.airflow_metrics_url) if info.airflow_metrics_url else []
    files[AIRFLOW_TARGETS] = json.dumps(targets, indent=2) + "\n"
    return files


def _port(name: str) -> int:
    preferred = PREFERRED_PORTS[name]
    return free_port() if is_listening(preferred) else preferred


def up(state_dir: Path, stack_dir: Path, spark_master_ui: str = "") -> MonitoringInfo:
    """Start the monitoring of the stack recorded in ``stack_dir`` (see the module docstring) and record it.

    Raises ``RuntimeError`` when no stack runs or the monitoring already does, ``ConfigRejectedError`` when the
    generated files are rejected, ``ServiceStartError`` when a server does not come up (none is left running).
    """
    stack = StackInfo.read(stack_dir)
    if stack is None or not stack.processes_running:
        raise RuntimeError(f"no stack runs in {stack_dir}: start it with `python -m infra.stack up`")
    existing = MonitoringInfo.read(state_dir)
    if existing is not None and existing.running:
        raise RuntimeError(f"the monitoring already runs (see {state_dir / MonitoringInfo.FILE})")
    config_dir = state_dir / "config"
    discovery = DiscoveryServer(
        state_dir,
        cache_workers=stack.worker_urls or [stack.webhdfs_url],
        spark_master_ui=spark_master_ui,
        notification_log=state_dir / "notifications.jsonl",
        port=_port("discovery"),
        detach=True,
    )
    bridge = AirflowMetricsBridge(state_dir, port=_port("bridge"), detach=True)
    prometheus = Prometheus(config_dir, state_dir, port=_port("prometheus"), detach=True)
    alertmanager = Alertmanager(config_dir, state_dir, port=_port("alertmanager"), detach=True)
    exporter = (
        RedisExporter(stack.redis_url, state_dir, port=_port("redis_exporter"), detach=True)
        if stack.redis_url
        else None
    )
    planned = MonitoringInfo(
        state_dir=str(state_dir),
        config_dir=str(config_dir),
        prometheus_url=prometheus.url,
        prometheus_pid=0,
        alertmanager_url=alertmanager.url,
        alertmanager_pid=0,
        discovery_url=discovery.url,
        discovery_pid=0,
        redis_exporter=f"{LOOPBACK}:{exporter.port}" if exporter else "",
        spark_master_ui=spark_master_ui,
        airflow_metrics_url=bridge.url,
    )
    install(monitoring_files(planned), config_dir)
    servers: list[ManagedService] = [discovery, bridge, *([exporter] if exporter else []), alertmanager, prometheus]
    started: list[ManagedService] = []
    try:
        for service in servers:
            service.start()
            started.append(service)
    except BaseException:
        for service in reversed(started):
            service.stop()
        raise
    info = replace(
        planned,
        prometheus_pid=prometheus.pid or 0,
        alertmanager_pid=alertmanager.pid or 0,
        discovery_pid=discovery.pid or 0,
        redis_exporter_pid=(exporter.pid or 0) if exporter else 0,
        airflow_metrics_pid=bridge.pid or 0,
    )
    info.write(state_dir)
    return info


def redeploy(state_dir: Path) -> MonitoringInfo:
    """Generate the files again and deploy them to the running servers (``infra.monitoring.deploy.deploy``).

    Raises ``RuntimeError`` when the monitoring does not run, ``ConfigRejectedError`` or ``ReloadError``.
    """
    info = MonitoringInfo.read(state_dir)
    if info is None or not info.running:
        raise RuntimeError(f"the monitoring does not run in {state_dir}: start it with `python -m infra.monitoring up`")
    files = monitoring_files(info)
    deploy(files, Path(info.config_dir), prometheus_url=info.prometheus_url, alertmanager_url=info.alertmanager_url)
    return info


def down(state_dir: Path) -> bool:
    """Stop what ``up`` started and forget the record; False if nothing was recorded."""
    info = MonitoringInfo.read(state_dir)
    if info is None:
        return False
    for pid, marker in info.pids:
        stop_pid(pid, marker)
    MonitoringInfo.remove(state_dir)
    return True


# --- command line (subcommands of python -m infra.monitoring) -----------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``up``, ``deploy`` and ``down`` share."""
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="default: %(default)s")
    parser.add_argument("--stack-dir", type=Path, default=STACK_DIR, help="the stack's (default: %(default)s)")


def add_up_arguments(parser: argparse.ArgumentParser) -> None:
    """``up``'s options."""
    add_arguments(parser)
    parser.add_argument("--spark-master-ui", default="", help="a Spark standalone master's web UI to monitor")


def run_up(args: argparse.Namespace) -> int:
    """``up``: start and print the record."""
    try:
        info = up(args.state_dir.resolve(), args.stack_dir.resolve(), args.spark_master_ui)
    except (RuntimeError, ServiceStartError, FileNotFoundError) as exc:
        print(f"up: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(info), indent=2))
    return 0


def run_deploy(args: argparse.Namespace) -> int:
    """``deploy``: generate, check, write and reload; a refusal is the tool's own words (exit 1)."""
    try:
        info = redeploy(args.state_dir.resolve())
    except (RuntimeError, FileNotFoundError) as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return 1
    print(
        f"deployed {info.config_dir} to Prometheus ({info.prometheus_url}) and Alertmanager ({info.alertmanager_url})"
    )
    return 0


def run_down(args: argparse.Namespace) -> int:
    """``down``: stop what ``up`` started."""
    stopped = down(args.state_dir.resolve())
    print("monitoring stopped" if stopped else f"no monitoring recorded in {args.state_dir}")
    return 0
