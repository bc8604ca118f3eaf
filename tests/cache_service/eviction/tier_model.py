"""A minimal stand-in for a page-store tier, for driving eviction policies in tests the way the real tier does."""

from __future__ import annotations

from collections.abc import Hashable

from cache_service.eviction import EvictionPolicy

PAGE = 1 << 20


class TierModel:
    """Holds ``capacity`` bytes; on a miss evicts through the policy until the page fits, then admits it.

    Every victim is checked: it must be resident and not pinned, so a misbehaving policy fails the test at once.
    """

    def __init__(self, policy: EvictionPolicy[Hashable], capacity: int) -> None:
        self.policy = policy
        self.capacity = capacity
        self.sizes: dict[Hashable, int] = {}
        self.pinned: set[Hashable] = set()
        self.used = 0
        self.evicted: list[Hashable] = []

    def can_evict(self, key: Hashable) -> bool:
        return key not in self.pinned

    def read(self, key: Hashable, size: int = PAGE) -> bool:
        """Serve one read; True on a hit. Raises MemoryError if everything resident is pinned."""
        if key in self.sizes:
            self.policy.on_access(key)
            return True
        while self.used + size > self.capacity:
            victim = self.policy.evict(self.can_evict)
            if victim is None:
                raise MemoryError("nothing evictable")
            assert victim in self.sizes, f"evicted {victim!r}, which is not resident"
            assert victim not in self.pinned, f"evicted pinned {victim!r}"
            self.used -= self.sizes.pop(victim)
            self.evicted.append(victim)
        self.policy.on_insert(key, size)
        self.sizes[key] = size
        self.used += size
        return False

    def drop(self, key: Hashable) -> None:
        """Remove a page for a reason other than eviction (free, TTL, invalidation)."""
        if key in self.sizes:
            self.used -= self.sizes.pop(key)
        self.policy.on_remove(key)
