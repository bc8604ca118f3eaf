"""Every kind of S3 operation, inside a mount and outside every mount, is refused when signed with a wrong secret,
and changes nothing: objects, uploads and their parts are as they were."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.cache_process import CacheProcess
from tests.cache_service.api.s3.support import s3_client

# Each operation as (name, call(client, bucket, key, upload_id)); ``key`` holds b"original", ``upload_id`` is an
# open multipart upload of ``key + ".mp"`` without parts.
OPERATIONS: list[tuple[str, Callable[[Any, str, str, str], Any]]] = [
    ("GetObject", lambda c, b, k, u: c.get_object(Bucket=b, Key=k)),
    ("HeadObject", lambda c, b, k, u: c.head_object(Bucket=b, Key=k)),
    ("PutObject", lambda c, b, k, u: c.put_object(Bucket=b, Key=k, Body=b"forged")),
    ("PutObject new key", lambda c, b, k, u: c.put_object(Bucket=b, Key=k + ".new", Body=b"forged")),
    ("DeleteObject", lambda c, b, k, u: c.delete_object(Bucket=b, Key=k)),
    ("ListObjectsV2", lambda c, b, k, u: c.list_objects_v2(Bucket=b, Prefix=k)),
    ("ListObjects", lambda c, b, k, u: c.list_objects(Bucket=b, Prefix=k)),
    ("ListBuckets", lambda c, b, k, u: c.list_buckets()),
    ("HeadBucket", lambda c, b, k, u: c.head_bucket(Bucket=b)),
    ("CreateMultipartUpload", lambda c, b, k, u: c.create_multipart_upload(Bucket=b, Key=k + ".new")),
    ("UploadPart", lambda c, b, k, u: c.upload_part(Bucket=b, Key=k + ".mp", UploadId=u, PartNumber=1, Body=b"p")),
    (
        "UploadPartCopy",
        lambda c, b, k, u: c.upload_part_copy(
            Bucket=b, Key=k + ".mp", UploadId=u, PartNumber=1, CopySource={"Bucket": b, "Key": k}
        ),
    ),
    ("ListParts", lambda c, b, k, u: c.list_parts(Bucket=b, Key=k + ".mp", UploadId=u)),
    (
        "CompleteMultipartUpload",
        lambda c, b, k, u: c.complete_multipart_upload(
            Bucket=b, Key=k + ".mp", UploadId=u, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"x"'}]}
        ),
    ),
    ("AbortMultipartUpload", lambda c, b, k, u: c.abort_multipart_upload(Bucket=b, Key=k + ".mp", UploadId=u)),
    ("CopyObject", lambda c, b, k, u: c.copy_object(Bucket=b, Key=k + ".new", CopySource={"Bucket": b, "Key": k})),
    (
        "DeleteObjects",
        lambda c, b, k, u: c.delete_objects(Bucket=b, Delete={"Objects": [{"Key": k}, {"Key": k + ".mp"}]}),
    ),
]


@pytest.mark.parametrize("where", ["warehouse", "outside"])
@pytest.mark.parametrize(("name", "operation"), OPERATIONS, ids=[name for name, _ in OPERATIONS])
def test_every_operation_signed_with_a_wrong_secret_is_refused_and_changes_nothing(
    s3, s3_cache: CacheProcess, s3_bucket: str, where: str, name: str, operation: Callable[..., Any]
) -> None:
    key = f"{where}/{uuid.uuid4().hex[:12]}/object.bin"
    s3.put_object(Bucket=s3_bucket, Key=key, Body=b"original")
    upload_id = s3.create_multipart_upload(Bucket=s3_bucket, Key=key + ".mp")["UploadId"]
    forger = s3_client(s3_cache.s3_url, secret="not-the-secret")
    try:
        with pytest.raises(ClientError) as refused:
            operation(forger, s3_bucket, key, upload_id)
        answer = refused.value.response
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 403, answer
        if name not in ("HeadObject", "HeadBucket"):  # a HEAD's error has no body
            assert answer["Error"]["Code"] == "SignatureDoesNotMatch", answer

        assert s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == b"original"
        listed = s3.list_objects_v2(Bucket=s3_bucket, Prefix=key)
        assert [o["Key"] for o in listed.get("Contents", [])] == [key]
        assert s3.list_parts(Bucket=s3_bucket, Key=key + ".mp", UploadId=upload_id).get("Parts", []) == []
    finally:
        s3.abort_multipart_upload(Bucket=s3_bucket, Key=key + ".mp", UploadId=upload_id)
