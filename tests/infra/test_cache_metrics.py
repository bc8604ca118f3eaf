"""A worker's counters, scraped once or sampled in the background: deltas of what was read, in time order."""

from __future__ import annotations

import threading
import time
import urllib.request

import pytest

from infra.cache_metrics import CacheCounters, CacheMetricsError, CounterSampler
from infra.ports import LOOPBACK, free_port


def read_through(cache, path: str) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{cache.webhdfs_url}/webhdfs/v1{path}?op=OPEN&user.name=test", timeout=30) as response:
        return response.read()


def test_samples_bracket_the_block_come_in_time_order_and_a_boundary_adds_one_at_once(cache_factory, s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key="warehouse/a.bin", Body=b"x" * 100_000)
    cache = cache_factory({"/warehouse": f"s3://{bucket}/warehouse"})
    asked = threading.Event()

    def boundary() -> bool:  # one boundary, the first time it is asked
        if asked.is_set():
            return False
        asked.set()
        return True

    started = time.time()
    with CounterSampler(cache.webhdfs_url, interval=5.0, boundary=boundary, poll=0.02) as sampler:
        assert read_through(cache, "/warehouse/a.bin") == b"x" * 100_000
        time.sleep(0.3)
    samples = sampler.samples

    # First, the boundary's (long before the 5 s interval), last: one sample each.
    assert len(samples) == 3
    assert started <= samples[0].at < samples[1].at < samples[2].at <= time.time()
    assert samples[1].at - samples[0].at < 1.0
    delta = samples[-1].counters - samples[0].counters
    assert delta.s3_bytes_read == 100_000
    assert delta.page_misses >= 1
    assert delta.hit_ratio == 0.0


def test_sampling_several_workers_keeps_each_ones_counters_and_their_sum(cache_factory, s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key="warehouse/a.bin", Body=b"a" * 100_000)
    s3_client.put_object(Bucket=bucket, Key="warehouse/b.bin", Body=b"b" * 30_000)
    first, second = (cache_factory({"/warehouse": f"s3://{bucket}/warehouse"}) for _ in range(2))

    with CounterSampler([first.webhdfs_url, second.webhdfs_url], interval=5.0) as sampler:
        assert read_through(first, "/warehouse/a.bin") == b"a" * 100_000
        assert read_through(second, "/warehouse/b.bin") == b"b" * 30_000
    before, after = sampler.samples[0], sampler.samples[-1]

    assert set(after.workers) == {first.webhdfs_url, second.webhdfs_url}
    assert (after.workers[first.webhdfs_url] - before.workers[first.webhdfs_url]).s3_bytes_read == 100_000
    assert (after.workers[second.webhdfs_url] - before.workers[second.webhdfs_url]).s3_bytes_read == 30_000
    assert (after.counters - before.counters).s3_bytes_read == 130_000


def test_counters_add_subtract_and_scale_tier_by_tier():
    a = CacheCounters(s3_bytes_read=100, page_hits={"disk": 3}, page_misses=1)
    b = CacheCounters(s3_bytes_read=50, page_hits={"memory": 1}, page_misses=1)

    assert (a + b) - b == CacheCounters(s3_bytes_read=100, page_hits={"disk": 3, "memory": 0}, page_misses=1)
    assert a.scaled(0.5).s3_bytes_read == 50
    assert (a + b).hit_ratio == pytest.approx(4 / 6)
    assert CacheCounters().hit_ratio == 0.0


def test_a_worker_that_does_not_answer_is_a_cache_metrics_error():
    with pytest.raises(CacheMetricsError, match="/metrics"):
        CacheCounters.scrape(f"http://{LOOPBACK}:{free_port()}", timeout=2)
