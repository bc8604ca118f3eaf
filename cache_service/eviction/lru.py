"""Least-recently-used eviction: the baseline every other policy is measured against."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic

from cache_service.eviction.base import K


class LruPolicy(Generic[K]):
    """Evicts the resident key whose last insert or access is the oldest.

    Every operation is O(1) except ``evict``, which costs O(1) plus one step per refused key it has to skip.
    Refused keys keep their place in the recency order.
    """

    name = "lru"

    def __init__(self, capacity: int) -> None:
        """A policy for a tier of ``capacity`` bytes. Raises ``ValueError`` if ``capacity`` is not positive."""
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.capacity = capacity
        # Oldest first: the head of the dict is the next victim.
        self._sizes: OrderedDict[K, int] = OrderedDict()
        self._bytes = 0

    @property
    def resident_bytes(self) -> int:
        """Total size of the resident keys, as told by ``on_insert``."""
        return self._bytes

    def on_insert(self, key: K, size: int) -> None:
        """``key`` (``size`` bytes) became resident; a resident key is refreshed and takes the new size.

        Raises ``ValueError`` for a negative size.
        """
        if size < 0:
            raise ValueError(f"size must not be negative, got {size}")
        old = self._sizes.pop(key, 0)
        self._sizes[key] = size
        self._bytes += size - old

    def on_access(self, key: K) -> None:
        """``key`` was read: it becomes the most recently used. Unknown keys are ignored."""
        if key in self._sizes:
            self._sizes.move_to_end(key)

    def on_remove(self, key: K) -> None:
        """``key`` left the tier by other means. Unknown keys are ignored."""
        self._bytes -= self._sizes.pop(key, 0)

    def evict(self, can_evict: Callable[[K], bool]) -> K | None:
        """Forget and return the least recently used key that ``can_evict`` allows, or None if there is none."""
        for key in self._sizes:
            if can_evict(key):
                # Safe while iterating: the loop ends here, before the dict is iterated again.
                self._bytes -= self._sizes.pop(key)
                return key
        return None

    def __len__(self) -> int:
        """Number of resident keys."""
        return len(self._sizes)
