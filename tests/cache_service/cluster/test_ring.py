"""The ring: every worker computes the same owners, load is even, and a join or a leave moves the fewest blocks."""

from __future__ import annotations

import pytest

from cache_service.cluster.ring import BlockId, Ring, block_loads, moved_fraction

# 20 days of 250 files of 4 blocks: enough blocks that the spread of counts says something about the ring.
BLOCKS = [
    BlockId("events", f"date=2026-12-{d:02d}/part-{p:05d}.parquet", i)
    for d in range(1, 21)
    for p in range(250)
    for i in range(4)
]


def workers(n: int) -> list[str]:
    return [f"w-{i:012x}" for i in range(n)]


def test_the_owner_does_not_depend_on_the_order_workers_are_listed_in() -> None:
    one, other = Ring.of(workers(5)), Ring.of(reversed(workers(5)))
    assert all(one.owner(b) == other.owner(b) for b in BLOCKS[:500])


def test_owners_lists_every_worker_once_with_the_owner_first() -> None:
    ring = Ring.of(workers(4))
    for block in BLOCKS[:100]:
        order = ring.owners(block)
        assert sorted(order) == sorted(workers(4))
        assert order[0] == ring.owner(block)
    assert ring.owners(BLOCKS[0], most=2) == ring.owners(BLOCKS[0])[:2]


def test_an_empty_ring_owns_nothing() -> None:
    assert Ring.of([]).owner(BLOCKS[0]) is None
    assert Ring.of([]).owners(BLOCKS[0]) == []


def test_a_worker_named_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="named twice"):
        Ring.of(["w-000000000001", "w-000000000001"])


@pytest.mark.parametrize("n", [3, 8, 16])
def test_load_is_even_across_workers(n: int) -> None:
    loads = block_loads(Ring.of(workers(n)), BLOCKS)
    mean = len(BLOCKS) / n
    assert max(loads.values()) / mean < 1.10
    assert min(loads.values()) > 0


@pytest.mark.parametrize("n", [3, 8])
def test_a_join_moves_about_one_nth_of_the_blocks_all_to_the_newcomer(n: int) -> None:
    before, after = Ring.of(workers(n)), Ring.of(workers(n + 1))
    newcomer = workers(n + 1)[-1]
    moved = [b for b in BLOCKS if before.owner(b) != after.owner(b)]
    assert all(after.owner(b) == newcomer for b in moved)
    assert moved_fraction(before, after, BLOCKS) == pytest.approx(1 / (n + 1), rel=0.10)


def test_a_leave_moves_only_the_leavers_blocks_to_their_successors() -> None:
    before = Ring.of(workers(5))
    leaver = workers(5)[2]
    after = Ring.of(w for w in workers(5) if w != leaver)
    for block in BLOCKS[:2000]:
        if before.owner(block) == leaver:
            assert after.owner(block) == before.owners(block)[1]
        else:
            assert after.owner(block) == before.owner(block)
