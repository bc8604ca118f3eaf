"""The eviction policy interface shared by the page store's tiers and the trace simulator."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Protocol


class EvictionPolicy(Protocol):
    """Decides which resident item leaves a tier next.

    The policy only tracks keys and sizes; the tier owns the bytes. Calls: ``on_insert`` when an item becomes
    resident, ``on_access`` on every hit, ``on_remove`` when the tier drops an item for any other reason (free,
    TTL, invalidation), and ``evict`` to choose and forget a victim.
    """

    name: str

    def on_insert(self, key: Hashable, size: int) -> None:
        """``key`` (``size`` bytes) became resident. Inserting a resident key counts as an access."""
        ...

    def on_access(self, key: Hashable) -> None:
        """``key`` was read. Unknown keys are ignored."""
        ...

    def on_remove(self, key: Hashable) -> None:
        """``key`` left the tier by other means. Unknown keys are ignored."""
        ...

    def evict(self, can_evict: Callable[[Hashable], bool]) -> Hashable | None:
        """Choose the next victim among resident keys for which ``can_evict`` is true, forget it and return it.

        Keys refused by ``can_evict`` (pinned, being read) stay resident and keep their standing as far as the
        policy allows. Returns None when no resident key may be evicted.
        """
        ...

    def __len__(self) -> int:
        """Number of resident keys tracked."""
        ...


def make_policy(name: str, capacity: int) -> EvictionPolicy:
    """A new, empty policy by its configuration name (``lru`` or ``s3fifo``) for a tier of ``capacity`` bytes.

    Raises ``ValueError`` for an unknown name.
    """
    from cache_service.eviction.lru import LruPolicy
    from cache_service.eviction.s3fifo import S3FifoPolicy

    policies: dict[str, Callable[[int], EvictionPolicy]] = {"lru": LruPolicy, "s3fifo": S3FifoPolicy}
    if name not in policies:
        raise ValueError(f"unknown eviction policy {name!r}; expected one of {sorted(policies)}")
    return policies[name](capacity)
