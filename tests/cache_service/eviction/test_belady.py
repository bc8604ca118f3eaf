"""Belady's MIN: correct on hand-checked and brute-forced traces, and never beaten by a real policy."""

from __future__ import annotations

import random
from functools import cache

import pytest

from cache_service.eviction import make_policy
from cache_service.eviction.belady import min_hits, next_uses
from cache_service.eviction.simulate import PAGE_SIZE, replay
from cache_service.eviction.traces import zipf_with_scans


def optimal_hits(trace: tuple[str, ...], capacity: int) -> int:
    """Exhaustive search over every eviction choice; only for tiny traces."""

    @cache
    def best(i: int, resident: frozenset[str]) -> int:
        if i == len(trace):
            return 0
        key = trace[i]
        if key in resident:
            return 1 + best(i + 1, resident)
        if len(resident) < capacity:
            return best(i + 1, resident | {key})
        return max(best(i + 1, (resident - {victim}) | {key}) for victim in resident)

    return best(0, frozenset())


def test_next_uses_points_at_the_following_request_or_past_the_end():
    assert next_uses(["a", "b", "a", "c", "b"]) == [2, 4, 5, 5, 5]


def test_min_keeps_the_page_needed_soonest_on_a_loop_that_defeats_lru():
    # Capacity 2, loop a b c a b c: at c, b is needed later than a, so MIN drops b and hits a; at b it drops a
    # (never needed again) and then hits c. LRU always drops exactly the page needed next.
    trace = list("abcabc")
    assert min_hits(trace, 2) == 2
    assert replay(make_policy("lru", 2 * PAGE_SIZE), trace, 2) == 0


def test_min_misses_only_first_reads_when_everything_fits():
    trace = list("abcabcaab")
    assert min_hits(trace, 3) == len(trace) - 3


@pytest.mark.parametrize("seed", range(30))
def test_min_matches_an_exhaustive_search_on_tiny_traces(seed):
    rng = random.Random(seed)
    trace = tuple(rng.choice("abcde") for _ in range(12))
    capacity = rng.randint(1, 3)
    assert min_hits(trace, capacity) == optimal_hits(trace, capacity)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("policy_name", ["lru", "s3fifo"])
def test_no_policy_beats_min(seed, policy_name):
    trace = zipf_with_scans(5000, 500, seed, alpha=0.9)
    for pages in (5, 25, 100):
        policy_hits = replay(make_policy(policy_name, pages * PAGE_SIZE), trace, pages)
        assert policy_hits <= min_hits(trace, pages)


def test_min_rejects_a_non_positive_capacity():
    with pytest.raises(ValueError):
        min_hits(["a"], 0)
