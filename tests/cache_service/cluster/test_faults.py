"""Readers keep reading while the cluster loses a worker (SIGKILL) or Redis (stopped for 30 s): 0 failed reads and
0 wrong bytes, through boto3 and WebHDFS alike, on every surviving worker.

A WebHDFS read redirected to a block's owner that dies while it streams breaks off; Hadoop's client
(``WebHdfsInputStream``) then reads the rest again through the namenode it asked. The WebHDFS readers here do the
same, once, and count it; boto3's reads are never redirected (the worker fetches from the owner itself) and get no
such second chance."""

from __future__ import annotations

import http.client
import os
import random
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from infra.cache_process import CacheProcess
from infra.cache_ring import cluster_report, wait_for_ring
from infra.redis_server import RedisServer
from infra.s3_emulator import s3_client as emulator_client
from tests.cache_service.cluster.conftest import CLUSTER
from tests.support.cachectl import cachectl
from tests.support.caches import CacheFactory
from tests.support.waiting import wait_until

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BLOCK = 1 << 20
READERS = 8
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Tally:
    """What the readers saw."""

    reads: int = 0
    retried: int = 0
    failed: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def readers(targets: list[CacheProcess], bucket: str, key: str, data: bytes) -> Iterator[Tally]:
    """``READERS`` threads reading random ranges of ``key`` from random ``targets`` (half boto3, half WebHDFS) until
    the block ends; yields their tally."""
    tally, stop = Tally(), threading.Event()

    def read(n: int) -> None:
        rng = random.Random(n)
        clients = {t.webhdfs_port: emulator_client(t.s3_url) for t in targets}
        while not stop.is_set():
            target = rng.choice(targets)
            start = rng.randrange(len(data) - 1)
            end = min(len(data), start + rng.randrange(1, 3 * BLOCK))
            try:
                if n % 2:
                    got = (
                        clients[target.webhdfs_port]
                        .get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}")["Body"]
                        .read()
                    )
                else:
                    got = webhdfs_read(target, key, start, end, tally)
            except Exception as exc:  # every failure counts, whatever it is
                with tally.lock:
                    tally.failed.append(f"{type(exc).__name__}: {exc}"[:200])
                continue
            with tally.lock:
                tally.reads += 1
                if got != data[start:end]:
                    client = "boto3" if n % 2 else "webhdfs"
                    tally.wrong.append(f"{client} [{start}, {end}) from {target.webhdfs_url}: {len(got)} bytes")

    threads = [threading.Thread(target=read, args=(n,), daemon=True) for n in range(READERS)]
    for thread in threads:
        thread.start()
    try:
        yield tally
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)


def webhdfs_read(target: CacheProcess, key: str, start: int, end: int, tally: Tally) -> bytes:
    """Bytes ``[start, end)`` through ``target``'s WebHDFS (redirects followed); a read that breaks off part way is
    read on from where it stopped, once, through ``target`` again, as Hadoop's client does."""
    got = b""
    for attempt in (1, 2):
        url = f"{target.webhdfs_url}/webhdfs/v1/{key}?op=OPEN&offset={start + len(got)}&length={end - start - len(got)}"
        try:
            with NO_PROXY.open(url, timeout=30) as response:
                # http.client's read(n) ends quietly on a connection closed early: count the bytes, as Hadoop does.
                while chunk := response.read(1 << 16):
                    got += chunk
        except (OSError, http.client.IncompleteRead) as exc:  # refused, reset, or cut short
            if attempt == 2:
                raise
            if isinstance(exc, http.client.IncompleteRead):
                got += exc.partial
        if len(got) == end - start:
            return got
        if attempt == 2:
            raise ConnectionError(f"read {len(got)} of {end - start} bytes after a second try")
        with tally.lock:
            tally.retried += 1
    raise AssertionError("unreachable")


def put_blocks(s3_client: S3Client, bucket: str, key: str, blocks: int) -> bytes:
    data = os.urandom(blocks * BLOCK)
    s3_client.put_object(Bucket=bucket, Key=key, Body=data)
    return data


def test_eight_readers_see_no_failure_while_a_worker_is_killed(
    workers: list[CacheProcess], s3_client: S3Client, bucket: str
) -> None:
    data = put_blocks(s3_client, bucket, "lake/hot.bin", 8)
    survivors, victim = workers[:2], workers[2]
    with readers(survivors, bucket, "lake/hot.bin", data) as tally:
        time.sleep(2)  # warm, with every worker serving its blocks
        victim.kill()
        wait_for_ring(survivors, 2)
        time.sleep(2)  # and on the smaller ring, for at least 50 reads in all however loaded the machine is
        wait_until(lambda: tally.reads > 50, timeout=60, what="50 reads")
    assert tally.failed == [], tally.failed[:5]
    assert tally.wrong == [], tally.wrong[:5]
    assert tally.reads > 50
    assert tally.retried <= READERS // 2  # only WebHDFS reads streaming from the victim when it died


def test_eight_readers_see_no_failure_while_a_worker_is_drained(
    workers: list[CacheProcess], s3_client: S3Client, bucket: str
) -> None:
    data = put_blocks(s3_client, bucket, "lake/hot.bin", 8)
    leaving = workers[2]
    with readers(workers, bucket, "lake/hot.bin", data) as tally:
        time.sleep(2)  # warm, with every worker serving its blocks
        run = cachectl(
            "drain",
            cluster_report(leaving)["worker"],
            "--wait",
            endpoint=workers[0].webhdfs_url,
            token=workers[0].token,
        )
        wait_for_ring(workers[:2], 2)
        time.sleep(2)  # and on the smaller ring, the drained worker still an entry point
        wait_until(lambda: tally.reads > 50, timeout=60, what="50 reads")
    assert run.code == 0, run.stderr
    assert tally.failed == [], tally.failed[:5]
    assert tally.wrong == [], tally.wrong[:5]
    assert tally.reads > 50
    assert tally.retried == 0  # a drained worker keeps serving what it streams


def test_readers_see_no_failure_while_redis_is_stopped_for_30_seconds(
    cache_factory: CacheFactory, s3_client: S3Client, bucket: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with RedisServer(tmp_path_factory.mktemp("redis-outage")) as redis:
        workers = cache_factory.cluster(3, {"/lake": f"s3://{bucket}/lake"}, redis.url, CLUSTER)
        data = put_blocks(s3_client, bucket, "lake/hot.bin", 8)
        ring = cluster_report(workers[0])["ring"]
        with readers(workers, bucket, "lake/hot.bin", data) as tally:
            time.sleep(1)
            redis.stop()
            time.sleep(30)
            degraded = [cluster_report(w)["degraded"] for w in workers]
            redis.start()
            wait_for_ring(workers, 3)
            time.sleep(1)
        assert tally.failed == [], tally.failed[:5]
        assert tally.wrong == [], tally.wrong[:5]
        assert tally.reads > 100
        assert all(d and "does not answer" in d for d in degraded), degraded
        reports = [cluster_report(w) for w in workers]
        assert all(r["degraded"] is None and r["ring"] == ring for r in reports)
