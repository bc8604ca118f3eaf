"""The eviction policy interface shared by the page store's tiers and the trace simulator."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Protocol, TypeVar

K = TypeVar("K", bound=Hashable)
"""The key a policy tracks: a page key in the page store, any hashable item in traces and tests."""


class EvictionPolicy(Protocol[K]):
    """Decides which resident item leaves a tier next.

    The policy only tracks keys and sizes; the tier owns the bytes. Calls: ``on_insert`` when an item becomes
    resident, ``on_access`` on every hit, ``on_remove`` when the tier drops an item for any other reason (free,
    TTL, invalidation), and ``evict`` to choose and forget a victim. Generic over its key: ``evict`` hands back
    keys of the type the tier put in.
    """

    name: str

    def on_insert(self, key: K, size: int) -> None:
        """``key`` (``size`` bytes) became resident. Inserting a resident key counts as an access."""
        ...

    def on_access(self, key: K) -> None:
        """``key`` was read. Unknown keys are ignored."""
        ...

    def on_remove(self, key: K) -> None:
        """``key`` left the tier by other means. Unknown keys are ignored."""
        ...

    def evict(self, can_evict: Callable[[K], bool]) -> K | None:
        """Choose the next victim among resident keys for which ``can_evict`` is true, forget it and return it.

        Keys refused by ``can_evict`` (pinned, being read) stay resident and keep their standing as far as the
        policy allows. Returns None when no resident key may be evicted.
        """
        ...

    def __len__(self) -> int:
        """Number of resident keys tracked."""
        ...
