"""Inputs the fuzz campaigns (``bench/reliability``) found crashing a parser: each is now a documented error.

Before the fix each raised something a handler answers with a 500 (or a loader with a stack trace): a non-UTF-8 or
deeply nested config, sizes past a float, a zero page size with a cluster block size, an IPv6 host left open, bytes
that are not UTF-8 in an S3 path or query, and digits ``str.isdigit`` takes but ``int`` refuses; and one hung the
worker: an aws-chunked body with a negative chunk size.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import StreamReader
from aiohttp.base_protocol import BaseProtocol
from multidict import CIMultiDict

from cache_service.api.s3.buckets import check_listing
from cache_service.api.s3.errors import S3Error
from cache_service.api.s3.payload import Payload
from cache_service.api.s3.request import QueryParams, parse_target
from cache_service.api.s3.sigv4 import STREAMING_UNSIGNED_TRAILER, Credentials, canonical_uri
from cache_service.api.s3.verifier import Authorization, SignedRequest, SigV4Verifier
from cache_service.config import ConfigError, load_config
from cache_service.units import parse_duration, parse_size

MOUNT = '[[mounts]]\npath = "/warehouse"\nuri = "s3://bucket/warehouse"\n'


def _load(tmp_path: Path, text: bytes, env: dict[str, str] | None = None) -> None:
    path = tmp_path / "cache.toml"
    path.write_bytes(text)
    load_config(path, env or {})


def test_a_config_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not UTF-8"):
        _load(tmp_path, b"[store]\neviction = '\xff'\n")


def test_arrays_nested_thousands_deep_are_a_config_error_in_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        _load(tmp_path, b"v = " + b"[" * 5000)


def test_arrays_nested_thousands_deep_in_a_variable_are_a_plain_string(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"store.page_size"):
        _load(tmp_path, MOUNT.encode(), {"CACHE_STORE_PAGE_SIZE": "[" * 5000})


def test_a_size_past_what_a_float_holds_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"store.page_size: not a size"):
        _load(tmp_path, MOUNT.encode() + b'[store]\npage_size = "' + b"9" * 400 + b'TiB"\n')
    with pytest.raises(ValueError, match="too large"):
        parse_size("9" * 400)
    with pytest.raises(ValueError, match="too long"):
        parse_duration("9" * 400 + "d")


def test_a_zero_page_size_is_reported_not_divided_by(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"store.page_size: must be between"):
        _load(tmp_path, MOUNT.encode() + b"[store]\npage_size = 0\n")


def test_a_redis_url_with_an_open_ipv6_host_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cluster.redis_url"):
        _load(tmp_path, MOUNT.encode() + b'[cluster]\nredis_url = "redis://["\n')


def test_path_bytes_that_are_not_utf8_name_no_target() -> None:
    # aiohttp hands a raw 0x80 byte of the request line over as U+DC80 (surrogateescape).
    with pytest.raises(S3Error) as refused:
        parse_target("/bucket/key\udc80", None)
    assert refused.value.code == "InvalidURI"
    assert canonical_uri("/bucket/key\udc80") == "/bucket/key%80"


def test_a_signature_over_undecodable_query_bytes_is_checked_not_crashed() -> None:
    verifier = SigV4Verifier(Credentials("AKID", "secret"), "us-east-1", clock=lambda: 1_780_000_000.0)
    auth = (
        "AWS4-HMAC-SHA256 Credential=AKID/20260528/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=" + "0" * 64
    )
    headers = CIMultiDict(
        {
            "Host": "localhost",
            "Authorization": auth,
            "x-amz-date": "20260528T202640Z",
            "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
        }
    )
    raw_query = "a\udc80=1"
    request = SignedRequest("GET", "/b/k\udc80", QueryParams.parse(raw_query).pairs, headers, raw_query)
    with pytest.raises(S3Error) as refused:
        verifier.verify(request)
    assert refused.value.code == "SignatureDoesNotMatch"


@pytest.mark.parametrize("value", ["²", "2²", "\u0661\u0662"])
def test_max_keys_in_digits_int_refuses_is_invalid_argument(value: str) -> None:
    with pytest.raises(S3Error) as refused:
        check_listing(QueryParams.parse(f"max-keys={value}"))
    assert refused.value.code == "InvalidArgument"


@pytest.mark.timeout(20)
@pytest.mark.parametrize("size", [b"-5", b"+5", b" 5", b"0x5", b"5_0"])
def test_an_aws_chunked_size_that_is_not_hex_digits_is_incomplete_body(size: bytes) -> None:
    # int("-5", 16) is -5: a negative chunk size once read nothing forever, spinning the worker's event loop.
    async def read() -> None:
        loop = asyncio.get_running_loop()
        content = StreamReader(BaseProtocol(loop), 1 << 16, loop=loop)
        content.feed_data(size + b"\r\nhello\r\n0\r\n\r\n")
        content.feed_eof()
        auth = Authorization("AKID", "20260528T202640Z", "scope", "0" * 64, b"k", STREAMING_UNSIGNED_TRAILER, False)
        await Payload(content, CIMultiDict({"x-amz-decoded-content-length": "5"}), auth).read(1 << 20)

    with pytest.raises(S3Error) as refused:
        asyncio.run(read())
    assert refused.value.code == "IncompleteBody"
