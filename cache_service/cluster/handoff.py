"""Warm hand-off on a read: before the owner of a block reads a missing page from S3, it asks the workers that held
the block before it (``ClusterView.handoff_sources``) for the page, peer to peer.

When a worker joins, the blocks it now owns were its first successor's a moment ago; when a worker drains, its
blocks' new owners find them still on it until it has handed them over and left. Either way a page that is hot
somewhere in the cluster is read from that worker, not from S3: scale-out and scale-in keep the cache warm. A source
answers only with pages it holds (``cached=only``); one that lacks them, fails or is suspect costs one quick answer,
and the page then comes from S3 as it would have.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from cache_service.cluster.member import Member
from cache_service.cluster.peers import NotCachedError, PageRange, PeerError, PeerReader
from cache_service.cluster.view import ClusterView
from cache_service.errors import StaleObjectError
from cache_service.page_store import ObjectIdentity
from cache_service.page_store.identity import PageKey

log = logging.getLogger(__name__)


class PageHolder(Protocol):
    """What hand-off needs of the page store."""

    @property
    def page_size(self) -> int:
        """Bytes per page."""
        ...

    def has_page(self, owner: ObjectIdentity, index: int) -> bool:
        """True when page ``index`` of ``owner`` is cached here."""
        ...

    async def admit(self, owner: ObjectIdentity, index: int, data: bytes, *, promote: bool) -> bool:
        """Cache page ``index`` of ``owner``; False when there is no room."""
        ...


@dataclass
class HandOff:
    """Fills the pages a read is about to miss from the workers that held them before; see the module docstring."""

    view: Callable[[], ClusterView]
    peers: PeerReader
    pages: PageHolder
    usable: Callable[[list[Member]], list[Member]] = lambda members: members
    """Orders the sources and drops the ones known to be down (the router's suspects)."""
    bytes_received: int = 0
    _inflight: dict[PageKey, asyncio.Future[None]] = field(default_factory=dict)

    async def fill(self, obj: ObjectIdentity, start: int, end: int) -> None:
        """Bring the missing pages of bytes ``[start, end)`` of ``obj`` from the workers that held them, where one
        does; the pages no source holds are left for the caller to read from S3. Never raises for a source's
        failure."""
        view = self.view()
        if len(view.members) <= 1 or end <= start:
            return
        size = self.pages.page_size
        first, last = start // size, (end - 1) // size
        loop = asyncio.get_running_loop()
        waits: list[asyncio.Future[None]] = []
        claimed: dict[PageKey, asyncio.Future[None]] = {}
        run: list[int] = []
        runs: list[list[int]] = []
        for index in range(first, last + 1):
            pending = self._inflight.get((obj.file_id, index))
            if pending is not None:
                waits.append(pending)
            elif not self.pages.has_page(obj, index):
                # Claimed before any wait, so a read arriving meanwhile waits for this fetch instead of repeating it.
                self._inflight[(obj.file_id, index)] = claimed[(obj.file_id, index)] = loop.create_future()
                block = index * size // view.block_size
                if run and (run[-1] != index - 1 or run[-1] * size // view.block_size != block):
                    runs.append(run)
                    run = []
                run.append(index)
        if run:
            runs.append(run)
        try:
            if runs:
                await asyncio.gather(*(self._fetch(view, obj, r) for r in runs))
        finally:  # whatever happened, the pages claimed here are no longer in flight
            for key, future in claimed.items():
                if self._inflight.get(key) is future:
                    del self._inflight[key]
                if not future.done():
                    future.set_result(None)
        if waits:
            await asyncio.wait(waits)

    async def _fetch(self, view: ClusterView, obj: ObjectIdentity, run: list[int]) -> None:
        sources = view.handoff_sources(obj.bucket, obj.key, run[0] * self.pages.page_size // view.block_size)
        for member in self.usable(sources):
            if await self._take(member, obj, run):
                return

    async def _take(self, member: Member, obj: ObjectIdentity, run: list[int]) -> bool:
        size = self.pages.page_size
        start, end = obj.page_bounds(run[0], size)[0], obj.page_bounds(run[-1], size)[1]
        try:
            data = bytearray()
            async for chunk in self.peers.read(member.webhdfs_url, PageRange(obj, start, end, cached_only=True)):
                data += chunk
        except (NotCachedError, PeerError, StaleObjectError, FileNotFoundError) as exc:
            log.debug("a hand-off source lacks a block's pages", extra={"worker": member.id, "error": str(exc)})
            return False
        view = memoryview(data)
        for index in run:
            page_start, page_end = obj.page_bounds(index, size)
            await self.pages.admit(obj, index, bytes(view[page_start - start : page_end - start]), promote=False)
        self.bytes_received += end - start
        return True
