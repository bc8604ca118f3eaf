"""One cache worker and one bucket for the S3 API tests of this package; each test works under its own prefix."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from infra.cache_process import CacheProcess
from infra.s3_emulator import S3Emulator
from tests.cache_service.api.s3.support import s3_client
from tests.support.buckets import throwaway_bucket
from tests.support.caches import CacheFactory
from tests.support.webhdfs import WebHdfsClient

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@pytest.fixture(scope="package")
def s3_bucket(s3_emulator: S3Emulator) -> Iterator[str]:
    """A bucket whose ``warehouse/`` prefix is mounted at ``/warehouse``; the rest of it is outside every mount."""
    with throwaway_bucket(s3_emulator.client(), "s3api") as name:
        yield name


@pytest.fixture(scope="package")
def s3_cache(
    s3_emulator: S3Emulator, s3_bucket: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CacheProcess]:
    """A started cache worker with 64 KiB pages (several pages per small test object)."""
    factory = CacheFactory(tmp_path_factory.mktemp("s3api"), s3_emulator.endpoint_url)
    yield factory({"/warehouse": f"s3://{s3_bucket}/warehouse"}, {"store": {"page_size": "64KiB"}})
    factory.stop_all()


@pytest.fixture
def s3(s3_cache: CacheProcess) -> S3Client:
    """boto3 on the cache's S3 API, path-style."""
    return s3_client(s3_cache.s3_url)


@pytest.fixture
def s3_virtual(s3_cache: CacheProcess) -> S3Client:
    """boto3 on the cache's S3 API, virtual-host-style (``<bucket>.localhost:<port>``)."""
    return s3_client(s3_cache.s3_url, virtual=True)


@pytest.fixture
def hdfs(s3_cache: CacheProcess) -> WebHdfsClient:
    """WebHDFS on the same cache worker."""
    return WebHdfsClient(s3_cache.webhdfs_url)


@pytest.fixture
def prefix() -> str:
    """A fresh key prefix inside the mount (``warehouse/<random>``)."""
    return f"warehouse/{uuid.uuid4().hex[:12]}"
