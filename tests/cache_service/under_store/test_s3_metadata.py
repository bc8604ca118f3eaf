"""S3UnderStore carries object metadata: HEAD reports it, writes and copies store it, listings do not know it."""

from __future__ import annotations

from pathlib import Path

from cache_service.under_store import ObjectMetadata
from cache_service.under_store.s3 import S3UnderStore

METADATA = ObjectMetadata.build(
    {"content-type": "text/csv", "Cache-Control": "no-cache", "Expires": "Thu, 01 Jan 2037 00:00:00 GMT"},
    [("Owner", "etl")],
)


def test_head_reports_the_metadata_s3_returns(s3_under_store: S3UnderStore, s3_client, bucket: str) -> None:
    s3_client.put_object(
        Bucket=bucket, Key="k", Body=b"x", ContentType="text/plain", ContentLanguage="fr", Metadata={"A": "1"}
    )
    metadata = s3_under_store.head(bucket, "k").metadata
    assert metadata is not None
    assert metadata.get("content-type") == "text/plain" and metadata.get("Content-Language") == "fr"
    assert metadata.user == (("a", "1"),)


def test_put_file_and_copy_store_metadata(s3_under_store: S3UnderStore, s3_client, bucket: str, tmp_path: Path) -> None:
    local = tmp_path / "f"
    local.write_bytes(b"a,b\n")
    status = s3_under_store.put_file(bucket, "src", local, METADATA)
    assert status.metadata == METADATA
    direct = s3_client.head_object(Bucket=bucket, Key="src")
    assert (direct["ContentType"], direct["CacheControl"], direct["Metadata"]) == (
        "text/csv",
        "no-cache",
        {"owner": "etl"},
    )
    assert s3_under_store.copy(bucket, "src", "kept").metadata == METADATA
    other = ObjectMetadata.build({"Content-Type": "text/plain"}, [])
    assert s3_under_store.copy(bucket, "src", "replaced", other).metadata == other
    assert s3_under_store.put_file(bucket, "plain", local).metadata == ObjectMetadata.build(
        {"Content-Type": s3_client.head_object(Bucket=bucket, Key="plain")["ContentType"]}, []
    )


def test_listings_do_not_know_metadata(s3_under_store: S3UnderStore, s3_client, bucket: str) -> None:
    s3_client.put_object(Bucket=bucket, Key="d/k", Body=b"x", Metadata={"a": "1"})
    assert [o.metadata for o in s3_under_store.list_level(bucket, "d/").objects] == [None]
    status = s3_under_store.head(bucket, "d/k")
    assert status == s3_under_store.list_level(bucket, "d/").objects[0], "metadata takes no part in equality"
