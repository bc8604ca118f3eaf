"""SigV4 verification and aws-chunked decoding, checked against the examples AWS publishes for S3.

The examples (GET with headers, a presigned GET, a streaming PUT of 66,560 bytes) come from AWS's "Signature
Version 4 for Amazon S3" documentation, with its example key pair and the time 2013-05-24T00:00:00Z.
"""

from __future__ import annotations

import asyncio
import base64
import calendar
import hashlib
import hmac
import zlib
from unittest import mock

import pytest
from aiohttp import StreamReader
from multidict import CIMultiDict

from cache_service.api.s3.errors import S3Error
from cache_service.api.s3.payload import Payload
from cache_service.api.s3.sigv4 import EMPTY_SHA256, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER, Credentials
from cache_service.api.s3.verifier import Authorization, SignedRequest, SigV4Verifier

EXAMPLE = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
SIGNED_AT = calendar.timegm((2013, 5, 24, 0, 0, 0))
SCOPE = "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"


def verifier(now: float = SIGNED_AT + 60, region: str = "us-east-1") -> SigV4Verifier:
    return SigV4Verifier(EXAMPLE, region, clock=lambda: now)


def get_example(signature: str = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41") -> SignedRequest:
    headers = CIMultiDict(
        {
            "Host": "examplebucket.s3.amazonaws.com",
            "Range": "bytes=0-9",
            "x-amz-content-sha256": EMPTY_SHA256,
            "x-amz-date": "20130524T000000Z",
            "Authorization": f"AWS4-HMAC-SHA256 Credential={SCOPE},"
            f"SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature={signature}",
        }
    )
    return SignedRequest("GET", "/test.txt", [], headers)


def presigned_example(expires: str = "86400") -> SignedRequest:
    query = [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Credential", SCOPE),
        ("X-Amz-Date", "20130524T000000Z"),
        ("X-Amz-Expires", expires),
        ("X-Amz-SignedHeaders", "host"),
        ("X-Amz-Signature", "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"),
    ]
    return SignedRequest("GET", "/test.txt", query, CIMultiDict({"Host": "examplebucket.s3.amazonaws.com"}))


def streaming_example() -> SignedRequest:
    headers = CIMultiDict(
        {
            "Host": "s3.amazonaws.com",
            "x-amz-date": "20130524T000000Z",
            "x-amz-storage-class": "REDUCED_REDUNDANCY",
            "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            "Content-Encoding": "aws-chunked",
            "x-amz-decoded-content-length": "66560",
            "Content-Length": "66824",
            "Authorization": f"AWS4-HMAC-SHA256 Credential={SCOPE},SignedHeaders=content-encoding;content-length;"
            "host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,"
            "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
        }
    )
    return SignedRequest("PUT", "/examplebucket/chunkObject.txt", [], headers)


def _code(call) -> str:
    with pytest.raises(S3Error) as error:
        call()
    return error.value.code


def test_the_published_header_example_verifies() -> None:
    auth = verifier().verify(get_example())
    assert auth.access_key == EXAMPLE.access_key and auth.payload_hash == EMPTY_SHA256 and not auth.presigned


def test_the_published_presigned_example_verifies_until_it_expires() -> None:
    assert verifier().verify(presigned_example()).presigned
    assert _code(lambda: verifier(now=SIGNED_AT + 86401).verify(presigned_example())) == "AccessDenied"
    assert _code(lambda: verifier(now=SIGNED_AT - 3600).verify(presigned_example())) == "AccessDenied"
    assert _code(lambda: verifier().verify(presigned_example("604801"))) == "AuthorizationQueryParametersError"


def test_a_changed_signature_secret_region_or_clock_is_refused() -> None:
    assert _code(lambda: verifier().verify(get_example("0" * 64))) == "SignatureDoesNotMatch"
    wrong_secret = SigV4Verifier(Credentials(EXAMPLE.access_key, "other"), "us-east-1", clock=lambda: SIGNED_AT)
    assert _code(lambda: wrong_secret.verify(get_example())) == "SignatureDoesNotMatch"
    other_key = SigV4Verifier(Credentials("AKIDOTHER", EXAMPLE.secret_key), "us-east-1", clock=lambda: SIGNED_AT)
    assert _code(lambda: other_key.verify(get_example())) == "InvalidAccessKeyId"
    assert _code(lambda: verifier(region="eu-west-1").verify(get_example())) == "AuthorizationHeaderMalformed"
    assert _code(lambda: verifier(now=SIGNED_AT + 16 * 60).verify(get_example())) == "RequestTimeTooSkewed"
    assert _code(lambda: SigV4Verifier(None, "us-east-1").verify(get_example())) == "AccessDenied"


def _reader(body: bytes) -> StreamReader:
    reader = StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop())
    reader.feed_data(body)
    reader.feed_eof()
    return reader


def _frame(chunks: list[tuple[bytes, str]]) -> bytes:
    return b"".join(f"{len(d):x};chunk-signature={s}\r\n".encode() + d + b"\r\n" for d, s in chunks)


AWS_CHUNKS = [
    (b"a" * 65536, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"),
    (b"a" * 1024, "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"),
    (b"", "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"),
]


def test_the_published_streaming_example_decodes_with_every_chunk_signature_checked() -> None:
    request = streaming_example()
    auth = verifier().verify(request)

    async def decode(body: bytes) -> bytes:
        return await Payload(_reader(body), request.headers, auth).read(1 << 20)

    body = _frame(AWS_CHUNKS)
    assert len(body) == 66824
    assert asyncio.run(decode(body)) == b"a" * 66560
    tampered = _frame([AWS_CHUNKS[0], (b"b" * 1024, AWS_CHUNKS[1][1]), AWS_CHUNKS[2]])
    assert _code(lambda: asyncio.run(decode(tampered))) == "SignatureDoesNotMatch"
    truncated = _frame(AWS_CHUNKS[:2])
    assert _code(lambda: asyncio.run(decode(truncated))) == "IncompleteBody"


def test_the_last_block_is_held_back_until_the_body_is_proven() -> None:
    request = streaming_example()
    auth = verifier().verify(request)
    bad_final = _frame([*AWS_CHUNKS[:2], (b"", "0" * 64)])

    async def consume() -> list[bytes]:
        received: list[bytes] = []
        try:
            async for piece in Payload(_reader(bad_final), request.headers, auth).chunks():
                received.append(piece)
        except S3Error:
            pass
        return received

    assert sum(len(p) for p in asyncio.run(consume())) < 66560


def _trailer_auth() -> Authorization:
    return Authorization("k", "20130524T000000Z", "s", "0" * 64, b"k", STREAMING_UNSIGNED_TRAILER, False)


@pytest.mark.parametrize("good", [True, False])
def test_unsigned_trailer_checksums_are_checked(good: bool) -> None:
    data = b"hello trailer" * 100
    crc = base64.b64encode(zlib.crc32(data if good else b"x").to_bytes(4, "big")).decode()
    body = f"{len(data):x}\r\n".encode() + data + f"\r\n0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n".encode()
    headers = CIMultiDict({"x-amz-decoded-content-length": str(len(data)), "x-amz-trailer": "x-amz-checksum-crc32"})

    async def decode() -> bytes:
        payload = Payload(_reader(body), headers, _trailer_auth())
        result = await payload.read(1 << 20)
        assert payload.digests.checksums == {"crc32": crc}
        return result

    if good:
        assert asyncio.run(decode()) == data
    else:
        assert _code(lambda: asyncio.run(decode())) == "BadDigest"


def test_a_declared_sha256_must_match_the_body() -> None:
    declared = hashlib.sha256(b"right").hexdigest()
    auth = Authorization("k", "20130524T000000Z", "s", "0" * 64, b"k", declared, False)

    async def decode(body: bytes) -> bytes:
        return await Payload(_reader(body), CIMultiDict({"Content-Length": str(len(body))}), auth).read(100)

    assert asyncio.run(decode(b"right")) == b"right"
    assert _code(lambda: asyncio.run(decode(b"wrong"))) == "XAmzContentSHA256Mismatch"


@pytest.mark.parametrize("tamper", [False, True])
def test_signed_trailers_chain_from_the_final_chunk_signature(tamper: bool) -> None:
    data = b"trailer data " * 50
    key, amz_date, scope, seed = b"signing-key", "20130524T000000Z", "20130524/us-east-1/s3/aws4_request", "1" * 64

    def hmac_hex(text: str) -> str:
        return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()

    empty = hashlib.sha256(b"").hexdigest()
    first = hmac_hex(
        f"AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{seed}\n{empty}\n{hashlib.sha256(data).hexdigest()}"
    )
    final = hmac_hex(f"AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{first}\n{empty}\n{empty}")
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    trailer = f"x-amz-checksum-crc32:{crc}\n"
    trailer_signature = hmac_hex(
        f"AWS4-HMAC-SHA256-TRAILER\n{amz_date}\n{scope}\n{final}\n{hashlib.sha256(trailer.encode()).hexdigest()}"
    )
    if tamper:
        trailer_signature = "2" * 64
    body = (
        f"{len(data):x};chunk-signature={first}\r\n".encode()
        + data
        + f"\r\n0;chunk-signature={final}\r\n{trailer.strip()}\r\n".encode()
        + f"x-amz-trailer-signature:{trailer_signature}\r\n\r\n".encode()
    )
    auth = Authorization("k", amz_date, scope, seed, key, STREAMING_SIGNED_TRAILER, False)
    headers = CIMultiDict({"x-amz-decoded-content-length": str(len(data)), "x-amz-trailer": "x-amz-checksum-crc32"})

    async def decode() -> bytes:
        return await Payload(_reader(body), headers, auth).read(1 << 20)

    if tamper:
        assert _code(lambda: asyncio.run(decode())) == "SignatureDoesNotMatch"
    else:
        assert asyncio.run(decode()) == data
