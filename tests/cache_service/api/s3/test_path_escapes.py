"""Keys that look like escapes (dot-dot, encoded or double-encoded, backslashes, NUL, a leading slash) name keys of
their own, as in S3: a read never answers another key's bytes, a write never lands on another key, and an upload id
never names a directory outside the cache's own (``test_bad_input.py`` has the plain and encoded dot-dot reads)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from infra.cache_process import CacheProcess
from tests.cache_service.api.s3.support import signed

SECRET = b"classified"
ESCAPES = {
    "double-encoded dot-dot": "warehouse/%252e%252e/outside/secret",
    "double-encoded slash": "warehouse/..%252Foutside/secret",
    "backslashes": "warehouse/..%5Coutside%5Csecret",
    "raw backslashes": "warehouse\\..\\outside\\secret",
    "NUL": "warehouse/%00/../outside/secret",
    "leading slash": "%2Foutside/secret",
    "absolute local path": "%2Fetc%2Fpasswd",
    "dot-dot to the bucket's root": "warehouse/../../outside/secret",
}


@pytest.fixture
def secret_key(s3, s3_bucket: str) -> str:
    key = f"outside/secret-{uuid.uuid4().hex[:8]}"
    s3.put_object(Bucket=s3_bucket, Key=key, Body=SECRET)
    return key


@pytest.mark.parametrize("escape", ESCAPES.values(), ids=ESCAPES.keys())
def test_an_escaping_key_reads_nothing_of_another_key(
    s3_cache: CacheProcess, s3_bucket: str, secret_key: str, escape: str
) -> None:
    url = f"{s3_cache.s3_url}/{s3_bucket}/{escape.replace('outside/secret', secret_key)}"
    reply = signed("GET", url)
    assert reply.status in (400, 404), reply.body
    assert SECRET not in reply.body
    # S3's error, forwarded byte for byte: with a NUL in the key it is XML no parser takes, so look for the code.
    assert any(f"<Code>{code}</Code>".encode() in reply.body for code in ("NoSuchKey", "InvalidURI")), reply.body


@pytest.mark.parametrize("escape", ESCAPES.values(), ids=ESCAPES.keys())
def test_an_escaping_key_writes_nothing_to_another_key(
    s3, s3_cache: CacheProcess, s3_bucket: str, secret_key: str, escape: str
) -> None:
    url = f"{s3_cache.s3_url}/{s3_bucket}/{escape.replace('outside/secret', secret_key)}"
    reply = signed("PUT", url, b"pwned")
    assert reply.status in (200, 400), reply.body
    assert s3.get_object(Bucket=s3_bucket, Key=secret_key)["Body"].read() == SECRET
    assert not Path("/etc/passwd").read_bytes().startswith(b"pwned")
    if reply.status == 200:  # stored at exactly the key sent, which is not the secret's
        listed = s3.list_objects_v2(Bucket=s3_bucket, Prefix=secret_key)["Contents"]
        assert [o["Key"] for o in listed] == [secret_key]


@pytest.mark.parametrize(
    "upload_id",
    ["lc-../../../escape", "lc-%2e%2e%2f%2e%2e%2fescape", "../escape", "/tmp/escape", "lc-" + "0" * 31 + "/"],
)
def test_an_upload_id_names_no_directory_outside_the_caches_own(
    s3_cache: CacheProcess, s3_bucket: str, tmp_path: Path, upload_id: str
) -> None:
    state = Path(s3_cache.state_dir)
    before = {p for p in state.parent.rglob("*escape*")}
    for method, query, body in (
        ("PUT", "partNumber=1&uploadId={}", b"part"),
        ("POST", "uploadId={}", b"<CompleteMultipartUpload/>"),
        ("DELETE", "uploadId={}", b""),
        ("GET", "uploadId={}", b""),
    ):
        url = f"{s3_cache.s3_url}/{s3_bucket}/warehouse/mp.bin?" + query.format(upload_id)
        reply = signed(method, url, body)
        assert reply.status in (400, 404), (method, reply.body)
        assert reply.code in ("NoSuchUpload", "InvalidArgument", "MalformedXML", "InvalidURI"), (method, reply.body)
    assert {p for p in state.parent.rglob("*escape*")} == before
