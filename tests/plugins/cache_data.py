"""The data the Airflow tests warm up, purge and lose: two days of events in a bucket, and paths into them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from infra.cache_process import CacheProcess
from infra.s3_emulator import S3Emulator
from infra.toml_writer import merge
from tests.support.admin import AdminClient
from tests.support.caches import warehouse_cache

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PAGE = 64 * 1024
DAY = "2026-11-23"
DAY_PATH = f"/warehouse/events/dt={DAY}"
DAY_BYTES = 2 * (3 * PAGE + 100)  # two files of 3 pages and a bit
OLD_DAY_PATH = "/warehouse/events/dt=2026-11-22"
OLD_DAY_BYTES = 2 * (2 * PAGE)
VANISHING_PATH = "/warehouse/vanishing/part-0.parquet"


EVENTS: dict[str, bytes] = {
    **{
        f"warehouse/events/dt={day}/part-{part}.parquet": bytes([part]) * size
        for day, size in ((DAY, 3 * PAGE + 100), ("2026-11-22", 2 * PAGE))
        for part in range(2)
    },
    VANISHING_PATH.lstrip("/"): b"v" * PAGE,
}
"""Both days under ``warehouse/events/dt=.../part-N.parquet``, and ``VANISHING_PATH`` (one page): key -> bytes."""


def put_events(s3_client: S3Client, bucket: str) -> None:
    """Put ``EVENTS`` into ``bucket``."""
    for key, body in EVENTS.items():
        s3_client.put_object(Bucket=bucket, Key=key, Body=body)


@contextmanager
def events_cache(
    s3_emulator: S3Emulator, root: Path, overrides: dict[str, Any] | None = None, **options: Any
) -> Iterator[CacheProcess]:
    """A started cache (64 KiB pages, then ``overrides``) mounting ``/warehouse`` on a new bucket of ``EVENTS``.

    ``options`` go to ``CacheProcess`` (capacities); the cache's ``bucket`` attribute names the bucket. Both go at
    exit.
    """
    config = merge({"store": {"page_size": "64KiB"}}, overrides or {})
    with warehouse_cache(s3_emulator, root, EVENTS, config, **options) as cache:
        yield cache


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
