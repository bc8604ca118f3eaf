"""Object metadata on the cache's S3 API: stored in S3 on every write path, answered by HEAD and GET from the cache."""

from __future__ import annotations

import base64
import http.client
import uuid
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from infra.cache_process import CacheProcess
from tests.cache_service.api.s3.support import Reply, aws_chunked, send, sign, signed
from tests.support.metrics import s3_bytes_read, scrape
from tests.support.webhdfs import WebHdfsClient

METADATA = {
    "ContentType": "application/json",
    "CacheControl": "max-age=60",
    "ContentDisposition": 'attachment; filename="a.json"',
    "ContentEncoding": "gzip",
    "ContentLanguage": "fr",
    "Metadata": {"owner": "etl", "run-id": "42"},
}
_FIELDS = ("ContentType", "CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage", "Metadata")
_HEADERS = (
    "content-type",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
    "x-amz-meta-owner",
    "x-amz-meta-run-id",
)


def _s3_lookups(cache: CacheProcess) -> float:
    """Status lookups the worker sent to S3 so far."""
    return scrape(cache.webhdfs_url).get("lakecache_metadata_misses_total", 0.0)


def _fields(answer: dict) -> dict:
    return {name: answer.get(name) for name in _FIELDS}


def _headers(answer: dict) -> dict:
    headers = answer["ResponseMetadata"]["HTTPHeaders"]
    return {name: headers.get(name) for name in _HEADERS}


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return error.value.response["Error"]["Code"]


def test_put_object_metadata_is_in_s3_and_served_from_the_cache(
    s3, s3_client, s3_bucket: str, s3_cache: CacheProcess, prefix: str
) -> None:
    key = f"{prefix}/typed.json"
    s3.put_object(Bucket=s3_bucket, Key=key, Body=b"{}", Expires="Thu, 01 Jan 2037 00:00:00 GMT", **METADATA)
    direct = s3_client.head_object(Bucket=s3_bucket, Key=key)
    assert _fields(direct) == METADATA
    lookups, read = _s3_lookups(s3_cache), s3_bytes_read(s3_cache.webhdfs_url)
    head = s3.head_object(Bucket=s3_bucket, Key=key)
    got = s3.get_object(Bucket=s3_bucket, Key=key)
    assert got["Body"].read() == b"{}"
    assert _s3_lookups(s3_cache) == lookups and s3_bytes_read(s3_cache.webhdfs_url) == read, "asked S3 again"
    for answer in (head, got):
        assert _fields(answer) == METADATA
        assert _headers(answer) == _headers(direct)


def test_multipart_upload_keeps_the_metadata_of_its_creation(
    s3, s3_client, s3_bucket: str, s3_cache: CacheProcess, prefix: str
) -> None:
    key = f"{prefix}/multi.json"
    upload = s3.create_multipart_upload(Bucket=s3_bucket, Key=key, **METADATA)
    part = s3.upload_part(Bucket=s3_bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"[1]")
    s3.complete_multipart_upload(
        Bucket=s3_bucket,
        Key=key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert _fields(s3_client.head_object(Bucket=s3_bucket, Key=key)) == METADATA
    lookups = _s3_lookups(s3_cache)
    assert _fields(s3.head_object(Bucket=s3_bucket, Key=key)) == METADATA
    got = s3.get_object(Bucket=s3_bucket, Key=key)
    assert got["Body"].read() == b"[1]" and _fields(got) == METADATA
    assert _s3_lookups(s3_cache) == lookups


def test_copy_object_copies_or_replaces_metadata(
    s3, s3_client, s3_bucket: str, s3_cache: CacheProcess, prefix: str
) -> None:
    s3.put_object(Bucket=s3_bucket, Key=f"{prefix}/src", Body=b"data", **METADATA)
    source = {"Bucket": s3_bucket, "Key": f"{prefix}/src"}
    s3.copy_object(Bucket=s3_bucket, Key=f"{prefix}/copied", CopySource=source, MetadataDirective="COPY")
    replaced = {"ContentType": "text/plain", "Metadata": {"owner": "analyst"}}
    s3.copy_object(
        Bucket=s3_bucket, Key=f"{prefix}/replaced", CopySource=source, MetadataDirective="REPLACE", **replaced
    )
    lookups = _s3_lookups(s3_cache)
    copied = s3.head_object(Bucket=s3_bucket, Key=f"{prefix}/copied")
    assert _fields(copied) == METADATA
    head = s3.head_object(Bucket=s3_bucket, Key=f"{prefix}/replaced")
    assert head["ContentType"] == "text/plain" and head["Metadata"] == {"owner": "analyst"}
    assert head.get("CacheControl") is None
    assert _s3_lookups(s3_cache) == lookups, "a copy's status is learned when it is made"
    for key in ("copied", "replaced"):
        direct = s3_client.head_object(Bucket=s3_bucket, Key=f"{prefix}/{key}")
        assert _headers(s3.get_object(Bucket=s3_bucket, Key=f"{prefix}/{key}")) == _headers(direct)


def test_objects_written_behind_the_cache_answer_what_s3_answers(
    s3, s3_client, s3_bucket: str, s3_cache: CacheProcess, hdfs: WebHdfsClient, prefix: str
) -> None:
    key = f"{prefix}/behind/x.csv"
    s3_client.put_object(Bucket=s3_bucket, Key=key, Body=b"a,b\n", Expires="Fri, 02 Jan 2037 00:00:00 GMT", **METADATA)
    direct = s3_client.head_object(Bucket=s3_bucket, Key=key)
    assert hdfs.list(f"/{prefix}/behind") == ["x.csv"]  # a listing: the cache knows the object, not its metadata
    lookups = _s3_lookups(s3_cache)
    assert _headers(s3.head_object(Bucket=s3_bucket, Key=key)) == _headers(direct)
    assert _s3_lookups(s3_cache) == lookups + 1, "one HEAD fetches the metadata"
    got = s3.get_object(Bucket=s3_bucket, Key=key)
    assert got["Body"].read() == b"a,b\n" and _headers(got) == _headers(direct)
    assert _s3_lookups(s3_cache) == lookups + 1, "and it is kept"


def test_response_overrides_win_over_stored_metadata(s3, s3_bucket: str, prefix: str) -> None:
    key = f"{prefix}/o"
    s3.put_object(Bucket=s3_bucket, Key=key, Body=b"x", **METADATA)
    got = s3.get_object(
        Bucket=s3_bucket,
        Key=key,
        ResponseContentType="text/plain",
        ResponseCacheControl="no-cache",
        ResponseContentDisposition="inline",
        ResponseContentEncoding="identity",
        ResponseContentLanguage="de",
        ResponseExpires="Sat, 03 Jan 2037 00:00:00 GMT",
    )
    headers = got["ResponseMetadata"]["HTTPHeaders"]
    assert (headers["content-type"], headers["cache-control"], headers["content-disposition"]) == (
        "text/plain",
        "no-cache",
        "inline",
    )
    assert (headers["content-encoding"], headers["content-language"]) == ("identity", "de")
    assert headers["expires"] == "Sat, 03 Jan 2037 00:00:00 GMT"
    assert got["Metadata"] == METADATA["Metadata"]


def test_zero_byte_objects_keep_their_metadata(s3, s3_client, s3_bucket: str, prefix: str) -> None:
    key = f"{prefix}/empty"
    s3.put_object(Bucket=s3_bucket, Key=key, Body=b"", ContentType="text/plain", Metadata={"empty": "yes"})
    got = s3.get_object(Bucket=s3_bucket, Key=key)
    assert got["Body"].read() == b"" and got["ContentLength"] == 0
    assert got["ContentType"] == "text/plain" and got["Metadata"] == {"empty": "yes"}
    assert _headers(got) == _headers(s3_client.head_object(Bucket=s3_bucket, Key=key))


def test_an_object_without_metadata_has_s3s_default_type(s3, s3_bucket: str, prefix: str) -> None:
    s3.put_object(Bucket=s3_bucket, Key=f"{prefix}/plain", Body=b"x")
    head = s3.head_object(Bucket=s3_bucket, Key=f"{prefix}/plain")
    assert head["ContentType"] == "binary/octet-stream" and head["Metadata"] == {}


def test_aws_chunked_uploads_keep_metadata_and_drop_aws_chunked(
    s3, s3_client, s3_cache: CacheProcess, s3_bucket: str, prefix: str
) -> None:
    key = f"{prefix}/streamed"
    url = f"{s3_cache.s3_url}/{s3_bucket}/{key}"
    data = b"abcdef" * 3000
    headers = {
        "Content-Encoding": "aws-chunked,gzip",
        "x-amz-decoded-content-length": str(len(data)),
        "x-amz-meta-a": "b",
        "Content-Length": str(len(aws_chunked(data, 8192, "0" * 64, "20000101T000000Z"))),
    }
    signed_headers = sign("PUT", url, b"", headers, content_sha256="STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    seed = signed_headers["Authorization"].rsplit("Signature=", 1)[1]
    reply = send("PUT", url, aws_chunked(data, 8192, seed, signed_headers["X-Amz-Date"]), signed_headers)
    assert reply.status == 200, reply.body
    head = s3.head_object(Bucket=s3_bucket, Key=key)
    assert head["ContentEncoding"] == "gzip" and head["Metadata"] == {"a": "b"}
    assert s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == data
    assert s3_client.head_object(Bucket=s3_bucket, Key=key)["ContentEncoding"] == "gzip"


def test_transfer_encoding_chunked_without_length_is_missing_content_length(
    s3_cache: CacheProcess, s3_bucket: str, prefix: str
) -> None:
    url = f"{s3_cache.s3_url}/{s3_bucket}/{prefix}/chunked"
    headers = sign("PUT", url, headers={"x-amz-meta-a": "b"}, content_sha256="UNSIGNED-PAYLOAD")
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest("PUT", parts.path, skip_host=True, skip_accept_encoding=True)
        for name, value in {**headers, "Transfer-Encoding": "chunked"}.items():
            connection.putheader(name, value)
        connection.endheaders(b"3\r\nabc\r\n0\r\n\r\n")
        response = connection.getresponse()
        reply = Reply(response.status, {}, response.read())
    finally:
        connection.close()
    assert (reply.status, reply.code) == (411, "MissingContentLength")


def test_user_metadata_over_2_kb_is_metadata_too_large(s3, s3_bucket: str, prefix: str) -> None:
    at_limit = {"k": "v" * 2047}  # 1 + 2047 bytes: S3 counts names (without the prefix) and values
    s3.put_object(Bucket=s3_bucket, Key=f"{prefix}/limit", Body=b"x", Metadata=at_limit)
    assert s3.head_object(Bucket=s3_bucket, Key=f"{prefix}/limit")["Metadata"] == at_limit
    over = {"k": "v" * 2048}
    with pytest.raises(ClientError) as put:
        s3.put_object(Bucket=s3_bucket, Key=f"{prefix}/over", Body=b"x", Metadata=over)
    with pytest.raises(ClientError) as multipart:
        s3.create_multipart_upload(Bucket=s3_bucket, Key=f"{prefix}/over", Metadata=over)
    with pytest.raises(ClientError) as copy:
        s3.copy_object(
            Bucket=s3_bucket,
            Key=f"{prefix}/over",
            CopySource={"Bucket": s3_bucket, "Key": f"{prefix}/limit"},
            MetadataDirective="REPLACE",
            Metadata=over,
        )
    for error in (put, multipart, copy):
        assert _code(error) == "MetadataTooLarge" and error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as missing:
        s3.head_object(Bucket=s3_bucket, Key=f"{prefix}/over")
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_non_ascii_metadata_is_stored_rfc_2047_encoded_as_s3_does(
    s3, s3_cache: CacheProcess, s3_bucket: str, prefix: str
) -> None:
    key = f"{prefix}/{uuid.uuid4().hex}"
    url = f"{s3_cache.s3_url}/{s3_bucket}/{key}"
    headers = sign("PUT", url, b"x", {"x-amz-meta-city": "Zürich", "Content-Length": "1"})
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest("PUT", parts.path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value.encode("utf-8"))
        connection.endheaders(b"x")
        response = connection.getresponse()
        assert response.status == 200, response.read()
        response.read()
    finally:
        connection.close()
    encoded = "=?UTF-8?B?" + base64.b64encode("Zürich".encode()).decode() + "?="
    assert s3.head_object(Bucket=s3_bucket, Key=key)["Metadata"] == {"city": encoded}
    assert signed("GET", url).headers["x-amz-meta-city"] == encoded


def test_an_expires_that_is_no_date_is_accepted_and_answered_as_the_under_store_keeps_it(
    s3, s3_client, s3_cache: CacheProcess, s3_bucket: str, prefix: str
) -> None:
    # S3 does not parse Expires: it stores any string and returns it (SDKs read it as ExpiresString). The cache
    # accepts it too, passes it on byte for byte, and answers whatever the under store kept.
    key = f"{prefix}/expires"
    reply = signed("PUT", f"{s3_cache.s3_url}/{s3_bucket}/{key}", b"x", {"Expires": "5d"})
    assert reply.status == 200, reply.body
    direct = s3_client.head_object(Bucket=s3_bucket, Key=key)["ResponseMetadata"]["HTTPHeaders"]
    cached = s3.head_object(Bucket=s3_bucket, Key=key)["ResponseMetadata"]["HTTPHeaders"]
    assert cached.get("expires") == direct.get("expires")
