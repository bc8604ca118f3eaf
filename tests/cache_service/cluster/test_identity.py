"""A worker's identity is made once and kept in its disk tier."""

from __future__ import annotations

from pathlib import Path

import pytest

from cache_service.cluster.identity import is_worker_id, worker_id


def test_an_identity_is_made_once_and_read_back_after_a_restart(tmp_path: Path) -> None:
    first = worker_id(tmp_path / "state")
    assert is_worker_id(first)
    assert worker_id(tmp_path / "state") == first
    assert worker_id(tmp_path / "other") != first


def test_a_damaged_identity_file_is_refused_not_replaced(tmp_path: Path) -> None:
    (tmp_path / "worker_id").write_text("not-an-id\n")
    with pytest.raises(ValueError, match="not a worker id"):
        worker_id(tmp_path)
    assert (tmp_path / "worker_id").read_text() == "not-an-id\n"
