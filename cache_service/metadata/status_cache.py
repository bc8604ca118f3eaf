"""S3 object status and one-level listings, cached for ``metadata.sync_interval``.

Within the interval a warm lookup costs no S3 request (so warm reads survive an S3 outage); after it, S3 is asked
again and a change made directly in S3 is seen whole: a new ETag means a new object identity, hence new pages.
Writes made through the cache update or invalidate the entries they touch at once, and, in a cluster, are
announced (``announce``) so that every other worker drops its entries for them too (``apply``); a request that
changed something is answered after ``settled()``, once its announcements are out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from cache_service.metrics import CacheMetrics
from cache_service.under_store import Listing, ObjectMetadata, ObjectStatus, UnderStore

T = TypeVar("T")

Announce = Callable[[str, str, bool], Awaitable[None]]
"""Tells the other workers that statuses changed: (bucket, key prefix, exact: that one key only)."""


@dataclass
class _Entry(Generic[T]):
    value: T
    expires: float


@dataclass(eq=False)
class StatusCache:
    """Cached ``head`` and ``list_level`` answers of the under store, negative answers included.

    ``ttl`` is how long an answer is trusted (``metadata.sync_interval``); ``clock`` measures it. ``announce``
    (None for a worker alone) is told of every change this worker makes.
    """

    under: UnderStore
    ttl: float
    executor: Executor
    metrics: CacheMetrics
    clock: Callable[[], float] = time.monotonic
    announce: Announce | None = None
    _objects: dict[tuple[str, str], _Entry[ObjectStatus | None]] = field(init=False, default_factory=dict)
    _listings: dict[tuple[str, str], _Entry[Listing]] = field(init=False, default_factory=dict)
    _pending: dict[tuple[str, str, str], asyncio.Future[Any]] = field(init=False, default_factory=dict)
    # Bumped by every change the cache makes itself, so an S3 answer requested before it is not stored after it.
    _generation: int = field(init=False, default=0)
    _unsettled: list[asyncio.Future[None]] = field(init=False, default_factory=list)

    async def _call(self, kind: str, bucket: str, key: str, fn: Callable[[], T]) -> T:
        # Concurrent lookups of one key share one S3 request.
        token = (kind, bucket, key)
        future = self._pending.get(token)
        if future is None:
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self.executor, fn)
            self._pending[token] = future
            future.add_done_callback(lambda _: self._pending.pop(token, None))
        self.metrics.metadata_misses.inc()
        result: T = await asyncio.shield(future)
        return result

    def _fresh(self, bucket: str, key: str) -> _Entry[ObjectStatus | None] | None:
        entry = self._objects.get((bucket, key))
        if entry is not None and entry.expires > self.clock():
            self.metrics.metadata_hits.inc()
            return entry
        return None

    def known(self, bucket: str, key: str) -> ObjectStatus | None:
        """The object's status if it is cached, present and within the interval; None otherwise. Never asks S3."""
        entry = self._fresh(bucket, key)
        return None if entry is None else entry.value

    def _lookup(self, bucket: str, key: str) -> ObjectStatus | None:
        try:
            return self.under.head(bucket, key)
        except FileNotFoundError:
            return None

    async def head(self, bucket: str, key: str) -> ObjectStatus | None:
        """The object's status, or None if there is no such object. Raises ``UnderStoreUnavailableError``."""
        entry = self._fresh(bucket, key)
        if entry is not None:
            return entry.value

        generation = self._generation
        status = await self._call("head", bucket, key, lambda: self._lookup(bucket, key))
        if generation == self._generation:
            self._objects[(bucket, key)] = _Entry(status, self.clock() + self.ttl)
        return status

    async def recheck(self, bucket: str, key: str) -> ObjectStatus | None:
        """``head`` asked of S3 whatever the cache holds, and kept: for a change that rewrites the object from its
        current bytes (APPEND, TRUNCATE, CONCAT), which must not build on a version another writer replaced since
        this worker last looked (a change made directly in S3, or an announcement this worker missed)."""
        self._generation += 1
        self._objects.pop((bucket, key), None)
        return await self.head(bucket, key)

    def known_metadata(self, bucket: str, key: str, etag: str) -> ObjectMetadata | None:
        """The metadata of version ``etag`` of the object if the cache holds it with its status; None otherwise
        (``metadata`` then asks S3). Never asks S3, counts nothing."""
        entry = self._objects.get((bucket, key))
        known = None if entry is None else entry.value
        return known.metadata if known is not None and known.etag == etag else None

    async def metadata(self, bucket: str, key: str, etag: str) -> ObjectMetadata:
        """The metadata of version ``etag`` of the object: cached, else asked of S3 with one HEAD and kept with the
        status (a status learned from a listing has none). Metadata of another version found meanwhile is returned
        too (S3's latest word). Raises ``FileNotFoundError`` if the object is gone, ``UnderStoreUnavailableError``.
        """
        known = self.known_metadata(bucket, key, etag)
        if known is not None:
            return known
        generation = self._generation
        status = await self._call("head", bucket, key, lambda: self._lookup(bucket, key))
        if status is None:
            raise FileNotFoundError(f"no such object: s3://{bucket}/{key}")
        assert status.metadata is not None, "a HEAD answer carries metadata"
        current = self._objects.get((bucket, key))
        if generation == self._generation and current is not None and current.value == status:
            assert current.value is not None
            current.value = replace(current.value, metadata=status.metadata)
        return status.metadata

    async def listing(self, bucket: str, prefix: str) -> Listing:
        """Objects and common prefixes directly below key prefix ``prefix`` ("" or ending in "/").

        Raises ``FileNotFoundError`` if the bucket does not exist, ``UnderStoreUnavailableError`` if S3 is down.
        """
        entry = self._listings.get((bucket, prefix))
        if entry is not None and entry.expires > self.clock():
            self.metrics.metadata_hits.inc()
            return entry.value
        generation = self._generation
        listing = await self._call("list", bucket, prefix, lambda: self.under.list_level(bucket, prefix))
        if generation != self._generation:
            return listing
        now = self.clock()
        self._listings[(bucket, prefix)] = _Entry(listing, now + self.ttl)
        for status in listing.objects:
            old = self._objects.get((bucket, status.key))
            if old is not None and old.value is not None and old.value.etag == status.etag:
                status = replace(status, metadata=old.value.metadata)  # a listing carries none: keep what HEAD said
            self._objects[(bucket, status.key)] = _Entry(status, now + self.ttl)
        return listing

    def record(self, status: ObjectStatus) -> None:
        """Remember an object the cache itself just wrote, and forget listings it changes."""
        self._generation += 1
        self._objects[(status.bucket, status.key)] = _Entry(status, self.clock() + self.ttl)
        self._forget_listings(status.bucket, status.key)
        self._announce(status.bucket, status.key, exact=True)

    def forget(self, bucket: str, key: str) -> None:
        """Forget what is known of ``key`` (deleted or renamed through the cache) and of listings above it."""
        self.apply(bucket, key, exact=True)
        self._announce(bucket, key, exact=True)

    def forget_prefix(self, bucket: str, prefix: str) -> None:
        """Forget every object and listing at or below key ``prefix`` (a directory deleted or renamed)."""
        self.apply(bucket, prefix, exact=False)
        self._announce(bucket, prefix, exact=False)

    def apply(self, bucket: str, prefix: str, *, exact: bool) -> None:
        """Forget key ``prefix`` (``exact``) or everything at or below it, and the listings above: a change another
        worker announced. Nothing is announced back."""
        self._generation += 1
        if exact:
            self._objects.pop((bucket, prefix), None)
            self._forget_listings(bucket, prefix)
            return
        base = prefix.rstrip("/")
        for table in (self._objects, self._listings):
            for k in [k for k in table if k[0] == bucket and (not base or k[1] == base or k[1].startswith(base + "/"))]:
                del table[k]
        self._forget_listings(bucket, base)

    def clear(self) -> None:
        """Forget everything (announcements may have been missed while Redis was unreachable)."""
        self._generation += 1
        self._objects.clear()
        self._listings.clear()

    async def settled(self) -> None:
        """Return once every change made so far has been announced to the other workers."""
        while self._unsettled:
            pending, self._unsettled = self._unsettled, []
            await asyncio.gather(*pending, return_exceptions=True)

    def _announce(self, bucket: str, prefix: str, *, exact: bool) -> None:
        if self.announce is not None:
            self._unsettled.append(asyncio.ensure_future(self.announce(bucket, prefix, exact)))

    def _forget_listings(self, bucket: str, key: str) -> None:
        parts = key.split("/")
        for depth in range(len(parts)):
            prefix = "/".join(parts[:depth]) + "/" if depth else ""
            self._listings.pop((bucket, prefix), None)
