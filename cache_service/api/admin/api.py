"""The admin API (``/admin/v1/...``): cache management as JSON over HTTP, for ``cachectl``, Airflow and runbooks.

Reads (GET) need no credentials. Every request that changes state (POST, DELETE) must carry
``Authorization: Bearer <token>`` when ``[admin] token`` is set; without a token the server listens on loopback only
(``server.check_exposure``), so there the operator at the machine is trusted.

Input is validated at the edge, field by field (``fields``), before the ``CacheManager`` sees it. Every error answers
``{"error": {"code": ..., "message": ..., "field": ...}}`` (``errors``): never a stack trace, never a 500 for bad
input.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from cache_service.admin_client import job_route
from cache_service.api.admin import fields
from cache_service.api.admin.errors import AdminError, invalid, translate
from cache_service.api.admin.openapi import load_description
from cache_service.cluster.drain import DrainRefusedError, check_drainable
from cache_service.cluster.fanout import everywhere
from cache_service.cluster.identity import is_worker_id
from cache_service.cluster.peers import PeerError
from cache_service.cluster.report import cluster_json, cluster_totals, scrape_targets
from cache_service.cluster.warmup import load_everywhere
from cache_service.jobs import Job

if TYPE_CHECKING:
    from cache_service.management.manager import CacheManager
    from cache_service.service import CacheService

log = logging.getLogger(__name__)

PREFIX = "/admin/v1"
TIERS = ("disk", "memory")
MAX_PARALLELISM = 256
MAX_PURGES = 1000  # an upper bound for ?limit= on /purges; the record itself keeps fewer
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class _Call:
    """One validated request: query parameters, body fields and the values captured from the URL path."""

    query: Mapping[str, str]
    body: Mapping[str, Any]
    args: Mapping[str, str]


Handler = Callable[[_Call], Awaitable[web.Response]]


@dataclass(frozen=True)
class _Endpoint:
    """A handler and the inputs it accepts; anything else in the request is refused before it runs."""

    handler: Handler
    query: frozenset[str] = frozenset()
    body: frozenset[str] | None = None  # None: the request has no body to read
    path_field: str = "path"  # which request field a bare FileNotFoundError is about


@dataclass(frozen=True)
class _Route:
    name: str  # also the ``op`` label of the request metrics
    pattern: re.Pattern[str]
    methods: dict[str, _Endpoint] = field(default_factory=dict)


class AdminApi:
    """Routes and handlers of the admin API; the work itself is done by ``service.manager``."""

    def __init__(self, service: CacheService) -> None:
        self._service = service
        self._manager: CacheManager = service.manager
        self._description = load_description()
        self._routes = [
            _route("status", GET=_Endpoint(self._status)),
            _route("mounts", GET=_Endpoint(self._mounts)),
            _route("cluster", GET=_Endpoint(self._cluster)),
            _route("cluster/targets", GET=_Endpoint(self._scrape_targets)),
            _route("cluster/drain", POST=_Endpoint(self._drain, body=frozenset({"worker", "budget"}))),
            _route("stat", GET=_Endpoint(self._stat, query=frozenset({"path"}))),
            _route("ls", GET=_Endpoint(self._ls, query=frozenset({"path"}))),
            _route(
                "load",
                POST=_Endpoint(
                    self._load,
                    body=frozenset({"paths", "parallelism", "bandwidth", "tier", "owned_only"}),
                    path_field="paths",
                ),
            ),
            _route("free", POST=_Endpoint(self._free, body=frozenset({"paths", "local"}), path_field="paths")),
            _route(
                "purge",
                POST=_Endpoint(
                    self._purge, body=frozenset({"target", "dry_run", "paths", "local"}), path_field="paths"
                ),
            ),
            _route("pin", POST=_Endpoint(self._pin, body=frozenset({"path"}))),
            _route("unpin", POST=_Endpoint(self._unpin, body=frozenset({"path"}))),
            _route("purges", GET=_Endpoint(self._purges, query=frozenset({"limit"}))),
            _route("pins", GET=_Endpoint(self._pins)),
            _route("ttl", GET=_Endpoint(self._ttls), POST=_Endpoint(self._set_ttl, body=frozenset({"path", "ttl"}))),
            _route("ttl/sweep", POST=_Endpoint(self._sweep_ttl, body=frozenset({"local"}))),
            _route("jobs", GET=_Endpoint(self._jobs)),
            _route("jobs/{id}", GET=_Endpoint(self._job), DELETE=_Endpoint(self._cancel)),
            _route("jobs/{id}/cancel", POST=_Endpoint(self._cancel, body=frozenset())),
            _route("openapi.json", GET=_Endpoint(self._openapi)),
        ]

    def endpoints(self) -> dict[str, frozenset[str]]:
        """Every route (``/admin/v1/jobs/{id}``) and the methods it takes: what ``docs/admin-api.yaml`` describes."""
        return {f"{PREFIX}/{route.name}": frozenset(route.methods) for route in self._routes}

    def add_routes(self, app: web.Application) -> None:
        """Mount the API under ``/admin/v1`` (before any catch-all route of ``app``)."""
        # One route for the whole prefix: unknown endpoints and wrong methods must answer admin JSON (404, 405),
        # not fall through to the app's catch-all, which speaks WebHDFS.
        app.router.add_route("*", PREFIX + r"{tail:(/[\s\S]*)?}", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Route, authorize, validate and run one request; map every error to a JSON error answer."""
        started = time.perf_counter()
        name = "unknown"
        try:
            route, args = self._match(request.match_info.get("tail", ""))
            name = route.name
            # HEAD is a GET without the body (aiohttp drops it), as every HTTP client expects.
            endpoint = route.methods.get("GET" if request.method == "HEAD" else request.method)
            if endpoint is None:
                allowed = ", ".join(sorted(route.methods))
                raise AdminError(
                    405,
                    "MethodNotAllowed",
                    f"{request.method} is not allowed on {PREFIX}/{route.name}; use {allowed}",
                    headers={"Allow": allowed},
                )
            if request.method in _MUTATING:
                self._authorize(request)
            call = _Call(fields.query(request, endpoint.query), await fields.body(request, endpoint.body), args)
            try:
                response = await endpoint.handler(call)
            except Exception as exc:
                answer = translate(exc, endpoint.path_field)
                if answer is None:
                    raise
                raise answer from exc
        except AdminError as exc:
            response = exc.response()
        except Exception as exc:  # a bug of ours: logged with its stack, answered without it
            log.error("admin: unexpected error", exc_info=exc)
            response = AdminError(500, "InternalError", "internal error; see the cache's log").response()
        self._service.metrics.requests.labels(api="admin", op=name, status=str(response.status)).inc()
        self._service.metrics.request_seconds.labels(api="admin", op=name).observe(time.perf_counter() - started)
        if request.method in _MUTATING:
            # An audit trail: who changed the cache, and how it went.
            log.info(
                "admin request",
                extra={"method": request.method, "op": name, "status": response.status, "peer": request.remote},
            )
        return response

    def _match(self, tail: str) -> tuple[_Route, dict[str, str]]:
        path = tail.strip("/")
        for route in self._routes:
            match = route.pattern.fullmatch(path)
            if match:
                return route, match.groupdict()
        raise AdminError(404, "NotFound", f"no such admin endpoint: {PREFIX}/{path}")

    def _authorize(self, request: web.Request) -> None:
        token = self._service.config.admin.token
        if not token:
            return  # no token configured: check_exposure keeps the server on loopback
        scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not credentials:
            raise AdminError(
                401,
                "Unauthorized",
                "this request changes the cache: send the admin token as 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": 'Bearer realm="lakecache-admin"'},
            )
        # Constant time: a byte-by-byte compare would tell an attacker how much of a guess is right.
        if not hmac.compare_digest(credentials.encode("utf-8", "surrogatepass"), token.encode()):
            raise AdminError(403, "Forbidden", "the admin token is not valid")

    # --- reads -------------------------------------------------------------------------------------------------

    async def _openapi(self, _: _Call) -> web.Response:
        return web.json_response(self._description)

    async def _status(self, _: _Call) -> web.Response:
        report = (await self._manager.status()).to_json()
        if self._service.cluster is not None:
            report["cluster"] = cluster_totals(self._service.cluster.view)
        return web.json_response(report)

    async def _cluster(self, _: _Call) -> web.Response:
        view = self._service.cluster_view()
        report = cluster_json(view, clustered=self._service.cluster is not None, now=time.time())
        return web.json_response(report)

    async def _scrape_targets(self, _: _Call) -> web.Response:
        # Prometheus's HTTP service discovery: every worker this one knows, so a new or lost worker needs no config.
        return web.json_response(scrape_targets(self._service.cluster_view()))

    async def _mounts(self, _: _Call) -> web.Response:
        return web.json_response({"mounts": self._manager.mounts()})

    async def _stat(self, call: _Call) -> web.Response:
        path = fields.path(call.query.get("path"), "path")
        return web.json_response((await self._manager.stat(path)).to_json())

    async def _ls(self, call: _Call) -> web.Response:
        path = fields.path(call.query.get("path"), "path")
        entries = await self._manager.ls(path)
        return web.json_response({"path": path, "entries": [e.to_json() for e in entries]})

    async def _purges(self, call: _Call) -> web.Response:
        limit = fields.count(call.query, "limit", low=1, high=MAX_PURGES)
        return web.json_response({"purges": [r.to_json() for r in self._manager.purges(limit)]})

    async def _pins(self, _: _Call) -> web.Response:
        return web.json_response({"pins": self._manager.pins()})

    async def _ttls(self, _: _Call) -> web.Response:
        return web.json_response({"ttls": self._manager.ttls()})

    async def _jobs(self, _: _Call) -> web.Response:
        return web.json_response({"jobs": [job.to_json() for job in self._manager.jobs()]})

    async def _job(self, call: _Call) -> web.Response:
        job_id = call.args["id"]
        try:
            job = self._manager.job(job_id)
        except KeyError:
            raise AdminError(404, "NotFound", f"no such job: {job_id}", "id") from None
        return web.json_response(job.to_json())

    # --- changes -----------------------------------------------------------------------------------------------

    async def _load(self, call: _Call) -> web.Response:
        paths = fields.paths(call.body, "paths")
        parallelism = fields.integer(call.body, "parallelism", default=4, low=1, high=MAX_PARALLELISM)
        bandwidth = fields.bandwidth(call.body)
        tier = fields.choice(call.body, "tier", TIERS, default="disk")
        owned_only = fields.flag(call.body, "owned_only", default=False)
        node = self._service.cluster
        if node is None:
            job = await self._manager.load(paths, parallelism=parallelism, bandwidth=bandwidth, tier=tier)
        else:
            # In a cluster each page is loaded by its block's owner: here, those of this worker's blocks.
            size = self._service.pages.page_size
            others = [] if owned_only else [m for m in node.view.active() if m.id != node.view.self_id]
            request = {"paths": paths, "parallelism": parallelism, "bandwidth": bandwidth, "tier": tier}

            async def everywhere(job: Job, here: Callable[[Job], Awaitable[None]]) -> None:
                await load_everywhere(job, here, others=others, peers=node.peers, request=request)

            job = await self._manager.load(
                paths,
                parallelism=parallelism,
                bandwidth=bandwidth,
                tier=tier,
                wanted=lambda obj, index: node.owns(obj, index * size),
                run=everywhere if others else None,
            )
        body = job.to_json()
        return web.json_response(body, status=202, headers={"Location": f"{PREFIX}/jobs/{body['id']}"})

    async def _drain(self, call: _Call) -> web.Response:
        worker = fields.required(call.body, "worker")
        if not isinstance(worker, str) or not is_worker_id(worker):
            invalid(
                "worker", f"worker must be a worker id (w- and 12 hex digits; see cachectl cluster), not {worker!r}"
            )
        budget = call.body.get("budget")
        if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget <= 0):
            invalid("budget", f"budget must be a positive number of bytes, got {budget!r}")
        node = self._service.cluster
        if node is None:
            raise AdminError(409, "NotClustered", "this worker is not in a cluster ([cluster] redis_url is empty)")
        view = node.view
        try:
            check_drainable(view, worker)
        except KeyError:
            raise AdminError(
                404, "NotFound", f"no worker {worker} in the cluster (see cachectl cluster)", "worker"
            ) from None
        except DrainRefusedError as exc:
            raise AdminError(409, "Conflict", str(exc), "worker") from None
        member = view.members[worker]
        if worker != view.self_id:
            # The worker that drains runs the job: it holds the pages to hand over.
            try:
                status, answer = await node.peers.admin_post(member.webhdfs_url, "cluster/drain", dict(call.body))
            except PeerError as exc:
                raise AdminError(503, "Unavailable", f"worker {worker} did not take the drain: {exc}") from None
            return web.json_response(answer, status=status)
        try:
            job = self._service.drain(budget)
        except DrainRefusedError as exc:
            raise AdminError(409, "Conflict", str(exc), "worker") from None
        body = job.to_json() | {"worker": worker, "job_url": f"{member.webhdfs_url}{PREFIX}/{job_route(job.id)}"}
        return web.json_response(body, status=202, headers={"Location": body["job_url"]})

    async def _free(self, call: _Call) -> web.Response:
        paths = fields.paths(call.body, "paths")

        async def here() -> dict[str, Any]:
            return (await self._manager.free(paths)).to_json()

        return web.json_response(await self._everywhere(call, "free", {"paths": paths}, here))

    async def _purge(self, call: _Call) -> web.Response:
        target = fields.fraction(call.body, "target")
        dry_run = fields.flag(call.body, "dry_run", default=False)
        paths = fields.paths(call.body, "paths") if call.body.get("paths") is not None else None

        async def here() -> dict[str, Any]:
            return (await self._manager.purge(target=target, dry_run=dry_run, paths=paths)).to_json()

        body = {"target": target, "dry_run": dry_run, "paths": paths}
        return web.json_response(await self._everywhere(call, "purge", body, here))

    async def _everywhere(
        self, call: _Call, route: str, body: dict[str, Any], here: Callable[[], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        """``here`` alone on a worker alone or when asked ``local``; else on every worker of the cluster, merged."""
        node = self._service.cluster
        if node is None or fields.flag(call.body, "local", default=False):
            return await here()
        return await everywhere(node, route, body, here)

    async def _pin(self, call: _Call) -> web.Response:
        path = fields.path(fields.required(call.body, "path"), "path")
        report = await self._manager.pin(path)
        await self._share_rules()
        return web.json_response(report.to_json())

    async def _unpin(self, call: _Call) -> web.Response:
        path = fields.path(fields.required(call.body, "path"), "path")
        report = await self._manager.unpin(path)
        await self._share_rules()
        return web.json_response(report.to_json())

    async def _set_ttl(self, call: _Call) -> web.Response:
        path = fields.path(fields.required(call.body, "path"), "path")
        seconds = fields.ttl(call.body)
        report = await self._manager.set_ttl(path, seconds)
        await self._share_rules()
        return web.json_response(report.to_json())

    async def _share_rules(self) -> None:
        node = self._service.cluster
        if node is not None and node.rules is not None:
            await node.rules.share()

    async def _sweep_ttl(self, call: _Call) -> web.Response:
        async def here() -> dict[str, Any]:
            return (await self._manager.sweep_ttl()).to_json()

        return web.json_response(await self._everywhere(call, "ttl/sweep", {}, here))

    async def _cancel(self, call: _Call) -> web.Response:
        job_id = call.args["id"]
        try:
            job = await self._manager.cancel(job_id)
        except KeyError:
            raise AdminError(404, "NotFound", f"no such job: {job_id}", "id") from None
        return web.json_response(job.to_json())


def _route(name: str, **methods: _Endpoint) -> _Route:
    # "jobs/{id}" -> r"jobs/(?P<id>[^/]+)": a job id is one path segment, whatever its characters.
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(name))
    return _Route(name, re.compile(pattern), dict(methods))
