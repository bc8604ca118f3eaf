"""The page store over the real S3UnderStore on the S3 emulator, with 64 KiB pages.

S3 traffic is measured, not guessed: the store's own Prometheus counters and a count of the under store's range
GETs (``CountingUnderStore`` forwards every call to the emulator).
"""

from __future__ import annotations

import asyncio
import os
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from cache_service.config import StoreConfig, TierConfig
from cache_service.errors import StaleObjectError
from cache_service.metrics import CacheMetrics
from cache_service.page_store.constraints import (
    NOTHING_GUARDED,
    NOTHING_RESERVED,
    EvictionGuard,
    Reservations,
    ReservedSpace,
)
from cache_service.page_store.identity import ObjectIdentity
from cache_service.page_store.store import PageStore
from tests.cache_service.async_tests import run_async
from tests.cache_service.counting_under_store import CountingUnderStore

PAGE = 64 * 1024


@pytest.fixture(params=[16, None], ids=["memory+disk", "disk only"])
def memory_pages(request: pytest.FixtureRequest) -> int | None:
    """The memory tier's size in pages, or None for a store on disk alone: a test taking it runs with both."""
    return request.param


def make_store(
    under: Any,
    executor: ThreadPoolExecutor,
    disk: Path,
    *,
    disk_pages: int = 64,
    memory_pages: int | None = 16,
    readahead: int = 4,
    guard: EvictionGuard = NOTHING_GUARDED,
    reserved: ReservedSpace = NOTHING_RESERVED,
) -> tuple[PageStore, CacheMetrics]:
    tiers = [TierConfig(medium="disk", capacity=disk_pages * PAGE, path=str(disk))]
    if memory_pages is not None:
        tiers.insert(0, TierConfig(medium="memory", capacity=memory_pages * PAGE))
    config = StoreConfig(page_size=PAGE, readahead_pages=readahead, tiers=tuple(tiers))
    metrics = CacheMetrics()
    return PageStore(config, under, metrics, executor, guard=guard, reserved=reserved), metrics


class Area:
    """A stand-in for the staging area or the multipart spool: bytes on the disk tier that are not pages."""

    def __init__(self, used_bytes: int = 0) -> None:
        self.used_bytes = used_bytes


class Pinned:
    """An eviction guard protecting the objects with the given keys."""

    def __init__(self, *keys: str) -> None:
        self.keys = set(keys)

    def protects(self, owner: ObjectIdentity) -> bool:
        return owner.key in self.keys


def sample(metrics: CacheMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(f"lakecache_{name}_total", labels) or 0.0


def s3_bytes(metrics: CacheMetrics) -> float:
    return sample(metrics, "s3_bytes_read")


def s3_traffic(under: CountingUnderStore, metrics: CacheMetrics) -> tuple[int, float, float]:
    """What reaching S3 has cost so far: range GETs through ``under``, and the store's bytes read and page misses."""
    return sum(under.gets.values()), s3_bytes(metrics), sample(metrics, "page_misses")


async def read(store: PageStore, owner: ObjectIdentity, offset: int = 0, length: int | None = None) -> bytes:
    chunks = [bytes(c) async for c in store.read(owner, offset, owner.size if length is None else length)]
    return b"".join(chunks)


def usage(store: PageStore) -> dict[str, Any]:
    return {u.medium: u for u in store.usage()}


def page_files(disk: Path, owner: ObjectIdentity) -> dict[int, Path]:
    directory = disk / "pages" / owner.file_id[:2] / owner.file_id
    return {int(p.name.split(".")[0]): p for p in directory.glob("[0-9]*.*")}


# --- correct bytes --------------------------------------------------------------------------------------------


@run_async
async def test_reads_return_the_right_bytes_for_random_ranges_and_page_boundaries(
    put, under, executor, tmp_path, memory_pages
):
    data = random.Random(1).randbytes(5 * PAGE + 1234)
    owner = put("t/part-0", data)
    store, _ = make_store(under, executor, tmp_path, memory_pages=memory_pages)
    size = len(data)
    ranges = [
        (0, size),
        (0, 1),
        (PAGE - 1, 2),
        (PAGE, PAGE),
        (PAGE - 1, PAGE + 2),
        (2 * PAGE, 1),
        (3 * PAGE - 5, 5),
        (5 * PAGE, 1234),
        (5 * PAGE + 1000, 10_000),  # past the end: clipped to the last partial page
        (size - 1, 1),
        (size, 10),
        (7, 0),
    ]
    rng = random.Random(2)
    ranges += [(rng.randrange(size), rng.randrange(1, 3 * PAGE)) for _ in range(40)]

    for offset, length in ranges:
        assert await read(store, owner, offset, length) == data[offset : offset + length], (offset, length)


@run_async
async def test_a_second_read_of_the_same_range_makes_no_s3_request(put, under, executor, tmp_path, memory_pages):
    data = os.urandom(3 * PAGE + 100)
    owner = put("t/part-0", data)
    store, metrics = make_store(under, executor, tmp_path, memory_pages=memory_pages)
    offset, length = PAGE - 10, 2 * PAGE  # touches pages 0, 1 and 2 (cold)

    assert await read(store, owner, offset, length) == data[offset : offset + length]
    cold = s3_traffic(under, metrics)
    assert cold == (3, 3 * PAGE, 3)

    assert await read(store, owner, offset, length) == data[offset : offset + length]
    assert await read(store, owner, offset + 5, 10) == data[offset + 5 : offset + 15]

    assert s3_traffic(under, metrics) == cold


@run_async
async def test_concurrent_reads_of_one_cold_page_make_one_s3_get(put, under, executor, tmp_path):
    data = os.urandom(4 * PAGE)
    owner = put("t/part-0", data)
    store, metrics = make_store(under, executor, tmp_path)
    slices = [(2 * PAGE + i * 1000, 3000) for i in range(20)]

    results = await asyncio.gather(*(read(store, owner, offset, length) for offset, length in slices))

    assert results == [data[offset : offset + length] for offset, length in slices]
    assert under.gets == {("t/part-0", 2 * PAGE): 1}
    assert sample(metrics, "page_misses") == 1
    assert s3_bytes(metrics) == PAGE


# --- checksums and restarts -----------------------------------------------------------------------------------


@run_async
async def test_a_corrupt_page_on_disk_is_dropped_refetched_and_never_served(put, under, executor, tmp_path):
    data = os.urandom(3 * PAGE - 7)
    owner = put("t/part-0", data)
    first, _ = make_store(under, executor, tmp_path)
    assert await read(first, owner) == data
    page_file = page_files(tmp_path, owner)[1]
    rotten = bytearray(page_file.read_bytes())
    rotten[100:104] = bytes(b ^ 0xFF for b in rotten[100:104])
    page_file.write_bytes(rotten)

    store, metrics = make_store(under, executor, tmp_path)  # a new process: no page is verified yet
    assert await store.open() == 3

    assert await read(store, owner) == data
    assert sample(metrics, "corrupt_pages") == 1
    assert s3_bytes(metrics) == PAGE  # exactly the corrupt page was fetched again
    assert page_files(tmp_path, owner)[1].read_bytes() == data[PAGE : 2 * PAGE]

    assert await read(store, owner, PAGE, PAGE) == data[PAGE : 2 * PAGE]
    assert s3_bytes(metrics) == PAGE
    assert sample(metrics, "corrupt_pages") == 1


@run_async
async def test_a_page_that_rots_on_disk_while_the_store_runs_is_never_served(put, under, executor, tmp_path):
    data = os.urandom(2 * PAGE)
    owner = put("t/part-0", data)
    store, metrics = make_store(under, executor, tmp_path, memory_pages=None)  # every read is a disk read
    assert await read(store, owner, 0, 10) == data[:10]  # page 0 admitted to disk, checked as it came from S3
    page_file = page_files(tmp_path, owner)[0]
    rotten = bytearray(page_file.read_bytes())
    rotten[5] ^= 0x01
    page_file.write_bytes(rotten)

    assert await read(store, owner, 0, PAGE) == data[:PAGE]
    assert sample(metrics, "corrupt_pages") == 1
    assert page_files(tmp_path, owner)[0].read_bytes() == data[:PAGE]


@run_async
async def test_a_restarted_store_serves_its_disk_pages_without_s3(put, under, executor, tmp_path, memory_pages):
    data = os.urandom(4 * PAGE + 99)
    owner = put("t/part-0", data)
    first, _ = make_store(under, executor, tmp_path, memory_pages=memory_pages)
    assert await read(first, owner) == data
    gets = sum(under.gets.values())

    store, metrics = make_store(under, executor, tmp_path, memory_pages=memory_pages)
    assert await store.open() == 5
    assert store.cached_bytes(owner) == len(data)

    assert await read(store, owner) == data
    assert await read(store, owner, 3 * PAGE - 1, PAGE + 2) == data[3 * PAGE - 1 : 4 * PAGE + 1]
    assert s3_traffic(under, metrics) == (gets, 0, 0)


# --- object identity ------------------------------------------------------------------------------------------


@run_async
async def test_a_new_version_of_an_object_is_read_whole_never_mixed_with_old_pages(put, under, executor, tmp_path):
    old_data = os.urandom(3 * PAGE)
    old = put("t/part-0", old_data)
    store, metrics = make_store(under, executor, tmp_path)
    assert await read(store, old, 0, PAGE) == old_data[:PAGE]  # page 0 of the old version is cached
    assert await read(store, old, 2 * PAGE, 10) == old_data[2 * PAGE : 2 * PAGE + 10]  # and page 2

    new_data = os.urandom(3 * PAGE)
    new = put("t/part-0", new_data)  # overwritten behind the cache's back: same size, new ETag
    assert new.etag != old.etag
    assert new.file_id != old.file_id

    before = s3_bytes(metrics)
    assert await read(store, new) == new_data
    assert s3_bytes(metrics) - before == len(new_data)  # every page of the new version came from S3


@run_async
async def test_an_uncached_page_of_a_replaced_version_is_stale_not_the_new_bytes(put, under, executor, tmp_path):
    old = put("t/part-0", os.urandom(2 * PAGE))
    store, _ = make_store(under, executor, tmp_path)
    await read(store, old, 0, 10)
    put("t/part-0", os.urandom(2 * PAGE))

    with pytest.raises(StaleObjectError):
        await read(store, old, PAGE, 10)


# --- capacity, eviction and protection ------------------------------------------------------------------------


@run_async
async def test_reading_more_pages_than_fit_evicts_and_keeps_disk_within_capacity(put, under, executor, tmp_path):
    data = os.urandom(8 * PAGE)
    owner = put("t/part-0", data)
    store, metrics = make_store(under, executor, tmp_path, disk_pages=3, memory_pages=None, readahead=1)
    capacity = usage(store)["disk"].capacity_bytes

    received = bytearray()
    async for chunk in store.read(owner, 0, owner.size):
        received += chunk
        assert usage(store)["disk"].used_bytes <= capacity

    assert bytes(received) == data
    assert usage(store)["disk"].used_bytes <= capacity
    assert store.cached_bytes(owner) <= capacity
    assert len(page_files(tmp_path, owner)) <= 3
    assert sample(metrics, "evictions", tier="disk", reason="capacity") >= 5


@run_async
async def test_parallel_readahead_never_overfills_the_disk_tier(put, under, tmp_path):
    # One I/O thread makes the interleaving fixed: the four readahead GETs all finish before any disk write does.
    data = os.urandom(8 * PAGE)
    owner = put("t/part-0", data)
    with ThreadPoolExecutor(max_workers=1) as one_thread:
        store, _ = make_store(under, one_thread, tmp_path, disk_pages=2, memory_pages=None, readahead=4)
        capacity = usage(store)["disk"].capacity_bytes

        received = bytearray()
        peak = 0
        async for chunk in store.read(owner, 0, owner.size):
            received += chunk
            peak = max(peak, usage(store)["disk"].used_bytes)

    assert bytes(received) == data
    assert peak <= capacity, f"disk tier held {peak // PAGE} pages, capacity {capacity // PAGE}"
    assert usage(store)["disk"].used_bytes <= capacity


@run_async
async def test_reserved_areas_take_room_from_pages_as_they_grow(put, under, executor, tmp_path):
    # The worker hands the store its staging area at construction; the S3 API registers its spool when it starts.
    staging, spool = Area(2 * PAGE), Area()
    reservations = Reservations(staging)
    store, _ = make_store(
        under, executor, tmp_path, disk_pages=8, memory_pages=None, readahead=1, reserved=reservations
    )
    owner = put("t/part-0", os.urandom(8 * PAGE))
    await read(store, owner)
    assert usage(store)["disk"].pages == 6
    assert store.used("disk") == 8 * PAGE

    reservations.add(spool)
    spool.used_bytes = 3 * PAGE
    await read(store, put("t/part-1", os.urandom(PAGE)))  # a new page needs room: pages give way to the reserve

    tiers = usage(store)
    assert tiers["disk"].pages == 3
    assert tiers["disk"].used_bytes == store.used("disk") == 8 * PAGE


@run_async
async def test_protected_pages_are_never_evicted(put, under, executor, tmp_path):
    pinned_data = os.urandom(2 * PAGE)
    pinned = put("dim/pinned", pinned_data)
    scan = put("fact/scan", os.urandom(8 * PAGE))
    store, metrics = make_store(
        under, executor, tmp_path, disk_pages=3, memory_pages=None, readahead=1, guard=Pinned("dim/pinned")
    )
    assert await read(store, pinned) == pinned_data

    await read(store, scan)
    await read(store, scan, 0, PAGE)

    assert store.cached_bytes(pinned) == pinned.size
    assert usage(store)["disk"].used_bytes <= usage(store)["disk"].capacity_bytes
    before = s3_bytes(metrics)
    assert await read(store, pinned) == pinned_data
    assert s3_bytes(metrics) == before


@run_async
async def test_pages_fetched_by_a_reader_land_in_memory(put, under, executor, tmp_path):
    data = os.urandom(2 * PAGE)
    owner = put("t/part-0", data)
    store, metrics = make_store(under, executor, tmp_path, memory_pages=4)

    await read(store, owner, 10, 100)
    assert usage(store)["memory"].pages == 1
    assert await read(store, owner, 10, 100) == data[10:110]

    assert sample(metrics, "page_hits", tier="memory") == 1
    assert sample(metrics, "page_hits", tier="disk") == 0


@run_async
async def test_memory_holds_a_subset_of_disk_and_demoted_pages_are_served_from_disk(put, under, executor, tmp_path):
    data = os.urandom(6 * PAGE)
    owner = put("t/part-0", data)
    store, metrics = make_store(under, executor, tmp_path, memory_pages=2, disk_pages=16)

    assert await read(store, owner) == data
    tiers = usage(store)
    assert tiers["memory"].pages <= 2
    assert tiers["memory"].used_bytes <= tiers["memory"].capacity_bytes
    assert tiers["disk"].pages == 6  # every page read is on disk, so memory's pages are a subset
    assert sorted(page_files(tmp_path, owner)) == list(range(6))

    before = s3_bytes(metrics)
    assert await read(store, owner) == data
    assert s3_bytes(metrics) == before
    assert sample(metrics, "page_hits", tier="disk") >= 4
    assert sample(metrics, "demotions") >= 4


@run_async
async def test_a_page_the_disk_tier_cannot_take_is_not_kept_in_memory_alone(put, under, executor, tmp_path):
    # The disk tier is full of pinned pages, so it refuses the next page; memory still has room for it.
    pinned = put("dim/pinned", os.urandom(2 * PAGE))
    other = put("fact/other", os.urandom(PAGE))
    store, _ = make_store(
        under, executor, tmp_path, memory_pages=4, disk_pages=2, readahead=1, guard=Pinned("dim/pinned")
    )
    await read(store, pinned)

    await read(store, other)

    tiers = usage(store)
    assert tiers["memory"].pages <= tiers["disk"].pages, tiers


@run_async
async def test_ingesting_an_object_that_is_already_cached_keeps_it_cached(put, under, executor, tmp_path):
    # What an upload of identical bytes does: same ETag, same identity, its pages admitted again from the file.
    data = os.urandom(PAGE // 2)
    owner = put("t/_SUCCESS", data)
    store, metrics = make_store(under, executor, tmp_path / "disk", memory_pages=None)
    assert await read(store, owner) == data
    local = tmp_path / "upload"
    local.write_bytes(data)

    await store.ingest(owner, local)

    before = s3_bytes(metrics)
    assert await read(store, owner) == data
    assert s3_bytes(metrics) == before


# --- pass-through ---------------------------------------------------------------------------------------------


@run_async
async def test_with_caching_disabled_every_read_goes_to_s3_and_nothing_is_kept(put, under, executor, tmp_path):
    data = random.Random(7).randbytes(3 * PAGE + 10)
    owner = put("t/pass", data)
    config = StoreConfig(
        page_size=PAGE,
        caching=False,
        tiers=(TierConfig(medium="disk", capacity=64 * PAGE, path=str(tmp_path)),),
    )
    metrics = CacheMetrics()
    store = PageStore(config, under, metrics, executor)
    assert await read(store, owner) == data
    assert await read(store, owner, PAGE + 5, PAGE) == data[PAGE + 5 : 2 * PAGE + 5]
    assert s3_bytes(metrics) == len(data) + PAGE
    assert usage(store)["disk"].pages == 0
    assert under.calls["stream_range"] == 2  # one ranged GET per read, as a thin gateway would make


@run_async
async def test_a_page_read_twice_from_disk_is_promoted_to_memory(put, under, executor, tmp_path):
    data = random.Random(9).randbytes(2 * PAGE)
    owner = put("t/promote", data)
    store, metrics = make_store(under, executor, tmp_path)
    for index in range(owner.page_count(PAGE)):  # warmup lands on disk only
        await store.fetch(owner, index, promote=False)
    assert usage(store)["memory"].pages == 0
    assert await read(store, owner, 0, 100) == data[:100]  # first disk hit: stays on disk
    assert usage(store)["memory"].pages == 0
    assert await read(store, owner, 0, 100) == data[:100]  # repeated hit: promoted
    assert usage(store)["memory"].pages == 1
    assert sample(metrics, "promotions") == 1
    assert await read(store, owner, 50, 10) == data[50:60]
    assert sample(metrics, "page_hits", tier="memory") == 1
