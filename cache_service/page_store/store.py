"""The page store: reads S3 objects page by page through a memory tier and a disk tier.

Design:
- Pages are keyed by object identity (bucket, key, ETag), so an object changed behind the cache is never mixed
  with its old pages.
- The last tier (disk when configured) holds every cached page and survives restarts; the memory tier above it
  holds a hot subset. Dropping a page from memory is a demotion (the disk copy stays); dropping it from the last
  tier is an eviction.
- Concurrent misses on one page share one S3 request; a read spanning several missing pages fetches a few of them
  ahead, in parallel; a warmup fetches runs of consecutive pages, one GET a run, that readers wait for too.
- A page read from disk is checked against its checksum every time it is served; a corrupt page is dropped and
  fetched again, never served.

All methods run on the event loop thread; blocking S3 and disk writes go to the executor. This module reads and
admits pages; ``fetches`` reads S3, ``index`` knows what is cached, ``room`` makes room and plans eviction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor
from pathlib import Path

from cache_service.config import StoreConfig
from cache_service.eviction import EvictionPolicy, make_policy
from cache_service.metrics import CacheMetrics
from cache_service.page_store.constraints import (
    NO_QUOTAS,
    NOTHING_GUARDED,
    NOTHING_RESERVED,
    EvictionGuard,
    QuotaPolicy,
    ReservedSpace,
)
from cache_service.page_store.fetches import FetchRun, Pace, S3Fetches
from cache_service.page_store.identity import ObjectIdentity, PageKey, checksum
from cache_service.page_store.index import PageEntry, PageIndex
from cache_service.page_store.room import TierRoom, TierUsage
from cache_service.page_store.tiers import DiskTier, MemoryTier, Tier
from cache_service.under_store import UnderStore

log = logging.getLogger(__name__)


Placement = Callable[[ObjectIdentity, int, bytes], Awaitable[bool]]
"""Takes page ``index`` of an object version elsewhere; True when it did (the page store then keeps no copy)."""


class PageStore:
    """Pages of S3 objects in tiers, with coalesced misses, readahead, checksums and per-tier eviction."""

    def __init__(
        self,
        config: StoreConfig,
        under: UnderStore,
        metrics: CacheMetrics,
        executor: Executor,
        *,
        reserved: ReservedSpace = NOTHING_RESERVED,
        guard: EvictionGuard = NOTHING_GUARDED,
        quotas: QuotaPolicy = NO_QUOTAS,
    ) -> None:
        """A store with the tiers of ``config``, reading misses from ``under`` on ``executor``.

        ``reserved`` is the disk tier's room taken by other than pages, ``guard`` says which objects eviction must
        leave, ``quotas`` how much of each tier an object's group may hold.
        """
        self.page_size = config.page_size
        self._readahead = max(1, config.readahead_pages)
        self._caching = config.caching
        self._metrics = metrics
        # Label children looked up once: ``labels()`` on every page read is a measurable part of a warm read.
        self._served = {tier: metrics.bytes_served.labels(tier=tier) for tier in ("memory", "disk", "s3")}
        self._hits = {tier: metrics.page_hits.labels(tier=tier) for tier in ("memory", "disk")}
        self._executor = executor
        self._tiers: dict[str, Tier] = {}
        for tier_config in config.tiers:
            if tier_config.medium == "memory":
                self._tiers["memory"] = MemoryTier(tier_config.capacity)
            else:
                assert tier_config.path is not None
                self._tiers["disk"] = DiskTier(Path(tier_config.path), tier_config.capacity)
        self._policies: dict[str, EvictionPolicy[PageKey]] = {
            medium: make_policy(config.eviction, tier.capacity) for medium, tier in self._tiers.items()
        }
        self._index = PageIndex(quotas)
        self._entries = self._index.entries  # the read path's own name for the index's dict: no lookup per page
        self._room = TierRoom(
            self._tiers, self._policies, self._index, metrics, reserved=reserved, guard=guard, quotas=quotas
        )
        self._last = self._room.last
        self._quotas = quotas
        self._fetches = S3Fetches(
            under, executor, metrics, page_size=self.page_size, admit=self.admit, served=self._served["s3"]
        )
        self.hits = 0

    # --- life cycle ------------------------------------------------------------------------------------------

    async def open(self) -> int:
        """Index the pages a persistent tier kept from an earlier run; returns how many were found."""
        tier = self._tiers.get("disk")
        if tier is None:
            return 0
        pages = await asyncio.get_running_loop().run_in_executor(self._executor, lambda: list(tier.recover()))
        for page in pages:
            self._register(page.owner, page.index, page.size, page.checksum, "disk")
        if pages:
            log.info("page store: recovered %d pages (%d bytes) from disk", len(pages), tier.used_bytes)
        return len(pages)

    # --- reads -----------------------------------------------------------------------------------------------

    async def read(self, owner: ObjectIdentity, offset: int, length: int) -> AsyncIterator[memoryview | bytes]:
        """Yield the bytes ``[offset, offset + length)`` of ``owner`` (clipped to its size), page by page.

        Raises ``StaleObjectError`` if the object changed in S3 since ``owner`` was read, ``FileNotFoundError`` if
        it is gone, and ``UnderStoreUnavailableError`` when a missing page cannot be fetched.
        """
        end = min(owner.size, offset + length)
        if offset >= end:
            return
        if not self._caching:
            async for piece in self.pass_through(owner, offset, end):
                yield piece
            return
        size = self.page_size
        first, last = offset // size, (end - 1) // size
        ahead: dict[int, asyncio.Future[bytes]] = {}
        for index in range(first, last + 1):
            page_start = index * size
            start, stop = max(offset, page_start) - page_start, min(end, page_start + size) - page_start
            key = (owner.file_id, index)
            chunk = None if index in ahead else self._read_resident(key, start, stop)
            if chunk is None:
                self._schedule_readahead(owner, index, last, ahead)
                data = await asyncio.shield(ahead.pop(index))
                chunk = memoryview(data)[start:stop]
                self._served["s3"].inc(len(chunk))
            entry = self._entries.get(key)
            if entry is not None:
                entry.readers += 1
            try:
                yield chunk
            finally:
                if entry is not None:
                    entry.readers -= 1

    def read_in_memory(self, owner: ObjectIdentity, offset: int, length: int) -> list[memoryview | bytes] | None:
        """The bytes ``[offset, offset + length)`` of ``owner`` now, if every page they span is in the memory tier.

        None, with nothing counted or touched, when any page is elsewhere: the caller then takes ``read``.
        """
        if not self._caching or "memory" not in self._tiers:
            return None
        end = min(owner.size, offset + length)
        if offset >= end:
            return []
        size, file_id, entries = self.page_size, owner.file_id, self._entries
        indexes = range(offset // size, (end - 1) // size + 1)
        for index in indexes:
            entry = entries.get((file_id, index))
            if entry is None or "memory" not in entry.media:
                return None
        chunks: list[memoryview | bytes] = []
        for index in indexes:
            page_start = index * size
            start, stop = max(offset, page_start) - page_start, min(end, page_start + size) - page_start
            chunk = self._read_resident((file_id, index), start, stop)
            assert chunk is not None, "a page in memory is always readable"
            chunks.append(chunk)
        return chunks

    def pass_through(self, owner: ObjectIdentity, offset: int, end: int) -> AsyncIterator[bytes]:
        """Stream ``[offset, end)`` from one ranged S3 GET, page-sized piece by piece, keeping nothing: reads with
        caching disabled (what a thin gateway in front of S3 would do), of objects outside every mount, and of
        blocks whose owners in the cluster all failed."""
        return self._fetches.stream(owner, offset, end)

    def _read_resident(self, key: PageKey, start: int, stop: int) -> memoryview | bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if "memory" in entry.media:
            self._policies["memory"].on_access(key)
            self.hits += 1
            self._hits["memory"].inc()
            self._served["memory"].inc(stop - start)
            return self._tiers["memory"].read(key, start, stop)
        # Every read from disk is checked, not only the first: a page's bytes can rot while this process runs, and
        # a page is read whole anyway when it is promoted. xxh3 checks a page in far less time than the read takes.
        try:
            data = bytes(self._tiers["disk"].read(key))
            if checksum(data) != entry.checksum:
                log.warning(
                    "page store: corrupt page %s of s3://%s/%s dropped", key[1], entry.owner.bucket, entry.owner.key
                )
                self._metrics.corrupt_pages.inc()
                self._room.drop(key, reason="corrupt")
                return None
            if entry.hits >= 1 and "memory" in self._tiers:
                self._promote(entry, data)
            chunk = memoryview(data)[start:stop]
        except (KeyError, FileNotFoundError):
            self._room.drop(key, reason="lost")
            return None
        entry.hits += 1
        self.hits += 1
        self._policies["disk"].on_access(key)
        self._hits["disk"].inc()
        self._served["disk"].inc(stop - start)
        return chunk

    def _promote(self, entry: PageEntry, data: bytes) -> None:
        key = (entry.owner.file_id, entry.index)
        if self._room.make_room("memory", len(data), entry.owner):
            self._tiers["memory"].write(entry.owner, entry.index, data, entry.checksum)
            entry.media.add("memory")
            self._policies["memory"].on_insert(key, len(data))
            self._metrics.promotions.inc()

    def _schedule_readahead(
        self, owner: ObjectIdentity, index: int, last: int, ahead: dict[int, asyncio.Future[bytes]]
    ) -> None:
        for nxt in range(index, min(last, index + self._readahead - 1) + 1):
            if nxt not in ahead and (nxt == index or (owner.file_id, nxt) not in self._entries):
                ahead[nxt] = self.fetch(owner, nxt, promote=True)

    def fetch(self, owner: ObjectIdentity, index: int, *, promote: bool) -> asyncio.Future[bytes]:
        """The page's bytes from S3, admitted to the store; one request per page however many callers ask.

        ``promote`` also places the page in the memory tier (readers do; warmup does not).
        """
        return self._fetches.page(owner, index, promote=promote)

    def fetch_run(self, owner: ObjectIdentity, pages: range, *, promote: bool, pace: Pace | None = None) -> FetchRun:
        """Fetch, in one ranged GET, the pages of ``pages`` from its first on up to the first one that is cached or
        in flight; each is admitted as its bytes arrive, and a reader asking for one meanwhile waits for it.

        Returns the pages started (none when the first is cached or in flight) with a future for each (see
        ``fetches``). ``pace`` is awaited before each page is read.
        """
        return self._fetches.run(
            owner, pages, promote=promote, wanted=lambda i: (owner.file_id, i) not in self._entries, pace=pace
        )

    def in_flight(self, owner: ObjectIdentity, index: int) -> asyncio.Future[bytes] | None:
        """The fetch of page ``index`` of ``owner`` under way, if there is one."""
        return self._fetches.get((owner.file_id, index))

    # --- writes into the store ---------------------------------------------------------------------------------

    async def admit(self, owner: ObjectIdentity, index: int, data: bytes, *, promote: bool) -> bool:
        """Store ``data`` as page ``index`` of ``owner`` in the last tier (and in memory if ``promote``).

        Returns False when no tier had room (the page is then simply not cached).
        """
        digest = checksum(data)
        stored = False
        if self._last == "disk":
            if not self._room.make_room("disk", len(data), owner):
                return False  # every cached page lives in the last tier; memory only holds copies
            disk = self._tiers["disk"]
            group = self._quotas.group_of(owner)
            self._room.promise(group, len(data))
            try:
                await asyncio.get_running_loop().run_in_executor(self._executor, disk.write, owner, index, data, digest)
            except OSError as exc:
                log.warning("page store: cannot write page to disk: %s", exc)
                return False
            finally:
                self._room.release(group, len(data))
            self._register(owner, index, len(data), digest, "disk")
            stored = True
        if (
            "memory" in self._tiers
            and (promote or self._last == "memory")
            and self._room.make_room("memory", len(data), owner)
        ):
            self._tiers["memory"].write(owner, index, data, digest)
            self._register(owner, index, len(data), digest, "memory")
            stored = True
        return stored

    async def ingest(self, owner: ObjectIdentity, path: Path, *, place: Placement | None = None) -> None:
        """Cache the local file ``path``, whose bytes are those of ``owner``, without reading S3 (write-through).

        ``place`` may take a page elsewhere (to its block's owner in a cluster): it returns True when it did.
        """
        loop = asyncio.get_running_loop()
        with open(path, "rb") as f:
            for index in range(owner.page_count(self.page_size)):
                data = await loop.run_in_executor(self._executor, f.read, self.page_size)
                if place is None or not await place(owner, index, data):
                    await self.admit(owner, index, data, promote=False)

    def rekey(self, old: ObjectIdentity, new: ObjectIdentity) -> None:
        """Give the cached pages of ``old`` to ``new`` (a copy of the same bytes under a new name or ETag)."""
        if old.file_id == new.file_id or not self._index.holds(old.file_id):
            return
        self.drop_version(new.file_id, reason="replaced")
        for tier in self._tiers.values():
            tier.rekey(old, new)
        for entry in self._index.rekey(old, new):
            for medium in entry.media:
                self._policies[medium].on_remove((old.file_id, entry.index))
                self._policies[medium].on_insert((new.file_id, entry.index), entry.size)

    # --- removal -----------------------------------------------------------------------------------------------

    def drop_version(self, file_id: str, *, reason: str) -> int:
        """Drop every page of one object version; returns the bytes freed from the last tier."""
        freed = 0
        for index in self._index.pages_of(file_id):
            freed += self._room.drop((file_id, index), reason=reason)
        return freed

    def drop_object(self, bucket: str, key: str, *, keep: str | None = None, reason: str) -> int:
        """Drop the pages of every cached version of ``bucket``/``key`` except file id ``keep``."""
        freed = 0
        for file_id in self._index.versions_of(bucket, key):
            if file_id != keep:
                freed += self.drop_version(file_id, reason=reason)
        return freed

    def _register(self, owner: ObjectIdentity, index: int, size: int, digest: int, medium: str) -> PageEntry:
        entry = self._index.add(owner, index, size, digest, medium)
        self._policies[medium].on_insert((owner.file_id, index), size)
        return entry

    # --- eviction (see ``room``) -------------------------------------------------------------------------------

    def evict_to(
        self, medium: str, target_bytes: int, *, reason: str, can_evict: Callable[[PageKey], bool] | None = None
    ) -> list[tuple[ObjectIdentity, int]]:
        """Evict from ``medium`` in policy order until its use is at most ``target_bytes`` or nothing more may go.

        Returns (owner, bytes) per victim. Pinned pages, pages being read and staged data are never taken.
        """
        return self._room.evict_to(medium, target_bytes, reason=reason, can_evict=can_evict)

    def plan_eviction(
        self, medium: str, target_bytes: int, *, can_evict: Callable[[PageKey], bool] | None = None
    ) -> list[tuple[ObjectIdentity, int]]:
        """What ``evict_to`` would take, in order, without changing anything (for dry runs)."""
        return self._room.plan_eviction(medium, target_bytes, can_evict=can_evict)

    def keep_order(self, medium: str) -> list[PageEntry]:
        """Every page of ``medium``, most worth keeping first (the reverse of its eviction order)."""
        return self._room.keep_order(medium)

    def expired(self, ttl_of: Callable[[ObjectIdentity], float | None], now: float) -> list[ObjectIdentity]:
        """Cached object versions whose oldest page has outlived the TTL that ``ttl_of`` gives them."""
        return self._index.expired(ttl_of, now)

    # --- questions ---------------------------------------------------------------------------------------------

    def has_page(self, owner: ObjectIdentity, index: int) -> bool:
        """True when page ``index`` of ``owner`` is cached in some tier."""
        return (owner.file_id, index) in self._entries

    def owners(self) -> list[ObjectIdentity]:
        """Every object version with at least one cached page."""
        return self._index.owners()

    def usage_of_group(self, medium: str, group: str) -> int:
        """Bytes the quota group holds in ``medium``."""
        return self._index.usage_of_group(medium, group)

    def protected_bytes(self) -> int:
        """Bytes of cached pages that eviction may not take because they are pinned."""
        return self._room.protected_bytes()

    def media(self) -> list[str]:
        """The tiers, fastest first."""
        return list(self._tiers)

    def capacity(self, medium: str) -> int:
        """Capacity of one tier in bytes."""
        return self._tiers[medium].capacity

    def used(self, medium: str) -> int:
        """Bytes used in one tier (staged files count on disk)."""
        return self._room.used(medium)

    def cached_bytes(self, owner: ObjectIdentity) -> int:
        """Bytes of ``owner`` held in the store."""
        return self._index.cached_bytes(owner)

    def usage(self) -> list[TierUsage]:
        """Capacity and use of each tier, fastest first."""
        return self._room.usage()

    @property
    def misses(self) -> int:
        """Reads that went to S3: pages fetched, and reads streamed through uncached."""
        return self._fetches.misses

    @property
    def last_medium(self) -> str:
        """The tier that holds every cached page ("disk" when there is one)."""
        return self._last
