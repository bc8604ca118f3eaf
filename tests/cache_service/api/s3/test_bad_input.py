"""Bad input to the S3 API gets the error S3 gives, changes nothing outside its bucket, and the server stays up."""

from __future__ import annotations

import base64
import hashlib
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from infra.cache_process import CacheProcess
from tests.cache_service.api.s3.support import Reply, send, sign, signed


@pytest.fixture(autouse=True)
def server_stays_up(s3_cache: CacheProcess) -> Iterator[None]:
    yield
    assert send("GET", s3_cache.webhdfs_url + "/healthz").status == 200
    assert signed("GET", s3_cache.s3_url + "/").status == 200


@pytest.fixture(scope="module")
def secret_outside(s3_client, s3_bucket: str) -> str:
    s3_client.put_object(Bucket=s3_bucket, Key="outside/secret", Body=b"classified")
    s3_client.put_object(Bucket=s3_bucket, Key="warehouse/data.bin", Body=b"0123456789")
    return "outside/secret"


def _delete(s3_cache: CacheProcess, bucket: str, body: bytes, *, md5: bool = True) -> Reply:
    headers = {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()} if md5 else {}
    return signed("POST", f"{s3_cache.s3_url}/{bucket}?delete", body, headers)


LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i else "&lol;" * 10}">'.encode() for i in range(9))
    + b"]><Delete><Object><Key>&lol8;</Key></Object></Delete>"
)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"garbage",
        b"<Delete>",
        b"<Delete></Delete>",
        b"<Delete><Object></Object></Delete>",
        b"<Delete><Object><Key></Key></Object></Delete>",
        b"<Delete><Object><Key>a</Key></Object><Surprise/></Delete>",
        b"<NotDelete><Object><Key>a</Key></Object></NotDelete>",
        LAUGHS,
        b'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><Delete><Object><Key>&x;</Key></Object></Delete>',
        b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1001 + b"</Delete>",
        "<Delete><Object><Key>é</Key></Object></Delete>".encode("utf-16"),
    ],
)
def test_malformed_delete_objects_bodies_are_malformed_xml(
    s3_cache: CacheProcess, s3_bucket: str, secret_outside: str, body: bytes
) -> None:
    reply = _delete(s3_cache, s3_bucket, body)
    assert reply.status == 400 and reply.code == "MalformedXML", reply.body


def test_delete_objects_needs_an_integrity_header(s3_cache: CacheProcess, s3_bucket: str, secret_outside: str) -> None:
    body = b"<Delete><Object><Key>outside/secret</Key></Object></Delete>"
    reply = _delete(s3_cache, s3_bucket, body, md5=False)
    assert reply.status == 400 and reply.code == "InvalidRequest"
    assert signed("GET", f"{s3_cache.s3_url}/{s3_bucket}/outside/secret").body == b"classified"


def test_an_oversized_delete_objects_body_is_refused(s3_cache: CacheProcess, s3_bucket: str) -> None:
    body = b"<Delete>" + b"<Object><Key>" + b"k" * (3 * 1024**2) + b"</Key></Object></Delete>"
    reply = _delete(s3_cache, s3_bucket, body)
    assert reply.status == 400 and reply.code == "MaxMessageLengthExceeded"


@pytest.mark.parametrize(
    "path",
    [
        "/{bucket}/warehouse/../outside/secret",
        "/{bucket}/warehouse/%2e%2e/outside/secret",
        "/{bucket}/warehouse/..%2Foutside/secret",
        "/{bucket}/warehouse%2F..%2Foutside/secret",
        "/{bucket}/./outside/secret",
        "/{bucket}//outside/secret",
    ],
)
def test_traversal_names_a_key_of_its_own_never_another(
    s3_cache: CacheProcess, s3_bucket: str, secret_outside: str, path: str
) -> None:
    reply = signed("GET", s3_cache.s3_url + path.format(bucket=s3_bucket))
    assert reply.status == 404 and reply.code == "NoSuchKey", reply.body
    assert b"classified" not in reply.body


@pytest.mark.parametrize("path", ["/..", "/../x", "/%2e%2e/x", "/a", "/bad%2Fbucket/x", "/under_score_", "/a..b/x"])
def test_invalid_bucket_names_are_invalid_bucket_name(s3_cache: CacheProcess, path: str) -> None:
    reply = signed("GET", s3_cache.s3_url + path)
    assert reply.status == 400 and reply.code == "InvalidBucketName", reply.body


def test_keys_that_are_not_utf8_are_invalid_uri(s3_cache: CacheProcess, s3_bucket: str) -> None:
    reply = signed("GET", f"{s3_cache.s3_url}/{s3_bucket}/warehouse/%ff%fe")
    assert reply.status == 400 and reply.code == "InvalidURI"


def test_a_header_over_8_kib_is_request_header_section_too_large(s3_cache: CacheProcess, s3_bucket: str) -> None:
    url = f"{s3_cache.s3_url}/{s3_bucket}/warehouse/data.bin"
    reply = send("GET", url, headers={**sign("GET", url), "X-Padding": "p" * 9000})
    assert reply.status == 400 and reply.code == "RequestHeaderSectionTooLarge"


def test_many_headers_over_8_kib_together_are_request_header_section_too_large(
    s3_cache: CacheProcess, s3_bucket: str
) -> None:
    url = f"{s3_cache.s3_url}/{s3_bucket}/warehouse/data.bin"
    padding = {f"X-Pad-{i}": "p" * 500 for i in range(20)}
    reply = send("GET", url, headers={**sign("GET", url), **padding})
    assert reply.status == 400 and reply.code == "RequestHeaderSectionTooLarge"
    many = {f"X-N-{i}": "1" for i in range(200)}
    reply = send("GET", url, headers={**sign("GET", url), **many})
    assert reply.status == 400 and reply.code == "RequestHeaderSectionTooLarge"


def test_a_very_long_url_is_refused(s3_cache: CacheProcess, s3_bucket: str) -> None:
    reply = send("GET", f"{s3_cache.s3_url}/{s3_bucket}/warehouse/{'k' * 20_000}")
    assert reply.status == 400 and reply.code == "InvalidURI"


@pytest.mark.parametrize("query", ["foo=bar", "x-id=GetObject", "unknown", "versioning-typo=1&another=%E2%9C%93"])
def test_unknown_query_parameters_are_ignored_like_s3_does(
    s3_cache: CacheProcess, s3_bucket: str, secret_outside: str, query: str
) -> None:
    inside = signed("GET", f"{s3_cache.s3_url}/{s3_bucket}/warehouse/data.bin?{query}")
    assert inside.status == 200 and inside.body == b"0123456789"
    outside = signed("GET", f"{s3_cache.s3_url}/{s3_bucket}/outside/secret?{query}")
    assert outside.status == 200 and outside.body == b"classified"
    listing = signed("GET", f"{s3_cache.s3_url}/{s3_bucket}?list-type=2&prefix=warehouse/&{query}")
    assert listing.status == 200 and b"warehouse/data.bin" in listing.body


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        ("AWS4-HMAC-SHA256 garbage", "AuthorizationHeaderMalformed"),
        ("AWS4-HMAC-SHA256 Credential=test/2024/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=ab", None),
        ("Bearer token", "InvalidRequest"),
        ("AWS test:c2lnbmF0dXJl", "InvalidRequest"),
        ("", "InvalidRequest"),
    ],
)
def test_malformed_authorization_headers(
    s3_cache: CacheProcess, s3_bucket: str, authorization: str, code: str | None
) -> None:
    url = f"{s3_cache.s3_url}/{s3_bucket}?list-type=2"
    headers = sign("GET", url)
    headers["Authorization"] = authorization
    reply = send("GET", url, headers=headers)
    assert 400 <= reply.status < 500 and reply.code is not None, reply.body
    if code is not None:
        assert reply.code == code


def test_payload_hash_must_be_named_or_hex(s3_cache: CacheProcess, s3_bucket: str) -> None:
    url = f"{s3_cache.s3_url}/{s3_bucket}/warehouse/h"
    reply = signed("PUT", url, b"x", content_sha256="not-a-hash")
    assert reply.status == 400 and reply.code == "InvalidArgument"
    headers = sign("GET", url)
    del headers["X-Amz-Content-SHA256"]
    reply = send("GET", url, headers=headers)
    assert reply.status == 400 and reply.code == "InvalidRequest"


def test_header_and_query_authentication_together_are_invalid_argument(s3_cache: CacheProcess, s3_bucket: str) -> None:
    url = f"{s3_cache.s3_url}/{s3_bucket}?list-type=2&X-Amz-Algorithm=AWS4-HMAC-SHA256"
    reply = signed("GET", url)
    assert reply.status == 400 and reply.code == "InvalidArgument"


def test_put_without_content_length_is_missing_content_length(s3_cache: CacheProcess, s3_bucket: str) -> None:
    url = f"{s3_cache.s3_url}/{s3_bucket}/warehouse/chunked"
    headers = sign("PUT", url, content_sha256="UNSIGNED-PAYLOAD")
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall(
            f"PUT {parts.path} HTTP/1.1\r\n{head}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".encode()
        )
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 411") and b"MissingContentLength" in answer


def test_methods_s3_does_not_have_are_method_not_allowed(s3_cache: CacheProcess, s3_bucket: str) -> None:
    url = f"{s3_cache.s3_url}/{s3_bucket}/warehouse/data.bin"
    reply = send("PATCH", url, b"x", sign("PATCH", url, b"x"))
    assert reply.status == 405 and reply.code == "MethodNotAllowed"


def test_errors_to_head_requests_have_no_body(s3_cache: CacheProcess, s3_bucket: str) -> None:
    reply = signed("HEAD", f"{s3_cache.s3_url}/{s3_bucket}/warehouse/missing")
    assert reply.status == 404 and reply.body == b"" and reply.headers.get("x-amz-request-id")


def test_garbage_on_the_wire_gets_an_s3_error(s3_cache: CacheProcess) -> None:
    parts = urlsplit(s3_cache.s3_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        answer = sock.recv(65536)
    assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request") and b"<Code>InvalidRequest</Code>" in answer


@pytest.mark.parametrize("key", ["warehouse/part-target", "outside/part-target"])
@pytest.mark.parametrize("upload_id", ["bogus", "lc-" + "0" * 32, "../../etc/passwd"])
def test_unknown_upload_ids_are_no_such_upload(s3, s3_bucket: str, key: str, upload_id: str) -> None:
    for call in (
        lambda: s3.upload_part(Bucket=s3_bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"x"),
        lambda: s3.list_parts(Bucket=s3_bucket, Key=key, UploadId=upload_id),
        lambda: s3.abort_multipart_upload(Bucket=s3_bucket, Key=key, UploadId=upload_id),
        lambda: s3.complete_multipart_upload(
            Bucket=s3_bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": "e"}]}
        ),
    ):
        with pytest.raises(ClientError) as error:
            call()
        assert error.value.response["Error"]["Code"] == "NoSuchUpload"


@pytest.mark.parametrize("query", ["", "?acl", "?foo=bar", "?tagging"])
def test_post_on_an_object_without_an_operation_is_method_not_allowed(
    s3_cache: CacheProcess, s3_bucket: str, query: str
) -> None:
    reply = signed("POST", f"{s3_cache.s3_url}/{s3_bucket}/warehouse/data.bin{query}", b"<x/>")
    assert reply.status == 405 and reply.code == "MethodNotAllowed", reply.body
