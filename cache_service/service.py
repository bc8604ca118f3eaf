"""One cache worker's components, built from its configuration and wired together."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from prometheus_client.core import Metric

from cache_service.cluster.drain import DrainRefusedError, check_drainable
from cache_service.cluster.identity import worker_id
from cache_service.cluster.member import MemberState, MemberStats
from cache_service.cluster.node import ClusterNode, advertised
from cache_service.cluster.view import ClusterView
from cache_service.config import CacheConfig
from cache_service.jobs import Job, JobState
from cache_service.management.manager import CacheManager
from cache_service.management.pins import PinnedObjects
from cache_service.management.quotas import MountQuotas
from cache_service.management.rules import PathRules
from cache_service.metadata import StatusCache
from cache_service.metrics import CacheMetrics, gauge
from cache_service.namespace.filesystem import CacheFileSystem
from cache_service.namespace.mounts import MountTable
from cache_service.namespace.reads import ObjectReader
from cache_service.page_store import PageStore
from cache_service.page_store.constraints import Reservations
from cache_service.under_store import UnderStore
from cache_service.under_store.s3 import S3UnderStore
from cache_service.write.staging import StagingArea
from cache_service.write.uploads import Uploader

log = logging.getLogger(__name__)


class CacheService:
    """The cache: under store, mount table, status cache, page store, staging area, file system and read path; in a
    cluster, this worker's ``ClusterNode`` too (None for a worker alone)."""

    def __init__(self, config: CacheConfig, under: UnderStore | None = None) -> None:
        self.config = config
        self.metrics = CacheMetrics()
        self.executor = ThreadPoolExecutor(max_workers=config.under_store.max_connections, thread_name_prefix="io")
        self.under: UnderStore = under or S3UnderStore(
            config.under_store, on_retry=self.metrics.count_s3_retry, on_attempt=self.metrics.count_s3_attempt
        )
        self.mounts = MountTable(config.mounts)
        disk = config.store.disk_tier
        assert disk is not None and disk.path is not None, "config validation requires a disk tier"
        root = Path(disk.path)
        self.staging = StagingArea(root / "staging")
        # Staged files take room on the disk tier from pages; the S3 API adds its multipart spool when built.
        self.reservations = Reservations(self.staging)
        self.rules = rules = PathRules(root / "state")
        quotas = MountQuotas(
            self.mounts,
            config.mounts,
            {tier.medium: tier.capacity for tier in config.store.tiers},
            workers=self._active_workers,
        )
        self.pages = PageStore(
            config.store,
            self.under,
            self.metrics,
            self.executor,
            reserved=self.reservations,
            guard=PinnedObjects(self.mounts, rules),
            quotas=quotas,
        )
        self.worker_id = worker_id(root / "state")
        self.cluster = (
            ClusterNode.build(config, self.worker_id, stats=self._member_stats, pages=self.pages, staging=self.staging)
            if config.cluster.enabled
            else None
        )
        self.status = StatusCache(
            self.under,
            config.metadata.sync_interval,
            self.executor,
            self.metrics,
            announce=self.cluster.announce if self.cluster else None,
        )
        self.uploader = Uploader(
            self.under,
            self.status,
            self.pages,
            root / "spool",
            self.executor,
            self.metrics,
            place=self.cluster.place if self.cluster else None,
        )
        self.fs = CacheFileSystem(
            self.mounts, config.write, self.under, self.status, self.pages, self.staging, self.uploader, self.executor
        )
        self.reads = ObjectReader(
            self.fs, self.status, self.pages, router=self.cluster.router if self.cluster else None
        )
        self.manager = CacheManager(config, self.fs, self.pages, self.metrics, rules=rules, quotas=quotas)
        self.ready = False
        self._maintenance: asyncio.Task[None] | None = None
        self.metrics.add_gauges(self._gauges)

    async def start(self) -> None:
        """Recover the disk tier, join the cluster (if any), then accept traffic.

        Raises ``ClusterError`` when the cluster cannot be joined.
        """
        await self.pages.open()
        if self.cluster is not None:
            await self.cluster.join(self.status, self.rules)
        interval = self.config.store.pressure_check_interval
        self._maintenance = asyncio.create_task(self.manager.maintain(interval), name="cache-maintenance")
        self.ready = True

    async def stop(self) -> None:
        """Stop accepting work and release threads."""
        self.ready = False
        if self._maintenance is not None:
            self._maintenance.cancel()
        await self.manager.jobs_registry.close()
        if self.cluster is not None:
            await self.cluster.leave()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def drain(self, budget: int | None) -> Job:
        """Start draining this worker out of the cluster (``ClusterNode.drain``); returns the job at once.

        Raises ``DrainRefusedError`` when it is not in a cluster, or may not be drained now.
        """
        node = self.cluster
        if node is None:
            raise DrainRefusedError("this worker is not in a cluster ([cluster] redis_url is empty)")
        check_drainable(node.view, self.worker_id)
        # The view says DRAINING only once the job has begun: until then, the job itself says a drain is under way.
        if any(job.kind == "drain" and not job.state.finished for job in self.manager.jobs_registry.list()):
            raise DrainRefusedError(f"worker {self.worker_id} is already draining")
        limit = budget if budget is not None else (self.config.cluster.handoff_budget or None)

        async def run(job: Job) -> None:
            await node.drain(job, staged_bytes=lambda: self.staging.used_bytes, budget=limit)

        return self.manager.jobs_registry.submit("drain", {"worker": self.worker_id, "budget": limit}, run)

    def cluster_view(self) -> ClusterView:
        """The cluster as this worker sees it; a worker alone is a cluster of one that owns every block."""
        if self.cluster is not None:
            return self.cluster.view
        me = replace(advertised(self.config, self.worker_id), state=MemberState.ACTIVE, stats=self._member_stats())
        return ClusterView(self.worker_id, {me.id: me}, self.config.cluster.block_size)

    def _active_workers(self) -> int:
        """The workers that share the data: this one alone, or the cluster's active ones."""
        node: ClusterNode | None = getattr(self, "cluster", None)
        return len(node.view.ring) if node is not None else 1

    def _member_stats(self) -> MemberStats:
        # The last tier (disk) holds every page; memory holds a hot subset of them.
        last = next(u for u in self.pages.usage() if u.medium == self.pages.last_medium)
        return MemberStats(
            pages=last.pages,
            used_bytes=last.used_bytes,
            capacity_bytes=last.capacity_bytes,
            hits=self.pages.hits,
            misses=self.pages.misses,
        )

    def _gauges(self) -> Iterable[Metric]:
        capacity = gauge("tier_capacity_bytes", "Capacity of each tier", ["tier"])
        used = gauge("tier_used_bytes", "Bytes used in each tier (staged files count on disk)", ["tier"])
        pages = gauge("tier_pages", "Pages held in each tier", ["tier"])
        for usage in self.pages.usage():
            capacity.add_metric([usage.medium], usage.capacity_bytes)
            used.add_metric([usage.medium], usage.used_bytes)
            pages.add_metric([usage.medium], usage.pages)
        staged = gauge("staged_bytes", "Bytes held only in the cache, waiting to be published")
        staged.add_metric([], self.staging.used_bytes)
        watermark = gauge(
            "store_watermark", "The fill (0 to 1) at which pressure purges start (high) and stop (low)", ["level"]
        )
        watermark.add_metric(["high"], self.config.store.high_watermark)
        watermark.add_metric(["low"], self.config.store.low_watermark)
        pinned = gauge("pinned_bytes", "Cached bytes protected from eviction by pins")
        pinned.add_metric([], self.pages.protected_bytes())
        jobs = gauge("jobs", "Jobs remembered, by kind and state", ["kind", "state"])
        progress = gauge("job_bytes", "Bytes of running jobs: done and total", ["job", "kind", "measure"])
        counts: dict[tuple[str, str], int] = {}
        for job in self.manager.jobs():
            counts[(job.kind, str(job.state))] = counts.get((job.kind, str(job.state)), 0) + 1
            if job.state is JobState.RUNNING:
                progress.add_metric([job.id, job.kind, "done"], job.progress.bytes_done)
                progress.add_metric([job.id, job.kind, "total"], job.progress.bytes_total)
        for (kind, state), n in counts.items():
            jobs.add_metric([kind, state], n)
        store = [capacity, used, pages, watermark, staged, pinned]
        return [*store, jobs, progress, *self._disk_gauges(), *self._cluster_gauges()]

    def _cluster_gauges(self) -> list[Metric]:
        view = self.cluster_view()
        info = gauge(
            "worker_info", "This worker's id and the digest of the ring it routes by (always 1)", ["worker", "ring"]
        )
        info.add_metric([view.self_id, view.digest], 1)
        members = gauge("cluster_members", "Workers of the cluster this worker knows, by state", ["state"])
        for state in MemberState:
            members.add_metric([str(state)], sum(m.state is state for m in view.members.values()))
        degraded = gauge("cluster_degraded", "1 while this worker cannot reach Redis and routes by its last ring")
        degraded.add_metric([], 1 if view.degraded else 0)
        # Lost workers are counted gone above (out of the ring either way); these tell a crash from a drain.
        lost = gauge(
            "cluster_worker_lost",
            "1 for each worker whose heartbeat timed out without its having left (killed, crashed, cut off)",
            ["worker"],
        )
        lost_capacity = gauge(
            "cluster_lost_capacity_bytes", "Disk tier capacity of the lost workers, as they last reported it"
        )
        for worker in sorted(view.lost):
            lost.add_metric([worker], 1)
        lost_capacity.add_metric([], sum(view.members[w].stats.capacity_bytes for w in view.lost if w in view.members))
        return [info, members, degraded, lost, lost_capacity]

    def _disk_gauges(self) -> list[Metric]:
        # The filesystem under each tier on disk (staged files live under the disk tier's path too): the room left
        # whatever the tier's configured capacity says, read at each scrape (one statvfs per tier).
        free = gauge("disk_free_bytes", "Free bytes of the filesystem holding each tier on disk", ["tier"])
        size = gauge("disk_size_bytes", "Size of the filesystem holding each tier on disk", ["tier"])
        for tier in self.config.store.tiers:
            if tier.path is None:
                continue
            try:
                usage = shutil.disk_usage(tier.path)
            except OSError:
                continue  # the tier's filesystem is gone: the worker's other errors say so
            free.add_metric([tier.medium], usage.free)
            size.add_metric([tier.medium], usage.total)
        return [free, size]
