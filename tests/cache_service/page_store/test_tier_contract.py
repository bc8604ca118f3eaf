"""The contract every storage tier meets; each test runs once per tier (memory, disk)."""

from __future__ import annotations

import pytest

from cache_service.page_store.identity import ObjectIdentity, checksum
from cache_service.page_store.tiers import DiskTier, MemoryTier

CAPACITY = 1024**2
OBJECT = ObjectIdentity("lake", "warehouse/t/part-0", "etag-1", 300)
OTHER = ObjectIdentity("lake", "warehouse/t/part-1", "etag-1", 300)


@pytest.fixture(params=["memory", "disk"])
def tier(request, tmp_path):
    if request.param == "memory":
        return MemoryTier(CAPACITY)
    return DiskTier(tmp_path / "disk", CAPACITY)


def put(tier, owner: ObjectIdentity, index: int, data: bytes) -> None:
    tier.write(owner, index, data, checksum(data))


def page_bytes(tier, owner: ObjectIdentity, index: int, start: int = 0, end: int | None = None) -> bytes:
    return bytes(tier.read((owner.file_id, index), start, end))


def test_tier_names_its_medium_and_capacity(tier):
    assert tier.medium in ("memory", "disk")
    assert tier.capacity == CAPACITY
    assert tier.used_bytes == 0


def test_a_written_page_reads_back_whole(tier):
    put(tier, OBJECT, 0, b"page zero")
    put(tier, OBJECT, 1, b"page one")

    assert page_bytes(tier, OBJECT, 0) == b"page zero"
    assert page_bytes(tier, OBJECT, 1) == b"page one"


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [(0, 4, b"0123"), (3, 7, b"3456"), (8, None, b"89"), (5, 5, b""), (6, 100, b"6789"), (0, None, b"0123456789")],
)
def test_a_slice_of_a_page_reads_exactly_those_bytes(tier, start, end, expected):
    put(tier, OBJECT, 2, b"0123456789")

    assert page_bytes(tier, OBJECT, 2, start, end) == expected


def test_reading_a_page_not_held_is_a_key_error(tier):
    put(tier, OBJECT, 0, b"x")

    with pytest.raises(KeyError):
        tier.read((OBJECT.file_id, 1))
    with pytest.raises(KeyError):
        tier.read((OTHER.file_id, 0))


def test_used_bytes_is_the_sum_of_the_pages_held(tier):
    put(tier, OBJECT, 0, b"a" * 100)
    put(tier, OBJECT, 1, b"b" * 100)
    put(tier, OTHER, 0, b"c" * 42)

    assert tier.used_bytes == 242


def test_remove_frees_the_pages_bytes_once(tier):
    put(tier, OBJECT, 0, b"a" * 100)
    put(tier, OBJECT, 1, b"b" * 60)

    assert tier.remove((OBJECT.file_id, 1)) == 60
    assert tier.remove((OBJECT.file_id, 1)) == 0
    assert tier.used_bytes == 100
    with pytest.raises(KeyError):
        tier.read((OBJECT.file_id, 1))
    assert page_bytes(tier, OBJECT, 0) == b"a" * 100


def test_removing_the_last_page_of_an_object_leaves_the_tier_empty_and_usable(tier):
    put(tier, OBJECT, 0, b"a" * 10)
    tier.remove((OBJECT.file_id, 0))

    assert tier.used_bytes == 0
    put(tier, OBJECT, 0, b"again")
    assert page_bytes(tier, OBJECT, 0) == b"again"
    assert tier.used_bytes == 5


def test_writing_a_held_page_again_replaces_it(tier):
    # The object's only page held: the simplest replacement there is.
    put(tier, OBJECT, 0, b"old bytes, longer")
    put(tier, OBJECT, 0, b"new bytes")

    assert page_bytes(tier, OBJECT, 0) == b"new bytes"
    assert tier.used_bytes == len(b"new bytes")


def test_writing_a_held_page_again_replaces_it_while_other_pages_stay(tier):
    put(tier, OBJECT, 0, b"old bytes, longer")
    put(tier, OBJECT, 1, b"neighbour")
    put(tier, OBJECT, 0, b"new bytes")

    assert page_bytes(tier, OBJECT, 0) == b"new bytes"
    assert page_bytes(tier, OBJECT, 1) == b"neighbour"
    assert tier.used_bytes == len(b"new bytes") + len(b"neighbour")


def test_rekey_gives_every_page_to_the_new_identity(tier):
    renamed = ObjectIdentity("lake", "warehouse/published/part-0", "etag-1", 300)
    put(tier, OBJECT, 0, b"a" * 100)
    put(tier, OBJECT, 1, b"b" * 100)
    put(tier, OTHER, 0, b"untouched")

    tier.rekey(OBJECT, renamed)

    assert page_bytes(tier, renamed, 0) == b"a" * 100
    assert page_bytes(tier, renamed, 1) == b"b" * 100
    for index in (0, 1):
        with pytest.raises(KeyError):
            tier.read((OBJECT.file_id, index))
    assert page_bytes(tier, OTHER, 0) == b"untouched"
    assert tier.used_bytes == 200 + len(b"untouched")


def test_rekey_of_an_identity_with_no_pages_changes_nothing(tier):
    put(tier, OTHER, 0, b"untouched")

    tier.rekey(OBJECT, ObjectIdentity("lake", "elsewhere", "etag-1", 300))

    assert page_bytes(tier, OTHER, 0) == b"untouched"
    assert tier.used_bytes == len(b"untouched")


def test_rekey_replaces_whatever_the_new_identity_held(tier):
    # The new identity's earlier pages are another version of those bytes: none of them may survive the rekey,
    # and their bytes no longer count.
    target = ObjectIdentity("lake", "warehouse/published/part-0", "etag-1", 300)
    put(tier, target, 0, b"stale" * 20)
    put(tier, target, 1, b"stale page one")
    put(tier, OBJECT, 0, b"fresh" * 10)

    tier.rekey(OBJECT, target)

    assert page_bytes(tier, target, 0) == b"fresh" * 10
    with pytest.raises(KeyError):
        tier.read((target.file_id, 1))
    assert tier.used_bytes == 50
