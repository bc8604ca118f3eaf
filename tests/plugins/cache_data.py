"""The data the Airflow tests warm up, purge and lose: two days of events in a bucket, and paths into them."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from infra.cache_process import CacheProcess
from tests.support.admin import AdminClient

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PAGE = 64 * 1024
DAY = "2026-11-23"
DAY_PATH = f"/warehouse/events/dt={DAY}"
DAY_BYTES = 2 * (3 * PAGE + 100)  # two files of 3 pages and a bit
OLD_DAY_PATH = "/warehouse/events/dt=2026-11-22"
OLD_DAY_BYTES = 2 * (2 * PAGE)
VANISHING_PATH = "/warehouse/vanishing/part-0.parquet"


def put_events(s3_client: S3Client, bucket: str) -> None:
    """Both days under ``warehouse/events/dt=.../part-N.parquet``, and ``VANISHING_PATH`` (one page)."""
    for day, size in ((DAY, 3 * PAGE + 100), ("2026-11-22", 2 * PAGE)):
        for part in range(2):
            key = f"warehouse/events/dt={day}/part-{part}.parquet"
            s3_client.put_object(Bucket=bucket, Key=key, Body=bytes([part]) * size)
    s3_client.put_object(Bucket=bucket, Key=VANISHING_PATH.lstrip("/"), Body=b"v" * PAGE)


def remove_behind_the_cache(cache: CacheProcess, s3_client: S3Client, bucket: str, path: str = VANISHING_PATH) -> None:
    """Make the cache know ``path``, then delete its object from S3: a load of it is accepted, then fails."""
    admin(cache).ok("GET", f"stat?path={quote(path)}")
    s3_client.delete_object(Bucket=bucket, Key=path.lstrip("/"))


def admin(cache: CacheProcess) -> AdminClient:
    """The tests' own admin client for ``cache``: checks that do not go through the code under test."""
    return AdminClient(cache.webhdfs_url, cache.token)


def cached_bytes(cache: CacheProcess, path: str) -> int:
    """How many bytes of ``path`` the cache holds, as its admin API says."""
    return int(admin(cache).ok("GET", f"stat?path={quote(path)}")["cached_bytes"])
