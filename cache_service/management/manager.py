"""The cache management facade: what the admin API, cachectl and the Airflow operators ask of a worker.

Each job has its module, and this facade answers for all of them: ``status`` (what the cache holds), ``purge``
(free, purge by hand and under pressure, the purge record), ``pins`` (pins and TTLs), with ``selection`` resolving
the paths and globs requests name. Warmup jobs and the maintenance loop live here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from cache_service.config import CacheConfig
from cache_service.jobs import Job, JobRegistry
from cache_service.jobs.load import load_files
from cache_service.management.history import PurgeHistory, PurgeRecord
from cache_service.management.pins import PinsAndTtls
from cache_service.management.purge import Purger
from cache_service.management.quotas import MountQuotas
from cache_service.management.reports import FreeReport, InvalidFieldError, PathReport, PurgeReport, StatusReport
from cache_service.management.rules import PathRules
from cache_service.management.selection import PathSelection
from cache_service.management.status import CacheStatus
from cache_service.metrics import CacheMetrics
from cache_service.namespace.filesystem import CacheFileSystem, FileStatus
from cache_service.page_store import ObjectIdentity, PageStore

log = logging.getLogger(__name__)


class CacheManager:
    """Status, warmup, free, purge, pins, TTLs and quotas of one worker."""

    def __init__(
        self,
        config: CacheConfig,
        fs: CacheFileSystem,
        pages: PageStore,
        metrics: CacheMetrics,
        *,
        rules: PathRules,
        quotas: MountQuotas,
    ) -> None:
        """Management of ``pages`` and ``fs``, with the pins and TTLs of ``rules`` and the mount ``quotas`` that
        the page store was built with."""
        self._pages = pages
        disk = config.store.disk_tier
        assert disk is not None and disk.path is not None
        self.rules = rules
        self.history = PurgeHistory(Path(disk.path) / "state")
        self.jobs_registry = JobRegistry()
        self._select = PathSelection(fs, pages)
        self._status = CacheStatus(
            config=config, fs=fs, pages=pages, rules=rules, quotas=quotas, select=self._select, jobs=self.jobs_registry
        )
        self._purger = Purger(
            config=config, fs=fs, pages=pages, metrics=metrics, rules=rules, history=self.history, select=self._select
        )
        self._pins = PinsAndTtls(rules, pages, select=self._select, status=self._status)

    # --- questions (see ``status``) ----------------------------------------------------------------------------

    async def status(self) -> StatusReport:
        """Capacity, use, pins, staged bytes, hit ratio, watermarks, tiers and mounts."""
        return await self._status.status()

    def mounts(self) -> list[dict[str, object]]:
        """The mount table with quotas, who may use each mount and what each holds per medium."""
        return self._status.mounts()

    async def stat(self, path: str) -> PathReport:
        """What the cache holds of ``path``. Raises ``PathNotFoundError``."""
        return await self._status.stat(path)

    async def ls(self, path: str) -> list[PathReport]:
        """``stat`` of every child of directory ``path`` (of the file itself for a file)."""
        return await self._status.ls(path)

    # --- warmup ------------------------------------------------------------------------------------------------

    async def load(
        self,
        paths: list[str],
        *,
        parallelism: int = 4,
        bandwidth: int | None = None,
        tier: str = "disk",
        wanted: Callable[[ObjectIdentity, int], bool] | None = None,
        run: Callable[[Job, Callable[[Job], Awaitable[None]]], Awaitable[None]] | None = None,
    ) -> Job:
        """Start a warmup job for ``paths`` (files, directories, globs); returns at once. Only the pages ``wanted``
        says are loaded here, if given; ``run``, if given, runs the job around this worker's part (a cluster's
        warmup: the other workers' parts too).

        Raises ``InvalidFieldError`` for bad values and ``PathNotFoundError`` for a path or glob matching nothing.
        """
        if not isinstance(paths, list) or not paths:
            raise InvalidFieldError("paths", "paths must be a non-empty list of paths or globs")
        if not isinstance(parallelism, int) or isinstance(parallelism, bool) or not 1 <= parallelism <= 256:
            raise InvalidFieldError("parallelism", "parallelism must be an integer from 1 to 256")
        if bandwidth is not None and (not isinstance(bandwidth, int) or bandwidth <= 0):
            raise InvalidFieldError("bandwidth", "bandwidth must be a positive number of bytes per second")
        if tier not in self._pages.media():
            raise InvalidFieldError("tier", f"tier must be one of {self._pages.media()}")
        files: dict[str, FileStatus] = {}
        for i, pattern in enumerate(paths):
            if not isinstance(pattern, str):
                raise InvalidFieldError(f"paths[{i}]", f"paths[{i}] must be a string")
            for status in await self._select.expand(f"paths[{i}]", pattern):
                files[status.path] = status
        request = {"paths": paths, "parallelism": parallelism, "bandwidth": bandwidth, "tier": tier}
        selected = [files[p] for p in sorted(files)]

        async def here(job: Job) -> None:
            await load_files(
                job,
                selected,
                self._pages,
                parallelism=parallelism,
                bandwidth=bandwidth,
                promote=tier == "memory",
                wanted=wanted,
            )

        if run is None:
            return self.jobs_registry.submit("load", request, here)
        return self.jobs_registry.submit("load", request, lambda job: run(job, here))

    def jobs(self) -> list[Job]:
        """Every job still remembered, oldest first."""
        return self.jobs_registry.list()

    def job(self, job_id: str) -> Job:
        """One job. Raises ``KeyError``."""
        return self.jobs_registry.get(job_id)

    async def cancel(self, job_id: str) -> Job:
        """Cancel a job. Raises ``KeyError``."""
        return await self.jobs_registry.cancel(job_id)

    # --- free and purge (see ``purge``) ------------------------------------------------------------------------

    async def free(self, paths: list[str]) -> FreeReport:
        """Drop the cached pages of ``paths``; staged data is refused and listed, never dropped."""
        return await self._purger.free(paths)

    async def purge(self, *, target: float, dry_run: bool = False, paths: list[str] | None = None) -> PurgeReport:
        """Evict in policy order until every tier uses at most ``target`` of its capacity (or nothing may go)."""
        return await self._purger.purge(target=target, dry_run=dry_run, paths=paths)

    def relieve_pressure(self) -> int:
        """Above the high watermark, evict down to the low one (every tier); returns the bytes freed."""
        return self._purger.relieve_pressure()

    def purges(self, limit: int | None = None) -> list[PurgeRecord]:
        """The purge record: up to ``limit`` purges (manual, dry runs, under pressure), newest first."""
        return self._purger.purges(limit)

    # --- pins and TTLs (see ``pins``) --------------------------------------------------------------------------

    async def pin(self, path: str) -> PathReport:
        """Protect ``path`` (and everything below) from eviction and purge. Raises ``PathNotFoundError``."""
        return await self._pins.pin(path)

    async def unpin(self, path: str) -> PathReport:
        """Remove the pin on exactly ``path`` (a path that was not pinned is left as it is)."""
        return await self._pins.unpin(path)

    def pins(self) -> list[str]:
        """Pinned paths."""
        return self._pins.pins()

    async def set_ttl(self, path: str, seconds: float | None) -> PathReport:
        """Free ``path``'s cached pages once older than ``seconds`` (None clears). S3 data is never deleted."""
        return await self._pins.set_ttl(path, seconds)

    def ttls(self) -> dict[str, float]:
        """TTLs by path."""
        return self._pins.ttls()

    async def sweep_ttl(self, now: float | None = None) -> FreeReport:
        """Free the pages of every object whose TTL has run out."""
        return await self._pins.sweep_ttl(now)

    # --- background ----------------------------------------------------------------------------------------------

    async def maintain(self, interval: float) -> None:
        """Forever: relieve pressure and sweep TTLs every ``interval`` seconds (a background task)."""
        while True:
            await asyncio.sleep(interval)
            try:
                self.relieve_pressure()
                await self.sweep_ttl()
            except Exception:  # maintenance must outlive any one bad round
                log.exception("cache maintenance round failed")
