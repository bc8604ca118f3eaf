"""Prometheus's HTTP service discovery for the workers of a Spark standalone cluster, from its master's ``/json/``.

The master knows every worker that registered with it; this small server asks it on each discovery request and
answers one target group per running worker (ALIVE, or DECOMMISSIONED and still finishing its executors): the
worker's web UI address, where Spark's own ``PrometheusServlet`` serves ``/metrics/prometheus``, labelled
``worker_id`` and ``state``. A worker the scaler adds or takes away needs no change to Prometheus's configuration.
When the master does not answer, the answer is 503, and Prometheus keeps the targets it had.

``python -m infra.monitoring.spark_sd --master-ui http://127.0.0.1:8080 --port 9097`` runs it;
``python -m infra.monitoring up --spark-state-dir DIR`` starts it for the cluster recorded in ``DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from infra.ports import LOOPBACK, free_port
from infra.service_process import ProcessService, ServiceProcess, http_ok

SD_PATH = "/targets"
RUNNING_STATES = frozenset({"ALIVE", "DECOMMISSIONED"})
SPARK_SD_MARKER = "infra.monitoring.spark_sd"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def spark_worker_targets(master: dict[str, Any]) -> list[dict[str, Any]]:
    """The running workers of the master's ``/json/`` answer as HTTP SD target groups (see the module docstring)."""
    groups = []
    for worker in master.get("workers", []):
        state = str(worker.get("state", ""))
        address = urlsplit(str(worker.get("webuiaddress", ""))).netloc
        if state in RUNNING_STATES and address:
            groups.append({"targets": [address], "labels": {"worker_id": str(worker["id"]), "state": state.lower()}})
    return sorted(groups, key=lambda g: g["labels"]["worker_id"])


def discovery_app(master_ui: str) -> web.Application:
    """The aiohttp application answering ``GET /targets`` for the master whose web UI is at ``master_ui``."""

    async def targets(_: web.Request) -> web.Response:
        try:
            with _DIRECT.open(master_ui.rstrip("/") + "/json/", timeout=5) as response:
                master = json.load(response)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return web.json_response({"error": f"the Spark master at {master_ui} does not answer: {exc}"}, status=503)
        return web.json_response(spark_worker_targets(master))

    async def ready(_: web.Request) -> web.Response:
        return web.Response(text="ready")

    app = web.Application()
    app.router.add_get(SD_PATH, targets)
    app.router.add_get("/-/ready", ready)
    return app


class SparkDiscovery(ProcessService):
    """This module's server as a child process on ``host``:``port``, logging to ``state_dir/spark-sd.log``."""

    _process: ServiceProcess

    def __init__(
        self, master_ui: str, state_dir: Path, *, host: str = LOOPBACK, port: int | None = None, detach: bool = False
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        argv = [sys.executable, "-m", SPARK_SD_MARKER, "--master-ui", master_ui]
        argv += ["--host", host, "--port", str(self.port)]
        self._process = ServiceProcess(
            "Spark service discovery", argv, log_path=state_dir / "spark-sd.log", env=dict(os.environ), detach=detach
        )

    @property
    def url(self) -> str:
        """The discovery URL Prometheus's ``http_sd_configs`` takes."""
        return f"http://{self.host}:{self.port}{SD_PATH}"

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it answers. Raises ``ServiceStartError`` with its log."""
        self._process.start(lambda: http_ok(f"http://{self.host}:{self.port}/-/ready"), timeout)

    def stop(self) -> None:
        """Stop the server."""
        self._process.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m infra.monitoring.spark_sd --master-ui URL [--host H] --port N``: serve until stopped."""
    parser = argparse.ArgumentParser(prog="python -m infra.monitoring.spark_sd", description=__doc__.split("\n")[0])
    parser.add_argument("--master-ui", required=True, help="the Spark master's web UI, e.g. http://127.0.0.1:8080")
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    web.run_app(discovery_app(args.master_ui), host=args.host, port=args.port, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
