"""Everything that changes S3: write-through uploads, publishes, server-side moves and deletes.

Each change also updates the status cache and the page store, so the cache never serves what S3 no longer holds
and never refetches bytes it already has (an upload's pages are cached from the local file; a move re-keys them).
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from cache_service.metadata import StatusCache
from cache_service.metrics import CacheMetrics
from cache_service.page_store import ObjectIdentity, PageStore
from cache_service.page_store.store import Placement
from cache_service.under_store import ObjectMetadata, ObjectStatus, UnderStore

T = TypeVar("T")


@dataclass(eq=False)
class Uploader:
    """Changes to S3 made on behalf of clients, at most ``parallelism`` S3 calls at once.

    Write-through bodies wait in ``spool_dir``; what a crash left there was never acknowledged and goes at start.
    """

    under: UnderStore
    status: StatusCache
    pages: PageStore
    spool_dir: Path
    executor: Executor
    metrics: CacheMetrics
    place: Placement | None = None
    """Where a written page goes if not here: its block's owner, in a cluster (``ClusterNode.place``)."""
    parallelism: int = 8
    _slots: asyncio.Semaphore = field(init=False)
    _counter: Iterator[int] = field(init=False, default_factory=itertools.count)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.parallelism)
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.spool_dir.iterdir():
            leftover.unlink()  # never acknowledged: a write is acknowledged only after its upload

    def spool_file(self) -> Path:
        """A fresh local file to receive a write-through body before it is uploaded."""
        return self.spool_dir / f"{os.getpid()}-{next(self._counter)}"

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        async with self._slots:
            return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def upload(self, bucket: str, key: str, local: Path, metadata: ObjectMetadata | None = None) -> ObjectStatus:
        """Upload ``local`` as ``bucket``/``key`` with ``metadata`` (None: none); returns once S3 holds it, with its
        pages cached from ``local``."""
        obj = await self._call(self.under.put_file, bucket, key, local, metadata)
        self.metrics.s3_bytes_written.inc(obj.size)
        self.metrics.publishes.inc()
        self.status.record(obj)
        identity = ObjectIdentity(obj.bucket, obj.key, obj.etag, obj.size)
        self.pages.drop_object(bucket, key, keep=identity.file_id, reason="overwritten")
        await self.pages.ingest(identity, local, place=self.place)
        return obj

    async def mark_directory(self, bucket: str, prefix: str) -> None:
        """Create the zero-byte marker that makes an empty directory visible in S3."""
        marker = await self._call(self.under.put_bytes, bucket, prefix, b"")
        self.status.record(marker)

    async def move(self, source: ObjectIdentity, dst_key: str) -> ObjectStatus:
        """Copy ``source`` to ``dst_key`` in S3, re-key its cached pages, then delete the source."""
        obj = await self._call(self.under.copy, source.bucket, source.key, dst_key)
        self.pages.drop_object(source.bucket, dst_key, reason="overwritten")
        self.pages.rekey(source, ObjectIdentity(obj.bucket, obj.key, obj.etag, obj.size))
        await self._call(self.under.delete, source.bucket, [source.key])
        self.status.forget(source.bucket, source.key)
        self.status.record(obj)
        return obj

    async def delete(self, bucket: str, keys: list[str]) -> None:
        """Delete ``keys`` from S3 and drop their cached pages and metadata."""
        await self._call(self.under.delete, bucket, keys)
        for key in keys:
            self.pages.drop_object(bucket, key, reason="deleted")
            self.status.forget(bucket, key)
