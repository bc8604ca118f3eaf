"""Multipart uploads through the S3 API of a cluster: S3 holds them, so any worker takes any part, the worker that
started an upload can die without losing a part it acknowledged, and the completed object replaces the one every
worker had cached."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError

from infra.cache_process import CacheProcess
from infra.cache_ring import wait_for_ring
from infra.s3_emulator import s3_client as emulator_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PART = 5 * 1024**2  # S3's smallest part but the last


def test_parts_go_through_any_worker_and_survive_the_kill_of_the_one_that_started(
    workers: list[CacheProcess], s3_client: S3Client, bucket: str
) -> None:
    starter, other, third = workers
    through = {w.s3_url: emulator_client(w.s3_url) for w in workers}
    key = "lake/uploads/table.parquet"
    parts = [os.urandom(PART), os.urandom(PART), os.urandom(1234)]
    s3_client.put_object(Bucket=bucket, Key=key, Body=b"the version before")
    for worker in (other, third):  # its status and its page now cached where these workers keep them
        assert through[worker.s3_url].get_object(Bucket=bucket, Key=key)["Body"].read() == b"the version before"

    upload = through[starter.s3_url].create_multipart_upload(
        Bucket=bucket, Key=key, ContentType="application/x-parquet"
    )
    upload_id = upload["UploadId"]
    first = through[starter.s3_url].upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=parts[0])
    second = through[other.s3_url].upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=2, Body=parts[1])
    starter.kill()
    wait_for_ring([other, third], 2)
    third_part = through[third.s3_url].upload_part(
        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=3, Body=parts[2]
    )
    listed = through[third.s3_url].list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2, 3]

    through[other.s3_url].complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [
                {"PartNumber": n, "ETag": answer["ETag"]}
                for n, answer in enumerate((first, second, third_part), start=1)
            ]
        },
    )
    whole = b"".join(parts)
    assert s3_client.get_object(Bucket=bucket, Key=key)["Body"].read() == whole
    for worker in (other, third):  # the completion, forwarded to S3, made every worker forget the version before
        got = through[worker.s3_url].get_object(Bucket=bucket, Key=key)
        assert got["Body"].read() == whole
        assert got["ContentType"] == "application/x-parquet"
    # No worker held a part: nothing of the upload on any disk tier.
    assert [part for w in workers for part in w.state_dir.rglob("multipart/*")] == []


def test_an_upload_aborted_through_another_worker_is_gone(workers: list[CacheProcess], bucket: str) -> None:
    one, two, _ = workers
    key = "lake/uploads/abandoned.bin"
    upload_id = emulator_client(one.s3_url).create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    emulator_client(one.s3_url).upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"x")
    emulator_client(two.s3_url).abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    with pytest.raises(ClientError) as refused:
        emulator_client(one.s3_url).list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert refused.value.response["Error"]["Code"] == "NoSuchUpload"
