"""Free and purge: dropping cached pages by path, evicting to a target by hand or under pressure, the purge record.

Nothing here loses data: staged files are refused (they are not in S3 yet), pinned objects are refused, and pages
being read stay until their reads end. A purge that ends above its target says why (see ``shortfall``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from cache_service.config import CacheConfig
from cache_service.management.history import PurgeHistory, PurgeRecord, utc_now
from cache_service.management.reports import (
    PINNED_REASON,
    READING_REASON,
    STAGED_REASON,
    EvictedPath,
    FreeReport,
    InvalidFieldError,
    PurgeReport,
    Refusal,
)
from cache_service.management.rules import PathRules
from cache_service.management.selection import PathSelection
from cache_service.management.shortfall import Held, explain, explain_upper_tier
from cache_service.metrics import CacheMetrics
from cache_service.namespace.filesystem import CacheFileSystem
from cache_service.namespace.paths import is_within
from cache_service.page_store import ObjectIdentity, PageKey, PageStore

# Under the facade's name, as purges have always logged: log queries and alerts may select on it.
log = logging.getLogger("cache_service.management.manager")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Purger:
    """``cachectl free`` and ``purge``, and the purge that keeps the cache under its high watermark."""

    config: CacheConfig
    fs: CacheFileSystem
    pages: PageStore
    metrics: CacheMetrics
    rules: PathRules
    history: PurgeHistory
    select: PathSelection

    async def free(self, paths: list[str]) -> FreeReport:
        """Drop the cached pages of ``paths``; staged data is refused and listed, never dropped."""
        scope, refused = await self.select.scope(paths)
        freed_bytes = freed_pages = 0
        for path in scope:
            for owner_path, owner in self.select.owners_below(path):
                if self.rules.is_pinned(owner_path):
                    refused.append(Refusal(owner_path, PINNED_REASON))
                    continue
                pages = len([i for i in range(owner.page_count(self.pages.page_size)) if self.pages.has_page(owner, i)])
                freed_bytes += self.pages.drop_version(owner.file_id, reason="free")
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
            scope, refused = await self.select.scope(paths)
        elif self.fs.staging.used_bytes:
            refused.append(Refusal("/", f"{self.fs.staging.used_bytes} bytes: {STAGED_REASON}"))
        # From here on nothing awaits: the store cannot change between the counts and the eviction.
        owners = self.select.owners_in(scope)
        can_evict = None if scope is None else self._among(owners)
        last = self.pages.last_medium
        before = self.pages.used(last)
        scope_bytes = sum(self.pages.cached_bytes(o) for _, o in owners)
        victims: list[tuple[ObjectIdentity, int]] = []
        from_last: list[tuple[ObjectIdentity, int]] = []
        above: list[str] = []  # tiers left above their goal
        # The last tier first: evicting there also clears the memory copies.
        for medium in sorted(self.pages.media(), key=lambda m: m != last):
            goal = int(target * self.pages.capacity(medium))
            if dry_run:
                if medium == last:
                    from_last = self.pages.plan_eviction(medium, goal, can_evict=can_evict)
                    victims += from_last
            else:
                taken = self.pages.evict_to(medium, goal, reason="purge", can_evict=can_evict)
                victims += taken
                if medium == last:
                    from_last = taken
                if self.pages.used(medium) > goal:
                    above.append(medium)
        freed = sum(size for _, size in victims)
        after = before - freed if dry_run else self.pages.used(last)
        if dry_run and after > int(target * self.pages.capacity(last)):
            above = [last]
        below = self.select.owners_below("/")
        pinned = [(p, self.pages.cached_bytes(o)) for p, o in below if self.rules.is_pinned(p)]
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
            self.metrics.purge_runs.labels(trigger="manual").inc()
            self.metrics.purge_bytes.labels(trigger="manual").inc(freed)
        by_path: dict[str, int] = defaultdict(int)
        for owner, size in victims:
            by_path[self.select.name_of(owner)] += size
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
        last = self.pages.last_medium
        if last not in above:
            medium = above[0]
            used, capacity = self.pages.used(medium), self.pages.capacity(medium)
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
            left = self.pages.cached_bytes(owner) - taken[owner.file_id]
            remaining += left
            if path is not None and self.rules.is_pinned(path):
                pinned += left
                pinned_paths.append(path)
            elif left > 0:
                reading[path or self.select.name_of(owner)] += left
        if scope is None:
            staged = self.fs.staging.used_bytes
            writing = max(0, after - remaining - staged)
        else:
            staged_files = {e.path: e.size for s in scope for e in self.fs.staging.walk(s) if not e.is_dir}
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
            capacity=self.pages.capacity(last),
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
        store = self.config.store
        last = self.pages.last_medium
        before = self.pages.used(last)
        freed = 0
        acted: list[str] = []
        from_last: list[tuple[ObjectIdentity, int]] = []
        for medium in sorted(self.pages.media(), key=lambda m: m != last):
            capacity = self.pages.capacity(medium)
            if self.pages.used(medium) > store.high_watermark * capacity:
                victims = self.pages.evict_to(medium, int(store.low_watermark * capacity), reason="pressure")
                freed += sum(size for _, size in victims)
                acted.append(medium)
                if medium == last:
                    from_last = victims
                self.metrics.purge_runs.labels(trigger="pressure").inc()
        if not acted:
            return 0
        if freed:
            self.metrics.purge_bytes.labels(trigger="pressure").inc(freed)
            log.info("purged %d bytes under pressure", freed)
        goal = store.low_watermark
        above = [m for m in acted if self.pages.used(m) > int(goal * self.pages.capacity(m))]
        after = self.pages.used(last)
        shortfall = None
        if above:
            _, shortfall = self._shortfall(
                target=goal,
                scope=None,
                owners=self.select.owners_in(None),
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
