"""S3-FIFO behaviour beyond the shared contract: scan resistance and the ghost queue."""

from __future__ import annotations

from collections.abc import Hashable

from cache_service.eviction import make_policy
from cache_service.eviction.s3fifo import S3FifoPolicy
from tests.cache_service.eviction.tier_model import PAGE, TierModel

CAPACITY = 100 * PAGE


def scan(tier: TierModel, name: str, pages: int) -> None:
    for i in range(pages):
        tier.read((name, i))


def hot_hits_after_a_scan(policy_name: str) -> int:
    tier = TierModel(make_policy(policy_name, CAPACITY), CAPACITY)
    hot = [("dimension", i) for i in range(20)]
    scan(tier, "warmup", 150)  # start from a full, steady tier rather than an empty one
    for _ in range(3):
        for key in hot:
            tier.read(key)
    scan(tier, "backfill", 300)
    return sum(tier.read(key) for key in hot)


def test_one_off_scan_does_not_flush_a_hot_set_that_lru_flushes():
    assert hot_hits_after_a_scan("lru") == 0  # the scenario really is a flush for a recency-only policy
    assert hot_hits_after_a_scan("s3fifo") == 20


def test_key_back_from_the_ghost_queue_survives_a_scan_that_a_key_hit_once_does_not():
    tier = TierModel(S3FifoPolicy(CAPACITY), CAPACITY)
    scan(tier, "warmup", 150)
    returning, once_hit = ("returning", 0), ("once-hit", 0)

    tier.read(returning)
    scan(tier, "first", 20)  # long enough to push `returning` out of the small queue, short enough to remember it
    assert returning in tier.evicted
    assert not tier.read(returning)  # re-admitted, and straight to the main queue
    tier.read(once_hit)
    tier.read(once_hit)
    scan(tier, "second", 300)

    assert tier.read(returning)
    assert not tier.read(once_hit)


def test_ghost_queue_stays_bounded_by_the_main_queue_size():
    tier = TierModel(S3FifoPolicy(CAPACITY), CAPACITY)
    scan(tier, "backfill", 20_000)
    # Reads the private queue on purpose: its bound is the policy's memory footprint, which nothing else shows.
    assert len(tier.policy._ghost) <= 100  # type: ignore[attr-defined]
    assert len(tier.policy) == 100


def test_small_queue_share_is_in_bytes_so_short_pages_do_not_crowd_out_the_main_queue():
    policy: S3FifoPolicy[Hashable] = S3FifoPolicy(CAPACITY)
    tier = TierModel(policy, CAPACITY)
    hot = [("dimension", i) for i in range(20)]
    scan(tier, "warmup", 150)
    for _ in range(3):
        for key in hot:
            tier.read(key)
    # Many tiny last pages: counted by entries they would look like far more than 10% of the tier.
    for i in range(2000):
        tier.read(("tiny", i), 4096)
    assert all(tier.read(key) for key in hot)


def test_a_new_key_gets_a_probation_window_of_about_a_tenth_of_the_tier():
    tier = TierModel(S3FifoPolicy(CAPACITY), CAPACITY)
    scan(tier, "warmup", 150)
    for _ in range(3):  # promotions leave the small queue below its share: it must refill, not stay shrunk
        for i in range(5):
            tier.read(("dimension", i))
    newcomer = ("newcomer", 0)

    tier.read(newcomer)
    scan(tier, "between", 5)  # half the small queue's 10 pages
    assert tier.read(newcomer)
    assert tier.read(newcomer)
    scan(tier, "backfill", 300)

    assert tier.read(newcomer)
