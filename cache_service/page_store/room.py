"""Room in the tiers: what each uses, what is reserved or promised, and which pages leave to make more.

A tier's use is its pages plus, on disk, the bytes reserved by others (staged files, multipart parts) and the room
promised to page writes under way. Eviction asks the tier's policy for victims among the pages it may take: never a
page being read, never a page of a guarded (pinned) object. Leaving the memory tier is a demotion (the disk copy
stays); leaving the last tier is an eviction.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field

from cache_service.eviction import EvictionPolicy
from cache_service.metrics import CacheMetrics
from cache_service.page_store.constraints import EvictionGuard, QuotaPolicy, ReservedSpace
from cache_service.page_store.identity import ObjectIdentity, PageKey
from cache_service.page_store.index import PageEntry, PageIndex
from cache_service.page_store.tiers import Tier


@dataclass(frozen=True)
class TierUsage:
    """Capacity and use of one tier, for status and metrics."""

    medium: str
    capacity_bytes: int
    used_bytes: int
    pages: int


@dataclass(eq=False, slots=True)
class TierRoom:
    """Use and eviction of the page store's tiers, which it shares with the store (the read path reads them).

    ``tiers`` go fastest first, the last holding every page; each evicts in the order of its ``policies`` entry.
    """

    tiers: dict[str, Tier]
    policies: dict[str, EvictionPolicy[PageKey]]
    index: PageIndex
    metrics: CacheMetrics
    _: KW_ONLY
    reserved: ReservedSpace
    guard: EvictionGuard
    quotas: QuotaPolicy
    _writing: int = field(init=False, default=0)  # bytes of disk writes under way: room already promised to them
    _writing_by_group: dict[str, int] = field(init=False, default_factory=dict)

    @property
    def last(self) -> str:
        """The tier that holds every cached page ("disk" when there is one)."""
        return "disk" if "disk" in self.tiers else "memory"

    # --- use ---------------------------------------------------------------------------------------------------

    def reserved_bytes(self, medium: str) -> int:
        """Bytes of ``medium`` taken by other than pages: reserved areas and writes under way (disk only)."""
        return self.reserved.used_bytes + self._writing if medium == "disk" else 0

    def used(self, medium: str) -> int:
        """Bytes used in one tier (staged files count on disk)."""
        return self.tiers[medium].used_bytes + self.reserved_bytes(medium)

    def usage(self) -> list[TierUsage]:
        """Capacity and use of each tier, fastest first."""
        counts = self.index.page_counts(list(self.tiers))
        return [
            TierUsage(medium, tier.capacity, tier.used_bytes + self.reserved_bytes(medium), counts[medium])
            for medium, tier in self.tiers.items()
        ]

    def protected_bytes(self) -> int:
        """Bytes of cached pages that eviction may not take because they are pinned."""
        index = self.index
        return sum(index.cached_bytes(owner) for owner in index.owners() if self.guard.protects(owner))

    def promise(self, group: str, size: int) -> None:
        """Hold ``size`` bytes of the disk tier for a page of quota ``group`` being written."""
        self._writing += size
        self._writing_by_group[group] = self._writing_by_group.get(group, 0) + size

    def release(self, group: str, size: int) -> None:
        """The write ``promise`` held room for has ended (its page, if stored, now counts as a page)."""
        self._writing -= size
        self._writing_by_group[group] -= size

    # --- making room -------------------------------------------------------------------------------------------

    def make_room(self, medium: str, need: int, owner: ObjectIdentity) -> bool:
        """Evict from ``medium`` until ``need`` more bytes of ``owner`` fit its group's quota and the tier.

        False when they cannot: everything that would have to go is pinned or being read.
        """
        group = self.quotas.group_of(owner)
        quota = self.quotas.limit(group, medium)
        if quota is not None:
            pending = self._writing_by_group.get(group, 0) if medium == "disk" else 0
            while self.index.usage_of_group(medium, group) + pending + need > quota:
                in_group = self._in_group(group)
                if not self.evict_one(medium, reason="quota", can_evict=in_group):
                    return False
        tier = self.tiers[medium]
        while tier.used_bytes + self.reserved_bytes(medium) + need > tier.capacity:
            if not self.evict_one(medium, reason="capacity"):
                return False
        return True

    def _in_group(self, group: str) -> Callable[[PageKey], bool]:
        return lambda key: self.index.in_group(key, group)

    def _evictable(self, key: PageKey) -> bool:
        entry = self.index.entries.get(key)
        return entry is not None and entry.readers == 0 and not self.guard.protects(entry.owner)

    def _rule(self, can_evict: Callable[[PageKey], bool] | None) -> Callable[[PageKey], bool]:
        if can_evict is None:
            return self._evictable
        return lambda key: self._evictable(key) and can_evict(key)

    def evict_one(self, medium: str, *, reason: str, can_evict: Callable[[PageKey], bool] | None = None) -> int:
        """Evict the policy's next victim from ``medium``; returns its size (0 when nothing may go).

        ``can_evict`` narrows the candidates beyond the store's own rule (pinned and in-use pages always stay).
        """
        victim = self.policies[medium].evict(self._rule(can_evict))
        if victim is None:
            return 0
        return self._remove_victim(medium, victim, reason)

    def evict_to(
        self, medium: str, target_bytes: int, *, reason: str, can_evict: Callable[[PageKey], bool] | None = None
    ) -> list[tuple[ObjectIdentity, int]]:
        """Evict from ``medium`` in policy order until its use is at most ``target_bytes`` or nothing more may go.

        Returns (owner, bytes) per victim. Pinned pages, pages being read and staged data are never taken.
        """
        evicted: list[tuple[ObjectIdentity, int]] = []
        rule = self._rule(can_evict)
        policy = self.policies[medium]
        while self.used(medium) > target_bytes:
            victim = policy.evict(rule)
            if victim is None:
                break
            owner = self.index.entries[victim].owner
            evicted.append((owner, self._remove_victim(medium, victim, reason)))
        return evicted

    def plan_eviction(
        self, medium: str, target_bytes: int, *, can_evict: Callable[[PageKey], bool] | None = None
    ) -> list[tuple[ObjectIdentity, int]]:
        """What ``evict_to`` would take, in order, without changing anything (for dry runs)."""
        trial = copy.deepcopy(self.policies[medium])
        rule = self._rule(can_evict)
        used = self.used(medium)
        planned: list[tuple[ObjectIdentity, int]] = []
        while used > target_bytes:
            victim = trial.evict(rule)
            if victim is None:
                break
            entry = self.index.entries[victim]
            planned.append((entry.owner, entry.size))
            used -= entry.size
        return planned

    def keep_order(self, medium: str) -> list[PageEntry]:
        """Every page of ``medium``, the one its policy would evict last first (what is worth most comes first)."""
        trial = copy.deepcopy(self.policies[medium])
        order: list[PageEntry] = []
        while (victim := trial.evict(lambda _: True)) is not None:
            entry = self.index.entries.get(victim)
            if entry is not None:
                order.append(entry)
        order.reverse()
        return order

    # --- removal -----------------------------------------------------------------------------------------------

    def _remove_victim(self, medium: str, key: PageKey, reason: str) -> int:
        """Remove a page the policy of ``medium`` already gave up; returns its size."""
        if medium != self.last:
            # leaving memory is a demotion: the last tier keeps its copy
            entry = self.index.entries[key]
            self.index.leave(entry, medium)
            self.tiers[medium].remove(key)
            self.metrics.demotions.inc()
            return entry.size
        removed = self.index.remove(key)
        assert removed is not None, "a policy only names pages the index holds"
        for held in removed.media:
            self.tiers[held].remove(key)
            if held != medium:
                self.policies[held].on_remove(key)
        removed.media.clear()
        self.metrics.evictions.labels(tier=medium, reason=reason).inc()
        return removed.size

    def drop(self, key: PageKey, *, reason: str) -> int:
        """Remove page ``key`` from every tier for ``reason`` other than room (free, TTL, corrupt, replaced).

        Returns the bytes freed from the last tier.
        """
        entry = self.index.remove(key)
        if entry is None:
            return 0
        freed = 0
        for medium in entry.media:
            self.policies[medium].on_remove(key)
            removed = self.tiers[medium].remove(key)
            if medium == self.last:
                freed = removed
        self.metrics.evictions.labels(tier=self.last, reason=reason).inc()
        return freed
