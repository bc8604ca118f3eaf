"""Runs of pages fetched in one ranged GET (``PageStore.fetch_run``), over the real S3UnderStore on the emulator.

GETs are counted by ``CountingUnderStore``: ``calls["stream_range"]`` for runs (and pass-through reads),
``gets`` for single pages.
"""

from __future__ import annotations

import asyncio
import os

from cache_service.errors import StaleObjectError
from cache_service.page_store.fetches import _cut_pages
from tests.cache_service.async_tests import run_async
from tests.cache_service.page_store.test_store import PAGE, make_store, read, s3_bytes, s3_traffic, sample


@run_async
async def test_a_run_fetches_consecutive_pages_in_one_get_with_the_right_bytes(put, under, executor, tmp_path):
    data = os.urandom(9 * PAGE + 1234)  # a short last page
    owner = put("t/run", data)
    store, metrics = make_store(under, executor, tmp_path)

    run = store.fetch_run(owner, range(10), promote=False)
    pages = await asyncio.gather(*run.futures)

    assert run.pages == range(10)
    assert b"".join(pages) == data
    assert under.calls["stream_range"] == 1 and not under.gets
    assert all(store.has_page(owner, i) for i in range(10))
    assert s3_bytes(metrics) == len(data) and sample(metrics, "page_misses") == 10
    assert await read(store, owner) == data
    assert under.calls["stream_range"] == 1 and s3_bytes(metrics) == len(data)


@run_async
async def test_a_run_stops_at_the_first_page_cached_or_in_flight(put, under, executor, tmp_path):
    data = os.urandom(10 * PAGE)
    owner = put("t/gaps", data)
    store, _ = make_store(under, executor, tmp_path)
    await store.fetch(owner, 3, promote=False)
    reader = store.fetch(owner, 7, promote=True)

    first = store.fetch_run(owner, range(10), promote=False)
    nothing = store.fetch_run(owner, range(3, 10), promote=False)
    middle = store.fetch_run(owner, range(4, 10), promote=False)
    last = store.fetch_run(owner, range(8, 10), promote=False)
    await asyncio.gather(reader, *first.futures, *middle.futures, *last.futures)

    assert (first.pages, nothing.pages, middle.pages, last.pages) == (range(3), range(3, 3), range(4, 7), range(8, 10))
    assert await nothing.task is None
    assert under.calls["stream_range"] == 3 and under.gets == {("t/gaps", 3 * PAGE): 1, ("t/gaps", 7 * PAGE): 1}
    assert await read(store, owner) == data


@run_async
async def test_a_reader_of_pages_a_run_is_fetching_waits_for_it(put, under, executor, tmp_path):
    data = os.urandom(16 * PAGE)
    owner = put("t/shared", data)
    store, metrics = make_store(under, executor, tmp_path)

    run = store.fetch_run(owner, range(16), promote=False)
    got = await asyncio.gather(read(store, owner), read(store, owner, 5 * PAGE + 10, 3 * PAGE), *run.futures)

    assert got[0] == data and got[1] == data[5 * PAGE + 10 : 8 * PAGE + 10]
    assert under.calls["stream_range"] == 1 and not under.gets
    assert s3_bytes(metrics) == len(data)


@run_async
async def test_a_run_of_a_changed_object_fails_every_page_as_stale(put, under, executor, tmp_path):
    owner = put("t/changed", os.urandom(6 * PAGE))
    put("t/changed", os.urandom(6 * PAGE))
    store, metrics = make_store(under, executor, tmp_path)

    run = store.fetch_run(owner, range(6), promote=False)
    results = await asyncio.gather(*run.futures, return_exceptions=True)

    assert all(isinstance(r, StaleObjectError) for r in results), results
    assert not any(store.has_page(owner, i) for i in range(6))
    assert s3_traffic(under, metrics) == (0, 0, 0)
    assert store.in_flight(owner, 0) is None


@run_async
async def test_a_run_waits_for_its_pace_before_each_page(put, under, executor, tmp_path):
    data = os.urandom(3 * PAGE + 99)
    owner = put("t/paced", data)
    store, _ = make_store(under, executor, tmp_path)
    asked: list[tuple[int, int]] = []

    async def pace(n: int) -> None:
        asked.append((n, sum(store.has_page(owner, i) for i in range(4))))

    run = store.fetch_run(owner, range(4), promote=False, pace=pace)
    await run.task

    assert asked == [(PAGE, 0), (PAGE, 1), (PAGE, 2), (99, 3)]  # each page asked for once the one before is in


def test_pieces_cut_across_page_bounds_are_joined_into_whole_pages():
    resumed_mid_page = (p for p in [b"abc", b"defgh", b"ij"])
    aligned = (p for p in [b"abcd", b"efgh"])

    assert list(_cut_pages(resumed_mid_page, [4, 4, 4])) == [b"abcd", b"efgh", b"ij"]
    assert list(_cut_pages(aligned, [4, 4])) == [b"abcd", b"efgh"]
