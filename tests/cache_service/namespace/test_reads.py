"""The one read path (``ObjectReader``) on a real worker's components and the S3 emulator: the stale-ETag retry,
forgetting what S3 no longer has, staged files, and uncached copy sources."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from cache_service.config import CacheConfig, MetadataConfig, MountConfig, StoreConfig, TierConfig, UnderStoreConfig
from cache_service.errors import StaleObjectError
from cache_service.namespace.reads import OpenRead, Span
from cache_service.namespace.status import FileStatus
from cache_service.service import CacheService
from infra.s3_emulator import EMULATOR_CREDENTIALS
from tests.cache_service.async_tests import run_async
from tests.cache_service.counting_under_store import CountingUnderStore, emulator_under_store

MiB = 1024**2
PAGE = 64 * 1024


@pytest.fixture
def config(s3_emulator, bucket: str, tmp_path: Path) -> CacheConfig:
    return CacheConfig(
        under_store=UnderStoreConfig(
            endpoint_url=s3_emulator.endpoint_url,
            access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            max_attempts=1,
        ),
        mounts=(MountConfig("/warehouse", f"s3://{bucket}/warehouse"),),
        # Statuses stay fresh for the whole test: a change in S3 is met only by reading.
        metadata=MetadataConfig(sync_interval=300.0),
        store=StoreConfig(
            page_size=PAGE, tiers=(TierConfig("memory", 16 * MiB), TierConfig("disk", 64 * MiB, str(tmp_path / "disk")))
        ),
    )


async def drain(read: OpenRead) -> bytes:
    try:
        return b"".join([bytes(read.first or b"")] + [bytes(c) async for c in read.rest])
    finally:
        await read.rest.aclose()  # type: ignore[attr-defined]


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in chunks])


@dataclass(frozen=True)
class Whole:
    span: Span | None


def whole_object(seen: list[str]) -> Callable[[FileStatus], Whole]:
    def plan(st: FileStatus) -> Whole:
        assert st.object is not None
        seen.append(st.object.etag)
        return Whole((0, st.length))

    return plan


def etag(s3_client, bucket: str, key: str) -> str:
    return s3_client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')


@run_async
async def test_a_read_of_an_object_changed_behind_the_cache_starts_over_with_the_new_version(
    config, s3_client, bucket: str
) -> None:
    old, new = os.urandom(3 * PAGE), os.urandom(2 * PAGE + 7)
    s3_client.put_object(Bucket=bucket, Key="warehouse/f", Body=old)
    service = CacheService(config)
    try:
        reads = service.reads
        assert (await service.fs.status("/warehouse/f")).length == len(old)  # the old status, cached
        s3_client.put_object(Bucket=bucket, Key="warehouse/f", Body=new)
        new_etag = etag(s3_client, bucket, "warehouse/f")
        read = await reads.open("/warehouse/f", PAGE, None)
        assert read.status.length == len(new) and read.count == len(new) - PAGE
        assert await drain(read) == new[PAGE:]
        # Both protocols' reads take the same door, and see each version the retry met.
        s3_client.put_object(Bucket=bucket, Key="warehouse/f", Body=old)
        seen: list[str] = []
        plan, read = await reads.open_object("/warehouse/f", whole_object(seen))
        assert await drain(read) == old
        assert seen == [new_etag, etag(s3_client, bucket, "warehouse/f")]
        assert plan.span == (0, len(old))
    finally:
        await service.stop()


@run_async
async def test_the_retry_happens_once(config, s3_client, bucket: str) -> None:
    s3_client.put_object(Bucket=bucket, Key="warehouse/f", Body=b"v0")
    under = CountingUnderStore(emulator_under_store(config.under_store.endpoint_url))
    versions = iter(range(1, 10))

    def rewrite_after_head(method: str) -> None:
        # Every status the cache reads is out of date by the time it reads the bytes.
        if method == "head":
            s3_client.put_object(Bucket=bucket, Key="warehouse/f", Body=f"v{next(versions)}".encode())

    service = CacheService(config, under)
    try:
        under.after_call = rewrite_after_head
        with pytest.raises(StaleObjectError):
            await service.reads.open("/warehouse/f", 0, None)
        assert under.calls["head"] == 2
        under.after_call = lambda method: None
        assert service.fs.known_status("/warehouse/f") is None, "a stale status is forgotten"
    finally:
        await service.stop()


@run_async
async def test_a_read_of_an_object_deleted_behind_the_cache_is_not_found_and_forgotten(
    config, s3_client, bucket: str
) -> None:
    s3_client.put_object(Bucket=bucket, Key="warehouse/gone", Body=b"x" * 100)
    service = CacheService(config)
    try:
        await service.fs.status("/warehouse/gone")
        s3_client.delete_object(Bucket=bucket, Key="warehouse/gone")
        with pytest.raises(FileNotFoundError):
            await service.reads.open_object("/warehouse/gone", whole_object([]))
        assert service.fs.known_status("/warehouse/gone") is None
        assert await service.fs.lookup("/warehouse/gone") is None
    finally:
        await service.stop()


@run_async
async def test_open_refuses_directories_and_offsets_past_the_end(config, s3_client, bucket: str) -> None:
    s3_client.put_object(Bucket=bucket, Key="warehouse/d/f", Body=b"12345")
    service = CacheService(config)
    try:
        reads = service.reads
        with pytest.raises(IsADirectoryError):
            await reads.open("/warehouse/d", 0, None)
        with pytest.raises(ValueError, match="out of the range"):
            await reads.open("/warehouse/d/f", 6, None)
        empty = await reads.open("/warehouse/d/f", 5, None)
        assert (empty.count, await drain(empty)) == (0, b"")
        with pytest.raises(FileNotFoundError):
            await reads.open_object("/warehouse/d", whole_object([]))  # a directory is no object
    finally:
        await service.stop()


@run_async
async def test_staged_files_are_read_from_the_staging_area(config, s3_client, bucket: str) -> None:
    service = CacheService(config)
    try:

        async def body() -> AsyncIterator[bytes]:
            yield b"staged bytes"

        path = "/warehouse/t/_temporary/0/part-0"
        await service.fs.create(path, body(), overwrite=False)
        read = await service.reads.open(path, 7, 3)
        assert (read.status.staged, await drain(read)) == (True, b"byt")
        with pytest.raises(FileNotFoundError):
            await service.reads.open_object(path, whole_object([]))  # S3 has no such object
    finally:
        await service.stop()


@run_async
async def test_a_copy_source_outside_every_mount_streams_from_s3_uncached(config, s3_client, bucket: str) -> None:
    data = os.urandom(3 * MiB + 11)
    s3_client.put_object(Bucket=bucket, Key="elsewhere/src", Body=data)
    s3_client.put_object(Bucket=bucket, Key="warehouse/src", Body=data)
    service = CacheService(config)
    try:
        reads = service.reads
        outside = await reads.head(bucket, "elsewhere/src")
        inside = await reads.head(bucket, "warehouse/src")
        assert outside is not None and inside is not None
        assert reads.cache_path(bucket, "elsewhere/src") is None
        assert await collect(reads.read_range(outside, 10, len(data) - 5)) == data[10:-5]
        assert service.pages.owners() == [], "bytes outside every mount are not cached"
        assert await collect(reads.read_range(inside, 10, len(data) - 5)) == data[10:-5]
        assert [o.key for o in service.pages.owners()] == ["warehouse/src"]
        s3_client.delete_object(Bucket=bucket, Key="elsewhere/src")
        with pytest.raises(FileNotFoundError):
            await collect(reads.read_range(outside, 0, 10))
        assert await reads.head(bucket, "elsewhere/src") is None, "a vanished object's status is forgotten"
    finally:
        await service.stop()
