"""The status cache over the real S3UnderStore on the S3 emulator, with a fake clock for the sync interval.

Whether S3 was asked is counted by ``CountingUnderStore``, which forwards every call to the emulator.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from cache_service.metadata.status_cache import StatusCache
from cache_service.metrics import CacheMetrics
from tests.cache_service.async_tests import run_async
from tests.cache_service.counting_under_store import CountingUnderStore

TTL = 30.0


class FakeClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(under, clock) -> Iterator[StatusCache]:
    with ThreadPoolExecutor(max_workers=4) as executor:
        yield StatusCache(under, TTL, executor, CacheMetrics(), clock=clock)


def names(listing) -> tuple[list[str], list[str]]:
    return sorted(o.key for o in listing.objects), sorted(listing.prefixes)


# --- head ---------------------------------------------------------------------------------------------------


@run_async
async def test_head_within_the_ttl_is_served_without_s3(cache, under, clock, s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key="t/part-0", Body=b"first")
    first = await cache.head(bucket, "t/part-0")
    s3_client.put_object(Bucket=bucket, Key="t/part-0", Body=b"second, longer")
    clock.advance(TTL - 0.001)

    again = await cache.head(bucket, "t/part-0")

    assert again == first
    assert first is not None and first.size == 5
    assert under.calls["head"] == 1


@run_async
async def test_after_the_ttl_a_change_made_directly_in_s3_is_seen(cache, under, clock, s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key="t/part-0", Body=b"first")
    first = await cache.head(bucket, "t/part-0")
    s3_client.put_object(Bucket=bucket, Key="t/part-0", Body=b"second, longer")
    clock.advance(TTL)

    changed = await cache.head(bucket, "t/part-0")

    assert changed is not None and first is not None
    assert changed.etag != first.etag
    assert changed.size == len(b"second, longer")
    assert under.calls["head"] == 2


@run_async
async def test_a_missing_object_is_cached_as_missing_until_the_ttl(cache, under, clock, s3_client, bucket):
    assert await cache.head(bucket, "t/late") is None
    s3_client.put_object(Bucket=bucket, Key="t/late", Body=b"x")

    assert await cache.head(bucket, "t/late") is None
    assert under.calls["head"] == 1

    clock.advance(TTL + 1)
    status = await cache.head(bucket, "t/late")
    assert status is not None and status.size == 1
    assert under.calls["head"] == 2


@run_async
async def test_record_replaces_a_cached_negative_answer_without_asking_s3(cache, under, s3_under_store, bucket):
    assert await cache.head(bucket, "t/written") is None

    written = s3_under_store.put_bytes(bucket, "t/written", b"through the cache")
    cache.record(written)

    assert await cache.head(bucket, "t/written") == written
    assert under.calls["head"] == 1


@run_async
async def test_concurrent_heads_of_one_key_share_one_s3_request(cache, under, s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key="t/part-0", Body=b"x")

    answers = await asyncio.gather(*(cache.head(bucket, "t/part-0") for _ in range(10)))

    assert len({a.etag for a in answers if a is not None}) == 1
    assert all(a is not None for a in answers)
    assert under.calls["head"] == 1


# --- listings -----------------------------------------------------------------------------------------------


@run_async
async def test_listing_within_the_ttl_is_served_without_s3_and_a_change_is_seen_after(
    cache, under, clock, s3_client, bucket
):
    s3_client.put_object(Bucket=bucket, Key="t/a", Body=b"a")
    s3_client.put_object(Bucket=bucket, Key="t/dt=1/part-0", Body=b"p")
    assert names(await cache.listing(bucket, "t/")) == (["t/a"], ["t/dt=1"])
    s3_client.put_object(Bucket=bucket, Key="t/b", Body=b"b")

    clock.advance(TTL - 0.001)
    assert names(await cache.listing(bucket, "t/")) == (["t/a"], ["t/dt=1"])
    assert under.calls["list_level"] == 1

    clock.advance(0.001)
    assert names(await cache.listing(bucket, "t/")) == (["t/a", "t/b"], ["t/dt=1"])
    assert under.calls["list_level"] == 2


@run_async
async def test_a_listing_answers_later_heads_of_its_objects(cache, under, s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key="t/a", Body=b"abc")
    await cache.listing(bucket, "t/")

    status = await cache.head(bucket, "t/a")

    assert status is not None and status.size == 3
    assert under.calls["head"] == 0


async def cache_listings(cache: StatusCache, bucket: str, prefixes: list[str]) -> None:
    for prefix in prefixes:
        await cache.listing(bucket, prefix)


@run_async
async def test_record_invalidates_the_listings_of_every_ancestor(cache, under, s3_under_store, s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key="t/dt=1/part-0", Body=b"p")
    s3_client.put_object(Bucket=bucket, Key="other/x", Body=b"x")
    await cache_listings(cache, bucket, ["", "t/", "t/dt=1/", "other/"])
    assert under.calls["list_level"] == 4

    cache.record(s3_under_store.put_bytes(bucket, "t/dt=2/part-0", b"new partition"))

    assert names(await cache.listing(bucket, "t/")) == ([], ["t/dt=1", "t/dt=2"])
    assert names(await cache.listing(bucket, "")) == ([], ["other", "t"])
    assert under.calls["list_level"] == 6
    await cache_listings(cache, bucket, ["t/dt=1/", "other/"])  # not ancestors of the new key: still cached
    assert under.calls["list_level"] == 6


@run_async
async def test_forget_drops_the_object_and_its_ancestors_listings(cache, under, s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key="t/dt=1/part-0", Body=b"p")
    s3_client.put_object(Bucket=bucket, Key="t/dt=1/part-1", Body=b"q")
    await cache_listings(cache, bucket, ["t/", "t/dt=1/"])
    assert await cache.head(bucket, "t/dt=1/part-0") is not None
    s3_client.delete_object(Bucket=bucket, Key="t/dt=1/part-0")

    cache.forget(bucket, "t/dt=1/part-0")

    assert await cache.head(bucket, "t/dt=1/part-0") is None
    assert names(await cache.listing(bucket, "t/dt=1/")) == (["t/dt=1/part-1"], [])
    assert names(await cache.listing(bucket, "t/")) == ([], ["t/dt=1"])
    assert (under.calls["head"], under.calls["list_level"]) == (1, 4)


@run_async
async def test_forget_prefix_drops_everything_below_it_and_its_ancestors_listings(cache, under, s3_client, bucket):
    for key in ["t/dt=1/part-0", "t/dt=2/part-0", "tx/keep"]:
        s3_client.put_object(Bucket=bucket, Key=key, Body=b"p")
    await cache_listings(cache, bucket, ["", "t/", "t/dt=1/", "t/dt=2/", "tx/"])
    assert under.calls["list_level"] == 5
    for key in ["t/dt=1/part-0", "t/dt=2/part-0"]:
        s3_client.delete_object(Bucket=bucket, Key=key)

    cache.forget_prefix(bucket, "t/")

    assert await cache.head(bucket, "t/dt=1/part-0") is None
    assert names(await cache.listing(bucket, "t/dt=2/")) == ([], [])
    assert names(await cache.listing(bucket, "t/")) == ([], [])
    assert names(await cache.listing(bucket, "")) == ([], ["tx"])
    assert (under.calls["head"], under.calls["list_level"]) == (1, 8)
    assert names(await cache.listing(bucket, "tx/")) == (["tx/keep"], [])  # a sibling sharing "t": still cached
    assert await cache.head(bucket, "tx/keep") is not None
    assert (under.calls["head"], under.calls["list_level"]) == (1, 8)


@run_async
async def test_forget_prefix_of_the_bucket_root_forgets_every_object(cache, under, s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key="t/part-0", Body=b"p")
    assert await cache.head(bucket, "t/part-0") is not None
    s3_client.delete_object(Bucket=bucket, Key="t/part-0")

    cache.forget_prefix(bucket, "")

    assert await cache.head(bucket, "t/part-0") is None
    assert under.calls["head"] == 2


# --- writes racing with lookups -------------------------------------------------------------------------------


class HeldAnswers:
    """Holds S3's answers to one kind of call in the executor thread until ``release``."""

    def __init__(self, under: CountingUnderStore, method: str) -> None:
        self.reached = threading.Event()
        self._release = threading.Event()

        def hold(called: str) -> None:
            if called == method:
                self.reached.set()
                self._release.wait(timeout=10)

        under.after_call = hold

    async def wait_until_answered(self) -> None:
        assert await asyncio.to_thread(self.reached.wait, 10), "S3 was never asked"

    def release(self) -> None:
        self._release.set()


@run_async
async def test_a_write_recorded_while_a_head_is_in_flight_is_not_undone_by_its_answer(
    cache, under, s3_under_store, bucket
):
    held = HeldAnswers(under, "head")
    try:
        lookup = asyncio.ensure_future(cache.head(bucket, "t/_SUCCESS"))
        await held.wait_until_answered()  # S3 said "no such object"; the answer has not reached the cache yet
        written = s3_under_store.put_bytes(bucket, "t/_SUCCESS", b"")
        cache.record(written)
    finally:
        held.release()
    await lookup

    assert await cache.head(bucket, "t/_SUCCESS") == written


@run_async
async def test_a_write_recorded_while_a_listing_is_in_flight_is_not_undone_by_its_answer(
    cache, under, s3_under_store, s3_client, bucket
):
    s3_client.put_object(Bucket=bucket, Key="t/part-0", Body=b"p")
    held = HeldAnswers(under, "list_level")
    try:
        lookup = asyncio.ensure_future(cache.listing(bucket, "t/"))
        await held.wait_until_answered()
        cache.record(s3_under_store.put_bytes(bucket, "t/part-1", b"q"))
    finally:
        held.release()
    await lookup

    assert names(await cache.listing(bucket, "t/")) == (["t/part-0", "t/part-1"], [])
