"""A cache cluster for the benchmarks: a ``redis-server`` of its own and N workers sharing it and one admin token.

Each cluster has its own Redis, so several can run side by side without meeting (Redis's pub/sub channels are
shared by every database of a server). ``join()`` adds a worker configured as the others are; ``start()`` and
``join()`` return once every worker routes by the same ring of active workers.

``cache_workers()`` is what a campaign run on one worker and on several starts: one worker alone (no Redis) or a
cluster, and a ``Ring`` to wait on after restarting them (``restart_all``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from infra.cache_process import CacheProcess
from infra.cache_ring import wait_for_ring
from infra.redis_server import RedisServer
from infra.toml_writer import merge


def pin_to_core(pid: int, core: int) -> None:
    """Pin every thread of process ``pid`` to CPU ``core`` with ``taskset -a -p -c`` (threads it starts later inherit
    it). Raises ``RuntimeError`` if taskset fails."""
    done = subprocess.run(["taskset", "-a", "-p", "-c", str(core), str(pid)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"taskset could not pin {pid} to core {core}: {done.stderr.strip()}")


class CacheCluster:
    """Redis and ``size`` workers under ``state_dir``, each mounting ``mounts`` with ``overrides`` merged into its
    config; ``options`` go to every ``CacheProcess`` (capacities). A context manager, or ``start()`` and ``stop()``;
    ``stop()`` also removes the workers' disk tiers."""

    def __init__(
        self,
        state_dir: Path,
        size: int,
        *,
        s3_endpoint: str,
        mounts: Mapping[str, str],
        overrides: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(self.state_dir)
        self.token = secrets.token_urlsafe(24)
        self._s3_endpoint = s3_endpoint
        self._mounts = dict(mounts)
        self._config = merge({"cluster": {"redis_url": self.redis.url}}, dict(overrides or {}))
        self._options = options
        self.workers: list[CacheProcess] = []
        for _ in range(size):
            self.workers.append(self._worker())

    def _worker(self) -> CacheProcess:
        index = len(self.workers)
        return CacheProcess(
            self.state_dir / f"worker-{index}",
            s3_endpoint=self._s3_endpoint,
            mounts=self._mounts,
            admin_token=self.token,
            overrides=self._config,
            **self._options,
        )

    @property
    def urls(self) -> list[str]:
        """Every worker's WebHDFS URL, in the order they were started."""
        return [w.webhdfs_url for w in self.workers]

    def start(self) -> CacheCluster:
        """Start Redis and the workers; returns once each sees all of them active."""
        self.redis.start()
        try:
            for worker in self.workers:
                worker.start()
            wait_for_ring(self.workers, len(self.workers))
        except BaseException:
            self.stop()
            raise
        return self

    def join(self) -> CacheProcess:
        """Start one more worker, configured as the others; returns it once every running worker sees it active."""
        worker = self._worker()
        self.workers.append(worker)
        worker.start()
        running = [w for w in self.workers if w.running]
        wait_for_ring(running, len(running))
        return worker

    def stop(self) -> None:
        """Stop every worker, then Redis, and remove the workers' disk tiers (their logs stay)."""
        try:
            for worker in self.workers:
                worker.stop()
        finally:
            self.redis.stop()
            for worker in self.workers:
                shutil.rmtree(worker.data_dir, ignore_errors=True)

    def __enter__(self) -> CacheCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


QUICK_MEMBERSHIP = {"heartbeat_interval": "250ms", "member_timeout": "3s", "peer_timeout": "2s"}
"""``[cluster]`` settings for a test's cluster: workers that leave or come back are seen within seconds."""

Ring = Callable[[list[CacheProcess]], None]
"""Waits until every worker of a list routes by a ring of them all (does nothing for one worker)."""


@contextmanager
def cache_workers(
    work: Path,
    count: int,
    *,
    s3_endpoint: str,
    mounts: Mapping[str, str],
    overrides: Mapping[str, Any] | None = None,
    around: Callable[[CacheProcess], AbstractContextManager[object]] | None = None,
    **options: Any,
) -> Iterator[tuple[list[CacheProcess], Ring]]:
    """``count`` started workers under ``work`` and their ``Ring``: one alone (``work/worker``, ``overrides`` as
    given) or a ``CacheCluster`` (``work/cluster``, ``overrides`` merged after the Redis URL). ``around`` is entered
    for each worker before it first starts and left after it stops (a filesystem of its own on its disk tier);
    ``options`` go to every ``CacheProcess`` (capacities). Everything stops at exit."""
    with ExitStack() as stack:
        if count == 1:
            worker = CacheProcess(
                work / "worker", s3_endpoint=s3_endpoint, mounts=mounts, overrides=overrides, **options
            )
            if around is not None:
                stack.enter_context(around(worker))
            worker.start()
            stack.callback(worker.stop)
            yield [worker], lambda workers: None
            return
        cluster = CacheCluster(
            work / "cluster", count, s3_endpoint=s3_endpoint, mounts=mounts, overrides=overrides, **options
        )
        if around is not None:
            for worker in cluster.workers:
                stack.enter_context(around(worker))
        stack.enter_context(cluster)
        yield cluster.workers, lambda workers: wait_for_ring(workers, len(workers), timeout=120)


def restart_all(workers: list[CacheProcess], *, kill: bool) -> None:
    """Stop every worker at the same moment (SIGKILL with ``kill``, as a power cut would; else SIGTERM, waiting for
    each to end), then start them all side by side on their disk tiers. Raises ``ServiceStartError`` for a worker that
    does not come back; the caller waits for the ring."""
    if kill:
        for worker in workers:
            if worker.running and worker.pid is not None:
                os.kill(worker.pid, signal.SIGKILL)
        for worker in workers:
            worker.kill()  # reaps it
    with ThreadPoolExecutor(len(workers)) as pool:
        if not kill:
            list(pool.map(lambda w: w.stop(), workers))
        list(pool.map(lambda w: w.start(), workers))
