"""Authentication on the cache's S3 API: SigV4 headers, presigned URLs and streaming uploads, S3's errors."""

from __future__ import annotations

import base64
import datetime
import hashlib
import time
import uuid
import zlib

import pytest
from botocore.exceptions import ClientError

from infra.cache_process import CacheProcess
from tests.cache_service.api.s3.support import s3_client, send, sign, signed, streaming_put


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return error.value.response["Error"]["Code"]


@pytest.fixture
def presigner(s3_cache: CacheProcess):
    return s3_client(s3_cache.s3_url, signature_version="s3v4")


@pytest.mark.parametrize("where", ["warehouse", "outside"])
def test_presigned_get_and_put_urls_work_inside_and_outside_mounts(
    presigner, s3_cache: CacheProcess, s3_bucket: str, where: str
) -> None:
    key = f"{where}/{uuid.uuid4().hex}/presigned ü.bin"
    put = presigner.generate_presigned_url("put_object", Params={"Bucket": s3_bucket, "Key": key}, ExpiresIn=300)
    assert send("PUT", put, b"presigned body").status == 200
    get = presigner.generate_presigned_url("get_object", Params={"Bucket": s3_bucket, "Key": key}, ExpiresIn=300)
    reply = send("GET", get)
    assert reply.status == 200 and reply.body == b"presigned body"


def test_tampered_presigned_urls_are_signature_does_not_match(presigner, s3_bucket: str, prefix: str) -> None:
    presigner.put_object(Bucket=s3_bucket, Key=f"{prefix}/a", Body=b"a")
    presigner.put_object(Bucket=s3_bucket, Key=f"{prefix}/b", Body=b"b")
    url = presigner.generate_presigned_url("get_object", Params={"Bucket": s3_bucket, "Key": f"{prefix}/a"})
    for tampered in (
        url.replace(f"{prefix}/a", f"{prefix}/b"),
        url.replace("X-Amz-Expires=3600", "X-Amz-Expires=3601"),
        url + "&extra=1",
        url[:-4] + ("0000" if not url.endswith("0000") else "1111"),
    ):
        reply = send("GET", tampered)
        assert reply.status == 403 and reply.code == "SignatureDoesNotMatch", tampered


def test_expired_presigned_urls_are_access_denied(presigner, s3_bucket: str, prefix: str) -> None:
    presigner.put_object(Bucket=s3_bucket, Key=f"{prefix}/soon", Body=b"x")
    url = presigner.generate_presigned_url(
        "get_object", Params={"Bucket": s3_bucket, "Key": f"{prefix}/soon"}, ExpiresIn=1
    )
    time.sleep(2.1)
    reply = send("GET", url)
    assert reply.status == 403 and reply.code == "AccessDenied"
    assert reply.text("Message") == "Request has expired"


def test_presigned_url_valid_longer_than_a_week_is_refused(presigner, s3_bucket: str) -> None:
    url = presigner.generate_presigned_url("get_object", Params={"Bucket": s3_bucket, "Key": "k"}, ExpiresIn=604801)
    reply = send("GET", url)
    assert reply.status == 400 and reply.code == "AuthorizationQueryParametersError"


def test_signature_v2_is_not_supported(s3_cache: CacheProcess, s3_bucket: str) -> None:
    legacy = s3_client(s3_cache.s3_url, signature_version="s3")
    with pytest.raises(ClientError) as error:
        legacy.list_objects_v2(Bucket=s3_bucket)
    assert _code(error) == "InvalidRequest"


def test_a_wrong_secret_is_signature_does_not_match(s3_cache: CacheProcess, s3_bucket: str) -> None:
    with pytest.raises(ClientError) as error:
        s3_client(s3_cache.s3_url, secret="not-the-secret").list_objects_v2(Bucket=s3_bucket)
    assert _code(error) == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as error:
        s3_client(s3_cache.s3_url, secret="not-the-secret").get_object(Bucket=s3_bucket, Key="warehouse/x")
    assert _code(error) == "SignatureDoesNotMatch"


def test_an_unknown_access_key_is_invalid_access_key_id(s3_cache: CacheProcess, s3_bucket: str) -> None:
    with pytest.raises(ClientError) as error:
        s3_client(s3_cache.s3_url, access_key="AKIDUNKNOWN").head_bucket(Bucket=s3_bucket)
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as error:
        s3_client(s3_cache.s3_url, access_key="AKIDUNKNOWN").list_buckets()
    assert _code(error) == "InvalidAccessKeyId"


@pytest.mark.parametrize("path", ["/", "/{bucket}", "/{bucket}/warehouse/x", "/{bucket}/outside/x"])
def test_unsigned_requests_are_access_denied(s3_cache: CacheProcess, s3_bucket: str, path: str) -> None:
    reply = send("GET", s3_cache.s3_url + path.format(bucket=s3_bucket))
    assert reply.status == 403 and reply.code == "AccessDenied"
    assert send("HEAD", s3_cache.s3_url + path.format(bucket=s3_bucket)).status == 403


def test_a_wrong_region_is_authorization_header_malformed(s3_cache: CacheProcess, s3_bucket: str) -> None:
    reply = signed("GET", f"{s3_cache.s3_url}/{s3_bucket}?list-type=2", region="eu-west-1")
    assert reply.status == 400 and reply.code == "AuthorizationHeaderMalformed"
    assert reply.text("Region") == "us-east-1"
    presigner = s3_client(s3_cache.s3_url, signature_version="s3v4", region="eu-west-1")
    url = presigner.generate_presigned_url("get_object", Params={"Bucket": s3_bucket, "Key": "k"})
    reply = send("GET", url)
    assert reply.status == 400 and reply.code == "AuthorizationQueryParametersError"


def test_a_skewed_clock_is_request_time_too_skewed(s3_cache: CacheProcess, s3_bucket: str) -> None:
    past = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(minutes=20)
    reply = signed("GET", f"{s3_cache.s3_url}/{s3_bucket}?list-type=2", at=past)
    assert reply.status == 403 and reply.code == "RequestTimeTooSkewed"
    recent = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(minutes=5)
    assert signed("GET", f"{s3_cache.s3_url}/{s3_bucket}?list-type=2", at=recent).status == 200


def test_unsigned_amz_headers_are_refused(s3_cache: CacheProcess, s3_bucket: str, prefix: str) -> None:
    url = f"{s3_cache.s3_url}/{s3_bucket}/{prefix}/x"
    headers = sign("PUT", url, b"body")
    reply = send("PUT", url, b"body", {**headers, "x-amz-meta-sneaky": "1"})
    assert reply.status == 403 and reply.code == "AccessDenied"


@pytest.mark.parametrize("where", ["warehouse", "outside"])
def test_a_body_that_does_not_match_its_sha256_is_refused_and_not_stored(
    s3_cache: CacheProcess, s3_client_direct, s3_bucket: str, where: str
) -> None:
    key = f"{where}/{uuid.uuid4().hex}"
    url = f"{s3_cache.s3_url}/{s3_bucket}/{key}"
    headers = sign("PUT", url, b"declared", content_sha256=hashlib.sha256(b"declared").hexdigest())
    reply = send("PUT", url, b"delivered", {**headers, "Content-Length": "9"})
    assert reply.status == 400 and reply.code == "XAmzContentSHA256Mismatch", reply.body
    with pytest.raises(ClientError):
        s3_client_direct.head_object(Bucket=s3_bucket, Key=key)


def test_unsigned_payload_is_accepted(s3, s3_cache: CacheProcess, s3_bucket: str, prefix: str) -> None:
    url = f"{s3_cache.s3_url}/{s3_bucket}/{prefix}/unsigned"
    assert signed("PUT", url, b"no hash", content_sha256="UNSIGNED-PAYLOAD").status == 200
    assert s3.get_object(Bucket=s3_bucket, Key=f"{prefix}/unsigned")["Body"].read() == b"no hash"


def test_content_md5_and_checksum_mismatches_are_bad_digest(
    s3_cache: CacheProcess, s3_client_direct, s3_bucket: str, prefix: str
) -> None:
    url = f"{s3_cache.s3_url}/{s3_bucket}/{prefix}/digest"
    wrong_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    assert signed("PUT", url, b"data", {"Content-MD5": wrong_md5}).code == "BadDigest"
    wrong_crc = base64.b64encode(zlib.crc32(b"other").to_bytes(4, "big")).decode()
    assert signed("PUT", url, b"data", {"x-amz-checksum-crc32": wrong_crc}).code == "BadDigest"
    assert signed("PUT", url, b"data", {"Content-MD5": "not base64!"}).code == "InvalidDigest"
    with pytest.raises(ClientError):
        s3_client_direct.head_object(Bucket=s3_bucket, Key=f"{prefix}/digest")
    right_md5 = base64.b64encode(hashlib.md5(b"data").digest()).decode()
    assert signed("PUT", url, b"data", {"Content-MD5": right_md5}).status == 200


@pytest.mark.parametrize("where", ["warehouse", "outside"])
def test_streaming_signed_uploads_are_verified_chunk_by_chunk(
    s3_cache: CacheProcess, s3_client_direct, s3_bucket: str, where: str
) -> None:
    data = bytes(range(256)) * 100  # 25,600 bytes: three full chunks and a partial one
    key = f"{where}/{uuid.uuid4().hex}/streamed"
    reply = streaming_put(f"{s3_cache.s3_url}/{s3_bucket}/{key}", data)
    assert reply.status == 200, reply.body
    assert s3_client_direct.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == data
    bad_key = f"{where}/{uuid.uuid4().hex}/tampered"
    reply = streaming_put(f"{s3_cache.s3_url}/{s3_bucket}/{bad_key}", data, tamper=True)
    assert reply.status == 403 and reply.code == "SignatureDoesNotMatch", reply.body
    with pytest.raises(ClientError):
        s3_client_direct.head_object(Bucket=s3_bucket, Key=bad_key)


def test_explicit_api_credentials_from_an_environment_variable(
    cache_factory, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAKECACHE_TEST_S3_SECRET", "s3cr3t-for-clients")
    cache = cache_factory(
        {"/warehouse": f"s3://{bucket}/warehouse"},
        {"s3_api": {"access_key": "lake-client", "secret_key_env": "LAKECACHE_TEST_S3_SECRET"}},
    )
    client = s3_client(cache.s3_url, access_key="lake-client", secret="s3cr3t-for-clients")
    client.put_object(Bucket=bucket, Key="warehouse/k", Body=b"v")
    client.put_object(Bucket=bucket, Key="outside/k", Body=b"w")  # forwarded, signed with the under store's keys
    assert client.get_object(Bucket=bucket, Key="outside/k")["Body"].read() == b"w"
    with pytest.raises(ClientError) as error:
        s3_client(cache.s3_url).get_object(Bucket=bucket, Key="warehouse/k")
    assert _code(error) == "InvalidAccessKeyId"


@pytest.fixture
def s3_client_direct(s3_client):
    """boto3 straight to the S3 emulator."""
    return s3_client
