"""Fixtures for the cache's component tests: the production ``S3UnderStore`` on the emulator, its calls counted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cache_service.under_store.s3 import S3UnderStore
from tests.cache_service.counting_under_store import CountingUnderStore, emulator_under_store


@pytest.fixture(scope="module")
def s3_under_store(s3_emulator) -> Iterator[S3UnderStore]:
    """The under store on the emulator, one per test module (its connection pool outlives a test)."""
    store = emulator_under_store(s3_emulator.endpoint_url)
    yield store
    store.close()


@pytest.fixture
def under(s3_under_store) -> CountingUnderStore:
    """``s3_under_store`` with its calls counted afresh for each test."""
    return CountingUnderStore(s3_under_store)
