"""Warmup: load files' pages from S3 into the cache ahead of their readers, skipping what is already cached."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator

from cache_service.jobs.model import FileError, Job
from cache_service.namespace.filesystem import FileStatus
from cache_service.page_store import ObjectIdentity, PageStore


class BandwidthLimit:
    """A token bucket over bytes per second (None: unlimited), shared by a job's parallel fetches."""

    def __init__(self, bytes_per_second: int | None) -> None:
        self._rate = bytes_per_second
        self._allowance = float(bytes_per_second or 0)
        self._last = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self, n: int) -> None:
        """Wait until ``n`` more bytes fit within the limit."""
        if not self._rate:
            return
        async with self._lock:
            now = time.monotonic()
            self._allowance = min(float(self._rate), self._allowance + (now - self._last) * self._rate)
            self._last = now
            self._allowance -= n
            if self._allowance < 0:
                await asyncio.sleep(-self._allowance / self._rate)


async def load_files(
    job: Job,
    files: list[FileStatus],
    pages: PageStore,
    *,
    parallelism: int,
    bandwidth: int | None,
    promote: bool,
) -> None:
    """Bring every page of ``files`` into ``pages``; progress and per-file errors go to ``job``."""
    progress = job.progress
    progress.files_total = len(files)
    progress.bytes_total = sum(f.length for f in files)
    slots = asyncio.Semaphore(max(1, parallelism))
    limit = BandwidthLimit(bandwidth)

    async def load_page(owner: ObjectIdentity, index: int) -> None:
        start, end = owner.page_bounds(index, pages.page_size)
        if pages.has_page(owner, index):
            progress.bytes_skipped += end - start
        else:
            async with slots:
                await limit.take(end - start)
                await pages.fetch(owner, index, promote=promote)
            progress.bytes_from_s3 += end - start
        progress.bytes_done += end - start

    async def load_file(status: FileStatus) -> None:
        owner = status.object
        if owner is None:  # staged: its bytes are only in the cache already
            progress.bytes_skipped += status.length
            progress.bytes_done += status.length
        else:
            try:
                await asyncio.gather(*(load_page(owner, i) for i in range(owner.page_count(pages.page_size))))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                job.errors.append(FileError(path=status.path, error=f"{type(exc).__name__}: {exc}"))
        progress.files_done += 1
        job.update_rate(time.time())

    # A few files at a time keeps the page-level parallelism busy without creating a task per page up front.
    pending = iter(files)
    workers = [asyncio.create_task(_drain(pending, load_file)) for _ in range(max(1, min(parallelism, len(files))))]
    try:
        await asyncio.gather(*workers)
    finally:
        for worker in workers:
            worker.cancel()


async def _drain(files: Iterator[FileStatus], load_file: Callable[[FileStatus], Awaitable[None]]) -> None:
    for status in files:
        await load_file(status)
