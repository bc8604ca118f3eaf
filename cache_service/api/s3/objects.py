"""Objects inside mounts, served by the cache itself: GetObject and HeadObject from the page store, PutObject
written through.

These share the status cache and the page store with WebHDFS, keyed by bucket, key and ETag, so a write through
either protocol is what the other reads next, and a page one of them fetched is a hit for the other. The cache keeps
an object's bytes, ETag, size and modification time; its other metadata stays in S3 (see ``app.needs_s3``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from email.utils import formatdate, parsedate_to_datetime

from aiohttp import web
from multidict import CIMultiDict, MultiMapping

from cache_service.api.s3.errors import S3Error
from cache_service.api.s3.payload import Payload
from cache_service.api.s3.request import QueryParams, Target
from cache_service.api.streaming import DataResponse, stream_body
from cache_service.errors import StaleObjectError
from cache_service.namespace.mounts import MountTable
from cache_service.namespace.paths import normalize
from cache_service.page_store import ObjectIdentity
from cache_service.service import CacheService
from cache_service.under_store import ObjectStatus

log = logging.getLogger(__name__)

_WINDOW = 8 * 1024**2  # bytes per S3 request when reading an object the cache does not keep
_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*")
DEFAULT_CONTENT_TYPE = "binary/octet-stream"  # what S3 answers for an object stored without a type
# Query parameters of GetObject that set a response header; S3 honours them on signed requests only (all are).
_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


def http_date(seconds: float) -> str:
    """An HTTP date (``Last-Modified``), whole seconds, as S3 sends it."""
    return formatdate(int(seconds), usegmt=True)


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``[start, end)`` asked for by a ``Range`` header, or None for the whole object.

    Like S3, a header it cannot parse (or one naming several ranges) is ignored. Raises ``InvalidRange`` for a
    range that lies wholly past the end of the object.
    """
    if header is None:
        return None
    match = _RANGE.fullmatch(header)
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    unsatisfiable = S3Error("InvalidRange", RangeRequested=header, ActualObjectSize=str(size))
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise unsatisfiable
        return max(0, size - suffix), size
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise unsatisfiable
    return start, size if not last else min(int(last) + 1, size)


def _etag_matches(header: str, etag: str) -> bool:
    candidates = [c.strip().removeprefix("W/").strip('"') for c in header.split(",")]
    return "*" in candidates or etag in candidates


def _date(header: str | None) -> float | None:
    if header is None:
        return None
    try:
        return parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None  # an unparsable date is ignored, as S3 and RFC 9110 do


def check_conditions(headers: MultiMapping[str], obj: ObjectStatus) -> int | None:
    """304 or 412 when a conditional header says so (RFC 9110 order, as S3 applies it), else None."""
    mtime = int(obj.mtime)
    if_match = headers.get("If-Match")
    if if_match is not None:
        if not _etag_matches(if_match, obj.etag):
            return 412
    else:
        since = _date(headers.get("If-Unmodified-Since"))
        if since is not None and mtime > since:
            return 412
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        if _etag_matches(if_none_match, obj.etag):
            return 304
    else:
        since = _date(headers.get("If-Modified-Since"))
        if since is not None and mtime <= since:
            return 304
    return None


def cache_path(mounts: MountTable, bucket: str, key: str) -> str | None:
    """The cache path of ``bucket``/``key``, or None: outside every mount, a mount point itself, or a key no path
    can name (``a//b``, ``a/../b``, a trailing ``/``, control characters), which S3 then serves as it is."""
    path = mounts.to_path(bucket, key)
    if path is None or key != key.strip("/"):
        return None
    try:
        if normalize(path) != path:
            return None
    except ValueError:
        return None
    return None if mounts.resolve(path).is_mount_point else path


async def object_bytes(service: CacheService, obj: ObjectStatus, start: int, end: int) -> AsyncIterator[bytes]:
    """Bytes ``[start, end)`` of ``obj``: from the page store when it has a cache path, else from S3 uncached.

    Raises ``StaleObjectError`` if the object changed since ``obj`` was read, ``FileNotFoundError`` if it is gone.
    """
    if cache_path(service.mounts, obj.bucket, obj.key) is not None:
        identity = ObjectIdentity(obj.bucket, obj.key, obj.etag, obj.size)
        async for chunk in service.pages.read(identity, start, end - start):
            yield bytes(chunk)
        return
    loop = asyncio.get_running_loop()
    for first in range(start, end, _WINDOW):
        last = min(first + _WINDOW, end)
        yield await loop.run_in_executor(
            service.executor, service.under.get_range, obj.bucket, obj.key, first, last, obj.etag
        )


class ObjectHandlers:
    """GetObject, HeadObject and PutObject on keys that have a cache path."""

    def __init__(self, service: CacheService) -> None:
        self._service = service

    async def _status(self, target: Target) -> ObjectStatus:
        assert target.key is not None
        obj = await self._service.status.head(target.bucket, target.key)
        if obj is None:
            raise S3Error("NoSuchKey", Key=target.key)
        return obj

    async def get(
        self, request: web.Request, target: Target, params: QueryParams, request_id: str
    ) -> web.StreamResponse:
        """GetObject (and HeadObject): ranges, conditions and response overrides, bytes from the page store."""
        assert target.key is not None
        head = request.method == "HEAD"
        overrides = {header: params.get(name) for name, header in _OVERRIDES.items() if name in params}
        for name, value in overrides.items():
            if value is not None and any(ord(c) < 0x20 and c != "\t" for c in value):
                raise S3Error("InvalidArgument", f"Invalid value for {name}", ArgumentName=name)
        for attempt in (1, 2):
            obj = await self._status(target)
            headers = CIMultiDict(
                {
                    "ETag": f'"{obj.etag}"',
                    "Last-Modified": http_date(obj.mtime),
                    "Accept-Ranges": "bytes",
                    "x-amz-request-id": request_id,
                    "x-amz-id-2": request_id,
                }
            )
            condition = check_conditions(request.headers, obj)
            if condition == 304:
                return web.Response(status=304, headers=headers)
            if condition == 412:
                raise S3Error("PreconditionFailed", Condition="If-Match or If-Unmodified-Since")
            span = byte_range(request.headers.get("Range"), obj.size)
            start, end = span if span is not None else (0, obj.size)
            headers["Content-Type"] = DEFAULT_CONTENT_TYPE
            headers.update({k: v for k, v in overrides.items() if v is not None})
            if span is not None:
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{obj.size}"
            response = DataResponse(status=206 if span is not None else 200, headers=headers)
            response.content_length = end - start
            if head or end == start:
                await response.prepare(request)
                await response.write_eof()
                return response
            identity = ObjectIdentity(obj.bucket, obj.key, obj.etag, obj.size)
            chunks = aiter(self._service.pages.read(identity, start, end - start))
            try:
                first = await anext(chunks, None)
            except StaleObjectError:
                # The object changed in S3 since its status was cached: look again, once.
                self._service.status.forget(target.bucket, target.key)
                if attempt == 2:
                    raise
                continue
            except FileNotFoundError:
                self._service.status.forget(target.bucket, target.key)
                raise S3Error("NoSuchKey", Key=target.key) from None
            return await stream_body(request, response, first, chunks, what=f"s3 api: GET of {request.path}")
        raise AssertionError("unreachable: the loop returns or raises")

    async def put(self, target: Target, payload: Payload, request_id: str) -> web.StreamResponse:
        """PutObject: spool the body, check it, upload it to S3 and cache its pages; answers once S3 holds it."""
        assert target.key is not None
        payload.require_length()
        uploader = self._service.uploader
        spool = uploader.spool_file()
        try:
            digests = await payload.spool(spool)
            try:
                obj = await uploader.upload(target.bucket, target.key, spool)
            except FileNotFoundError:
                raise S3Error("NoSuchBucket", BucketName=target.bucket) from None
        finally:
            spool.unlink(missing_ok=True)
        headers = {"ETag": f'"{obj.etag}"', "x-amz-request-id": request_id, "x-amz-id-2": request_id}
        headers.update({f"x-amz-checksum-{alg}": value for alg, value in digests.checksums.items()})
        return web.Response(status=200, headers=headers)
