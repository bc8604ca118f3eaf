"""What a worker holds: its status at a glance, its mounts, and what the cache holds of a path."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass

from cache_service.config import CacheConfig
from cache_service.jobs import JobRegistry
from cache_service.management.quotas import MountQuotas
from cache_service.management.reports import PathReport, StatusReport, TierReport
from cache_service.management.rules import PathRules
from cache_service.management.selection import PathSelection
from cache_service.namespace.filesystem import CacheFileSystem, FileStatus
from cache_service.page_store import PageStore


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class CacheStatus:
    """Answers ``cachectl status``, ``mounts``, ``stat`` and ``ls``: questions only, nothing changes."""

    config: CacheConfig
    fs: CacheFileSystem
    pages: PageStore
    rules: PathRules
    quotas: MountQuotas
    select: PathSelection
    jobs: JobRegistry

    async def status(self) -> StatusReport:
        """Capacity, use, pins, staged bytes, hit ratio, watermarks, tiers and mounts."""
        tiers = [TierReport(u.medium, u.capacity_bytes, u.used_bytes, u.pages) for u in self.pages.usage()]
        last = next(t for t in tiers if t.medium == self.pages.last_medium)
        lookups = self.pages.hits + self.pages.misses
        return StatusReport(
            capacity_bytes=last.capacity_bytes,
            used_bytes=last.used_bytes,
            pinned_bytes=self.pages.protected_bytes(),
            staged_bytes=self.fs.staging.used_bytes,
            hit_ratio=round(self.pages.hits / lookups, 4) if lookups else 0.0,
            reads=lookups,
            high_watermark=self.config.store.high_watermark,
            low_watermark=self.config.store.low_watermark,
            page_size=self.pages.page_size,
            eviction=self.config.store.eviction,
            tiers=tiers,
            mounts=self.mounts(),
            jobs_running=self.jobs.running(),
        )

    def mounts(self) -> list[dict[str, object]]:
        """The mount table with quotas (bytes per medium), who may use each mount over WebHDFS (``users``: its table,
        or None when it has none and everyone may write, or read in a ``read_only`` one) and what each holds per
        medium.

        ``cached_bytes`` is what the mount's pages take in the last tier (which holds every page), and
        ``staged_bytes`` what its staged files take there: together, the mount's share of the cache.
        """
        last = self.pages.last_medium
        staged: dict[str, int] = defaultdict(int)
        for entry in self.fs.staging.walk("/"):
            if not entry.is_dir:
                # by the mount that resolves it, so a mount nested in another is not counted twice
                staged[self.quotas.mount_of(entry.path)] += entry.size
        return [
            {
                "path": m.path,
                "uri": m.uri,
                "read_only": m.read_only,
                "users": None if m.users is None else dict(m.users),
                "quota": self.quotas.limits(m.path),
                "used": {medium: self.pages.usage_of_group(medium, m.path) for medium in self.pages.media()},
                "cached_bytes": self.pages.usage_of_group(last, m.path),
                "staged_bytes": staged[m.path],
            }
            for m in sorted(self.fs.mounts.mounts, key=lambda m: m.path)
        ]

    async def stat(self, path: str) -> PathReport:
        """What the cache holds of ``path``. Raises ``PathNotFoundError``."""
        path = self.select.field_path("path", path)
        status = await self.select.existing("path", path)
        report = self._report(status, sum(self.pages.cached_bytes(o) for _, o in self.select.owners_below(path)))
        if status.is_dir:
            # a directory's length is what lies below it, so cached_bytes / length reads as "how warm"
            summary = await self.fs.content_summary(path)
            report = dataclasses.replace(report, length=summary.length)
        return report

    async def ls(self, path: str) -> list[PathReport]:
        """``stat`` of every child of directory ``path`` (of the file itself for a file)."""
        path = self.select.field_path("path", path)
        await self.select.existing("path", path)
        children = await self.fs.list(path)
        cached: dict[str, int] = defaultdict(int)
        for owner_path, owner in self.select.owners_below(path):
            rest = owner_path[len(path.rstrip("/")) + 1 :]
            cached[rest.split("/", 1)[0] if rest else ""] += self.pages.cached_bytes(owner)
        return [self._report(c, cached[c.name if c.path != path else ""]) for c in children]

    def _report(self, status: FileStatus, cached: int) -> PathReport:
        staged = [e for e in self.fs.staging.walk(status.path) if not e.is_dir] if status.is_dir else []
        try:
            uri: str | None = self.fs.mounts.resolve(status.path).uri
        except FileNotFoundError:
            uri = None
        return PathReport(
            path=status.path,
            is_dir=status.is_dir,
            length=status.length,
            cached_bytes=cached
            + (status.length if status.staged and not status.is_dir else 0)
            + sum(e.size for e in staged),
            pinned=self.rules.is_pinned(status.path),
            persisted=not status.staged and not staged,
            ttl_seconds=self.rules.ttl_for(status.path),
            uri=uri,
        )
