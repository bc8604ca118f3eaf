"""The contract every eviction policy meets; each test runs once per policy that ``make_policy`` knows."""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable
from typing import Any

import pytest

from cache_service.eviction import EvictionPolicy, make_policy
from tests.cache_service.eviction.tier_model import PAGE, TierModel

CAPACITY = 64 * PAGE
POLICY_NAMES = ["lru", "s3fifo"]


@pytest.fixture(params=POLICY_NAMES)
def policy_name(request):
    return request.param


@pytest.fixture
def policy(policy_name):
    return make_policy(policy_name, CAPACITY)


def allow_all(key: Hashable) -> bool:
    return True


def refuse_all(key: Hashable) -> bool:
    return False


def drain(policy, can_evict: Callable[[Hashable], bool] = allow_all) -> list[Any]:
    """Evict until the policy says nothing more may go; fails instead of looping if it never says so."""
    victims: list[Any] = []
    for _ in range(10_000):
        victim = policy.evict(can_evict)
        if victim is None:
            return victims
        victims.append(victim)
    raise AssertionError("evict never returned None")


def page(i: int, file_id: str = "f") -> tuple[str, int]:
    return (file_id, i)


def test_make_policy_builds_an_empty_policy_with_its_name(policy, policy_name):
    assert policy.name == policy_name
    assert len(policy) == 0


def test_make_policy_rejects_an_unknown_name():
    with pytest.raises(ValueError, match="unknown eviction policy"):
        make_policy("clock", CAPACITY)


@pytest.mark.parametrize("capacity", [0, -PAGE])
def test_non_positive_capacity_is_rejected(policy_name, capacity):
    with pytest.raises(ValueError):
        make_policy(policy_name, capacity)


def test_negative_size_is_rejected(policy):
    with pytest.raises(ValueError):
        policy.on_insert(page(0), -1)
    assert len(policy) == 0


def test_evict_on_an_empty_policy_returns_none(policy):
    assert policy.evict(allow_all) is None


def test_len_counts_each_resident_key_once(policy):
    for i in range(10):
        policy.on_insert(page(i), PAGE)
    policy.on_insert(page(3), PAGE)
    policy.on_access(page(4))
    assert len(policy) == 10


def test_every_inserted_key_is_evicted_exactly_once(policy):
    keys = [page(i, file_id) for file_id in ("a", "b") for i in range(50)]
    for key in keys:
        policy.on_insert(key, PAGE)
    for key in keys[::3]:
        policy.on_access(key)

    victims = drain(policy)

    assert sorted(victims) == sorted(keys)
    assert len(policy) == 0
    assert policy.evict(allow_all) is None


def test_an_evicted_key_is_forgotten(policy):
    for i in range(5):
        policy.on_insert(page(i), PAGE)
    victim = policy.evict(allow_all)

    policy.on_access(victim)
    policy.on_remove(victim)

    assert len(policy) == 4
    assert victim not in drain(policy)


def test_a_removed_key_is_never_evicted(policy):
    for i in range(10):
        policy.on_insert(page(i), PAGE)
    policy.on_access(page(2))
    policy.on_remove(page(2))
    policy.on_remove(page(7))

    assert len(policy) == 8
    assert sorted(drain(policy)) == [page(i) for i in range(10) if i not in (2, 7)]


def test_unknown_keys_are_ignored(policy):
    policy.on_insert(page(0), PAGE)
    policy.on_access(page(99))
    policy.on_remove(page(99))
    assert len(policy) == 1
    assert drain(policy) == [page(0)]


def test_refused_keys_are_never_returned_and_never_lost(policy):
    keys = [page(i) for i in range(40)]
    for key in keys:
        policy.on_insert(key, PAGE)
    for key in keys[::5]:
        policy.on_access(key)
    even = set(keys[::2])

    first = drain(policy, lambda key: key not in even)

    assert set(first) == set(keys) - even
    assert len(policy) == len(even)
    assert set(drain(policy)) == even


def test_evict_returns_none_when_every_key_is_refused_after_asking_about_each(policy):
    keys = [page(i) for i in range(12)]
    for key in keys:
        policy.on_insert(key, PAGE)
    for key in keys[:4]:
        policy.on_access(key)
        policy.on_access(key)
    asked: set[Hashable] = set()

    def refuse_and_record(key: Hashable) -> bool:
        asked.add(key)
        return False

    assert policy.evict(refuse_and_record) is None
    assert asked == set(keys)
    assert len(policy) == len(keys)
    assert sorted(drain(policy)) == sorted(keys)


def test_reinserting_a_resident_key_counts_as_an_access(policy_name):
    accessed: EvictionPolicy[tuple[str, int]] = make_policy(policy_name, CAPACITY)
    reinserted: EvictionPolicy[tuple[str, int]] = make_policy(policy_name, CAPACITY)
    for p in (accessed, reinserted):
        for i in range(20):
            p.on_insert(page(i), PAGE)
    for i in (0, 3, 3, 5, 5, 5, 11):
        accessed.on_access(page(i))
        reinserted.on_insert(page(i), PAGE)

    assert len(reinserted) == 20
    assert drain(reinserted) == drain(accessed)


def test_a_key_in_constant_use_outlives_a_stream_of_new_keys(policy):
    tier = TierModel(policy, CAPACITY)
    hot = page(0, "dimension")
    tier.read(hot)
    for i in range(1000):
        tier.read(page(i, "fact"))
        assert tier.read(hot), f"hot page evicted after {i} new pages"


def test_sizes_are_accounted_in_bytes_including_resize_and_removal(policy):
    # A 2.5 MiB file: two full pages and a short last page.
    policy.on_insert(page(0), PAGE)
    policy.on_insert(page(1), PAGE)
    policy.on_insert(page(2), PAGE // 2)
    assert policy.resident_bytes == 2 * PAGE + PAGE // 2

    policy.on_insert(page(2), PAGE)  # the file was appended to: its last page grew
    assert policy.resident_bytes == 3 * PAGE

    policy.on_remove(page(0))
    victim = policy.evict(allow_all)
    assert victim in (page(1), page(2))
    assert policy.resident_bytes == PAGE
    assert len(policy) == 1


def test_random_workload_with_pins_and_short_pages_keeps_the_tier_consistent(policy):
    rng = random.Random(7)
    tier = TierModel(policy, CAPACITY)
    files = {f"file-{n}": rng.randint(1, 12) for n in range(40)}
    for _ in range(5000):
        file_id = rng.choice(list(files))
        pages = files[file_id]
        index = rng.randrange(pages)
        size = PAGE if index < pages - 1 else rng.choice([PAGE, PAGE // 3, 4096])
        key = (file_id, index)
        roll = rng.random()
        if roll < 0.05 and key in tier.sizes:
            tier.pinned.add(key)
        elif roll < 0.10:
            tier.pinned.discard(key)
        elif roll < 0.13:
            tier.pinned.discard(key)
            tier.drop(key)
        elif len(tier.pinned) < 32 or key in tier.sizes:
            tier.read(key, size)

        assert tier.used <= tier.capacity
        assert len(policy) == len(tier.sizes)
        assert policy.resident_bytes == tier.used

    assert tier.evicted, "the workload never filled the tier"
    unpinned = drain(policy, tier.can_evict)
    assert len(unpinned) == len(set(unpinned))
    assert set(unpinned) == set(tier.sizes) - tier.pinned
