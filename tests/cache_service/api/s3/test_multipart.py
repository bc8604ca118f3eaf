"""Multipart uploads on the cache's S3 API: parts wait in the cache, completion writes through, S3's rules apply."""

from __future__ import annotations

import io
import os
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from infra.cache_process import CacheProcess
from tests.cache_service.api.s3.support import signed
from tests.support.metrics import s3_bytes_read
from tests.support.webhdfs import WebHdfsClient

MiB = 1024**2


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return error.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def big_part() -> bytes:
    return os.urandom(5 * MiB)  # S3's smallest allowed part but the last


def test_create_upload_list_complete_then_read_from_both_protocols(
    s3, s3_client, s3_bucket: str, s3_cache: CacheProcess, hdfs: WebHdfsClient, prefix: str, big_part: bytes
) -> None:
    key = f"{prefix}/assembled.bin"
    tail = os.urandom(70_000)
    upload = s3.create_multipart_upload(Bucket=s3_bucket, Key=key)["UploadId"]
    one = s3.upload_part(Bucket=s3_bucket, Key=key, UploadId=upload, PartNumber=1, Body=big_part)["ETag"]
    two = s3.upload_part(Bucket=s3_bucket, Key=key, UploadId=upload, PartNumber=2, Body=tail)["ETag"]
    listed = s3.list_parts(Bucket=s3_bucket, Key=key, UploadId=upload)
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed["Parts"]] == [
        (1, one, len(big_part)),
        (2, two, len(tail)),
    ]
    paged = s3.list_parts(Bucket=s3_bucket, Key=key, UploadId=upload, MaxParts=1)
    assert paged["IsTruncated"] and [p["PartNumber"] for p in paged["Parts"]] == [1]
    with pytest.raises(ClientError):
        s3_client.head_object(Bucket=s3_bucket, Key=key)  # nothing in S3 before completion
    done = s3.complete_multipart_upload(
        Bucket=s3_bucket,
        Key=key,
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": one}, {"PartNumber": 2, "ETag": two}]},
    )
    assert done["Key"] == key and done["ETag"]
    assert s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == big_part + tail
    before = s3_bytes_read(s3_cache.webhdfs_url)
    assert (
        s3.get_object(Bucket=s3_bucket, Key=key, Range="bytes=5242870-5242889")["Body"].read()
        == ((big_part + tail)[5242870:5242890])
    )
    assert hdfs.read(f"/{prefix}/assembled.bin", offset=len(big_part), length=len(tail)).body == tail
    assert s3_bytes_read(s3_cache.webhdfs_url) == before, "completion cached the object's pages"
    assert not (s3_cache.data_dir / "multipart" / upload).exists()
    with pytest.raises(ClientError) as error:
        s3.list_parts(Bucket=s3_bucket, Key=key, UploadId=upload)
    assert _code(error) == "NoSuchUpload"


def test_transfer_manager_uploads_in_parts_with_checksums(
    s3, s3_client, s3_bucket: str, prefix: str, big_part: bytes
) -> None:
    data = big_part + b"tail"
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=2)
    s3.upload_fileobj(io.BytesIO(data), s3_bucket, f"{prefix}/managed", Config=config)
    assert s3_client.get_object(Bucket=s3_bucket, Key=f"{prefix}/managed")["Body"].read() == data
    out = io.BytesIO()
    s3.download_fileobj(s3_bucket, f"{prefix}/managed", out, Config=config)
    assert out.getvalue() == data


def test_abort_drops_the_parts(s3, s3_bucket: str, s3_cache: CacheProcess, prefix: str) -> None:
    key = f"{prefix}/aborted"
    upload = s3.create_multipart_upload(Bucket=s3_bucket, Key=key)["UploadId"]
    s3.upload_part(Bucket=s3_bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"x" * 1000)
    assert (s3_cache.data_dir / "multipart" / upload).is_dir()
    s3.abort_multipart_upload(Bucket=s3_bucket, Key=key, UploadId=upload)
    assert not (s3_cache.data_dir / "multipart" / upload).exists()
    for call in (
        lambda: s3.list_parts(Bucket=s3_bucket, Key=key, UploadId=upload),
        lambda: s3.upload_part(Bucket=s3_bucket, Key=key, UploadId=upload, PartNumber=2, Body=b"y"),
        lambda: s3.abort_multipart_upload(Bucket=s3_bucket, Key=key, UploadId=upload),
    ):
        with pytest.raises(ClientError) as error:
            call()
        assert _code(error) == "NoSuchUpload"


def test_completion_checks_part_order_etags_and_sizes(s3, s3_bucket: str, prefix: str, big_part: bytes) -> None:
    key = f"{prefix}/checked"
    upload = s3.create_multipart_upload(Bucket=s3_bucket, Key=key)["UploadId"]
    etags = {
        n: s3.upload_part(Bucket=s3_bucket, Key=key, UploadId=upload, PartNumber=n, Body=body)["ETag"]
        for n, body in [(1, big_part), (2, b"small"), (3, b"last")]
    }

    def complete(*parts: tuple[int, str]) -> str:
        with pytest.raises(ClientError) as error:
            s3.complete_multipart_upload(
                Bucket=s3_bucket,
                Key=key,
                UploadId=upload,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]},
            )
        return _code(error)

    assert complete((2, etags[2]), (1, etags[1])) == "InvalidPartOrder"
    assert complete((1, etags[1]), (1, etags[1])) == "InvalidPartOrder"
    assert complete((1, '"0123456789abcdef0123456789abcdef"')) == "InvalidPart"
    assert complete((1, etags[1]), (4, etags[3])) == "InvalidPart"
    assert complete((1, etags[1]), (2, etags[2]), (3, etags[3])) == "EntityTooSmall"
    # Nothing was spent: the upload is intact and completes with a valid list.
    s3.complete_multipart_upload(
        Bucket=s3_bucket,
        Key=key,
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etags[1]}, {"PartNumber": 3, "ETag": etags[3]}]},
    )
    assert s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == big_part + b"last"


def test_an_upload_id_is_bound_to_its_key(s3, s3_bucket: str, prefix: str) -> None:
    upload = s3.create_multipart_upload(Bucket=s3_bucket, Key=f"{prefix}/one")["UploadId"]
    with pytest.raises(ClientError) as error:
        s3.upload_part(Bucket=s3_bucket, Key=f"{prefix}/other", UploadId=upload, PartNumber=1, Body=b"x")
    assert _code(error) == "NoSuchUpload"
    s3.abort_multipart_upload(Bucket=s3_bucket, Key=f"{prefix}/one", UploadId=upload)


@pytest.mark.parametrize("number", ["0", "10001", "-1", "one"])
def test_part_numbers_outside_1_to_10000_are_invalid_argument(
    s3, s3_cache: CacheProcess, s3_bucket: str, prefix: str, number: str
) -> None:
    upload = s3.create_multipart_upload(Bucket=s3_bucket, Key=f"{prefix}/p")["UploadId"]
    reply = signed("PUT", f"{s3_cache.s3_url}/{s3_bucket}/{prefix}/p?partNumber={number}&uploadId={upload}", b"x")
    assert reply.status == 400 and reply.code == "InvalidArgument", reply.body


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml at all",
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>",
        b"<CompleteMultipartUpload></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>",
        b"<Delete><Object><Key>k</Key></Object></Delete>",
        b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "ccc">]><CompleteMultipartUpload>&b;</CompleteMultipartUpload>',
        "<CompleteMultipartUpload>é</CompleteMultipartUpload>".encode("latin-1"),
    ],
)
def test_malformed_completion_bodies_are_malformed_xml(
    s3, s3_cache: CacheProcess, s3_bucket: str, prefix: str, body: bytes
) -> None:
    upload = s3.create_multipart_upload(Bucket=s3_bucket, Key=f"{prefix}/m")["UploadId"]
    reply = signed("POST", f"{s3_cache.s3_url}/{s3_bucket}/{prefix}/m?uploadId={upload}", body)
    assert reply.status == 400 and reply.code == "MalformedXML", reply.body
    assert s3.list_parts(Bucket=s3_bucket, Key=f"{prefix}/m", UploadId=upload)["UploadId"] == upload


def test_multipart_outside_every_mount_is_s3s_own(s3, s3_client, s3_bucket: str, big_part: bytes) -> None:
    key = "outside/multipart.bin"
    upload = s3.create_multipart_upload(Bucket=s3_bucket, Key=key)["UploadId"]
    assert not upload.startswith("lc-")
    one = s3.upload_part(Bucket=s3_bucket, Key=key, UploadId=upload, PartNumber=1, Body=big_part)["ETag"]
    two = s3.upload_part(Bucket=s3_bucket, Key=key, UploadId=upload, PartNumber=2, Body=b"end")["ETag"]
    assert len(s3.list_parts(Bucket=s3_bucket, Key=key, UploadId=upload)["Parts"]) == 2
    s3.complete_multipart_upload(
        Bucket=s3_bucket,
        Key=key,
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": one}, {"PartNumber": 2, "ETag": two}]},
    )
    assert s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == big_part + b"end"
    s3.delete_object(Bucket=s3_bucket, Key=key)


@pytest.mark.parametrize("source", ["warehouse", "outside"])
def test_managed_copy_builds_parts_from_the_source_object(
    s3, s3_client, s3_bucket: str, prefix: str, big_part: bytes, source: str
) -> None:
    data = big_part + b"tail of the source"
    src = f"{source}/{prefix.rsplit('/', 1)[-1]}/source.bin"
    s3_client.put_object(Bucket=s3_bucket, Key=src, Body=data)
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=2)
    s3.copy({"Bucket": s3_bucket, "Key": src}, s3_bucket, f"{prefix}/copied.bin", Config=config)
    assert s3_client.get_object(Bucket=s3_bucket, Key=f"{prefix}/copied.bin")["Body"].read() == data


def test_upload_part_copy_checks_its_range_and_source(s3, s3_bucket: str, prefix: str) -> None:
    s3.put_object(Bucket=s3_bucket, Key=f"{prefix}/src", Body=b"0123456789")
    key = f"{prefix}/dst"
    upload = s3.create_multipart_upload(Bucket=s3_bucket, Key=key)["UploadId"]

    def copy_part(number: int, source: str, **condition: str) -> Any:
        copy_source = {"Bucket": s3_bucket, "Key": f"{prefix}/{source}"}
        return s3.upload_part_copy(
            Bucket=s3_bucket, Key=key, UploadId=upload, PartNumber=number, CopySource=copy_source, **condition
        )

    part = copy_part(1, "src", CopySourceRange="bytes=2-5")
    listed = s3.list_parts(Bucket=s3_bucket, Key=key, UploadId=upload)["Parts"]
    assert [(p["Size"], p["ETag"]) for p in listed] == [(4, part["CopyPartResult"]["ETag"])]
    for source, condition, code in [
        ("src", {"CopySourceRange": "bytes=5-10"}, "InvalidArgument"),
        ("src", {"CopySourceRange": "bytes=abc"}, "InvalidArgument"),
        ("missing", {"CopySourceRange": "bytes=0-1"}, "NoSuchKey"),
        ("src", {"CopySourceIfMatch": '"not-the-etag"'}, "PreconditionFailed"),
    ]:
        with pytest.raises(ClientError) as error:
            copy_part(2, source, **condition)
        assert _code(error) == code
    s3.complete_multipart_upload(
        Bucket=s3_bucket,
        Key=key,
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]},
    )
    assert s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == b"2345"


@pytest.fixture
def slow_cache(s3_emulator, bucket: str, tmp_path, monkeypatch: pytest.MonkeyPatch):
    """An in-process worker whose uploads to S3 take a while, answering completions S3's slow way."""
    import asyncio
    import threading

    from cache_service.api.s3 import multipart as multipart_module
    from cache_service.api.s3 import start_s3_api
    from cache_service.config import (
        CacheConfig,
        MountConfig,
        ServerConfig,
        StoreConfig,
        TierConfig,
        UnderStoreConfig,
    )
    from cache_service.service import CacheService
    from infra.ports import free_port

    monkeypatch.setattr(multipart_module, "_KEEPALIVE_SECONDS", 0.05)
    port = free_port("127.0.0.1")
    config = CacheConfig(
        server=ServerConfig(host="127.0.0.1", webhdfs_port=0, s3_port=port),
        under_store=UnderStoreConfig(
            endpoint_url=s3_emulator.endpoint_url, access_key_id="test", secret_access_key="test", max_attempts=1
        ),
        mounts=(MountConfig("/warehouse", f"s3://{bucket}/warehouse"),),
        store=StoreConfig(
            tiers=(TierConfig("memory", 64 * MiB), TierConfig("disk", 256 * MiB, str(tmp_path / "disk")))
        ),
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    outcome: dict[str, BaseException | None] = {"fail": None}

    async def start():
        service = CacheService(config)
        await service.start()
        upload = service.uploader.upload

        async def slow_upload(*args):
            await asyncio.sleep(0.4)
            if outcome["fail"] is not None:
                raise outcome["fail"]
            return await upload(*args)

        service.uploader.upload = slow_upload  # type: ignore[method-assign]
        return service, await start_s3_api(service, {})

    service, runner = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    yield f"http://127.0.0.1:{port}", outcome
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
    asyncio.run_coroutine_threadsafe(service.stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_a_slow_completion_keeps_the_client_waiting_with_whitespace(slow_cache, s3_client, bucket: str) -> None:
    from tests.cache_service.api.s3.support import s3_client as cache_client

    url, outcome = slow_cache
    s3 = cache_client(url)
    for key, fail in [("warehouse/slow-ok", None), ("warehouse/slow-failing", FileNotFoundError("bucket gone"))]:
        outcome["fail"] = fail
        upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"slow")["ETag"]
        parts = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
        if fail is None:
            done = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload=parts)
            assert done["Key"] == key
            assert s3_client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"slow"
        else:
            with pytest.raises(ClientError) as error:
                s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload=parts)
            assert _code(error) == "NoSuchBucket"
            # The failed completion left the upload as it was.
            assert [p["PartNumber"] for p in s3.list_parts(Bucket=bucket, Key=key, UploadId=upload)["Parts"]] == [1]
