"""The HTTP service discovery Prometheus asks, served by the monitoring deploy on one loopback port.

- ``GET /sd/cache-workers``: the cache workers, as any worker answers them (``/admin/v1/cluster/targets``, from the
  cluster's membership). The server asks the workers it knows in turn and passes on the first answer, and learns
  every worker an answer lists, so it still finds the cluster once the workers it was started with are gone.
  Prometheus must not ask the workers directly: it keeps the last list an SD URL gave for as long as that URL does
  not answer, so a dead worker asked directly would stay a target forever.
- ``GET /sd/spark-workers``: the running workers of a Spark standalone cluster (ALIVE, or DECOMMISSIONED and still
  finishing its executors), from its master's ``/json/``: each worker's web UI ``host:port``, where Spark's own
  ``PrometheusServlet`` serves ``/metrics/prometheus``, labelled ``worker_id``.
- ``POST /alerts``: the webhook a local Alertmanager notifies; each notification is appended to a JSON-lines log.

Either discovery answers 503 when nobody it asks answers, and Prometheus keeps the targets it had. A worker or
Spark worker that comes or goes needs no change to Prometheus's configuration.

``python -m infra.monitoring.discovery --port N --cache-worker URL... [--spark-master-ui URL]
[--notification-log FILE]`` runs it; ``python -m infra.monitoring up`` starts it (``DiscoveryServer``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from infra.monitoring.record import DISCOVERY_MARKER
from infra.monitoring.servers import MonitoringServer
from infra.ports import LOOPBACK, free_port

CACHE_SD_PATH = "/sd/cache-workers"
SPARK_SD_PATH = "/sd/spark-workers"
WEBHOOK_PATH = "/alerts"
WORKER_TARGETS = "/admin/v1/cluster/targets"
RUNNING_STATES = frozenset({"ALIVE", "DECOMMISSIONED"})
_TIMEOUT = aiohttp.ClientTimeout(total=5)


def spark_worker_targets(master: dict[str, Any]) -> list[dict[str, Any]]:
    """The running workers of the master's ``/json/`` answer as HTTP SD target groups (see the module docstring)."""
    groups = []
    for worker in master.get("workers", []):
        state = str(worker.get("state", ""))
        address = urlsplit(str(worker.get("webuiaddress", ""))).netloc
        if state in RUNNING_STATES and address:
            groups.append({"targets": [address], "labels": {"worker_id": str(worker["id"])}})
    return sorted(groups, key=lambda g: g["labels"]["worker_id"])


class CacheWorkers:
    """The cache workers' discovery: asks the known workers in turn, the one that answered last first."""

    def __init__(self, seeds: Sequence[str]) -> None:
        self.known = list(dict.fromkeys(url.rstrip("/") for url in seeds))

    async def targets(self, session: aiohttp.ClientSession) -> list[dict[str, Any]] | None:
        """The first answer of a known worker, or None when none answers. Every worker it lists becomes known."""
        for url in list(self.known):
            try:
                async with session.get(url + WORKER_TARGETS, timeout=_TIMEOUT) as response:
                    if response.status != 200:
                        continue
                    groups: list[dict[str, Any]] = await response.json()
            except (aiohttp.ClientError, TimeoutError, ValueError):
                continue
            # Every listed worker serves /metrics on its WebHDFS port, which also answers discovery.
            listed = [f"http://{target}" for group in groups for target in group["targets"]]
            self.known = list(dict.fromkeys([url, *listed, *self.known]))
            return groups
        return None


def discovery_app(
    cache_workers: Sequence[str], spark_master_ui: str = "", notification_log: Path | None = None
) -> web.Application:
    """The server's application (see the module docstring); an empty ``spark_master_ui`` answers no Spark workers."""
    cache = CacheWorkers(cache_workers)

    async def cache_sd(request: web.Request) -> web.Response:
        groups = await cache.targets(request.app["session"])
        if groups is None:
            return web.json_response({"error": f"no cache worker answers; asked {cache.known}"}, status=503)
        return web.json_response(groups)

    async def spark_sd(request: web.Request) -> web.Response:
        if not spark_master_ui:
            return web.json_response([])
        try:
            async with request.app["session"].get(spark_master_ui.rstrip("/") + "/json/", timeout=_TIMEOUT) as got:
                master = await got.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            error = f"the Spark master at {spark_master_ui} does not answer: {exc}"
            return web.json_response({"error": error}, status=503)
        return web.json_response(spark_worker_targets(master))

    async def notified(request: web.Request) -> web.Response:
        if notification_log is not None:
            with notification_log.open("a") as log:
                log.write(json.dumps(await request.json()) + "\n")
        return web.Response()

    async def ready(_: web.Request) -> web.Response:
        return web.Response(text="ready")

    async def session(app: web.Application) -> Any:
        # Loopback only: a proxy from the environment must not sit between us and the workers.
        async with aiohttp.ClientSession(trust_env=False) as client:
            app["session"] = client
            yield

    app = web.Application()
    app.cleanup_ctx.append(session)
    app.router.add_get(CACHE_SD_PATH, cache_sd)
    app.router.add_get(SPARK_SD_PATH, spark_sd)
    app.router.add_post(WEBHOOK_PATH, notified)
    app.router.add_get("/-/ready", ready)
    return app


class DiscoveryServer(MonitoringServer):
    """This module's server as a child process on ``host``:``port``, logging to ``state_dir/discovery.log``."""

    def __init__(
        self,
        state_dir: Path,
        *,
        cache_workers: Sequence[str],
        spark_master_ui: str = "",
        notification_log: Path | None = None,
        host: str = LOOPBACK,
        port: int | None = None,
        detach: bool = False,
    ) -> None:
        port = port or free_port(host)
        argv = [sys.executable, "-m", DISCOVERY_MARKER, "--host", host, "--port", str(port)]
        for url in cache_workers:
            argv += ["--cache-worker", url]
        if spark_master_ui:
            argv += ["--spark-master-ui", spark_master_ui]
        if notification_log is not None:
            argv += ["--notification-log", str(notification_log)]
        log_path = state_dir / "discovery.log"
        super().__init__("monitoring discovery", argv, host=host, port=port, log_path=log_path, detach=detach)


def main(argv: list[str] | None = None) -> int:
    """Serve until stopped (SIGTERM or Ctrl-C); see the module docstring for the options."""
    parser = argparse.ArgumentParser(prog="python -m infra.monitoring.discovery", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cache-worker", action="append", default=[], help="a cache worker's URL (repeatable)")
    parser.add_argument("--spark-master-ui", default="", help="the Spark master's web UI, e.g. http://127.0.0.1:8080")
    parser.add_argument("--notification-log", type=Path, help="append Alertmanager's notifications to this file")
    args = parser.parse_args(argv)
    app = discovery_app(args.cache_worker, args.spark_master_ui, args.notification_log)
    web.run_app(app, host=args.host, port=args.port, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
