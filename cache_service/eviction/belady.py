"""Belady's MIN: the offline optimum the simulator uses as the ceiling for real policies.

It needs the whole future of the trace, so it only exists here, never in a tier. Items are assumed to be of equal
size (one page each), which is what makes "evict the item used farthest in the future" optimal.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Sequence


def next_uses(trace: Sequence[Hashable]) -> list[int]:
    """For each position ``i``, the position of the next request for ``trace[i]``, or ``len(trace)`` if none."""
    never = len(trace)
    result = [never] * never
    last_seen: dict[Hashable, int] = {}
    for i in range(never - 1, -1, -1):
        key = trace[i]
        result[i] = last_seen.get(key, never)
        last_seen[key] = i
    return result


def min_hits(trace: Sequence[Hashable], capacity: int) -> int:
    """Hits of a cache holding ``capacity`` items that evicts the resident item whose next use is farthest away.

    Every miss is admitted, as in the page store, so the result bounds any policy with the same capacity that
    admits on miss. Raises ``ValueError`` if ``capacity`` is not positive.
    """
    if capacity <= 0:
        raise ValueError(f"capacity must be positive, got {capacity}")
    upcoming = next_uses(trace)
    # resident key -> its next use; the heap holds (-next use, key) and may hold stale pairs, skipped when popped
    # (lazy deletion), which keeps every step O(log n) without a decrease-key operation.
    resident: dict[Hashable, int] = {}
    farthest: list[tuple[int, int, Hashable]] = []
    hits = 0
    for i, key in enumerate(trace):
        nxt = upcoming[i]
        if key in resident:
            hits += 1
        elif len(resident) >= capacity:
            while True:
                neg_next, _, victim = heapq.heappop(farthest)
                if resident.get(victim) == -neg_next:
                    del resident[victim]
                    break
        resident[key] = nxt
        # The position breaks ties so keys themselves never need to be comparable.
        heapq.heappush(farthest, (-nxt, i, key))
    return hits
