"""Warmup: load files' pages from S3 into the cache ahead of their readers, skipping what is already cached.

A warmup reads S3 in runs: one ranged GET for up to ``RUN_BYTES`` of consecutive pages that are neither cached nor
in flight (``PageStore.fetch_run``), each page stored as its bytes arrive, with up to ``parallelism`` GETs at once
across the job's files. A page some other fetch has in flight (a reader's) is waited for and counted as skipped,
as a cached page is; a reader asking for a page of a run waits for the run.

Why 8 MiB a run: a GET on S3 pays some 30 ms to its first byte, and a request fee, whatever its length; at the
~90 MB/s one connection streams, 8 MiB take ~90 ms, so the wait is a quarter of a run instead of three quarters of
a 1 MiB page's GET, and it is the part size boto3 and the AWS CLI download in. Longer runs would gain little more,
cut a file into fewer parallel GETs, and keep a reader waiting on one of their pages longer. Under a bandwidth
limit a run holds at most a second of it, for the same reason.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Iterator

from cache_service.jobs.model import FileError, Job
from cache_service.namespace.filesystem import FileStatus
from cache_service.page_store import ObjectIdentity, PageStore

RUN_BYTES = 8 * 2**20
"""Bytes a warmup asks S3 for in one ranged GET (see the module's docstring)."""


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


def run_pages(page_size: int, bandwidth: int | None) -> int:
    """Pages a warmup asks for in one ranged GET: ``RUN_BYTES`` of them, at most a second of ``bandwidth``, at
    least one."""
    run = RUN_BYTES if bandwidth is None else min(RUN_BYTES, bandwidth)
    return max(1, run // page_size)


async def load_files(
    job: Job,
    files: list[FileStatus],
    pages: PageStore,
    *,
    parallelism: int,
    bandwidth: int | None,
    promote: bool,
    wanted: Callable[[ObjectIdentity, int], bool] | None = None,
) -> None:
    """Bring every page of ``files`` into ``pages`` (only the pages ``wanted`` says, if given: in a cluster, those
    of the blocks this worker owns), up to ``parallelism`` ranged GETs at once; progress and per-file errors go to
    ``job``."""
    progress = job.progress
    progress.files_total = len(files)
    if wanted is None:
        progress.bytes_total = sum(f.length for f in files)
    else:
        progress.bytes_total = sum(
            end - start
            for f in files
            if f.object is not None
            for i in range(f.object.page_count(pages.page_size))
            if wanted(f.object, i)
            for start, end in (f.object.page_bounds(i, pages.page_size),)
        )
    slots = asyncio.Semaphore(max(1, parallelism))
    limit = BandwidthLimit(bandwidth)
    per_run = run_pages(pages.page_size, bandwidth)

    def arrived(future: asyncio.Future[bytes], *, fetched: bool, failed: list[asyncio.Future[bytes]]) -> None:
        if future.cancelled() or future.exception() is not None:
            failed.append(future)
            return
        size = len(future.result())
        if fetched:
            progress.bytes_from_s3 += size
        else:
            progress.bytes_skipped += size
        progress.bytes_done += size

    async def load_object(owner: ObjectIdentity) -> None:
        count = owner.page_count(pages.page_size)
        waits: list[asyncio.Future[bytes]] = []
        failed: list[asyncio.Future[bytes]] = []  # once a page failed, the file has: start no more GETs for it
        index = 0
        while index < count and not failed:
            await slots.acquire()
            # Decided only now that a GET may start: pages cached or in flight by then need none of ours.
            while index < count:
                future = pages.in_flight(owner, index)
                if wanted is not None and not wanted(owner, index):
                    pass  # another worker's to load
                elif future is not None:
                    future.add_done_callback(functools.partial(arrived, fetched=False, failed=failed))
                    waits.append(future)
                elif pages.has_page(owner, index):
                    start, end = owner.page_bounds(index, pages.page_size)
                    progress.bytes_skipped += end - start
                    progress.bytes_done += end - start
                else:
                    break
                index += 1
            if index == count:
                slots.release()
                break
            stop = index + 1
            while stop < min(count, index + per_run) and (wanted is None or wanted(owner, stop)):
                stop += 1
            run = pages.fetch_run(owner, range(index, stop), promote=promote, pace=limit.take)
            run.task.add_done_callback(lambda _: slots.release())
            for future in run.futures:
                future.add_done_callback(functools.partial(arrived, fetched=True, failed=failed))
            waits += run.futures
            index = run.pages.stop
        # Waiting never cancels a fetch: a reader may be waiting for the same page.
        if waits:
            await asyncio.wait(waits)
        if failed:
            error = None if failed[0].cancelled() else failed[0].exception()
            raise error or RuntimeError("the fetch of a page was cancelled")

    async def load_file(status: FileStatus) -> None:
        owner = status.object
        if owner is None:  # staged: its bytes are only in the cache already
            if wanted is None:
                progress.bytes_skipped += status.length
                progress.bytes_done += status.length
        else:
            try:
                await load_object(owner)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                job.errors.append(FileError(path=status.path, error=f"{type(exc).__name__}: {exc}"))
        progress.files_done += 1
        job.update_rate(time.time())

    # A few files at a time keeps the GETs busy without planning every file up front.
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
