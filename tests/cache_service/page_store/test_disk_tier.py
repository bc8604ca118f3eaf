"""The disk tier beyond the shared contract: its layout, recovery after a restart, and clean-up of crash debris."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from cache_service.page_store.identity import ObjectIdentity, checksum
from cache_service.page_store.tiers import DiskTier, RecoveredPage

CAPACITY = 1024**2
FIRST = ObjectIdentity("lake", "warehouse/t/part-0", "etag-1", 250)
SECOND = ObjectIdentity("lake", "warehouse/t/part-1", "etag-7", 40)


def fill(tier: DiskTier) -> dict[tuple[ObjectIdentity, int], bytes]:
    pages = {(FIRST, 0): b"a" * 100, (FIRST, 1): b"b" * 100, (FIRST, 2): b"c" * 50, (SECOND, 0): b"d" * 40}
    for (owner, index), data in pages.items():
        tier.write(owner, index, data, checksum(data))
    return pages


def test_pages_are_files_named_by_index_and_checksum_beside_the_objects_meta(tmp_path):
    tier = DiskTier(tmp_path, CAPACITY)
    tier.write(FIRST, 3, b"page", checksum(b"page"))

    directory = tmp_path / "pages" / FIRST.file_id[:2] / FIRST.file_id
    assert tier.path_of((FIRST.file_id, 3)) == str(directory / f"3.{checksum(b'page'):016x}")
    assert json.loads((directory / "meta.json").read_text()) == {
        "bucket": "lake",
        "key": "warehouse/t/part-0",
        "etag": "etag-1",
        "size": 250,
    }


def test_a_new_tier_over_the_same_directory_recovers_every_page_with_its_checksum(tmp_path):
    pages = fill(DiskTier(tmp_path, CAPACITY))

    reopened = DiskTier(tmp_path, CAPACITY)
    assert reopened.used_bytes == 0
    recovered = set(reopened.recover())

    assert recovered == {
        RecoveredPage(owner=owner, index=index, size=len(data), checksum=checksum(data))
        for (owner, index), data in pages.items()
    }
    assert reopened.used_bytes == sum(len(data) for data in pages.values())
    for (owner, index), data in pages.items():
        assert reopened.read((owner.file_id, index)) == data


def test_recovered_pages_can_be_removed_and_replaced(tmp_path):
    fill(DiskTier(tmp_path, CAPACITY))
    reopened = DiskTier(tmp_path, CAPACITY)
    list(reopened.recover())

    assert reopened.remove((SECOND.file_id, 0)) == 40
    reopened.write(FIRST, 1, b"new", checksum(b"new"))

    assert sorted((p.owner.key, p.index, p.size) for p in DiskTier(tmp_path, CAPACITY).recover()) == [
        ("warehouse/t/part-0", 0, 100),
        ("warehouse/t/part-0", 1, 3),
        ("warehouse/t/part-0", 2, 50),
    ]


def test_recovery_drops_temporary_files_left_by_a_crash(tmp_path):
    fill(DiskTier(tmp_path, CAPACITY))
    directory = tmp_path / "pages" / FIRST.file_id[:2] / FIRST.file_id
    (directory / ".3.tmp").write_bytes(b"half a page")
    (directory / ".meta.json.tmp").write_text("{")
    (directory / "4.not-a-checksum").write_bytes(b"junk")

    recovered = list(DiskTier(tmp_path, CAPACITY).recover())

    assert sorted(p.index for p in recovered if p.owner == FIRST) == [0, 1, 2]
    assert sorted(entry.name for entry in directory.iterdir()) == sorted(
        ["meta.json", *(f"{i}.{checksum(d):016x}" for i, d in enumerate([b"a" * 100, b"b" * 100, b"c" * 50]))]
    )


def test_recovery_drops_directories_without_readable_meta(tmp_path):
    fill(DiskTier(tmp_path, CAPACITY))
    first_dir = tmp_path / "pages" / FIRST.file_id[:2] / FIRST.file_id
    (first_dir / "meta.json").unlink()
    orphan = tmp_path / "pages" / "ff" / ("f" * 32)
    orphan.mkdir(parents=True)
    (orphan / f"0.{checksum(b'x'):016x}").write_bytes(b"x")
    garbled = tmp_path / "pages" / "ee" / ("e" * 32)
    garbled.mkdir(parents=True)
    (garbled / "meta.json").write_text("not json")

    tier = DiskTier(tmp_path, CAPACITY)
    recovered = list(tier.recover())

    assert [p.owner for p in recovered] == [SECOND]
    assert not first_dir.exists()
    assert not orphan.exists()
    assert not garbled.exists()
    assert tier.used_bytes == 40


def test_recovery_drops_a_directory_whose_meta_names_another_object(tmp_path):
    fill(DiskTier(tmp_path, CAPACITY))
    second_dir = tmp_path / "pages" / SECOND.file_id[:2] / SECOND.file_id
    meta = json.loads((second_dir / "meta.json").read_text())
    (second_dir / "meta.json").write_text(json.dumps(meta | {"etag": "etag-8"}))

    recovered = list(DiskTier(tmp_path, CAPACITY).recover())

    assert {p.owner for p in recovered} == {FIRST}
    assert not second_dir.exists()


def test_removing_an_objects_last_page_removes_its_directory(tmp_path):
    tier = DiskTier(tmp_path, CAPACITY)
    fill(tier)

    tier.remove((SECOND.file_id, 0))

    assert not (tmp_path / "pages" / SECOND.file_id[:2] / SECOND.file_id).exists()
    assert {p.owner for p in DiskTier(tmp_path, CAPACITY).recover()} == {FIRST}


def test_rekeyed_pages_are_recovered_under_their_new_identity(tmp_path):
    tier = DiskTier(tmp_path, CAPACITY)
    pages = fill(tier)
    published = ObjectIdentity("lake", "warehouse/published/part-0", "etag-1", 250)

    tier.rekey(FIRST, published)

    recovered = {(p.owner, p.index): p.checksum for p in DiskTier(tmp_path, CAPACITY).recover()}
    assert recovered == {
        (published, 0): checksum(pages[(FIRST, 0)]),
        (published, 1): checksum(pages[(FIRST, 1)]),
        (published, 2): checksum(pages[(FIRST, 2)]),
        (SECOND, 0): checksum(pages[(SECOND, 0)]),
    }


def test_pages_of_one_new_object_written_from_several_threads_are_all_stored(tmp_path):
    # The page store writes the pages a readahead fetched in parallel, from its I/O threads. Whether two first
    # writes of one object collide depends on scheduling, so many objects are written: a correct tier never fails.
    tier = DiskTier(tmp_path, CAPACITY)
    owners = [ObjectIdentity("lake", f"t/part-{i}", "etag-1", 8 * 10) for i in range(200)]
    failures: list[str] = []

    def write(owner: ObjectIdentity, index: int) -> None:
        data = bytes([index]) * 10
        try:
            tier.write(owner, index, data, checksum(data))
        except OSError as exc:
            failures.append(f"{owner.key} page {index}: {exc!r}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda job: write(*job), [(owner, index) for owner in owners for index in range(8)]))

    assert failures == []
    assert tier.used_bytes == 200 * 8 * 10
    assert len(list(DiskTier(tmp_path, CAPACITY).recover())) == 200 * 8
