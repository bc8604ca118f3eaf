"""The peer API: another worker reads bytes of a block this worker owns (``GET /cluster/v1/pages``; with
``cached=only``, only bytes already cached here, for a hand-off), hands this worker pages to cache
(``PUT /cluster/v1/pages``, a draining worker giving its pages to their new owner), or watches
that this worker is alive (``GET /cluster/v1/watch``: a response that never ends while it is, one byte per heartbeat
interval, so that its end, a crash included, is seen by the watcher at once), or tells it of a change it made
(``POST /cluster/v1/invalidations``), answered once applied.

Only workers of the cluster may call it: every request must carry the cluster's secret (the admin token) as a bearer
token, compared in constant time. The bytes come from the page store, which fetches a missing page from S3 once
however many ask and keeps it. Errors answer the admin API's JSON (``{"error": {"code", "message", "field"}}``):
400 for a malformed request, 401 without the secret, 403 for an object without a cache path (outside every mount,
a mount point, or a key no path can name), 404 when the object is gone or (``NotCached``) a page asked for cached
only is not here, 409 (``StaleObject``) when S3 holds another version, 503 when S3 does not answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging

from aiohttp import web

from cache_service.api.admin.errors import AdminError, invalid, translate
from cache_service.api.streaming import DataResponse, stream_body
from cache_service.cluster.invalidation import Invalidation
from cache_service.cluster.peers import INVALIDATIONS_PATH, PAGES_PATH, SECRET_HEADER, WATCH_PATH
from cache_service.cluster.routing import Fill
from cache_service.errors import StaleObjectError
from cache_service.metadata import StatusCache
from cache_service.namespace.mounts import MountTable
from cache_service.page_store import ObjectIdentity, PageStore

log = logging.getLogger(__name__)

_FIELDS = ("bucket", "key", "etag", "size", "start", "end")
_OPTIONS = {"GET": ("cached",), "PUT": ("tier",)}
_MAX_CHANGE = 64 * 1024
_MAX_GIFT = 64 * 1024 * 1024


class PeerApi:
    """Serves other workers' reads of this worker's blocks from ``pages``, to callers that hold ``secret``; only
    objects inside a mount of ``mounts``, as for any other read."""

    def __init__(
        self,
        pages: PageStore,
        statuses: StatusCache,
        mounts: MountTable,
        secret: str,
        heartbeat_interval: float,
        fill: Fill,
    ) -> None:
        self._pages = pages
        self._fill = fill
        self._statuses = statuses
        self._mounts = mounts
        self._expected = f"Bearer {secret}".encode()
        self._interval = heartbeat_interval
        self._closing = asyncio.Event()

    def add_routes(self, app: web.Application) -> None:
        """Mount the API; watches end when ``app`` shuts down."""
        app.router.add_get(PAGES_PATH, self.pages)
        app.router.add_put(PAGES_PATH, self.take_pages)
        app.router.add_get(WATCH_PATH, self.watch)
        app.router.add_post(INVALIDATIONS_PATH, self.invalidations)

        async def closing(_: web.Application) -> None:
            self._closing.set()

        app.on_shutdown.append(closing)

    async def invalidations(self, request: web.Request) -> web.StreamResponse:
        """Apply a change another worker made (204 once applied)."""
        try:
            self._authorise(request)
            if request.content_length is None or request.content_length > _MAX_CHANGE:
                invalid(None, f"an invalidation is a JSON body of at most {_MAX_CHANGE} bytes")
            try:
                change = Invalidation.decode(json.loads(await request.read()))
            except json.JSONDecodeError as exc:
                invalid(None, f"an invalidation is JSON: {exc}")
            except ValueError as exc:
                invalid(None, str(exc))
        except AdminError as exc:
            return exc.response()
        self._statuses.apply(change.bucket, change.prefix, exact=change.exact)
        return web.Response(status=204)

    async def watch(self, request: web.Request) -> web.StreamResponse:
        """One byte per heartbeat interval for as long as this worker lives (or until the watcher goes)."""
        try:
            self._authorise(request)
        except AdminError as exc:
            return exc.response()
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            while not self._closing.is_set():
                await response.write(b".")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self._interval)
        return response

    async def pages(self, request: web.Request) -> web.StreamResponse:
        """Bytes ``[start, end)`` of the object version the query names."""
        try:
            self._authorise(request)
            obj, start, end = self._parse(request)
            cached = request.query.get("cached")
            if cached not in (None, "only"):
                invalid("cached", f"cached must be 'only', got {cached!r}")
            if cached is None:
                await self._fill(obj, start, end)
            else:
                size = self._pages.page_size
                missing = [i for i in range(start // size, (end - 1) // size + 1) if not self._pages.has_page(obj, i)]
                if missing:
                    raise AdminError(404, "NotCached", f"{len(missing)} page(s) of the range are not cached here")
            chunks = self._pages.read(obj, start, end - start)
            first = await anext(chunks, None)
        except StaleObjectError as exc:
            return AdminError(409, "StaleObject", str(exc)).response()
        except Exception as exc:
            answer = translate(exc, "key")
            if answer is None:
                log.exception("peer read failed")
                answer = AdminError(503, "Unavailable", f"{type(exc).__name__}: {exc}")
            return answer.response()
        response = DataResponse(status=200, headers={"Content-Type": "application/octet-stream"})
        response.content_length = end - start
        return await stream_body(request, response, first, chunks, what=f"peer read of {obj.bucket}/{obj.key}")

    async def take_pages(self, request: web.Request) -> web.StreamResponse:
        """Cache the whole pages ``[start, end)`` of the object version the query names, sent in the body (204)."""
        try:
            self._authorise(request)
            obj, start, end = self._parse(request)
            tier = request.query.get("tier", "disk")
            if tier not in self._pages.media():
                invalid("tier", f"tier must be one of {self._pages.media()}, got {tier!r}")
            size = self._pages.page_size
            if start % size or (end % size and end != obj.size):
                invalid("start", f"[{start}, {end}) is not a run of whole {size}-byte pages of the object")
            if end - start > _MAX_GIFT:
                invalid("end", f"a hand-off carries at most {_MAX_GIFT} bytes, not {end - start}")
            if request.content_length != end - start:
                invalid(None, f"the body must be the {end - start} bytes of [{start}, {end})")
            try:
                data = await request.content.readexactly(end - start)
            except asyncio.IncompleteReadError as exc:
                invalid(None, f"the body held {len(exc.partial)} bytes, not the {end - start} of [{start}, {end})")
        except AdminError as exc:
            return exc.response()
        for index in range(start // size, -(-end // size)):
            page_start, page_end = obj.page_bounds(index, size)
            chunk = data[page_start - start : page_end - start]
            await self._pages.admit(obj, index, chunk, promote=tier == "memory")
        return web.Response(status=204)

    def _parse(self, request: web.Request) -> tuple[ObjectIdentity, int, int]:
        obj, start, end = _parse(request)
        # The rule the data APIs serve from the cache by: a key no path can name (``lake/../x``, ``/lake/x``) or a
        # mount point is S3's own, never read into the cache for a peer.
        if self._mounts.cache_path(obj.bucket, obj.key) is None:
            raise AdminError(403, "AccessDenied", f"s3://{obj.bucket}/{obj.key} has no path in any mount", "key")
        return obj, start, end

    def _authorise(self, request: web.Request) -> None:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._expected):
            raise AdminError(401, "Unauthorized", "peer requests must carry the cluster's secret (the admin token)")


def _parse(request: web.Request) -> tuple[ObjectIdentity, int, int]:
    query = request.query
    allowed = _FIELDS + _OPTIONS.get(request.method, ())
    for name in query:
        if name not in allowed:
            invalid(name, f"unknown parameter {name!r}; {request.method} {PAGES_PATH} takes {', '.join(allowed)}")
    values: dict[str, str] = {}
    for name in _FIELDS:
        value = query.get(name, "")
        if not value:
            invalid(name, f"missing parameter {name!r}")
        values[name] = value
    numbers: dict[str, int] = {}
    for name in ("size", "start", "end"):
        try:
            numbers[name] = int(values[name])
        except ValueError:
            invalid(name, f"{name} must be an integer, got {values[name]!r}")
    size, start, end = numbers["size"], numbers["start"], numbers["end"]
    if not 0 <= start < end <= size:
        invalid("end", f"the range [{start}, {end}) is not inside an object of {size} bytes")
    return ObjectIdentity(values["bucket"], values["key"], values["etag"], size), start, end
