"""Warm WebHDFS reads (``OPEN``, ``GETFILESTATUS``) answered straight from the connection's ``data_received``.

A warm 64 KiB ``OPEN`` through aiohttp costs about 50 µs of CPU, twenty-five times nginx's: a task wake-up, a
request object with its parsed URL and query, a routing pass and a response object, for a request whose answer is
a memoryview of a page already in memory. ``WarmReads`` answers the simplest such request without any of that:
one complete HTTP/1.1 ``GET`` head, arriving alone on an idle connection (``api.connection`` decides that), for
``op=OPEN`` of a published file whose status is fresh in the status cache and whose pages in range are all in the
memory tier (``ObjectReader.read_in_memory``), or for ``op=GETFILESTATUS`` of such a file (which Hadoop clients ask
before opening it). It answers with the same headers and bytes the handler would, and counts the request in the
same metrics, ``lakecache_warm_requests_total`` besides.

Anything else, and any doubt (percent-encoded query, unusual headers, an error to report, a page on disk or in
S3, a large range, debug logging on), returns None and the request goes to aiohttp unchanged, which answers it as
before.
"""

from __future__ import annotations

import logging
import time
from email.utils import formatdate
from functools import lru_cache

from aiohttp.http import SERVER_SOFTWARE

from cache_service.api.webhdfs.access import MountAccess
from cache_service.api.webhdfs.api import log as request_log
from cache_service.api.webhdfs.errors import json_payload
from cache_service.api.webhdfs.file_status import status_json
from cache_service.api.webhdfs.request import PREFIX, caller
from cache_service.metrics import CacheMetrics
from cache_service.namespace.filesystem import CacheFileSystem
from cache_service.namespace.paths import parse_raw_path
from cache_service.namespace.reads import ObjectReader

MOST_BYTES = 4 * 2**20
"""Larger ranges are streamed by the ``OPEN`` handler, which waits for the client to drain what it was sent."""

_REQUEST_PREFIX = f"GET {PREFIX}/".encode()
_VERSION = b" HTTP/1.1"
# Headers that give a GET a body, ask for a different connection or expect an interim answer: aiohttp's business.
_REFUSED_HEADERS = (b"\r\ncontent-length:", b"\r\ntransfer-encoding:", b"\r\nexpect:", b"\r\nupgrade:")
_CONNECTION = b"\r\nconnection:"
_SERVER = b"\r\nServer: " + SERVER_SOFTWARE.encode()
_DATA_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\nDate: %s"
    + _SERVER
    + b"\r\n\r\n"
)
# WebHDFS JSON without a Content-Type, as the handler sends it (see ``JsonBody``).
_JSON_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nDate: %s" + _SERVER + b"\r\n\r\n"


@lru_cache(maxsize=8192)
def _cache_path(raw: str) -> str | None:
    """The cache path of an encoded request path, or None if ``parse_raw_path`` refuses it (memoised: pure)."""
    try:
        return parse_raw_path(raw)
    except ValueError:
        return None


def _number(text: str | None) -> int | None:
    """A plain decimal parameter; -1 for anything the handler would have to refuse or decode."""
    if text is None or text == "":
        return None
    return int(text) if text.isdigit() else -1


class WarmReads:
    """Answers warm ``OPEN`` and ``GETFILESTATUS`` request heads from memory, or says the handler must."""

    def __init__(
        self, fs: CacheFileSystem, reads: ObjectReader, metrics: CacheMetrics, access: MountAccess | None = None
    ) -> None:
        self._fs = fs
        self._access = access or MountAccess(fs.mounts)
        self._reads = reads
        self._metrics = metrics
        self._counted = {op: metrics.warm_requests.labels(op=op) for op in ("OPEN", "GETFILESTATUS")}
        self._by_user = metrics.user_requests("webhdfs", self._access.user_names)
        self._date_second = 0
        self._date = b""

    def answer(self, head: bytes) -> list[bytes | memoryview] | None:
        """The whole response to the complete request ``head`` (ending in a blank line), or None."""
        if request_log.isEnabledFor(logging.DEBUG):
            return None  # the handler writes a debug line for every request
        started = time.perf_counter()
        request = _parse(head)
        if request is None:
            return None
        path, params = request
        op = params.get("op", "").upper()
        if not self._access.allows("GET", op, path, params):
            return None  # the handler refuses it
        if op == "OPEN":
            response = self._open(path, params)
        elif op == "GETFILESTATUS":
            response = self._status(path, params)
        else:
            return None
        if response is not None:
            self._counted[op].inc()
            self._by_user.count(self._access.caller(params), allowed=True)
            self._metrics.observe_request("webhdfs", op, 200, time.perf_counter() - started)
        return response

    def _open(self, path: str, params: dict[str, str]) -> list[bytes | memoryview] | None:
        offset, length, buffer_size = (_number(params.get(n)) for n in ("offset", "length", "buffersize"))
        if -1 in (offset, length, buffer_size):
            return None
        chunks = self._reads.read_in_memory(path, offset or 0, length, most=MOST_BYTES)
        if chunks is None:
            return None
        response: list[bytes | memoryview] = [_DATA_HEAD % (sum(map(len, chunks)), self._http_date())]
        response.extend(chunks)
        return response

    def _status(self, path: str, params: dict[str, str]) -> list[bytes | memoryview] | None:
        st = self._fs.known_status(path)
        if st is None:
            return None
        body = json_payload({"FileStatus": status_json(st, "", caller(params))})
        return [_JSON_HEAD % (len(body), self._http_date()), body]

    def _http_date(self) -> bytes:
        now = int(time.time())
        if now != self._date_second:
            self._date_second, self._date = now, formatdate(now, usegmt=True).encode()
        return self._date


def _parse(head: bytes) -> tuple[str, dict[str, str]] | None:
    """The cache path and parameters of a plain ``GET /webhdfs/v1/...`` head, or None if it is anything else."""
    line_end = head.find(b"\r\n")
    line = head[:line_end]
    if not line.startswith(_REQUEST_PREFIX) or not line.endswith(_VERSION):
        return None
    headers = head[line_end:].lower()
    if any(name in headers for name in _REFUSED_HEADERS):
        return None
    at = headers.find(_CONNECTION)
    if at >= 0 and b"keep-alive" not in headers[at : headers.find(b"\r\n", at + 2)]:
        return None
    try:
        target = line[4 : -len(_VERSION)].decode("ascii")
    except UnicodeDecodeError:
        return None
    raw, _, query = target.partition("?")
    if " " in target or "%" in query or "+" in query:
        return None
    path = _cache_path(raw[len(PREFIX) :])
    if path is None:
        return None
    params: dict[str, str] = {}
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        params.setdefault(name, value)
    return path, params
