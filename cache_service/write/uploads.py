"""Everything that changes S3: write-through uploads, publishes, server-side moves and deletes.

Each change also updates the status cache and the page store, so the cache never serves what S3 no longer holds
and never refetches bytes it already has (an upload's pages are cached from the local file; a move re-keys them).
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import TypeVar

from cache_service.metadata import StatusCache
from cache_service.metrics import CacheMetrics
from cache_service.page_store import ObjectIdentity, PageStore
from cache_service.under_store import ObjectStatus, UnderStore

T = TypeVar("T")


class Uploader:
    """Changes to S3 made on behalf of clients, at most ``parallelism`` S3 calls at once."""

    def __init__(
        self,
        under: UnderStore,
        status: StatusCache,
        pages: PageStore,
        spool_dir: Path,
        executor: Executor,
        metrics: CacheMetrics,
        parallelism: int = 8,
    ) -> None:
        self._under = under
        self._status = status
        self._pages = pages
        self._spool = spool_dir
        self._executor = executor
        self._metrics = metrics
        self._slots = asyncio.Semaphore(parallelism)
        self._counter = itertools.count()
        spool_dir.mkdir(parents=True, exist_ok=True)
        for leftover in spool_dir.iterdir():
            leftover.unlink()  # never acknowledged: a write is acknowledged only after its upload

    def spool_file(self) -> Path:
        """A fresh local file to receive a write-through body before it is uploaded."""
        return self._spool / f"{os.getpid()}-{next(self._counter)}"

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        async with self._slots:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def upload(self, bucket: str, key: str, local: Path) -> ObjectStatus:
        """Upload ``local`` as ``bucket``/``key``; returns once S3 holds it, with its pages cached from ``local``."""
        obj = await self._call(self._under.put_file, bucket, key, local)
        self._metrics.s3_bytes_written.inc(obj.size)
        self._metrics.publishes.inc()
        self._status.record(obj)
        identity = ObjectIdentity(obj.bucket, obj.key, obj.etag, obj.size)
        self._pages.drop_object(bucket, key, keep=identity.file_id, reason="overwritten")
        await self._pages.ingest(identity, local)
        return obj

    async def mark_directory(self, bucket: str, prefix: str) -> None:
        """Create the zero-byte marker that makes an empty directory visible in S3."""
        marker = await self._call(self._under.put_bytes, bucket, prefix, b"")
        self._status.record(marker)

    async def move(self, source: ObjectIdentity, dst_key: str) -> ObjectStatus:
        """Copy ``source`` to ``dst_key`` in S3, re-key its cached pages, then delete the source."""
        obj = await self._call(self._under.copy, source.bucket, source.key, dst_key)
        self._pages.drop_object(source.bucket, dst_key, reason="overwritten")
        self._pages.rekey(source, ObjectIdentity(obj.bucket, obj.key, obj.etag, obj.size))
        await self._call(self._under.delete, source.bucket, [source.key])
        self._status.forget(source.bucket, source.key)
        self._status.record(obj)
        return obj

    async def delete(self, bucket: str, keys: list[str]) -> None:
        """Delete ``keys`` from S3 and drop their cached pages and metadata."""
        await self._call(self._under.delete, bucket, keys)
        for key in keys:
            self._pages.drop_object(bucket, key, reason="deleted")
            self._status.forget(bucket, key)
