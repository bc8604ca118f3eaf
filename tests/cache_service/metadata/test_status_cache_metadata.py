"""The status cache keeps object metadata: a HEAD's comes with the status, a listed object's is fetched once."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from cache_service.metadata.status_cache import StatusCache
from cache_service.metrics import CacheMetrics
from tests.cache_service.async_tests import run_async


@pytest.fixture
def cache(under) -> Iterator[StatusCache]:
    with ThreadPoolExecutor(max_workers=4) as executor:
        yield StatusCache(under, 30.0, executor, CacheMetrics())


@run_async
async def test_metadata_of_a_headed_object_costs_no_s3_request(cache, under, s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key="k", Body=b"x", Metadata={"a": "1"})
    status = await cache.head(bucket, "k")
    assert status is not None
    metadata = await cache.metadata(bucket, "k", status.etag)
    assert metadata.user == (("a", "1"),) and under.calls["head"] == 1


@run_async
async def test_a_listed_object_fetches_its_metadata_once(cache, under, s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key="d/k", Body=b"x", ContentType="text/plain")
    listing = await cache.listing(bucket, "d/")
    etag = listing.objects[0].etag
    first = await cache.metadata(bucket, "d/k", etag)
    again = await cache.metadata(bucket, "d/k", etag)
    assert first == again and first.get("Content-Type") == "text/plain"
    assert under.calls["head"] == 1
    await cache.listing(bucket, "d/")  # served from the cache: still known
    status = await cache.head(bucket, "d/k")
    assert status is not None and status.metadata == first


@run_async
async def test_a_gone_object_has_no_metadata(cache, bucket):
    with pytest.raises(FileNotFoundError):
        await cache.metadata(bucket, "missing", "0" * 32)
