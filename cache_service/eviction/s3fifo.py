"""S3-FIFO eviction (Yang et al., "FIFO queues are all you need for cache eviction", SOSP 2023).

Most pages a lakehouse reads are read once (scans, one-off backfills). S3-FIFO lets them pass through a small
probationary FIFO and leave, instead of pushing the hot set out the way LRU does.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic

from cache_service.eviction.base import K

_MAX_FREQ = 3
# The paper's (and libCacheSim's) threshold: a key leaves the small queue for the main one only if it was hit at
# least twice while in it; a single re-read is too common among scan pages to count as a sign of reuse.
_PROMOTE_AT = 2


class _Entry:
    __slots__ = ("freq", "in_main", "size")

    def __init__(self, size: int, in_main: bool) -> None:
        self.size = size
        self.freq = 0
        self.in_main = in_main


class S3FifoPolicy(Generic[K]):
    """Three FIFO queues: a small probationary queue S, a main queue M, and a ghost queue G of keys only.

    New keys enter S, or M directly if G remembers them as recently evicted from S (or S is full before the tier
    has ever needed an eviction). A key leaving S moves to M if it was hit at least twice while there, and otherwise
    is evicted and remembered in G. M is a FIFO with reinsertion: a key at its head with a non-zero frequency
    (capped at 3) goes back to the tail one step colder. S gets about 10% of the capacity in bytes; G holds about as
    many keys as M.

    Operations are amortised O(1). A key refused by ``can_evict`` goes to the tail of M with its frequency intact,
    so a pinned or busy page is never lost and not retried again within the same call.
    """

    name = "s3fifo"

    def __init__(self, capacity: int, *, small_ratio: float = 0.1) -> None:
        """A policy for a tier of ``capacity`` bytes, with ``small_ratio`` of it for the small queue.

        Raises ``ValueError`` if ``capacity`` is not positive or ``small_ratio`` is not in (0, 1).
        """
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        if not 0 < small_ratio < 1:
            raise ValueError(f"small_ratio must be in (0, 1), got {small_ratio}")
        self.capacity = capacity
        self._small_target = max(1, int(capacity * small_ratio))
        self._entries: dict[K, _Entry] = {}
        # Queues hold keys only, head first; sizes and frequencies live in _entries.
        self._small: OrderedDict[K, None] = OrderedDict()
        self._main: OrderedDict[K, None] = OrderedDict()
        self._ghost: OrderedDict[K, None] = OrderedDict()
        self._small_bytes = 0
        self._main_bytes = 0
        self._has_evicted = False

    @property
    def resident_bytes(self) -> int:
        """Total size of the resident keys, as told by ``on_insert``."""
        return self._small_bytes + self._main_bytes

    def on_insert(self, key: K, size: int) -> None:
        """``key`` (``size`` bytes) became resident; a resident key counts as accessed and takes the new size.

        Raises ``ValueError`` for a negative size.
        """
        if size < 0:
            raise ValueError(f"size must not be negative, got {size}")
        entry = self._entries.get(key)
        if entry is not None:
            self._resize(entry, size)
            entry.freq = min(entry.freq + 1, _MAX_FREQ)
            return
        # Until the tier first fills up, keys that overflow S go straight to M (as libCacheSim's current S3-FIFO
        # does): otherwise a cold tier ends its first fill with everything in S and behaves as a plain FIFO until
        # enough promotions have drained S down to its share.
        warming_up = not self._has_evicted and self._small_bytes + size > self._small_target
        if warming_up or key in self._ghost:
            self._ghost.pop(key, None)
            self._entries[key] = _Entry(size, in_main=True)
            self._main[key] = None
            self._main_bytes += size
        else:
            self._entries[key] = _Entry(size, in_main=False)
            self._small[key] = None
            self._small_bytes += size

    def on_access(self, key: K) -> None:
        """``key`` was read. Unknown keys are ignored."""
        entry = self._entries.get(key)
        if entry is not None and entry.freq < _MAX_FREQ:
            entry.freq += 1

    def on_remove(self, key: K) -> None:
        """``key`` left the tier by other means (free, TTL, invalidation). Unknown keys are ignored.

        The key is not remembered in the ghost queue: leaving on request says nothing about its popularity.
        """
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        if entry.in_main:
            del self._main[key]
            self._main_bytes -= entry.size
        else:
            del self._small[key]
            self._small_bytes -= entry.size

    def evict(self, can_evict: Callable[[K], bool]) -> K | None:
        """Forget and return the next victim that ``can_evict`` allows, or None if every resident key is refused.

        Terminates because every step either evicts, lowers a frequency, moves a key from S to M, or sets a refused
        key aside until the call ends; a call that finds nothing touches each key a bounded number of times.
        """
        self._has_evicted = True
        refused: list[K] = []
        try:
            while self._small or self._main:
                if self._small and (self._small_bytes >= self._small_target or not self._main):
                    key, _ = self._small.popitem(last=False)
                    entry = self._entries[key]
                    self._small_bytes -= entry.size
                    if entry.freq >= _PROMOTE_AT:
                        # Its hits in S bought it a place in M, starting cold like any newcomer there.
                        entry.freq = 0
                        self._append_main(key, entry)
                        continue
                    if not can_evict(key):
                        refused.append(key)
                        self._main_bytes += entry.size
                        entry.in_main = True
                        continue
                    del self._entries[key]
                    self._remember(key)
                    return key
                key, _ = self._main.popitem(last=False)
                entry = self._entries[key]
                if entry.freq > 0:
                    entry.freq -= 1
                    self._main[key] = None
                    continue
                if not can_evict(key):
                    refused.append(key)
                    continue
                del self._entries[key]
                self._main_bytes -= entry.size
                return key
            return None
        finally:
            for key in refused:
                self._main[key] = None

    def __len__(self) -> int:
        """Number of resident keys."""
        return len(self._entries)

    def _append_main(self, key: K, entry: _Entry) -> None:
        entry.in_main = True
        self._main[key] = None
        self._main_bytes += entry.size

    def _resize(self, entry: _Entry, size: int) -> None:
        if entry.in_main:
            self._main_bytes += size - entry.size
        else:
            self._small_bytes += size - entry.size
        entry.size = size

    def _remember(self, key: K) -> None:
        self._ghost[key] = None
        # Ghosts are keys only, so bound them by count: as many as M holds when the tier is full, estimated from
        # the mean resident size, or as many as M holds now if that is more.
        mean_size = max(1, self.resident_bytes // len(self._entries)) if self._entries else 1
        limit = max(len(self._main), (self.capacity - self._small_target) // mean_size)
        while len(self._ghost) > limit:
            self._ghost.popitem(last=False)
