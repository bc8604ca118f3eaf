"""Where the bytes of an object version are read: from this worker's page store when it owns their block, else from
the owner, then from the owner's successors in ring order, and as a last resort from S3 directly (uncached here: a
page is cached by its block's owner only).

A peer that fails is suspect for a while (``suspect_for`` seconds): reads try it last, so one dead worker costs one
timeout, not one per read, until membership takes it out of the ring. A read that fails part way resumes at the
next byte from the next worker, so the caller sees one uninterrupted stream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from cache_service.cluster.member import Member
from cache_service.cluster.peers import PageRange, PeerError, PeerReader
from cache_service.cluster.view import ClusterView, Segment
from cache_service.page_store import ObjectIdentity

log = logging.getLogger(__name__)

Chunk = bytes | memoryview
LocalRead = Callable[[int, int], AsyncIterator[Chunk]]
"""Bytes ``count`` from ``offset`` of the object being read, from this worker's page store."""
DirectRead = Callable[[ObjectIdentity, int, int], AsyncIterator[bytes]]
"""Bytes ``[start, end)`` of an object version straight from S3, cached nowhere."""
Fill = Callable[[ObjectIdentity, int, int], Awaitable[None]]
"""Brings the missing pages of bytes ``[start, end)`` of an object version from the workers that held them before
this one owned them (``HandOff.fill``)."""


async def _nothing_to_fill(obj: ObjectIdentity, start: int, end: int) -> None:
    return None


@dataclass
class BlockRouter:
    """Routes the reads of one worker by the cluster view ``view()`` returns; see the module docstring."""

    view: Callable[[], ClusterView]
    peers: PeerReader
    direct: DirectRead
    fill: Fill = _nothing_to_fill
    suspect_for: float = 10.0
    _suspects: dict[str, float] = field(default_factory=dict)

    def owner_elsewhere(self, obj: ObjectIdentity, offset: int) -> Member | None:
        """The worker that owns the block holding byte ``offset`` of ``obj``, if it is another, answering worker."""
        view = self.view()
        if view.alone:
            return None
        owners = view.owners(obj.bucket, obj.key, offset // view.block_size)
        if not owners or owners[0].id == view.self_id or self._is_suspect(owners[0].id):
            return None
        return owners[0]

    def blocks(self, obj: ObjectIdentity, start: int, end: int) -> list[Segment]:
        """Bytes ``[start, end)`` of ``obj`` block by block, each with its workers (owner first)."""
        view = self.view()
        size = view.block_size
        first, last = start // size, max(start, end - 1) // size
        return [
            Segment(i * size, min(obj.size, (i + 1) * size), owners, bool(owners) and owners[0].id == view.self_id)
            for i in range(first, last + 1)
            for owners in (view.owners(obj.bucket, obj.key, i),)
        ]

    async def read(self, obj: ObjectIdentity, offset: int, count: int, local: LocalRead) -> AsyncIterator[Chunk]:
        """Bytes ``count`` from ``offset`` of ``obj``, from wherever each block is owned.

        Raises what ``local`` raises, and ``StaleObjectError``/``FileNotFoundError`` reported by an owner.
        """
        view = self.view()
        if view.alone or not view.ring:
            async for chunk in local(offset, count):
                yield chunk
            return
        for segment in view.segments(obj.bucket, obj.key, offset, offset + count):
            if segment.local:
                await self.fill(obj, segment.start, segment.end)
                async for chunk in local(segment.start, segment.end - segment.start):
                    yield chunk
            else:
                async for chunk in self._remote(view, obj, segment, local):
                    yield chunk

    async def _remote(
        self, view: ClusterView, obj: ObjectIdentity, segment: Segment, local: LocalRead
    ) -> AsyncIterator[Chunk]:
        position = segment.start
        for member in self._in_order(segment.owners):
            if member.id == view.self_id:
                # This worker is next in line for the block: it reads and caches it as its owner would.
                await self.fill(obj, position, segment.end)
                async for chunk in local(position, segment.end - position):
                    yield chunk
                return
            try:
                async for data in self.peers.read(member.webhdfs_url, PageRange(obj, position, segment.end)):
                    position += len(data)
                    yield data
                return
            except PeerError as exc:
                self.suspect(member.id)
                log.warning("a peer failed; trying the next worker", extra={"worker": member.id, "error": str(exc)})
        async for data in self.direct(obj, position, segment.end):
            yield data

    def suspect(self, worker: str) -> None:
        """``worker`` failed a request: try it last for ``suspect_for`` seconds."""
        self._suspects[worker] = time.monotonic() + self.suspect_for

    def distrust(self, worker: str) -> None:
        """``worker`` is down (its watch ended): route around it until ``trust``."""
        self._suspects[worker] = float("inf")

    def trust(self, worker: str) -> None:
        """``worker`` answers again (or left the ring)."""
        self._suspects.pop(worker, None)

    def _in_order(self, owners: tuple[Member, ...]) -> list[Member]:
        return sorted(owners, key=lambda m: self._is_suspect(m.id))  # stable: ring order among equals

    def answering(self, members: list[Member]) -> list[Member]:
        """``members`` without the ones that failed lately or whose watch ended."""
        return [m for m in members if not self._is_suspect(m.id)]

    def _is_suspect(self, worker: str) -> bool:
        until = self._suspects.get(worker)
        if until is None:
            return False
        if until < time.monotonic():
            del self._suspects[worker]
            return False
        return True
