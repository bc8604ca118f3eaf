"""What the page store reads from S3: a missing page is fetched once, however many callers ask for it.

Two shapes of fetch share one table of pages in flight:
- ``page``: one page per ranged GET, what a reader's miss (and its readahead) needs;
- ``run``: several consecutive pages in one ranged GET, what a warmup needs (a GET on S3 pays tens of milliseconds
  to its first byte and a request fee, whatever its length). Each page is admitted and handed to its waiters as
  soon as its bytes are in: a run never holds more than a page (and one piece of the next) in memory.

While a page is in flight every caller gets the same future, whichever shape started it. A future's result is the
page's bytes, set once the page has been admitted (or refused for lack of room). Its exception is the fetch's:
``StaleObjectError`` when the object changed (or changed size) since its identity was read, ``FileNotFoundError``
when it is gone, ``UnderStoreUnavailableError`` when S3 cannot be reached.

Reads that keep nothing (``stream``: caching disabled, objects outside every mount) take one ranged GET too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Counter

from cache_service.errors import StaleObjectError
from cache_service.metrics import CacheMetrics
from cache_service.page_store.identity import ObjectIdentity, PageKey
from cache_service.under_store import UnderStore

log = logging.getLogger(__name__)

Pace = Callable[[int], Awaitable[None]]
"""Waits until the next ``n`` bytes may be read (a bandwidth limit); called before each page of a run is read."""


class Admit(Protocol):
    """Stores a fetched page (``PageStore.admit``); returns False when no tier had room."""

    def __call__(self, owner: ObjectIdentity, index: int, data: bytes, *, promote: bool) -> Awaitable[bool]: ...


@dataclass(frozen=True)
class FetchRun:
    """Pages ``pages`` of ``owner`` coming from one ranged GET: one future per page, in page order, and the task
    reading them (done once every page is settled)."""

    owner: ObjectIdentity
    pages: range
    futures: list[asyncio.Future[bytes]]
    task: asyncio.Future[None]


class S3Fetches:
    """The store's reads from S3: the pages in flight, keyed by page, and what every read cost."""

    def __init__(
        self,
        under: UnderStore,
        executor: Executor,
        metrics: CacheMetrics,
        *,
        page_size: int,
        admit: Admit,
        served: Counter,
    ) -> None:
        """Reads through ``under`` on ``executor`` of pages of ``page_size`` bytes that ``admit`` stores; ``served``
        counts the bytes that ``stream`` hands out."""
        self._under = under
        self._served = served
        self._executor = executor
        self._metrics = metrics
        self._page_size = page_size
        self._admit = admit
        self._pending: dict[PageKey, asyncio.Future[bytes]] = {}
        self.misses = 0
        """Pages fetched (or being fetched) from S3, and streamed reads."""

    def get(self, key: PageKey) -> asyncio.Future[bytes] | None:
        """The future of page ``key`` if it is in flight."""
        return self._pending.get(key)

    def __contains__(self, key: PageKey) -> bool:
        return key in self._pending

    def page(self, owner: ObjectIdentity, index: int, *, promote: bool) -> asyncio.Future[bytes]:
        """Page ``index`` of ``owner`` from S3 in a GET of its own, unless it is in flight already."""
        key = (owner.file_id, index)
        future = self._pending.get(key)
        if future is None:
            future = asyncio.ensure_future(self._fetch_page(owner, index, promote))
            self._claim(key, future)
        return future

    def run(
        self, owner: ObjectIdentity, pages: range, *, promote: bool, wanted: Callable[[int], bool], pace: Pace | None
    ) -> FetchRun:
        """Start one ranged GET for the pages of ``pages`` from its first on, up to the first that is in flight or
        not ``wanted`` (cached, say); returns them, possibly none when the first is already so."""
        stop = pages.start
        while stop < pages.stop and wanted(stop) and (owner.file_id, stop) not in self._pending:
            stop += 1
        claimed = range(pages.start, stop)
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[bytes]] = [loop.create_future() for _ in claimed]
        for index, future in zip(claimed, futures, strict=True):
            self._claim((owner.file_id, index), future)
        task = asyncio.ensure_future(self._fetch_run(owner, claimed, futures, promote, pace))
        return FetchRun(owner, claimed, futures, task)

    async def stream(self, owner: ObjectIdentity, offset: int, end: int) -> AsyncIterator[bytes]:
        """``[offset, end)`` of ``owner`` from one ranged GET, page-sized piece by piece, keeping nothing."""
        loop = asyncio.get_running_loop()
        self.misses += 1
        pieces = self._under.stream_range(owner.bucket, owner.key, offset, end, owner.etag, piece=self._page_size)
        try:
            while data := await loop.run_in_executor(self._executor, next, pieces, b""):
                self._metrics.s3_bytes_read.inc(len(data))
                self._served.inc(len(data))
                yield data
        finally:
            await loop.run_in_executor(self._executor, pieces.close)

    def _claim(self, key: PageKey, future: asyncio.Future[bytes]) -> None:
        self._pending[key] = future
        future.add_done_callback(lambda f: self._settled(key, f))

    def _settled(self, key: PageKey, future: asyncio.Future[bytes]) -> None:
        self._pending.pop(key, None)
        # Retrieving the exception here also keeps asyncio from reporting a failure nobody waited for.
        if not future.cancelled() and future.exception() is not None:
            log.debug("page store: fetch of %s failed: %s", key, future.exception())

    def _missed(self, data: bytes, expected: int, owner: ObjectIdentity) -> None:
        if len(data) != expected:
            raise StaleObjectError(f"s3://{owner.bucket}/{owner.key} changed size while being read")
        self.misses += 1
        self._metrics.page_misses.inc()
        self._metrics.s3_bytes_read.inc(len(data))

    async def _fetch_page(self, owner: ObjectIdentity, index: int, promote: bool) -> bytes:
        start, end = owner.page_bounds(index, self._page_size)
        data = await asyncio.get_running_loop().run_in_executor(
            self._executor, self._under.get_range, owner.bucket, owner.key, start, end, owner.etag
        )
        self._missed(data, end - start, owner)
        await self._admit(owner, index, data, promote=promote)
        return data

    async def _fetch_run(
        self,
        owner: ObjectIdentity,
        pages: range,
        futures: list[asyncio.Future[bytes]],
        promote: bool,
        pace: Pace | None,
    ) -> None:
        if not pages:
            return
        loop = asyncio.get_running_loop()
        sizes = [end - start for start, end in (owner.page_bounds(i, self._page_size) for i in pages)]
        start = owner.page_bounds(pages.start, self._page_size)[0]
        pieces = self._under.stream_range(
            owner.bucket, owner.key, start, start + sum(sizes), owner.etag, piece=self._page_size
        )
        cut = _cut_pages(pieces, sizes)
        settled = 0
        try:
            for index, size, future in zip(pages, sizes, futures, strict=True):
                if pace is not None:
                    await pace(size)
                # The GET itself is sent by the first ``next``: in the executor, as every S3 call.
                data = await loop.run_in_executor(self._executor, next, cut, b"")
                self._missed(data, size, owner)
                await self._admit(owner, index, data, promote=promote)
                future.set_result(data)
                settled += 1
        except BaseException as exc:
            for future in futures[settled:]:
                if isinstance(exc, asyncio.CancelledError):
                    future.cancel()
                else:
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            await loop.run_in_executor(self._executor, cut.close)


def _cut_pages(pieces: Generator[bytes], sizes: list[int]) -> Generator[bytes]:
    """The bytes of ``pieces`` cut into pages of ``sizes``; a short last page when the object ends first.

    Pieces are page-sized and page-aligned unless a broken-off body was resumed mid-page: only then are bytes
    joined and cut. Closing it closes ``pieces`` (and the GET's body).
    """
    left = b""
    try:
        for size in sizes:
            page = left
            while len(page) < size and (piece := next(pieces, b"")):
                page = page + piece if page else piece
            page, left = page[:size], page[size:]
            yield page
            if len(page) < size:
                return
    finally:
        pieces.close()
