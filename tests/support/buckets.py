"""Creating and removing throwaway buckets on the S3 emulator."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def unique_bucket_name(prefix: str = "test") -> str:
    """A valid bucket name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


def remove_bucket(client: S3Client, bucket: str) -> None:
    """Delete ``bucket`` with its objects and unfinished multipart uploads; best effort, for teardown."""
    try:
        for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [o["Key"] for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})
        client.delete_bucket(Bucket=bucket)
    except (ClientError, BotoCoreError):
        pass  # the emulator's memory goes when it stops; a leftover bucket harms no other test


@contextmanager
def throwaway_bucket(client: S3Client, prefix: str = "test") -> Iterator[str]:
    """A new bucket (named after ``prefix``) for the ``with`` block, removed with its objects after it."""
    name = unique_bucket_name(prefix)
    client.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        remove_bucket(client, name)
