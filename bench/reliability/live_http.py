"""Generated requests, byte for byte, to both ports of a live worker: no answer may be a 5xx, and the worker lives.

hypothesis builds each request from the tokens the worker's parsers care about (ops, parameters, encoded and raw
bytes in paths, ranges, headers, XML bodies) and sends it over a socket of its own, so that whatever it builds
reaches the server unchanged: no HTTP client tidies a path or refuses a header first. Requests to the S3 port are
mostly signed correctly (by the cache's own SigV4 signer), so they get past authentication into the handlers.

Writes are part of the mix (WebHDFS CREATE, DELETE, RENAME; S3 PUT, DELETE, multipart): use a throwaway worker.

Against a cluster each request goes to a worker hypothesis picks, so the cluster's paths are exercised: OPENs
redirected to a block's owner (and requests claiming to be redirected, which the owner serves, fetching other
blocks from their owners), S3 reads through a worker that reads the owner's pages, staging requests relayed to
their home, and the peer API (``/cluster/v1/...``) with and without the cluster's secret. A peer call without the
secret must answer 401 (else it counts as ``nonconforming``): only workers of the cluster may make one.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bench.reliability.campaign import QUICK, Budget, BudgetSpentError, CampaignResult
from bench.reliability.worker import DATA_SET
from cache_service.api.s3.request import QueryParams
from cache_service.api.s3.sigv4 import STREAMING_MODES, UNSIGNED_PAYLOAD, Credentials, sign_headers
from cache_service.api.webhdfs.api import REDIRECTED
from cache_service.api.webhdfs.staging_relay import FORWARDED
from cache_service.cluster.peers import INVALIDATIONS_PATH, PAGES_PATH, SECRET_HEADER, WATCH_PATH
from cache_service.cluster.staging import REPLICA

UPSTREAM_FAILURE = "the under store failed a forwarded request"
"""What the worker logs when it passes on S3's own 5xx (``forward._relay``)."""
NOT_IMPLEMENTED = 501
"""S3's answer to what it does not implement (the cache's S3 API: browser POST uploads): by design, not a failure."""
TIMEOUT = 20.0
"""Seconds to wait for an answer's status line; past it the request counts as a crash (no answer)."""
SECRET = "<cluster secret>"
"""Stands for the cluster's secret in a generated peer request; replaced by the real one as it is sent."""
PEER_ROUTES = {PAGES_PATH: {"GET", "HEAD", "PUT"}, WATCH_PATH: {"GET", "HEAD"}, INVALIDATIONS_PATH: {"POST"}}
"""The peer API's routes and their methods: a call to one without the secret must answer 401."""


@dataclass(frozen=True)
class RawRequest:
    """One request as it goes on the wire."""

    method: str
    target: str  # path and query, as sent
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def wire(self, host: str) -> bytes:
        """The request's bytes; text that is not UTF-8 (surrogates) goes as the raw bytes it stands for."""
        lines = [f"{self.method} {self.target} HTTP/1.1", f"Host: {host}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + self.body


def _joined(parts: st.SearchStrategy[str], most: int) -> st.SearchStrategy[str]:
    return st.lists(parts, max_size=most).map("".join)


def _tokens(*words: str, url: bool = False) -> st.SearchStrategy[str]:
    """One of ``words`` three times in four, else a little arbitrary text (percent-encoded for a ``url``, printable
    for a header: anything else is refused by the HTTP parser, before the API, and ``garbled`` sends some of that)."""
    known = st.sampled_from(words)
    other = (
        st.text(max_size=4).map(lambda text: quote(text, safe=""))
        if url
        else st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=4)
    )
    return st.one_of(known, known, known, other)


def _names(*words: str) -> st.SearchStrategy[str]:
    """Header names: one of ``words``, or one of the client's own (a token: letters, digits and dashes)."""
    known = st.sampled_from(words)
    return st.one_of(known, known, known, st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8))


_SEGMENT = _tokens(
    "warehouse", "events", "dt=2026-12-01", "part-0.bin", "_temporary", "new", "a b", "%20", "%2F", "%2e%2e", "..",
    ".", "%00", "%ff", "%C3%A9", "\udc80", "é", "%", "~", ";", "a" * 300,
    url=True,
)  # fmt: skip
_WEBHDFS_OPS = _tokens(
    "OPEN", "GETFILESTATUS", "LISTSTATUS", "LISTSTATUS_BATCH", "GETCONTENTSUMMARY", "GETFILECHECKSUM",
    "GETFILEBLOCKLOCATIONS", "GETHOMEDIRECTORY", "GETQUOTAUSAGE", "GETSERVERDEFAULTS", "GETSTATUS", "CHECKACCESS",
    "CREATE", "MKDIRS", "RENAME", "DELETE", "APPEND", "TRUNCATE", "CONCAT", "SETPERMISSION", "SETTIMES",
    "SETREPLICATION", "GETXATTRS", "CREATESNAPSHOT", "open", "",
    url=True,
)  # fmt: skip
_WEBHDFS_PARAMS = _tokens(
    "offset", "length", "buffersize", "overwrite", "recursive", "permission", "destination", "sources",
    "newlength", "replication", "data", "noredirect", "user.name", "doas", "startAfter", "fsaction", "modificationtime",
    REDIRECTED, url=True,
)  # fmt: skip
_VALUES = _tokens(
    "0", "1", "-1", "4096", "9" * 25, "true", "false", "TRUE", "755", "1777", "9999", "/warehouse/new",
    "/warehouse/events", "/elsewhere", "%2Fwarehouse", "rwx", "r-x", "²", "%00", "\udc80", "",
    url=True,
)  # fmt: skip
_ADMIN_ROUTES = _tokens(
    "status", "mounts", "cluster", "cluster/targets", "cluster/drain", "stat", "ls", "load", "free", "purge",
    "pin", "unpin", "purges", "pins", "ttl", "ttl/sweep", "jobs", "jobs/x", "jobs/x/cancel", "openapi.json",
    url=True,
)  # fmt: skip
_HEADERS = st.tuples(
    _names("Range", "Content-Type", "Expect", "Authorization", "Transfer-Encoding", "X-Forwarded-For", "Accept",
           FORWARDED, REPLICA),
    _tokens("bytes=0-1", "bytes=-5", "bytes=9-1", "application/json", "100-continue", "Bearer x", "identity", "*/*"),
)  # fmt: skip
_KNOWN_METHODS = st.sampled_from(["GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS", "PATCH"])
# One in twenty garbled, for the HTTP parser's refusals.
_METHODS = st.sampled_from([True] * 19 + [False]).flatmap(
    lambda known: _KNOWN_METHODS if known else st.text(max_size=6)
)
_JSON = _tokens(
    "{", "}", '"paths"', '"path"', ":", "[", "]", ",", '"/warehouse"', '"/warehouse/events"', "null", "true", "1e999",
    "0.5", '"target"', '"ttl"', '"1h"', '"worker"', '"w-000000000000"', "NaN", "\\ud800", '"',
)  # fmt: skip


_PEER_PARAMS = _tokens("bucket", "key", "etag", "size", "start", "end", "cached", "tier", url=True)
_PEER_VALUES = _tokens(
    "fuzz", "warehouse/events/dt=2026-12-01/part-0.bin", "%22etag%22", "0", "1", "1000", "-1", "9" * 25, "only",
    "memory", "disk", "",
    url=True,
)  # fmt: skip
_PEER_AUTHORIZATION = st.sampled_from([(), ((SECRET_HEADER, "Bearer x"),), ((SECRET_HEADER, f"Bearer {SECRET}"),)])


def _query(names: st.SearchStrategy[str], values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pair = st.tuples(names, values).map(lambda p: f"{p[0]}={p[1]}") | names
    return st.lists(pair, max_size=3).map("&".join)


_READS = st.sampled_from(["OPEN"] * 4 + ["GETFILEBLOCKLOCATIONS", "GETFILECHECKSUM", "GETFILESTATUS"])
_READ_PARAMS = _tokens("offset", "offset", "length", "length", REDIRECTED, "buffersize", url=True)
_READ_VALUES = _tokens("0", "1", "4095", "4096", "5000", "8192", "9999", "12288", url=True)


@st.composite
def webhdfs_requests(draw: Any, bucket: str = "fuzz") -> RawRequest:
    """A request to the WebHDFS port: WebHDFS ops above all (reads of the files of ``DATA_SET`` among them), the
    admin API, the peer API (about objects of ``bucket`` too) and the status endpoints."""
    kind = draw(st.sampled_from(["webhdfs"] * 6 + ["read"] * 3 + ["admin"] * 3 + ["peer"] * 2 + ["other"]))
    if kind == "read":
        query = f"op={draw(_READS)}&" + draw(_query(_READ_PARAMS, _READ_VALUES))
        target = f"/webhdfs/v1/{draw(st.sampled_from(sorted(DATA_SET)))}?{query}"
        return RawRequest(draw(st.sampled_from(["GET"] * 9 + ["HEAD"])), target, (), b"")
    if kind == "peer":
        path = draw(st.sampled_from([*PEER_ROUTES, "/cluster/v1/", PAGES_PATH + "/x"]))
        query = draw(_query(_PEER_PARAMS, st.one_of(st.just(bucket), _PEER_VALUES)))
        body = draw(
            st.one_of(_joined(_JSON, 12).map(lambda t: t.encode("utf-8", "surrogateescape")), st.binary(max_size=64))
        )
        target = f"{path}?{query}" if query else path
        return RawRequest(draw(_METHODS), target, draw(_PEER_AUTHORIZATION), body)
    if kind == "webhdfs":
        path = "/webhdfs/v1/" + "/".join(draw(st.lists(_joined(_SEGMENT, 3), max_size=5)))
        query = draw(_query(_WEBHDFS_PARAMS, _VALUES))
        query = f"op={draw(_WEBHDFS_OPS)}&{query}" if draw(st.integers(0, 9)) or not query else query
        body = draw(st.binary(max_size=64))
    elif kind == "admin":
        path = "/admin/v1/" + draw(_ADMIN_ROUTES)
        query = draw(_query(_tokens("path", "limit", "x", url=True), _VALUES))
        body = draw(_joined(_JSON, 12)).encode("utf-8", "surrogateescape")
    else:
        path = draw(st.sampled_from(["/metrics", "/healthz", "/readyz", "/", "/webhdfs", "/admin", "//", "/%2e%2e/"]))
        query, body = draw(_query(_WEBHDFS_PARAMS, _VALUES)), b""
    target = f"{path}?{query}" if query else path
    return RawRequest(draw(_METHODS), target, tuple(draw(st.lists(_HEADERS, max_size=3))), body)


_S3_PARAMS = _tokens(
    "uploads", "uploadId", "partNumber", "delete", "list-type", "max-keys", "prefix", "delimiter", "encoding-type",
    "continuation-token", "start-after", "location", "versionId", "acl", "tagging", "versioning",
    url=True,
)  # fmt: skip
_S3_VALUES = _tokens("2", "1", "0", "-1", "10001", "1000", "url", "/", "warehouse/", "x", "%C2%B2", "%2F", "", url=True)
_XML = _tokens(
    "<Delete>", "</Delete>", "<Object>", "</Object>", "<Key>", "</Key>", "warehouse/events/dt=2026-12-01/part-0.bin",
    "<CompleteMultipartUpload>", "</CompleteMultipartUpload>", "<Part>", "</Part>", "<PartNumber>1</PartNumber>",
    "<ETag>x</ETag>", "<Quiet>true</Quiet>", "<!DOCTYPE a>", "&amp;", "<?xml version='1.0'?>",
)  # fmt: skip
_CHUNKS = _tokens("5", "0", "-5", "+5", "ffffffff", ";chunk-signature=" + "0" * 64, "\r\n", "hello",
                  "x-amz-checksum-crc32:AAAAAA==", "x-amz-trailer-signature:" + "0" * 64)  # fmt: skip
STREAMING = sorted(STREAMING_MODES)
_S3_HEADERS = st.tuples(
    _names("Range", "Content-Type", "x-amz-meta-a", "x-amz-copy-source", "Content-MD5", "If-Match", "x-amz-acl",
            "x-amz-checksum-crc32", "Content-Encoding", "x-amz-decoded-content-length", "x-amz-trailer"),
    _tokens("bytes=0-1", "bytes=-5", "bytes=99999-", "text/plain", "v", "/other/key", "1B2M2Y8AsgTpgAmY7PhCfg==",
            '"etag"', "private", "AAAAAA==", "aws-chunked", "5", "x-amz-checksum-crc32"),
)  # fmt: skip


@st.composite
def s3_requests(draw: Any, bucket: str) -> tuple[RawRequest, bool, str]:
    """A request to the S3 port (bucket and key mostly inside the mount), whether to sign it, and its payload hash."""
    name = draw(st.sampled_from([bucket] * 12 + ["other-bucket", "a..b", "%2F"]))
    key = draw(st.sampled_from(["warehouse/", "warehouse/events/dt=2026-12-01/", "outside/", "", "known"]))
    key = draw(st.sampled_from(sorted(DATA_SET))) if key == "known" else key + draw(_joined(_SEGMENT, 4))
    path = f"/{name}/{key}" if key or draw(st.booleans()) else f"/{name}"
    query = draw(_query(_S3_PARAMS, _S3_VALUES))
    body = draw(st.one_of(_joined(_XML, 10), _joined(_CHUNKS, 8), st.binary(max_size=64).map(_latin1)))
    body_bytes = body.encode("utf-8", "surrogateescape")
    headers = tuple(draw(st.lists(_S3_HEADERS, max_size=3)))
    signed = draw(st.sampled_from([True] * 4 + [False]))
    payload = draw(st.sampled_from([UNSIGNED_PAYLOAD, hashlib.sha256(body_bytes).hexdigest(), "0" * 64, *STREAMING]))
    target = f"{path}?{query}" if query else path
    return RawRequest(draw(_METHODS), target, headers, body_bytes), signed, payload


def _latin1(data: bytes) -> str:
    return data.decode("latin-1")


def _signed(request: RawRequest, host: str, payload: str, credentials: Credentials, region: str) -> RawRequest:
    raw_path, _, raw_query = request.target.partition("?")
    headers = {"host": host, **{name.lower(): value for name, value in request.headers}}
    sign_headers(
        method=request.method,
        raw_path=raw_path,
        query=QueryParams.parse(raw_query).pairs,
        headers=headers,
        payload_hash=payload,
        credentials=credentials,
        region=region,
        now=time.time(),
    )
    headers.pop("host")
    return RawRequest(request.method, request.target, tuple(headers.items()), request.body)


def send(url: str, request: RawRequest, timeout: float = TIMEOUT) -> int | None:
    """Send ``request`` to the server at ``url``; the final answer's status (past any 100 Continue), or None when
    there was no answer."""
    address = urlsplit(url)
    answer = b""
    try:
        with socket.create_connection((address.hostname, address.port), timeout=timeout) as sock:
            sock.sendall(request.wire(address.netloc))
            while (status := _final_status(answer)) is None:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
    except OSError:
        return None
    return status


def _final_status(answer: bytes) -> int | None:
    """The status of the first answer in ``answer`` that is not interim (1xx), once its status line is complete."""
    while b"\r\n" in answer:
        line = answer.split(b"\r\n", 1)[0]
        parts = line.split(b" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            return None
        status = int(parts[1])
        if status >= 200:
            return status
        if b"\r\n\r\n" not in answer:
            return None
        answer = answer.split(b"\r\n\r\n", 1)[1]
    return None


def alive(webhdfs_url: str, s3_url: str) -> bool:
    """True when both ports answer: ``/healthz`` 200 on the WebHDFS port, any S3 answer below 500 on the other."""
    health = send(webhdfs_url, RawRequest("GET", "/healthz", (), b""), timeout=10)
    s3 = send(s3_url, RawRequest("GET", "/", (), b""), timeout=10)
    return health == 200 and s3 is not None and s3 < 500


def _campaign(
    name: str,
    urls: Sequence[str],
    strategy: st.SearchStrategy[Any],
    prepare: Callable[[Any, str], RawRequest],
    budget: Budget,
    result: CampaignResult,
    logs: Sequence[_LogTail],
    secret: str | None,
) -> None:
    """Send ``strategy``'s requests, each to one of ``urls`` (hypothesis picks), made ready by ``prepare`` for that
    worker, with ``SECRET`` replaced by ``secret`` if given, until ``budget`` is spent; count the answers in
    ``result``. A 5xx that a worker logged in ``logs`` as S3's own is counted apart."""
    deadline = time.monotonic() + budget.seconds if budget.seconds is not None else float("inf")

    @given(drawn=strategy, url=st.sampled_from(list(urls)))
    @settings(
        max_examples=budget.cases or 10**9,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def one(drawn: Any, url: str) -> None:
        if time.monotonic() > deadline:
            raise BudgetSpentError
        request = prepare(drawn, url)
        sent = _with_secret(request, secret)
        status = send(url, sent)
        result.cases += 1
        result.statuses[str(status)] = result.statuses.get(str(status), 0) + 1
        example = f"{request.method} {request.target!r} headers={request.headers!r} body={request.body[:100]!r}"
        refused_peer = secret is not None and _peer_call_without_secret(sent, secret)
        if status is None:
            result.crashes += 1
            result.note(f"{name}: no answer", "the connection closed or timed out before a status line", example)
        elif status == NOT_IMPLEMENTED:
            result.note(f"{name}: 501", "NotImplemented, as S3 answers what it does not do", example, failure=False)
        elif status >= 500 and [log for log in logs if UPSTREAM_FAILURE in log.new_text()]:
            result.upstream_errors += 1
            result.note(f"{name}: S3's own {status} passed on", UPSTREAM_FAILURE, example, failure=False)
        elif status >= 500:
            result.server_errors += 1
            result.note(f"{name}: {status} to {request.method}", f"answered {status}", example)
        elif refused_peer and status != 401:
            result.nonconforming += 1
            result.note(f"{name}: peer call without the secret answered {status}", "not 401", example)

    with contextlib.suppress(BudgetSpentError):
        one()


def _with_secret(request: RawRequest, secret: str | None) -> RawRequest:
    """``request`` with ``SECRET`` in its headers replaced by ``secret`` (left as it is without one)."""
    if secret is None:
        return request
    headers = tuple((name, value.replace(SECRET, secret)) for name, value in request.headers)
    return RawRequest(request.method, request.target, headers, request.body)


def _peer_call_without_secret(request: RawRequest, secret: str) -> bool:
    """True when ``request`` reaches a peer API route with one of its methods, without the cluster's secret."""
    methods = PEER_ROUTES.get(request.target.partition("?")[0], set())
    given = [value for name, value in request.headers if name.lower() == SECRET_HEADER.lower()]
    return request.method in methods and given != [f"Bearer {secret}"]


class _LogTail:
    """What the worker's log gained since the last look."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._seen = path.stat().st_size if path.exists() else 0

    def new_text(self) -> str:
        with self._path.open("rb") as log:
            log.seek(self._seen)
            text = log.read()
        self._seen += len(text)
        return text.decode("utf-8", "replace")


def run_live_http(
    webhdfs_urls: Sequence[str],
    s3_urls: Sequence[str],
    bucket: str,
    credentials: Credentials,
    *,
    region: str = "us-east-1",
    budget: Budget = QUICK,
    log_paths: Sequence[Path] = (),
    peer_secret: str | None = None,
    label: str = "",
) -> list[CampaignResult]:
    """One campaign per port of the workers at ``webhdfs_urls`` and ``s3_urls`` (each request to one of them), each
    for ``budget``'s cases and half its time; S3 requests address ``bucket`` mostly and are mostly signed with
    ``credentials``. With the workers' ``log_paths``, a 5xx that a worker logged as S3's own counts as
    ``upstream_errors``, not as the worker's. With the cluster's ``peer_secret``, peer calls are sent with it too,
    and one without it must answer 401. ``label`` ends the results' names (``, 3 workers``)."""
    results = []

    def s3_prepare(drawn: tuple[RawRequest, bool, str], url: str) -> RawRequest:
        request, signed, payload = drawn
        return _signed(request, urlsplit(url).netloc, payload, credentials, region) if signed else request

    campaigns: list[tuple[str, Sequence[str], st.SearchStrategy[Any], Callable[[Any, str], RawRequest]]] = [
        ("live_webhdfs", webhdfs_urls, webhdfs_requests(bucket), lambda request, url: request),
        ("live_s3", s3_urls, s3_requests(bucket), s3_prepare),
    ]
    for name, urls, strategy, prepare in campaigns:
        started = time.monotonic()
        result = CampaignResult(name=name + label, target=f"{name.removeprefix('live_')} port", engine="hypothesis")
        share = Budget(budget.cases, budget.seconds / len(campaigns) if budget.seconds is not None else None)
        logs = [_LogTail(path) for path in log_paths]
        _campaign(name, urls, strategy, prepare, share, result, logs, peer_secret)
        result.server_alive = all(alive(w, s) for w, s in zip(webhdfs_urls, s3_urls, strict=True))
        result.seconds = round(time.monotonic() - started, 1)
        results.append(result)
    return results
