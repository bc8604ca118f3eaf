"""The HTTP servers of one worker: WebHDFS, admin, health and metrics on ``webhdfs_port``; S3 on ``s3_port``."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from aiohttp import web

from cache_service.api.admin import AdminApi
from cache_service.api.connection import serve as serve_port
from cache_service.api.peer import PeerApi
from cache_service.api.s3 import start_s3_api
from cache_service.api.webhdfs import WarmReads, WebHdfsApi, WebHdfsConnection, remote_exception
from cache_service.api.webhdfs.staging_relay import StagingRelay
from cache_service.config import CacheConfig
from cache_service.loopback import is_loopback
from cache_service.service import CacheService

log = logging.getLogger(__name__)


def build_app(service: CacheService) -> web.Application:
    """The aiohttp application serving the WebHDFS port."""
    app = web.Application(client_max_size=1024**2)
    relay = None
    if service.cluster is not None:
        node = service.cluster
        relay = StagingRelay(node.homes, node.copies, service.config.write, service.worker_id, node.router.suspect)
    WebHdfsApi(service.fs, service.reads, service.metrics, relay).add_routes(app)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        if not service.ready:
            return web.json_response({"status": "starting"}, status=503)
        return web.json_response({"status": "ready"})

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=service.metrics.render(), content_type="text/plain", charset="utf-8")

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    AdminApi(service).add_routes(app)
    if service.cluster is not None:
        cluster = service.config.cluster
        peers = PeerApi(
            service.pages,
            service.status,
            service.mounts,
            service.config.admin.token,
            cluster.heartbeat_interval,
            service.cluster.handoff.fill,
        )
        peers.add_routes(app)

    async def unknown(request: web.Request) -> web.StreamResponse:
        return remote_exception(404, "FileNotFoundException", f"No such endpoint: {request.method} {request.path}")

    app.router.add_route("*", r"/{tail:[\s\S]*}", unknown)
    return app


def check_exposure(config: CacheConfig) -> None:
    """Refuse to serve beyond loopback without an admin token. Raises ``ValueError``."""
    if not is_loopback(config.server.host) and not config.admin.token:
        raise ValueError(
            f"refusing to listen on {config.server.host} without an admin token: set CACHE_ADMIN_TOKEN "
            "(or [admin] token) or listen on 127.0.0.1"
        )


async def run(config: CacheConfig) -> None:
    """Serve until SIGTERM or SIGINT."""
    check_exposure(config)
    service = CacheService(config)
    webhdfs = await serve_port(
        build_app(service),
        config.server.host,
        config.server.webhdfs_port,
        WebHdfsConnection,
        early=WarmReads(service.fs, service.reads, service.metrics),
    )
    s3 = await start_s3_api(service, os.environ)
    await service.start()
    log.info(
        "lakecache serving",
        extra={
            "webhdfs": f"http://{config.server.host}:{config.server.webhdfs_port}",
            "s3": f"http://{config.server.host}:{config.server.s3_port}",
            "mounts": {m.path: m.uri for m in service.mounts.mounts},
        },
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("lakecache stopping")
    await s3.cleanup()
    await webhdfs.cleanup()
    await service.stop()


def serve(config: CacheConfig) -> None:
    """Run the worker on uvloop (when installed) until it is told to stop."""
    try:
        import uvloop

        uvloop.run(run(config))
    except ImportError:
        asyncio.run(run(config))
