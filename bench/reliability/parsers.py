"""The fuzz targets: each parser of the cache's edge, fed inputs decoded from a fuzzer's bytes.

A target raises nothing for an input its parser accepts or refuses with a documented error (``S3Error``, ``XmlError``,
the ``ValueError`` the WebHDFS API answers as ``IllegalArgumentException``, ``ConfigError``); anything else it raises
is a crash: an exception a handler would answer with a 500, or a broken invariant (``InvariantError``), such as a
correctly signed request refused or a path that escapes normalisation.

Inputs are built from tokens a parser cares about (``%2F``, ``..``, ``X-Amz-Signature``, ``<Part>``...) mixed with
arbitrary text, so that coverage guidance starts from structure rather than from noise.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiohttp import StreamReader
from aiohttp.base_protocol import BaseProtocol
from aiohttp.test_utils import make_mocked_request
from atheris import FuzzedDataProvider as Provider
from multidict import CIMultiDict

from cache_service.api.s3.buckets import check_listing
from cache_service.api.s3.errors import S3Error
from cache_service.api.s3.object_metadata import request_metadata
from cache_service.api.s3.objects import byte_range
from cache_service.api.s3.payload import Payload
from cache_service.api.s3.request import QueryParams, parse_target, virtual_host_bucket
from cache_service.api.s3.sigv4 import (
    EMPTY_SHA256,
    PRESIGN_PARAMS,
    STREAMING_MODES,
    UNSIGNED_PAYLOAD,
    Credentials,
    sign_headers,
)
from cache_service.api.s3.verifier import Authorization, SignedRequest, SigV4Verifier
from cache_service.api.s3.xml import XmlError, parse_complete, parse_delete
from cache_service.api.webhdfs.request import WebHdfsRequest, caller
from cache_service.api.webhdfs.warm_reads import _parse as parse_warm_head
from cache_service.config import ConfigError, load_config
from cache_service.config.model import SECTIONS
from cache_service.errors import UnsupportedOperationError
from cache_service.namespace.paths import normalize, parse_raw_path
from infra.toml_writer import dumps


class InvariantError(AssertionError):
    """A parser accepted an input and answered something it must never answer."""


@dataclass(frozen=True)
class Target:
    """A parser under test: ``run`` decodes one input and feeds it; ``allowed`` are its documented errors."""

    name: str
    run: Callable[[Provider], None]
    allowed: tuple[type[BaseException], ...]


def pieces(fdp: Provider, tokens: Sequence[str], most: int = 8) -> str:
    """Up to ``most`` parts, each one of ``tokens`` or a little arbitrary text.

    The only surrogates are those of undecodable bytes (U+DC80 to U+DCFF): aiohttp decodes request lines and headers
    with ``surrogateescape``, so no other can reach a parser.
    """
    parts = []
    for _ in range(fdp.ConsumeIntInRange(0, most)):
        parts.append(fdp.PickValueInList(tokens) if fdp.ConsumeBool() else fdp.ConsumeUnicodeNoSurrogates(6))
    return "".join(parts)


# --- WebHDFS -------------------------------------------------------------------------------------------------

_PATH_TOKENS = [
    "/",
    "//",
    "..",
    ".",
    "%2F",
    "%2f",
    "%2e%2e",
    "%2E",
    "%00",
    "%0A",
    "%ff",
    "%C3%A9",
    "%",
    "%%",
    "a",
    "warehouse",
    "_temporary",
    " ",
    "\x00",
    "\x7f",
    "é",
    "\udc80",
    "?",
    "#",
    "~",
    "a" * 300,
]
_PARAM_NAMES = [
    "op",
    "offset",
    "length",
    "buffersize",
    "overwrite",
    "recursive",
    "permission",
    "data",
    "noredirect",
    "user.name",
    "doas",
    "destination",
    "replication",
    "blocksize",
    "",
    "=",
    "&",
]
_HEAD_TOKENS = ["Connection: close", "Connection: keep-alive", "Range: bytes=0-1", "Expect: 100-continue", ": ", "\r\n"]
_PARAM_VALUES = [
    "0",
    "-1",
    "1",
    "9" * 30,
    "true",
    "TRUE",
    "false",
    "1777",
    "0o777",
    "2000",
    "x",
    "",
    "%20",
    "+",
    "\u0661\u0662",
    "²",
    "1e3",
    " 1",
    "0x10",
    "1_0",
    "OPEN",
    "open",
    "GETFILESTATUS",
]


def _query(fdp: Provider, names: Sequence[str], values: Sequence[str]) -> str:
    pairs = []
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        name = fdp.PickValueInList(names) if fdp.ConsumeBool() else fdp.ConsumeUnicodeNoSurrogates(4)
        value = pieces(fdp, values, 3)
        pairs.append(name if fdp.ConsumeProbability() < 0.1 else f"{name}={value}")
    return "&".join(pairs)


def webhdfs_path(fdp: Provider) -> None:
    """``parse_raw_path`` and ``normalize``: any answer is absolute, normalised, with no '.' or '..' component."""
    raw = pieces(fdp, _PATH_TOKENS, 12)
    if fdp.ConsumeBool():
        raw = "/" + raw
    for parse in (parse_raw_path, normalize):
        try:
            path = parse(raw)
        except ValueError:
            continue
        parts = path.split("/")[1:]
        if (
            not path.startswith("/")
            or normalize(path) != path
            or any(p in ("", ".", "..") for p in parts if path != "/")
        ):
            raise InvariantError(f"{parse.__name__}({raw!r}) = {path!r}")


def webhdfs_params(fdp: Provider) -> None:
    """``WebHdfsRequest``'s typed parameters and the warm path's head parser, on one generated request."""
    path = "/webhdfs/v1" + pieces(fdp, _PATH_TOKENS, 4)
    query = _query(fdp, _PARAM_NAMES, _PARAM_VALUES)
    try:
        http = make_mocked_request("GET", f"{path}?{query}")
    except ValueError:
        return  # a URL aiohttp's parser would have refused before any handler
    req = WebHdfsRequest(http, "/x")
    caller(req.params)
    for check in (
        lambda: req.long("offset", 0),
        lambda: req.long("length", None),
        lambda: req.flag("overwrite", False),
        lambda: req.octal("permission"),
        req.has_data,
        req.data_location,
    ):
        with contextlib.suppress(ValueError):
            check()
    value = req.params.get("offset")
    try:
        parsed = req.long("offset", 0)
    except ValueError:
        parsed = None
    if parsed is not None and parsed < 0:
        raise InvariantError(f"offset {value!r} read as {parsed}")
    head = f"GET {path}?{query} HTTP/1.1\r\nHost: x\r\n{pieces(fdp, _HEAD_TOKENS)}"
    answer = parse_warm_head(head.encode("utf-8", "surrogateescape") + b"\r\n\r\n")
    if answer is not None:
        warm_path, params = answer
        if normalize(warm_path) != warm_path or any("%" in v for v in params.values()):
            raise InvariantError(f"warm head {head!r} read as {answer!r}")


# --- S3 ------------------------------------------------------------------------------------------------------

_KEY_TOKENS = [
    "/",
    "bucket",
    "my.bucket",
    "b",
    "..",
    "%2F",
    "%2e",
    "%00",
    "%ff",
    "%C3%A9",
    "%",
    "+",
    " ",
    "~",
    "a" * 200,
    "é",
    "\udc80",
    "?",
    "-",
    "_",
    "A",
]
_S3_PARAMS = [
    *[
        "uploads",
        "uploadId",
        "partNumber",
        "delete",
        "list-type",
        "max-keys",
        "encoding-type",
        "location",
        "versionId",
        "acl",
        "prefix",
    ],
    *sorted(PRESIGN_PARAMS),
    "Signature",
    "AWSAccessKeyId",
]
_S3_VALUES = [
    "2",
    "1000",
    "-1",
    "2147483648",
    "²",
    "\u0661",
    "url",
    "AWS4-HMAC-SHA256",
    "test/20260101/us-east-1/s3/aws4_request",
    "20260101T000000Z",
    "host",
    "host;x-amz-date",
    "0" * 64,
    "604801",
    "%",
    "%2B",
    "+",
    "",
]
_HEADER_NAMES = [
    "Range",
    "x-amz-meta-a",
    "X-Amz-Meta-",
    "Content-Type",
    "Content-Encoding",
    "x-amz-content-sha256",
    "x-amz-date",
    "Date",
    "Authorization",
    "Host",
    "x-amz-copy-source",
]
_HEADER_VALUES = [
    "bytes=",
    "0",
    "-",
    "10",
    "5-1",
    "-0",
    ",",
    "aws-chunked",
    "UNSIGNED-PAYLOAD",
    "é",
    "\udcff",
    "20260101T000000Z",
    "AWS4-HMAC-SHA256",
    "Credential=",
    "SignedHeaders=",
    "Signature=",
    " ",
    "=?",
]
_METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH", "get"]
_DOMAINS = frozenset({"localhost", "cache.example"})


def _headers(fdp: Provider) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        name = fdp.PickValueInList(_HEADER_NAMES) if fdp.ConsumeBool() else "x-amz-" + fdp.ConsumeUnicodeNoSurrogates(4)
        headers.add(name, pieces(fdp, _HEADER_VALUES, 4))
    return headers


def s3_request(fdp: Provider) -> None:
    """What ``S3Api.handle`` parses before and after the signature: query, target, operation, ranges, listings,
    metadata. A target's path form must name the same target again."""
    from cache_service.api.s3.app import operation  # the app module imports the service: only when fuzzed

    params = QueryParams.parse(
        _query(fdp, _S3_PARAMS, _S3_VALUES) if fdp.ConsumeBool() else fdp.ConsumeUnicodeNoSurrogates(40)
    )
    again = QueryParams.parse(params.encode())
    if again.pairs != params.pairs:
        raise InvariantError(f"query {params.pairs!r} encoded as {params.encode()!r} read back as {again.pairs!r}")
    host = pieces(fdp, ["bucket.", "localhost", ":9878", "[::1]", "127.0.0.1", ".", "cache.example", "B."], 4)
    raw_path = pieces(fdp, _KEY_TOKENS, 10)
    headers = _headers(fdp)
    try:
        target = parse_target(raw_path, virtual_host_bucket(host, _DOMAINS))
    except S3Error:
        target = None
    if target is not None and target.bucket:
        if parse_target(target.path, None) != target:
            raise InvariantError(f"{raw_path!r} names {target!r}, whose path {target.path!r} names another")
        operation(fdp.PickValueInList(_METHODS), target, params, headers)
    for check in (
        lambda: check_listing(params),
        lambda: byte_range(headers.get("Range"), fdp.ConsumeIntInRange(0, 1 << 40)),
        lambda: request_metadata(headers),
    ):
        with contextlib.suppress(S3Error):
            check()


_CREDENTIALS = Credentials("AKIAFUZZ", "fuzz-secret")
_REGION = "us-east-1"
_NOW = 1_780_000_000.0
_VERIFIER = SigV4Verifier(_CREDENTIALS, _REGION, clock=lambda: _NOW)


def _signed(fdp: Provider) -> tuple[str, str, str, CIMultiDict[str]]:
    """A request signed correctly (by the cache's own signer) with the fuzzer's path, query and headers."""
    method = fdp.PickValueInList(["GET", "PUT", "HEAD", "POST", "DELETE"])
    raw_path = "/" + pieces(fdp, _KEY_TOKENS, 6)
    raw_query = _query(fdp, ["uploads", "uploadId", "partNumber", "prefix", "a", "A", "ä"], _S3_VALUES[:8])
    headers = {"host": "localhost:9878"}
    for _ in range(fdp.ConsumeIntInRange(0, 3)):
        headers["x-amz-meta-" + fdp.PickValueInList(["a", "b", "c"])] = pieces(fdp, ["v", " ", "  x ", "é"], 3)
    payload = fdp.PickValueInList(
        [
            "UNSIGNED-PAYLOAD",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        ]
    )
    pairs = QueryParams.parse(raw_query).pairs
    sign_headers(
        method=method,
        raw_path=raw_path,
        query=pairs,
        headers=headers,
        payload_hash=payload,
        credentials=_CREDENTIALS,
        region=_REGION,
        now=_NOW - fdp.ConsumeIntInRange(0, 600),
    )
    return method, raw_path, raw_query, CIMultiDict(headers)


def _verify(method: str, raw_path: str, raw_query: str, headers: CIMultiDict[str]) -> bool:
    request = SignedRequest(method, raw_path, QueryParams.parse(raw_query).pairs, headers, raw_query)
    try:
        _VERIFIER.verify(request)
    except S3Error:
        return False
    return True


def sigv4(fdp: Provider) -> None:
    """``SigV4Verifier.verify``: a correct signature passes; a changed signature or method never does; anything
    else (header or presigned query, from scratch or mutated) is answered with an ``S3Error`` or passes."""
    mode = fdp.ConsumeIntInRange(0, 2)
    if mode == 2:  # from scratch: any Authorization header, any presigned query
        raw_query = _query(fdp, _S3_PARAMS, _S3_VALUES)
        _verify(fdp.PickValueInList(_METHODS), "/" + pieces(fdp, _KEY_TOKENS, 4), raw_query, _headers(fdp))
        return
    method, raw_path, raw_query, headers = _signed(fdp)
    if not _verify(method, raw_path, raw_query, headers):
        raise InvariantError(f"a correctly signed request was refused: {method} {raw_path}?{raw_query} {headers!r}")
    if mode == 0:  # the signature or method changed: must be refused
        if fdp.ConsumeBool():
            auth = headers["authorization"]
            at = auth.index("Signature=") + len("Signature=") + fdp.ConsumeIntInRange(0, 63)
            digit = "0123456789abcdef"[(int(auth[at], 16) + fdp.ConsumeIntInRange(1, 15)) % 16]
            headers["authorization"] = auth[:at] + digit + auth[at + 1 :]
        else:
            method = {"GET": "PUT", "PUT": "GET", "HEAD": "GET", "POST": "PUT", "DELETE": "GET"}[method]
        if _verify(method, raw_path, raw_query, headers):
            raise InvariantError(f"a request with a changed signature or method passed: {method} {raw_path}")
        return
    # mode 1: anything else mutated; the verifier must answer, whatever it decides
    what = fdp.ConsumeIntInRange(0, 4)
    text = pieces(fdp, _HEADER_VALUES + _KEY_TOKENS, 4)
    if what == 0:
        raw_path = raw_path + text
    elif what == 1:
        raw_query = f"{raw_query}&{text}"
    elif what == 2:
        headers[fdp.PickValueInList([*headers, "x-amz-extra", "Date"])] = text
    elif what == 3:
        name = fdp.PickValueInList(list(headers))
        headers.popall(name)
    else:
        auth = headers["authorization"]
        at = fdp.ConsumeIntInRange(0, len(auth))
        headers["authorization"] = auth[:at] + text + auth[at + fdp.ConsumeIntInRange(0, 8) :]
    _verify(method, raw_path, raw_query, headers)


# --- request bodies (aws-chunked, digests) ---------------------------------------------------------------------

_CHUNK_TOKENS = [
    "0",
    "5",
    "-5",
    "+5",
    "0x5",
    " 5",
    "ffffffff",
    "1" * 20,
    ";chunk-signature=",
    "0" * 64,
    "\r\n",
    "\n",
    "hello",
    "x-amz-checksum-crc32:",
    "AAAAAA==",
    "x-amz-trailer-signature:",
    ":",
]
_PAYLOAD_MODES = [*sorted(STREAMING_MODES), UNSIGNED_PAYLOAD, EMPTY_SHA256]
_PAYLOAD_HEADERS = [
    ("x-amz-decoded-content-length", ["5", "0", "-1", "x", "99999999999"]),
    ("Content-Length", ["5", "0", "-1"]),
    ("Content-MD5", ["XUFAKrxLKna5cZ2REBfFkg==", "x", ""]),
    ("x-amz-checksum-crc32", ["NhCmhg==", "AAAAAA==", "!"]),
    ("x-amz-checksum-sha256", ["LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=", ""]),
    ("x-amz-trailer", ["x-amz-checksum-crc32", "x-amz-checksum-md5", ""]),
]
_LOOP = asyncio.new_event_loop()


def s3_payload(fdp: Provider) -> None:
    """``Payload``: a request body (aws-chunked in every streaming mode, or plain) checked against its declared
    length, payload hash, chunk and trailer signatures, Content-MD5 and checksums; read whole, as DeleteObjects
    does. A body that never ends a chunk must fail, not spin: libFuzzer's ``-timeout`` counts a hang as a crash."""
    mode = fdp.PickValueInList(_PAYLOAD_MODES)
    headers: CIMultiDict[str] = CIMultiDict()
    for name, values in _PAYLOAD_HEADERS:
        if fdp.ConsumeBool():
            headers[name] = fdp.PickValueInList(values)
    body = pieces(fdp, _CHUNK_TOKENS, 16).encode("utf-8", "surrogateescape")
    auth = Authorization(_CREDENTIALS.access_key, "20260528T202640Z", "20260528/us-east-1/s3/aws4_request",
                         "0" * 64, b"k" * 32, mode, presigned=False)  # fmt: skip

    async def read() -> None:
        content = StreamReader(BaseProtocol(_LOOP), 1 << 16, loop=_LOOP)
        content.feed_data(body)
        content.feed_eof()
        await Payload(content, headers, auth, md5=fdp.ConsumeBool()).read(1 << 20)

    _LOOP.run_until_complete(read())


# --- XML bodies ----------------------------------------------------------------------------------------------

_XML_TOKENS = [
    "<Delete>",
    "</Delete>",
    "<Object>",
    "</Object>",
    "<Key>",
    "</Key>",
    "<VersionId>",
    "</VersionId>",
    "<Quiet>true</Quiet>",
    "<CompleteMultipartUpload>",
    "</CompleteMultipartUpload>",
    "<Part>",
    "</Part>",
    "<PartNumber>",
    "</PartNumber>",
    "<ETag>",
    "</ETag>",
    "<ChecksumCRC32>",
    "</ChecksumCRC32>",
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
    "<!DOCTYPE d>",
    "<!ENTITY e 'x'>",
    "&e;",
    "&amp;",
    "&#0;",
    "&#x1F600;",
    "<![CDATA[",
    "]]>",
    "1",
    "10001",
    "-1",
    '"etag"',
    "<a:Key xmlns:a='u'>",
    "</a:Key>",
    "\x00",
    "\ufeff",
    "é",
    "<!-- -->",
]


def s3_xml(fdp: Provider) -> None:
    """``parse_delete`` and ``parse_complete`` on documents built of S3's elements, entities, CDATA and noise."""
    if fdp.ConsumeProbability() < 0.2:
        body = fdp.ConsumeBytes(400)
    else:
        body = pieces(fdp, _XML_TOKENS, 40).encode("utf-8", "surrogateescape")
    for parse in (parse_delete, parse_complete):
        with contextlib.suppress(XmlError):
            parse(body)


# --- configuration -------------------------------------------------------------------------------------------

_CONFIG_STRINGS = [
    "64KiB",
    "1MiB",
    "0",
    "-1",
    "1.5GB",
    "9" * 400 + "TiB",
    "30s",
    "250ms",
    "1e3s",
    "inf",
    "nan",
    "s3://bucket/prefix",
    "s3://[x",
    "s3://b/../c",
    "/warehouse",
    "/",
    "relative",
    "redis://127.0.0.1:1",
    "redis://[",
    "unix:///tmp/r",
    "lru",
    "s3fifo",
    "memory",
    "disk",
    "/tmp/lakecache-fuzz",
    "",
    "é",
    "\x00",
]
_CONFIG_KEYS = [
    "page_size",
    "capacity",
    "tiers",
    "medium",
    "path",
    "uri",
    "quota",
    "low_watermark",
    "high_watermark",
    "eviction",
    "webhdfs_port",
    "s3_port",
    "host",
    "token",
    "redis_url",
    "block_size",
    "sync_interval",
    "staging_patterns",
    "max_attempts",
    "multipart_chunksize",
    "heartbeat_interval",
    "member_timeout",
    "access_key",
    "secret_key_env",
    "unknown",
]


def _config_value(fdp: Provider, depth: int) -> object:
    kind = fdp.ConsumeIntInRange(0, 8 if depth < 3 else 5)
    if kind == 0:
        return fdp.ConsumeBool()
    if kind == 1:
        return fdp.PickValueInList([0, 1, -1, 4096, 2**31, 2**63 - 1, -(2**63), 65536, 10**18])
    if kind == 2:
        return fdp.PickValueInList([0.0, 0.5, 1.0, 1.5, -0.1, 1e308, float("inf"), float("nan"), 1e-9])
    if kind in (3, 4, 5):
        return pieces(fdp, _CONFIG_STRINGS, 2)
    if kind == 6:
        return [_config_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))]
    if kind == 7:
        return [_config_table(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(1, 3))]
    return _config_table(fdp, depth + 1)


def _config_table(fdp: Provider, depth: int) -> dict[str, object]:
    return {
        (fdp.PickValueInList(_CONFIG_KEYS) if fdp.ConsumeBool() else fdp.ConsumeUnicodeNoSurrogates(5)): _config_value(
            fdp, depth
        )
        for _ in range(fdp.ConsumeIntInRange(0, 5))
    }


def _config_text(fdp: Provider) -> bytes:
    mode = fdp.ConsumeIntInRange(0, 9)
    if mode == 0:
        return fdp.ConsumeBytes(300)  # anything, not even UTF-8
    if mode == 1:
        return pieces(fdp, ["[", "]", "[[", "=", '"', "{", "}", ",", "\n", "mounts", "store", "v = ", "#"], 30).encode(
            "utf-8", "surrogateescape"
        )
    document: dict[str, object] = {}
    for _ in range(fdp.ConsumeIntInRange(0, 4)):
        section = fdp.PickValueInList([*SECTIONS, "mounts", "nope"])
        if section == "mounts":
            document["mounts"] = [_config_table(fdp, 1) for _ in range(fdp.ConsumeIntInRange(0, 2))] or [
                {"path": "/warehouse", "uri": "s3://b/w"}
            ]
        else:
            table = _config_table(fdp, 1)
            for name in list(SECTIONS.get(section, type("", (), {"__dataclass_fields__": {}})).__dataclass_fields__)[
                :3
            ]:
                if fdp.ConsumeBool():
                    table[name] = _config_value(fdp, 2)
            document[section] = table
    try:
        return dumps(document).encode("utf-8", "surrogateescape")
    except (TypeError, ValueError):
        return b""


_CONFIG_FILE = Path(tempfile.gettempdir() if not os.path.isdir("/dev/shm") else "/dev/shm") / f"fuzz-{os.getpid()}.toml"


def config_loader(fdp: Provider) -> None:
    """``load_config`` on a generated TOML file and ``CACHE_*`` variables: a config or one ``ConfigError``."""
    text = _config_text(fdp)
    env = {}
    for _ in range(fdp.ConsumeIntInRange(0, 3)):
        name = fdp.PickValueInList(
            [
                "CACHE_STORE_PAGE_SIZE",
                "CACHE_MOUNTS",
                "CACHE_CLUSTER_REDIS_URL",
                "CACHE_SERVER_S3_PORT",
                "CACHE_STORE_NOPE",
                "CACHE_WRITE_STAGING_PATTERNS",
            ]
        )
        env[name] = pieces(fdp, ["[", "]", "{", '"', "1", "true", "9" * 40, "x", "=", "\n", "[" * 50], 6)
    _CONFIG_FILE.write_bytes(text)
    config = load_config(_CONFIG_FILE, env)
    config.write.is_staging("/warehouse/_temporary/0")


TARGETS: dict[str, Target] = {
    target.name: target
    for target in (
        Target("webhdfs_path", webhdfs_path, (ValueError,)),
        Target("webhdfs_params", webhdfs_params, (ValueError, UnsupportedOperationError)),
        Target("s3_request", s3_request, (S3Error,)),
        Target("sigv4", sigv4, (S3Error,)),
        Target("s3_payload", s3_payload, (S3Error,)),
        Target("s3_xml", s3_xml, (XmlError,)),
        Target("config_loader", config_loader, (ConfigError,)),
    )
}
"""Every target, by name. A ``ValueError`` of the WebHDFS parsers is what the API answers as 400
``IllegalArgumentException``; the config loader's documented error is ``ConfigError`` alone."""
