"""Objects inside mounts, served by the cache itself: GetObject and HeadObject through the namespace's read path
(``ObjectReader``), PutObject written through.

These share the status cache and the page store with WebHDFS, keyed by bucket, key and ETag, so a write through
either protocol is what the other reads next, and a page one of them fetched is a hit for the other. The cache keeps
an object's bytes, ETag, size and modification time, and its metadata with its status (see ``object_metadata``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime

from aiohttp import web
from multidict import CIMultiDict, MultiMapping

from cache_service.api.s3.errors import S3Error
from cache_service.api.s3.object_metadata import request_metadata, response_headers, write_through
from cache_service.api.s3.payload import Payload
from cache_service.api.s3.request import QueryParams, Target
from cache_service.api.streaming import DataResponse, stream_body
from cache_service.metadata import StatusCache
from cache_service.namespace.reads import ObjectReader, Span
from cache_service.namespace.status import FileStatus
from cache_service.write.uploads import Uploader

log = logging.getLogger(__name__)

_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*")
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


def check_conditions(headers: MultiMapping[str], etag: str, mtime: float) -> int | None:
    """304 or 412 when a conditional header says so of the object version ``etag`` names, modified at ``mtime``
    (RFC 9110 order, as S3 applies it), else None."""
    modified = int(mtime)  # HTTP dates have whole seconds
    if_match = headers.get("If-Match")
    if if_match is not None:
        if not _etag_matches(if_match, etag):
            return 412
    else:
        since = _date(headers.get("If-Unmodified-Since"))
        if since is not None and modified > since:
            return 412
    if_none_match = headers.get("If-None-Match")
    if if_none_match is not None:
        if _etag_matches(if_none_match, etag):
            return 304
    else:
        since = _date(headers.get("If-Modified-Since"))
        if since is not None and modified <= since:
            return 304
    return None


@dataclass(frozen=True)
class _Answer:
    """What GetObject or HeadObject answers for one version of an object."""

    status: int
    headers: CIMultiDict[str]
    length: int  # Content-Length
    span: Span | None  # the bytes to read for the body; None for HEAD and 304


class ObjectHandlers:
    """GetObject, HeadObject and PutObject on keys that have a cache path."""

    def __init__(self, reads: ObjectReader, uploader: Uploader, status: StatusCache) -> None:
        self._reads = reads
        self._uploader = uploader
        self._status = status

    async def get(
        self, request: web.Request, path: str, target: Target, params: QueryParams, request_id: str
    ) -> web.StreamResponse:
        """GetObject (and HeadObject) of the object at cache path ``path``: ranges, conditions and response
        overrides, bytes from the page store."""
        assert target.key is not None
        head = request.method == "HEAD"
        overrides = {header: params.get(name) for name, header in _OVERRIDES.items() if name in params}
        for name, value in overrides.items():
            if value is not None and any(ord(c) < 0x20 and c != "\t" for c in value):
                raise S3Error("InvalidArgument", f"Invalid value for {name}", ArgumentName=name)

        def answer(st: FileStatus) -> _Answer:
            assert st.object is not None, "an object's status names its version"
            headers = CIMultiDict(
                {
                    "ETag": f'"{st.object.etag}"',
                    "Last-Modified": http_date(st.mtime),
                    "Accept-Ranges": "bytes",
                    "x-amz-request-id": request_id,
                    "x-amz-id-2": request_id,
                }
            )
            condition = check_conditions(request.headers, st.object.etag, st.mtime)
            if condition == 304:
                return _Answer(304, headers, 0, None)
            if condition == 412:
                raise S3Error("PreconditionFailed", Condition="If-Match or If-Unmodified-Since")
            span = byte_range(request.headers.get("Range"), st.length)
            start, end = span if span is not None else (0, st.length)
            if span is not None:
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{st.length}"
            return _Answer(206 if span is not None else 200, headers, end - start, None if head else (start, end))

        try:
            chosen, read = await self._reads.open_object(path, answer)
        except FileNotFoundError:
            raise S3Error("NoSuchKey", Key=target.key) from None
        if chosen.status == 304:
            return web.Response(status=304, headers=chosen.headers)
        version = read.status.object
        assert version is not None
        try:
            metadata = await self._status.metadata(version.bucket, version.key, version.etag)
        except BaseException as exc:
            close = getattr(read.rest, "aclose", None)
            if close is not None:
                await close()
            if isinstance(exc, FileNotFoundError):
                raise S3Error("NoSuchKey", Key=target.key) from None
            raise
        chosen.headers.extend(response_headers(metadata))
        chosen.headers.update({k: v for k, v in overrides.items() if v is not None})
        response = DataResponse(status=chosen.status, headers=chosen.headers)
        response.content_length = chosen.length
        return await stream_body(request, response, read.first, read.rest, what=f"s3 api: GET of {request.path}")

    async def put(
        self, target: Target, headers: MultiMapping[str], payload: Payload, request_id: str
    ) -> web.StreamResponse:
        """PutObject: spool the body, check it, upload it to S3 with its metadata and cache its pages; answers once
        S3 holds it."""
        assert target.key is not None
        metadata = request_metadata(headers)
        payload.require_length()
        uploader = self._uploader
        spool = uploader.spool_file()
        try:
            digests = await payload.spool(spool)
            try:
                obj = await write_through(uploader, target.bucket, target.key, spool, metadata)
            except FileNotFoundError:
                raise S3Error("NoSuchBucket", BucketName=target.bucket) from None
        finally:
            spool.unlink(missing_ok=True)
        answer = {"ETag": f'"{obj.etag}"', "x-amz-request-id": request_id, "x-amz-id-2": request_id}
        answer.update({f"x-amz-checksum-{alg}": value for alg, value in digests.checksums.items()})
        return web.Response(status=200, headers=answer)
