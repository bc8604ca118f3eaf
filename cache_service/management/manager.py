"""The cache management facade: what the admin API, cachectl and the Airflow operators ask of a worker."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from cache_service.config import CacheConfig
from cache_service.jobs import Job, JobRegistry
from cache_service.jobs.load import load_files
from cache_service.management.history import PurgeHistory, PurgeRecord, utc_now
from cache_service.management.quotas import MountQuotas
from cache_service.management.reports import (
    EvictedPath,
    FreeReport,
    InvalidFieldError,
    PathNotFoundError,
    PathReport,
    PurgeReport,
    Refusal,
    StatusReport,
    TierReport,
)
from cache_service.management.rules import PathRules
from cache_service.management.shortfall import Held, explain, explain_upper_tier
from cache_service.metrics import CacheMetrics
from cache_service.namespace.filesystem import CacheFileSystem, FileStatus
from cache_service.namespace.paths import is_within, normalize
from cache_service.page_store import ObjectIdentity, PageKey, PageStore

log = logging.getLogger(__name__)

_GLOB_CHARS = re.compile(r"[*?\[]")
STAGED_REASON = "staged data is held only in the cache until a rename publishes it to S3; it is never dropped"
PINNED_REASON = "pinned: unpin it first to let its pages go"
READING_REASON = "in pages being read: a page stays while a read uses it; purge again once the reads end"


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """``*`` and ``?`` stay within one path component, ``**`` crosses them, ``[...]`` is a character class."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise ValueError(f"unclosed '[' in glob {pattern!r}")
            out.append(pattern[i : end + 1].replace("[!", "[^"))
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


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
        self._config = config
        self._fs = fs
        self._pages = pages
        self._metrics = metrics
        self._quotas = quotas
        disk = config.store.disk_tier
        assert disk is not None and disk.path is not None
        self.rules = rules
        self.history = PurgeHistory(Path(disk.path) / "state")
        self.jobs_registry = JobRegistry()

    # --- helpers -----------------------------------------------------------------------------------------------

    def _path_of(self, owner: ObjectIdentity) -> str | None:
        return self._fs.mounts.to_path(owner.bucket, owner.key)

    def _owners_below(self, path: str) -> list[tuple[str, ObjectIdentity]]:
        found = []
        for owner in self._pages.owners():
            owner_path = self._path_of(owner)
            if owner_path is not None and is_within(owner_path, path):
                found.append((owner_path, owner))
        return found

    @staticmethod
    def _field_path(field: str, path: object) -> str:
        if not isinstance(path, str) or not path:
            raise InvalidFieldError(field, f"{field} must be a non-empty path string")
        try:
            return normalize(path)
        except ValueError as exc:
            raise InvalidFieldError(field, f"{field}: {exc}") from None

    async def _existing(self, field: str, path: str) -> FileStatus:
        try:
            return await self._fs.status(path)
        except FileNotFoundError:
            raise PathNotFoundError(field, f"{field}: no such path: {path}") from None

    async def _files_below(self, status: FileStatus) -> list[FileStatus]:
        if not status.is_dir:
            return [status]
        files: list[FileStatus] = []
        for child in await self._fs.list(status.path):
            files.extend(await self._files_below(child))
        return files

    async def _expand(self, field: str, pattern: str) -> list[FileStatus]:
        """Files named by a path, a directory (recursively) or a glob. Raises ``PathNotFoundError`` for none."""
        if not _GLOB_CHARS.search(pattern):
            return await self._files_below(await self._existing(field, self._field_path(field, pattern)))
        if not pattern.startswith("/"):
            raise InvalidFieldError(field, f"{field}: the glob must be absolute: {pattern!r}")
        parts = pattern.split("/")
        fixed = "/".join(p for p in parts[: next(i for i, p in enumerate(parts) if _GLOB_CHARS.search(p))])
        try:
            regex = _glob_regex(pattern)
        except ValueError as exc:
            raise InvalidFieldError(field, f"{field}: {exc}") from None
        base = await self._existing(field, self._field_path(field, fixed or "/"))
        matched = [f for f in await self._files_below(base) if regex.match(f.path)]
        if not matched:
            raise PathNotFoundError(field, f"{field}: the glob {pattern!r} matches no file")
        return matched

    # --- questions ---------------------------------------------------------------------------------------------

    async def status(self) -> StatusReport:
        """Capacity, use, pins, staged bytes, hit ratio, watermarks, tiers and mounts."""
        tiers = [TierReport(u.medium, u.capacity_bytes, u.used_bytes, u.pages) for u in self._pages.usage()]
        last = next(t for t in tiers if t.medium == self._pages.last_medium)
        lookups = self._pages.hits + self._pages.misses
        return StatusReport(
            capacity_bytes=last.capacity_bytes,
            used_bytes=last.used_bytes,
            pinned_bytes=self._pages.protected_bytes(),
            staged_bytes=self._fs.staging.used_bytes,
            hit_ratio=round(self._pages.hits / lookups, 4) if lookups else 0.0,
            reads=lookups,
            high_watermark=self._config.store.high_watermark,
            low_watermark=self._config.store.low_watermark,
            page_size=self._pages.page_size,
            eviction=self._config.store.eviction,
            tiers=tiers,
            mounts=self.mounts(),
            jobs_running=self.jobs_registry.running(),
        )

    def mounts(self) -> list[dict[str, object]]:
        """The mount table with quotas (bytes per medium) and what each mount holds per medium.

        ``cached_bytes`` is what the mount's pages take in the last tier (which holds every page), and
        ``staged_bytes`` what its staged files take there: together, the mount's share of the cache.
        """
        last = self._pages.last_medium
        staged: dict[str, int] = defaultdict(int)
        for entry in self._fs.staging.walk("/"):
            if not entry.is_dir:
                # by the mount that resolves it, so a mount nested in another is not counted twice
                staged[self._quotas.mount_of(entry.path)] += entry.size
        return [
            {
                "path": m.path,
                "uri": m.uri,
                "quota": self._quotas.limits(m.path),
                "used": {medium: self._pages.usage_of_group(medium, m.path) for medium in self._pages.media()},
                "cached_bytes": self._pages.usage_of_group(last, m.path),
                "staged_bytes": staged[m.path],
            }
            for m in sorted(self._fs.mounts.mounts, key=lambda m: m.path)
        ]

    async def stat(self, path: str) -> PathReport:
        """What the cache holds of ``path``. Raises ``PathNotFoundError``."""
        path = self._field_path("path", path)
        status = await self._existing("path", path)
        report = self._report(status, sum(self._pages.cached_bytes(o) for _, o in self._owners_below(path)))
        if status.is_dir:
            # a directory's length is what lies below it, so cached_bytes / length reads as "how warm"
            summary = await self._fs.content_summary(path)
            report = dataclasses.replace(report, length=summary.length)
        return report

    async def ls(self, path: str) -> list[PathReport]:
        """``stat`` of every child of directory ``path`` (of the file itself for a file)."""
        path = self._field_path("path", path)
        await self._existing("path", path)
        children = await self._fs.list(path)
        cached: dict[str, int] = defaultdict(int)
        for owner_path, owner in self._owners_below(path):
            rest = owner_path[len(path.rstrip("/")) + 1 :]
            cached[rest.split("/", 1)[0] if rest else ""] += self._pages.cached_bytes(owner)
        return [self._report(c, cached[c.name if c.path != path else ""]) for c in children]

    def _report(self, status: FileStatus, cached: int) -> PathReport:
        staged = [e for e in self._fs.staging.walk(status.path) if not e.is_dir] if status.is_dir else []
        try:
            uri: str | None = self._fs.mounts.resolve(status.path).uri
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

    # --- warmup ------------------------------------------------------------------------------------------------

    async def load(
        self, paths: list[str], *, parallelism: int = 4, bandwidth: int | None = None, tier: str = "disk"
    ) -> Job:
        """Start a warmup job for ``paths`` (files, directories, globs); returns at once.

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
            for status in await self._expand(f"paths[{i}]", pattern):
                files[status.path] = status
        request = {"paths": paths, "parallelism": parallelism, "bandwidth": bandwidth, "tier": tier}
        selected = [files[p] for p in sorted(files)]

        async def run(job: Job) -> None:
            await load_files(
                job, selected, self._pages, parallelism=parallelism, bandwidth=bandwidth, promote=tier == "memory"
            )

        return self.jobs_registry.submit("load", request, run)

    def jobs(self) -> list[Job]:
        """Every job still remembered, oldest first."""
        return self.jobs_registry.list()

    def job(self, job_id: str) -> Job:
        """One job. Raises ``KeyError``."""
        return self.jobs_registry.get(job_id)

    async def cancel(self, job_id: str) -> Job:
        """Cancel a job. Raises ``KeyError``."""
        return await self.jobs_registry.cancel(job_id)

    # --- free and purge ----------------------------------------------------------------------------------------

    async def _scope(self, paths: list[str]) -> tuple[list[str], list[Refusal]]:
        """Validated, existing paths, and refusals for the staged data within them."""
        if not isinstance(paths, list) or not paths:
            raise InvalidFieldError("paths", "paths must be a non-empty list of paths")
        resolved, refused = [], []
        for i, raw in enumerate(paths):
            path = self._field_path(f"paths[{i}]", raw)
            await self._existing(f"paths[{i}]", path)
            resolved.append(path)
            refused += [Refusal(e.path, STAGED_REASON) for e in self._fs.staging.walk(path) if not e.is_dir]
        return resolved, refused

    async def free(self, paths: list[str]) -> FreeReport:
        """Drop the cached pages of ``paths``; staged data is refused and listed, never dropped."""
        scope, refused = await self._scope(paths)
        freed_bytes = freed_pages = 0
        for path in scope:
            for owner_path, owner in self._owners_below(path):
                if self.rules.is_pinned(owner_path):
                    refused.append(Refusal(owner_path, PINNED_REASON))
                    continue
                pages = len(
                    [i for i in range(owner.page_count(self._pages.page_size)) if self._pages.has_page(owner, i)]
                )
                freed_bytes += self._pages.drop_version(owner.file_id, reason="free")
                freed_pages += pages
        return FreeReport(freed_bytes=freed_bytes, freed_pages=freed_pages, refused=refused)

    async def purge(self, *, target: float, dry_run: bool = False, paths: list[str] | None = None) -> PurgeReport:
        """Evict in policy order until every tier uses at most ``target`` of its capacity (or nothing may go).

        Pinned pages, pages being read and staged data are never taken. ``dry_run`` lists what would go. When the
        target is not reached, ``shortfall`` says why. Every purge, dry runs included, goes into the purge record.
        """
        if isinstance(target, bool) or not isinstance(target, int | float) or not 0 <= target <= 1:
            raise InvalidFieldError("target", f"target must be a number in [0, 1], got {target!r}")
        if not isinstance(dry_run, bool):
            raise InvalidFieldError("dry_run", "dry_run must be true or false")
        scope: list[str] | None = None
        refused: list[Refusal] = []
        if paths is not None:
            scope, refused = await self._scope(paths)
        elif self._fs.staging.used_bytes:
            refused.append(Refusal("/", f"{self._fs.staging.used_bytes} bytes: {STAGED_REASON}"))
        # From here on nothing awaits: the store cannot change between the counts and the eviction.
        owners = self._owners_in(scope)
        can_evict = None if scope is None else self._among(owners)
        last = self._pages.last_medium
        before = self._pages.used(last)
        scope_bytes = sum(self._pages.cached_bytes(o) for _, o in owners)
        victims: list[tuple[ObjectIdentity, int]] = []
        from_last: list[tuple[ObjectIdentity, int]] = []
        above: list[str] = []  # tiers left above their goal
        # The last tier first: evicting there also clears the memory copies.
        for medium in sorted(self._pages.media(), key=lambda m: m != last):
            goal = int(target * self._pages.capacity(medium))
            if dry_run:
                if medium == last:
                    from_last = self._pages.plan_eviction(medium, goal, can_evict=can_evict)
                    victims += from_last
            else:
                taken = self._pages.evict_to(medium, goal, reason="purge", can_evict=can_evict)
                victims += taken
                if medium == last:
                    from_last = taken
                if self._pages.used(medium) > goal:
                    above.append(medium)
        freed = sum(size for _, size in victims)
        after = before - freed if dry_run else self._pages.used(last)
        if dry_run and after > int(target * self._pages.capacity(last)):
            above = [last]
        pinned = [(p, self._pages.cached_bytes(o)) for p, o in self._owners_below("/") if self.rules.is_pinned(p)]
        for pin in self.rules.pins():
            held = sum(
                b for p, b in pinned if is_within(p, pin) and (scope is None or any(is_within(p, s) for s in scope))
            )
            if held:
                refused.append(Refusal(pin, f"{held} bytes {PINNED_REASON}"))
        shortfall = None
        if above:
            reading, shortfall = self._shortfall(
                target=target,
                scope=scope,
                owners=owners,
                scope_bytes=scope_bytes,
                before=before,
                after=after,
                from_last=from_last,
                planned=dry_run,
                above=above,
            )
            refused += [Refusal(p, f"{b} bytes {READING_REASON}") for p, b in sorted(reading.items())]
        if not dry_run:
            self._metrics.purge_runs.labels(trigger="manual").inc()
            self._metrics.purge_bytes.labels(trigger="manual").inc(freed)
        by_path: dict[str, int] = defaultdict(int)
        for owner, size in victims:
            by_path[self._name_of(owner)] += size
        report = PurgeReport(
            target=float(target),
            dry_run=dry_run,
            used_bytes_before=before,
            used_bytes_after=after,
            freed_bytes=freed,
            evicted=[EvictedPath(p, b) for p, b in sorted(by_path.items())],
            refused=refused,
            reached_target=not above,
            shortfall=shortfall,
        )
        self.history.add(
            PurgeRecord(
                time=utc_now(),
                trigger="manual",
                dry_run=dry_run,
                target=report.target,
                paths=scope,
                used_bytes_before=before,
                used_bytes_after=after,
                freed_bytes=freed,
                reached_target=report.reached_target,
                shortfall=shortfall,
            )
        )
        return report

    @staticmethod
    def _among(owners: list[tuple[str | None, ObjectIdentity]]) -> Callable[[PageKey], bool]:
        file_ids = {o.file_id for _, o in owners}
        return lambda key: key[0] in file_ids

    def _name_of(self, owner: ObjectIdentity) -> str:
        return self._path_of(owner) or f"s3://{owner.bucket}/{owner.key}"

    def _owners_in(self, scope: list[str] | None) -> list[tuple[str | None, ObjectIdentity]]:
        """The cached objects a purge of ``scope`` (None: everything) may take, once each, with their paths."""
        if scope is None:
            return [(self._path_of(o), o) for o in self._pages.owners()]
        found = {o.file_id: (p, o) for path in scope for p, o in self._owners_below(path)}
        return list(found.values())

    def _shortfall(
        self,
        *,
        target: float,
        scope: list[str] | None,
        owners: list[tuple[str | None, ObjectIdentity]],
        scope_bytes: int,
        before: int,
        after: int,
        from_last: list[tuple[ObjectIdentity, int]],
        planned: bool,
        above: list[str],
    ) -> tuple[dict[str, int], str]:
        """The bytes kept by readers (by path) and the sentence on why a purge ended above ``target``.

        Called only when a tier is left above its goal, so the policy ran out of candidates: every page of the
        purge's objects still there is pinned or being read (the store's own rule), and the rest of the tier's use
        is staged data or room for writes under way.
        """
        last = self._pages.last_medium
        if last not in above:
            medium = above[0]
            used, capacity = self._pages.used(medium), self._pages.capacity(medium)
            return {}, explain_upper_tier(medium=medium, target=target, capacity=capacity, used=used)
        # A dry run evicted nothing: what would stay is what is cached less what the plan takes.
        taken: dict[str, int] = defaultdict(int)
        if planned:
            for owner, size in from_last:
                taken[owner.file_id] += size
        pinned = remaining = 0
        pinned_paths: list[str] = []
        reading: dict[str, int] = defaultdict(int)
        for path, owner in owners:
            left = self._pages.cached_bytes(owner) - taken[owner.file_id]
            remaining += left
            if path is not None and self.rules.is_pinned(path):
                pinned += left
                pinned_paths.append(path)
            elif left > 0:
                reading[path or self._name_of(owner)] += left
        if scope is None:
            staged = self._fs.staging.used_bytes
            writing = max(0, after - remaining - staged)
        else:
            staged_files = {e.path: e.size for s in scope for e in self._fs.staging.walk(s) if not e.is_dir}
            staged, writing = sum(staged_files.values()), 0
        held = Held(
            pinned=pinned,
            pins=tuple(pin for pin in self.rules.pins() if any(is_within(p, pin) for p in pinned_paths)),
            staged=staged,
            reading=sum(reading.values()),
            writing=writing,
        )
        sentence = explain(
            target=target,
            capacity=self._pages.capacity(last),
            used_before=before,
            freed=sum(size for _, size in from_last),
            held=held,
            paths=scope,
            paths_bytes=scope_bytes,
        )
        return dict(reading), sentence

    def relieve_pressure(self) -> int:
        """Above the high watermark, evict down to the low one (every tier); returns the bytes freed.

        A round that had to act goes into the purge record, except a round that freed nothing and would only
        repeat the newest record: a cache held above the watermark by pins would otherwise fill the record with
        copies, every few seconds, and push the manual purges out of it.
        """
        store = self._config.store
        last = self._pages.last_medium
        before = self._pages.used(last)
        freed = 0
        acted: list[str] = []
        from_last: list[tuple[ObjectIdentity, int]] = []
        for medium in sorted(self._pages.media(), key=lambda m: m != last):
            capacity = self._pages.capacity(medium)
            if self._pages.used(medium) > store.high_watermark * capacity:
                victims = self._pages.evict_to(medium, int(store.low_watermark * capacity), reason="pressure")
                freed += sum(size for _, size in victims)
                acted.append(medium)
                if medium == last:
                    from_last = victims
                self._metrics.purge_runs.labels(trigger="pressure").inc()
        if not acted:
            return 0
        if freed:
            self._metrics.purge_bytes.labels(trigger="pressure").inc(freed)
            log.info("purged %d bytes under pressure", freed)
        goal = store.low_watermark
        above = [m for m in acted if self._pages.used(m) > int(goal * self._pages.capacity(m))]
        after = self._pages.used(last)
        shortfall = None
        if above:
            _, shortfall = self._shortfall(
                target=goal,
                scope=None,
                owners=self._owners_in(None),
                scope_bytes=0,
                before=before,
                after=after,
                from_last=from_last,
                planned=False,
                above=above,
            )
        newest = self.history.latest()
        repeat = (
            newest is not None
            and newest.trigger == "pressure"
            and newest.freed_bytes == 0 == freed
            and newest.shortfall == shortfall
        )
        if not repeat:
            self.history.add(
                PurgeRecord(
                    time=utc_now(),
                    trigger="pressure",
                    dry_run=False,
                    target=goal,
                    paths=None,
                    used_bytes_before=before,
                    used_bytes_after=after,
                    freed_bytes=freed,
                    reached_target=not above,
                    shortfall=shortfall,
                )
            )
        return freed

    def purges(self, limit: int | None = None) -> list[PurgeRecord]:
        """The purge record: up to ``limit`` purges (manual, dry runs, under pressure), newest first."""
        return self.history.list(limit)

    # --- pins and TTLs -----------------------------------------------------------------------------------------

    async def pin(self, path: str) -> PathReport:
        """Protect ``path`` (and everything below) from eviction and purge. Raises ``PathNotFoundError``."""
        path = self._field_path("path", path)
        await self._existing("path", path)
        self.rules.pin(path)
        return await self.stat(path)

    async def unpin(self, path: str) -> PathReport:
        """Remove the pin on exactly ``path`` (a path that was not pinned is left as it is)."""
        path = self._field_path("path", path)
        self.rules.unpin(path)
        return await self.stat(path)

    def pins(self) -> list[str]:
        """Pinned paths."""
        return self.rules.pins()

    async def set_ttl(self, path: str, seconds: float | None) -> PathReport:
        """Free ``path``'s cached pages once older than ``seconds`` (None clears). S3 data is never deleted."""
        path = self._field_path("path", path)
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0):
            raise InvalidFieldError("ttl", f"ttl must not be negative, got {seconds!r}")
        await self._existing("path", path)
        self.rules.set_ttl(path, None if seconds is None else float(seconds))
        return await self.stat(path)

    def ttls(self) -> dict[str, float]:
        """TTLs by path."""
        return self.rules.ttls()

    async def sweep_ttl(self, now: float | None = None) -> FreeReport:
        """Free the pages of every object whose TTL has run out."""

        def ttl_of(owner: ObjectIdentity) -> float | None:
            path = self._path_of(owner)
            return None if path is None else self.rules.ttl_for(path)

        freed_bytes = freed_pages = 0
        for owner in self._pages.expired(ttl_of, time.time() if now is None else now):
            freed_pages += len(
                [i for i in range(owner.page_count(self._pages.page_size)) if self._pages.has_page(owner, i)]
            )
            freed_bytes += self._pages.drop_version(owner.file_id, reason="ttl")
        return FreeReport(freed_bytes=freed_bytes, freed_pages=freed_pages)

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
