"""Disk faults (``bench.reliability.disk_faults``) at the quick budget, on one worker and on three: on full tmpfs
disks reads come from S3 and writes answer a RetriableException that a retry gets past, nothing acknowledged is lost,
and rotten pages are never served."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bench.reliability.campaign import QUICK
from bench.reliability.disk_faults import fill, flip_bit, plans, run, small_filesystem


def test_a_small_filesystem_fills_to_its_last_byte_and_goes_away(tmp_path: Path) -> None:
    mount = tmp_path / "disk"
    with small_filesystem(mount, 2 * 2**20):
        written = fill(mount / "filler")
        with pytest.raises(OSError, match="No space left"):
            (mount / "more").write_bytes(b"x")
    assert 2 * 2**20 - 64 * 1024 <= written <= 2 * 2**20
    assert not (mount / "filler").exists()  # unmounted: the folder underneath is empty


def test_flipping_a_bit_changes_exactly_one_bit(tmp_path: Path) -> None:
    page = tmp_path / "0.00000000deadbeef"
    page.write_bytes(bytes(4096))

    flip_bit(page, random.Random(3))

    assert sum(bin(byte).count("1") for byte in page.read_bytes()) == 1


@pytest.mark.parametrize("plan", plans(QUICK), ids=lambda plan: plan.label.replace(" ", "_"))
def test_a_full_disk_and_rotten_pages_never_mislead_a_client_nor_lose_a_write(plan, tmp_path: Path) -> None:
    result = run(plan, tmp_path)

    assert result.held, result.violations
    counts = result.counts
    assert counts["full_disk_reads_from_s3_ok"] == counts["full_disk_reads"] == plan.objects
    assert counts["full_disk_writes_refused_retriable"] == 3  # staged CREATE, write-through CREATE, APPEND
    assert counts["staged_acknowledged"] == plan.staged
    assert counts["acknowledged_in_s3"] == counts["staged_files_intact_after"] >= plan.staged
    assert counts["pages_flipped"] == plan.flips
    caught, rotten = counts["corrupt_pages_counted_after_a_restart"], counts["pages_rotten_at_restart"]
    if plan.workers == 1:
        assert caught == rotten > 0
    else:  # reads reach only the pages of the blocks' owners (the module's docstring)
        assert 0 < caught <= rotten
