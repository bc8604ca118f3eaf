"""Warmup loads: runs of pages per ranged GET, pages fetched once however many ask, progress and errors.

The first tests run ``load_files`` on a page store in this process (GETs counted by ``CountingUnderStore``); the
others drive a real worker through the admin API, its S3 traffic counted by a proxy in front of the emulator and by
the worker's own metrics.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from cache_service.jobs import Job
from cache_service.jobs.load import RUN_BYTES, load_files, run_pages
from cache_service.namespace.status import FileStatus
from cache_service.page_store import ObjectIdentity
from infra.cache_process import CacheProcess
from tests.cache_service.async_tests import run_async
from tests.cache_service.page_store.test_store import make_store, s3_bytes
from tests.support.admin import AdminClient
from tests.support.faulty_proxy import FaultyProxy
from tests.support.metrics import s3_bytes_read, scrape
from tests.support.webhdfs import WebHdfsClient

PAGE = 64 * 1024
RUN = RUN_BYTES // PAGE  # pages in a run, without a bandwidth limit


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="io") as pool:
        yield pool


def _object(s3_client, bucket: str, under, key: str, data: bytes) -> ObjectIdentity:
    s3_client.put_object(Bucket=bucket, Key=key, Body=data)
    status = under.head(bucket, key)
    return ObjectIdentity(status.bucket, status.key, status.etag, status.size)


def _file(owner: ObjectIdentity) -> FileStatus:
    return FileStatus(path=f"/{owner.key}", is_dir=False, length=owner.size, object=owner)


def test_a_run_is_8_mib_of_pages_and_at_most_a_second_of_the_bandwidth_limit():
    assert run_pages(2**20, None) == 8 and run_pages(64 * 1024, None) == 128
    assert run_pages(2**20, 3 * 2**20) == 3 and run_pages(2**20, 1000) == 1


# --- in process: load_files on a page store ------------------------------------------------------------------


@run_async
async def test_a_load_fetches_runs_of_pages_and_skips_pages_a_reader_has_in_flight(
    s3_client, bucket, under, executor, tmp_path
):
    data = os.urandom((RUN + 40) * PAGE + 7)
    owner = _object(s3_client, bucket, under, "w/big", data)
    store, metrics = make_store(under, executor, tmp_path, disk_pages=2 * RUN)
    reader = store.fetch(owner, 20, promote=True)  # a reader's miss, in flight when the load starts
    job = Job(id="j", kind="load", request={})

    await load_files(job, [_file(owner)], store, parallelism=4, bandwidth=None, promote=False)

    pages = owner.page_count(PAGE)
    assert reader.done() and not job.errors
    # Pages 0-19, 21 to 21+RUN-1, and the rest: three GETs for the load, one for the reader, for 170 pages.
    assert under.calls["stream_range"] == 3 and under.gets == {("w/big", 20 * PAGE): 1}
    assert all(store.has_page(owner, i) for i in range(pages))
    assert s3_bytes(metrics) == len(data)
    progress = job.progress
    assert progress.bytes_skipped == PAGE and progress.bytes_from_s3 == len(data) - PAGE
    assert progress.bytes_done == progress.bytes_total == len(data) and progress.files_done == 1


@run_async
async def test_a_load_of_an_object_changed_since_its_status_records_a_stale_file_and_goes_on(
    s3_client, bucket, under, executor, tmp_path
):
    old = _object(s3_client, bucket, under, "w/changed", os.urandom(10 * PAGE))
    _object(s3_client, bucket, under, "w/changed", os.urandom(10 * PAGE))
    fine = _object(s3_client, bucket, under, "w/fine", os.urandom(3 * PAGE))
    store, _ = make_store(under, executor, tmp_path)
    job = Job(id="j", kind="load", request={})

    await load_files(job, [_file(old), _file(fine)], store, parallelism=2, bandwidth=None, promote=False)

    assert [(e.path, e.error.split(":")[0]) for e in job.errors] == [("/w/changed", "StaleObjectError")]
    assert not any(store.has_page(old, i) for i in range(10))
    assert all(store.has_page(fine, i) for i in range(3))
    assert job.progress.files_done == 2 and job.progress.bytes_from_s3 == job.progress.bytes_done == 3 * PAGE


# --- a real worker ---------------------------------------------------------------------------------------------


@pytest.fixture
def counted_s3(s3_emulator) -> Iterator[FaultyProxy]:
    """A proxy in front of the emulator that injects nothing: it counts the worker's S3 requests."""
    with FaultyProxy(s3_emulator.endpoint_url) as proxy:
        yield proxy


def _worker(cache_factory, bucket: str, s3_url: str) -> tuple[CacheProcess, AdminClient]:
    cache = cache_factory(
        {"/warehouse": f"s3://{bucket}/warehouse"},
        {
            "under_store": {"endpoint_url": s3_url},
            "store": {"page_size": "64KiB", "pressure_check_interval": "1h"},
            # Statuses read before a load stay trusted during it: the load then sends S3 nothing but GETs.
            "metadata": {"sync_interval": "1h"},
        },
        memory_capacity="4MiB",
        disk_capacity="64MiB",
    )
    return cache, AdminClient(cache.webhdfs_url, cache.token)


def test_a_load_issues_fewer_gets_than_pages_and_every_page_reads_back_right(
    cache_factory, s3_client, bucket, counted_s3
):
    data = os.urandom(2 * RUN * PAGE + 30 * PAGE + 5)  # two full runs and a part of one
    s3_client.put_object(Bucket=bucket, Key="warehouse/t/part-0", Body=data)
    cache, admin = _worker(cache_factory, bucket, counted_s3.url)
    hdfs = WebHdfsClient(cache.webhdfs_url)
    assert hdfs.status("/warehouse/t/part-0").status == 200
    before, metadata = counted_s3.requests_seen, scrape(cache.webhdfs_url)["lakecache_metadata_misses_total"]

    done = admin.wait_job(admin.ok("POST", "load", {"paths": ["/warehouse/t/part-0"], "parallelism": 4})["id"])

    gets = counted_s3.requests_seen - before
    assert scrape(cache.webhdfs_url)["lakecache_metadata_misses_total"] == metadata  # so every request was a GET
    pages = math.ceil(len(data) / PAGE)
    assert gets == 3 < pages == 2 * RUN + 31
    assert done["state"] == "succeeded" and done["progress"]["bytes_from_s3"] == len(data)
    assert s3_bytes_read(cache.webhdfs_url) == len(data)
    assert hdfs.read("/warehouse/t/part-0").body == data
    assert counted_s3.requests_seen - before == 3 and s3_bytes_read(cache.webhdfs_url) == len(data)


def test_a_load_skips_the_pages_already_cached(cache_factory, s3_client, bucket, counted_s3):
    data = os.urandom(48 * PAGE + 100)
    s3_client.put_object(Bucket=bucket, Key="warehouse/t/part-0", Body=data)
    cache, admin = _worker(cache_factory, bucket, counted_s3.url)
    hdfs = WebHdfsClient(cache.webhdfs_url)
    assert hdfs.read("/warehouse/t/part-0", offset=10 * PAGE, length=10 * PAGE).body == data[10 * PAGE : 20 * PAGE]
    before, read_before = counted_s3.requests_seen, s3_bytes_read(cache.webhdfs_url)

    done = admin.wait_job(admin.ok("POST", "load", {"paths": ["/warehouse/t/part-0"]})["id"])

    assert done["state"] == "succeeded"
    assert done["progress"]["bytes_skipped"] == 10 * PAGE
    assert done["progress"]["bytes_from_s3"] == len(data) - 10 * PAGE == s3_bytes_read(cache.webhdfs_url) - read_before
    assert counted_s3.requests_seen - before == 2  # pages 0-9 and 20 to the end
    assert hdfs.read("/warehouse/t/part-0").body == data


def test_a_reader_during_a_load_waits_for_its_runs_and_s3_is_read_once(cache_factory, s3_client, bucket, s3_emulator):
    data = os.urandom(64 * PAGE)
    s3_client.put_object(Bucket=bucket, Key="warehouse/t/part-0", Body=data)
    cache, admin = _worker(cache_factory, bucket, s3_emulator.endpoint_url)
    hdfs = WebHdfsClient(cache.webhdfs_url)
    assert hdfs.status("/warehouse/t/part-0").status == 200
    # 1 MiB/s: four runs of 16 pages start at once, and take about three seconds to come in.
    job = admin.ok("POST", "load", {"paths": ["/warehouse/t"], "parallelism": 4, "bandwidth": 2**20})
    deadline = time.monotonic() + 10
    while (progress := admin.ok("GET", f"jobs/{job['id']}")["progress"])["bytes_done"] == 0:
        assert time.monotonic() < deadline, "the load did not start"
        time.sleep(0.01)
    assert progress["bytes_done"] < len(data)
    reads: dict[str, bytes] = {}
    readers = [
        threading.Thread(target=lambda k=k, o=o: reads.__setitem__(k, hdfs_read(cache, o)))
        for k, o in (("whole", 0), ("tail", 40 * PAGE + 3))
    ]
    for thread in readers:
        thread.start()
    for thread in readers:
        thread.join(timeout=60)

    done = admin.wait_job(job["id"])

    assert reads == {"whole": data, "tail": data[40 * PAGE + 3 :]}
    assert done["state"] == "succeeded" and done["progress"]["bytes_from_s3"] == len(data)
    assert s3_bytes_read(cache.webhdfs_url) == len(data)


def hdfs_read(cache: CacheProcess, offset: int) -> bytes:
    """The file from ``offset`` to its end, through a WebHDFS client of its own."""
    return WebHdfsClient(cache.webhdfs_url).read("/warehouse/t/part-0", offset=offset).body
