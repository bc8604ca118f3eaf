"""The peer API (``GET /cluster/v1/pages``): another worker reads bytes of a block this worker owns.

Only workers of the cluster may call it: every request must carry the cluster's secret (the admin token) as a bearer
token, compared in constant time. The bytes come from the page store, which fetches a missing page from S3 once
however many ask and keeps it. Errors answer the admin API's JSON (``{"error": {"code", "message", "field"}}``):
400 for a malformed request, 401 without the secret, 403 for an object outside every mount, 404 when the object is
gone, 409 (``StaleObject``) when S3 holds another version, 503 when S3 does not answer.
"""

from __future__ import annotations

import hmac
import logging

from aiohttp import web

from cache_service.api.admin.errors import AdminError, invalid, translate
from cache_service.api.streaming import DataResponse, stream_body
from cache_service.cluster.peers import PAGES_PATH, SECRET_HEADER
from cache_service.errors import StaleObjectError
from cache_service.namespace.mounts import MountTable
from cache_service.page_store import ObjectIdentity, PageStore

log = logging.getLogger(__name__)

_FIELDS = ("bucket", "key", "etag", "size", "start", "end")


class PeerApi:
    """Serves other workers' reads of this worker's blocks from ``pages``, to callers that hold ``secret``; only
    objects inside a mount of ``mounts``, as for any other read."""

    def __init__(self, pages: PageStore, mounts: MountTable, secret: str) -> None:
        self._pages = pages
        self._mounts = mounts
        self._expected = f"Bearer {secret}".encode()

    def add_routes(self, app: web.Application) -> None:
        """Mount the API."""
        app.router.add_get(PAGES_PATH, self.pages)

    async def pages(self, request: web.Request) -> web.StreamResponse:
        """Bytes ``[start, end)`` of the object version the query names."""
        try:
            self._authorise(request)
            obj, start, end = _parse(request)
            if self._mounts.to_path(obj.bucket, obj.key) is None:
                raise AdminError(403, "AccessDenied", f"s3://{obj.bucket}/{obj.key} is outside every mount", "key")
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

    def _authorise(self, request: web.Request) -> None:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._expected):
            raise AdminError(401, "Unauthorized", "peer requests must carry the cluster's secret (the admin token)")


def _parse(request: web.Request) -> tuple[ObjectIdentity, int, int]:
    query = request.query
    for name in query:
        if name not in _FIELDS:
            invalid(name, f"unknown parameter {name!r}; a peer read takes {', '.join(_FIELDS)}")
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
