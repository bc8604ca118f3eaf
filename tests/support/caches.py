"""Starting cache workers for tests: each under its own directory, all stopped at teardown."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from infra.cache_process import CacheProcess
from infra.cache_ring import wait_for_ring
from infra.s3_emulator import S3Emulator
from infra.toml_writer import merge
from tests.support.buckets import remove_bucket, unique_bucket_name
from tests.support.metrics import scrape


class CacheFactory:
    """Starts cache workers against the S3 emulator at ``s3_endpoint``, each in a new directory under ``root``."""

    def __init__(self, root: Path, s3_endpoint: str) -> None:
        self.root = root
        self.s3_endpoint = s3_endpoint
        self.caches: list[CacheProcess] = []
        self._joining: tuple[Any, dict[str, Any], dict[str, Any]] = ({}, {}, {})

    def __call__(
        self,
        mounts: Mapping[str, str] | Iterable[tuple[str, str]],
        overrides: Mapping[str, Any] | None = None,
        *,
        start: bool = True,
        **options: Any,
    ) -> CacheProcess:
        """A worker mounting ``mounts`` (cache path -> S3 URI) with ``overrides`` merged into its TOML config.

        Started and ready unless ``start`` is false; ``options`` go to ``CacheProcess`` (ports, token, capacities).
        """
        cache = CacheProcess(
            self.root / f"cache-{len(self.caches)}",
            s3_endpoint=self.s3_endpoint,
            mounts=mounts,
            overrides=overrides,
            **options,
        )
        self.caches.append(cache)
        if start:
            cache.start()
        return cache

    def cluster(
        self,
        workers: int,
        mounts: Mapping[str, str] | Iterable[tuple[str, str]],
        redis_url: str,
        overrides: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> list[CacheProcess]:
        """``workers`` started workers sharing ``redis_url`` and one admin token (the cluster's secret), with
        ``overrides`` merged into each one's config; returns once every one of them sees all the others active."""
        token = secrets.token_urlsafe(24)
        config = merge({"cluster": {"redis_url": redis_url}}, dict(overrides or {}))
        self._joining = (mounts, config, {"admin_token": token, **options})
        caches = [self(mounts, config, admin_token=token, **options) for _ in range(workers)]
        wait_for_ring(caches, workers)
        return caches

    def join(self, cluster: list[CacheProcess]) -> CacheProcess:
        """One more worker of the cluster this factory started last, configured as its workers are; returns once
        every worker of ``cluster`` and the new one see it active."""
        mounts, config, options = self._joining
        worker = self(mounts, config, **options)
        wait_for_ring([*cluster, worker], len(cluster) + 1)
        return worker

    def stop_all(self) -> None:
        """Stop every worker this factory started that still runs."""
        for cache in self.caches:
            cache.stop()


@contextmanager
def lone_cluster_worker(
    s3_emulator: S3Emulator,
    root: Path,
    redis_server: Any,
    mounts: Mapping[str, str],
    overrides: Mapping[str, Any] | None = None,
    **options: Any,
) -> Iterator[CacheProcess]:
    """One worker in a cluster of its own on the session's Redis (emptied first), so that it serves the peer API; for
    a module's tests to share (``redis_url`` empties Redis for each test). ``options`` go to ``CacheProcess``."""
    import redis

    with redis.Redis(host=redis_server.host, port=redis_server.port) as client:
        client.flushall()
    factory = CacheFactory(root, s3_emulator.endpoint_url)
    try:
        (worker,) = factory.cluster(1, mounts, redis_server.url, overrides, **options)
        yield worker
    finally:
        factory.stop_all()


@contextmanager
def warehouse_cache(
    s3_emulator: S3Emulator,
    root: Path,
    objects: Mapping[str, bytes],
    overrides: Mapping[str, Any] | None = None,
    **options: Any,
) -> Iterator[CacheProcess]:
    """A new bucket holding ``objects`` (key -> bytes) and one worker mounting ``/warehouse`` on its ``warehouse/``.

    ``options`` go to ``CacheProcess``. The worker's ``bucket`` attribute names the bucket; both go at exit.
    """
    name = unique_bucket_name()
    client = s3_emulator.client()
    client.create_bucket(Bucket=name)
    for key, body in objects.items():
        client.put_object(Bucket=name, Key=key, Body=body)
    factory = CacheFactory(root, s3_emulator.endpoint_url)
    try:
        cache = factory({"/warehouse": f"s3://{name}/warehouse"}, overrides, **options)
        cache.bucket = name  # type: ignore[attr-defined]
        yield cache
    finally:
        factory.stop_all()
        remove_bucket(client, name)


def restart_with_pressure_checks(cache: CacheProcess, interval: str = "200ms", timeout: float = 10) -> None:
    """Restart ``cache`` checking for pressure every ``interval`` and wait (up to ``timeout`` s) for its first purge."""
    cache.stop()
    cache.config["store"]["pressure_check_interval"] = interval
    cache.write_config()
    cache.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not scrape(cache.webhdfs_url).get(
        'lakecache_purge_runs_total{trigger="pressure"}'
    ):
        time.sleep(0.1)
