"""Warm S3 reads (``GetObject``, ``HeadObject``) answered straight from the connection's ``data_received``.

The WebHDFS port's warm fast path (``api.webhdfs.warm_reads``) for the S3 port. A warm ranged ``GetObject`` through
aiohttp and ``S3Api.handle`` costs some 300 µs of the worker's CPU (a task, a request object, routing, a request id
from ``uuid4``, a response object whose headers and body aiohttp joins into one copy) for an answer that is
memoryviews of pages already in memory: several times the client's own wait. ``WarmObjectReads`` answers the plain
case from the request head alone: one complete HTTP/1.1 ``GET`` or ``HEAD`` head with no body, arriving alone on an
idle connection (``api.connection`` decides that), that ``S3Api.admit`` admits exactly as ``S3Api.handle`` would
(signature, target, operation), for a key with a cache path whose status and metadata are fresh in the status cache
and whose pages in range are all in the memory tier. It answers with the headers and bytes the handler would send
and counts the request in the same metrics, ``lakecache_warm_requests_total`` besides.

Anything else, and any doubt (a query beyond a presigned URL's, a conditional header, an error to report, a page on
disk or in S3, a large range, debug logging on), returns None and the request goes to aiohttp unchanged.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from email.utils import formatdate
from functools import lru_cache

from aiohttp.http import SERVER_SOFTWARE
from multidict import CIMultiDict

from cache_service.api.s3.errors import S3Error
from cache_service.api.s3.object_metadata import response_headers
from cache_service.api.s3.objects import byte_range, http_date
from cache_service.api.s3.request import Target
from cache_service.api.s3.sigv4 import PRESIGN_PARAMS
from cache_service.metadata import StatusCache
from cache_service.metrics import CacheMetrics, UserRequests
from cache_service.namespace.filesystem import CacheFileSystem
from cache_service.namespace.reads import ObjectReader
from cache_service.under_store import ObjectMetadata

MOST_BYTES = 4 * 2**20
"""Larger ranges are streamed by the handler, which waits for the client to drain what it was sent."""

Admit = Callable[[str, str, CIMultiDict[str], int], tuple[str, Target, str] | None]
"""``S3Api.admit_read``: (method, request target, headers, their size) to the operation, target and user, or None."""

_METHODS = {b"GET ": "GET", b"HEAD ": "HEAD"}
_VERSION = " HTTP/1.1"
# Headers that give a request a body, ask for another connection or expect an interim answer: aiohttp's business;
# conditions: the handler's.
_REFUSED_HEADERS = frozenset(
    {
        "content-length",
        "transfer-encoding",
        "expect",
        "upgrade",
        "if-match",
        "if-none-match",
        "if-modified-since",
        "if-unmodified-since",
    }
)
_SERVER = "Server: " + SERVER_SOFTWARE
_REASONS = {200: "OK", 206: "Partial Content"}

log = logging.getLogger("cache_service.api.s3.app")  # the handler's logger: its debug lines name every request


_last_modified = lru_cache(maxsize=1024)(http_date)  # formatdate costs as much as the rest of the headers


@lru_cache(maxsize=1024)
def _metadata_lines(metadata: ObjectMetadata) -> str:
    """The header lines of an object's metadata, as the handler sends them (``response_headers``)."""
    return "\r\n".join(f"{name}: {value}" for name, value in response_headers(metadata).items())


class WarmObjectReads:
    """Answers warm ``GetObject`` and ``HeadObject`` request heads from memory, or says the handler must."""

    def __init__(
        self,
        *,
        admit: Admit,
        by_user: UserRequests,
        fs: CacheFileSystem,
        reads: ObjectReader,
        status: StatusCache,
        metrics: CacheMetrics,
    ) -> None:
        self._admit = admit
        self._by_user = by_user
        self._fs = fs
        self._reads = reads
        self._status = status
        self._metrics = metrics
        self._counted = {op: metrics.warm_requests.labels(op=op) for op in ("GetObject", "HeadObject")}
        self._date_second = 0
        self._date = ""

    def answer(self, head: bytes) -> list[bytes | memoryview] | None:
        """The whole response to the complete request ``head`` (ending in a blank line), or None."""
        if log.isEnabledFor(logging.DEBUG):
            return None
        started = time.perf_counter()
        request = _parse(head)
        if request is None:
            return None
        method, raw_target, headers, header_bytes = request
        admitted = self._admit(method, raw_target, headers, header_bytes)
        if admitted is None:
            return None
        op, target, user = admitted
        answered = self._object(method == "HEAD", target, headers)
        if answered is None:
            return None
        status, response = answered
        self._counted[op].inc()
        self._by_user.count(user, allowed=True)
        self._metrics.observe_request("s3", op, status, time.perf_counter() - started)
        return response

    def _object(
        self, head: bool, target: Target, headers: CIMultiDict[str]
    ) -> tuple[int, list[bytes | memoryview]] | None:
        if target.key is None:
            return None
        path = self._reads.cache_path(target.bucket, target.key)
        if path is None:
            return None
        st = self._fs.known_status(path)
        if st is None or st.object is None:
            return None
        metadata = self._status.known_metadata(st.object.bucket, st.object.key, st.object.etag)
        if metadata is None:
            return None
        try:
            span = byte_range(headers.get("Range"), st.length)
        except S3Error:  # InvalidRange: the handler answers it
            return None
        if span is not None and head:
            return None  # a HEAD with a Range: rare, and the handler's to answer
        start, end = span if span is not None else (0, st.length)
        chunks: Sequence[bytes | memoryview] = ()
        if not head:
            if end - start > MOST_BYTES or end <= start:
                return None
            found = self._reads.span_in_memory(st, start, end - start)
            if found is None:
                return None
            chunks = found
        status = 200 if span is None else 206
        request_id = f"{random.getrandbits(64):016X}"  # 16 hex digits, as the handler's (without a syscall)
        lines = [
            f"HTTP/1.1 {status} {_REASONS[status]}",
            f'ETag: "{st.object.etag}"',
            f"Last-Modified: {_last_modified(st.mtime)}",
            "Accept-Ranges: bytes",
            f"x-amz-request-id: {request_id}",
            f"x-amz-id-2: {request_id}",
        ]
        if span is not None:
            lines.append(f"Content-Range: bytes {start}-{end - 1}/{st.length}")
        lines += [_metadata_lines(metadata), f"Content-Length: {end - start}", f"Date: {self._http_date()}", _SERVER]
        lines += ["", ""]
        response: list[bytes | memoryview] = ["\r\n".join(lines).encode("latin-1")]
        response.extend(chunks)
        return status, response

    def _http_date(self) -> str:
        now = int(time.time())
        if now != self._date_second:
            self._date_second, self._date = now, formatdate(now, usegmt=True)
        return self._date


def _parse(head: bytes) -> tuple[str, str, CIMultiDict[str], int] | None:
    """Method, request target, headers and their size (as ``S3Api.handle`` counts it) of a plain ``GET`` or ``HEAD``
    head, or None if it is anything else."""
    method = _METHODS.get(head[:5]) or _METHODS.get(head[:4])
    if method is None:
        return None
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        return None
    line, *fields = text[: -len("\r\n\r\n")].split("\r\n")
    if not line.endswith(_VERSION):
        return None
    raw_target = line[len(method) + 1 : -len(_VERSION)]
    if not raw_target.startswith("/") or " " in raw_target:
        return None
    _, _, query = raw_target.partition("?")
    if query and any(pair.partition("=")[0] not in PRESIGN_PARAMS for pair in query.split("&")):
        return None  # subresources, response overrides, versions: the handler's
    headers: CIMultiDict[str] = CIMultiDict()
    size = 0
    for field in fields:
        name, colon, value = field.partition(":")
        if not colon or not name or name != name.strip() or name[0] in " \t":
            return None  # obsolete line folding or a malformed field: aiohttp decides
        lowered = name.lower()
        if lowered in _REFUSED_HEADERS:
            return None
        if lowered == "connection" and value.strip().lower() != "keep-alive":
            return None
        value = value.strip(" \t")
        headers.add(name, value)
        size += len(name) + len(value) + 4
    return method, raw_target, headers, size
