"""The page store: reads S3 objects page by page through a memory tier and a disk tier.

Design:
- Pages are keyed by object identity (bucket, key, ETag), so an object changed behind the cache is never mixed
  with its old pages.
- The last tier (disk when configured) holds every cached page and survives restarts; the memory tier above it
  holds a hot subset. Dropping a page from memory is a demotion (the disk copy stays); dropping it from the last
  tier is an eviction.
- Concurrent misses on one page share one S3 request; a read spanning several missing pages fetches a few of them
  ahead, in parallel.
- A page read from disk is checked against its checksum the first time it is served in this process; a corrupt page
  is dropped and fetched again, never served.

All methods run on the event loop thread; blocking S3 and disk writes go to the executor.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

from cache_service.config import StoreConfig
from cache_service.errors import StaleObjectError
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
from cache_service.page_store.identity import ObjectIdentity, PageKey, checksum
from cache_service.page_store.tiers import DiskTier, MemoryTier, Tier
from cache_service.under_store import UnderStore

log = logging.getLogger(__name__)


@dataclass
class PageEntry:
    """Bookkeeping for one cached page."""

    owner: ObjectIdentity
    index: int
    size: int
    checksum: int
    media: set[str] = field(default_factory=set)
    verified: bool = False
    hits: int = 0
    readers: int = 0
    admitted: float = field(default_factory=time.time)


@dataclass(frozen=True)
class TierUsage:
    """Capacity and use of one tier, for status and metrics."""

    medium: str
    capacity_bytes: int
    used_bytes: int
    pages: int


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
        self._under = under
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
        self._last = "disk" if "disk" in self._tiers else "memory"
        self._entries: dict[PageKey, PageEntry] = {}
        self._files: dict[str, set[int]] = {}
        self._owners: dict[str, ObjectIdentity] = {}
        self._versions: dict[tuple[str, str], set[str]] = {}
        self._inflight: dict[PageKey, asyncio.Future[bytes]] = {}
        self._reserved_space = reserved
        self._guard = guard
        self._quotas = quotas
        self._group_usage: dict[tuple[str, str], int] = {}
        self._writing = 0  # bytes of disk writes under way: room already promised to them
        self._writing_by_group: dict[str, int] = {}
        self.hits = 0
        self.misses = 0

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
            async for piece in self._pass_through(owner, offset, end):
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

    async def _pass_through(self, owner: ObjectIdentity, offset: int, end: int) -> AsyncIterator[bytes]:
        """Stream ``[offset, end)`` from one ranged S3 GET, page-sized piece by piece, keeping nothing (caching
        disabled): what a thin gateway in front of S3 would do."""
        loop = asyncio.get_running_loop()
        self.misses += 1
        pieces = self._under.stream_range(owner.bucket, owner.key, offset, end, owner.etag, piece=self.page_size)
        try:
            while data := await loop.run_in_executor(self._executor, next, pieces, b""):
                self._metrics.s3_bytes_read.inc(len(data))
                self._served["s3"].inc(len(data))
                yield data
        finally:
            await loop.run_in_executor(self._executor, pieces.close)

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
        disk = self._tiers["disk"]
        chunk: memoryview | bytes
        try:
            if not entry.verified or ("memory" in self._tiers and entry.hits >= 1):
                data = bytes(disk.read(key))
                if checksum(data) != entry.checksum:
                    log.warning(
                        "page store: corrupt page %s of s3://%s/%s dropped", key[1], entry.owner.bucket, entry.owner.key
                    )
                    self._metrics.corrupt_pages.inc()
                    self._drop(key, reason="corrupt")
                    return None
                entry.verified = True
                if entry.hits >= 1 and "memory" in self._tiers:
                    self._promote(entry, data)
                chunk = memoryview(data)[start:stop]
            else:
                chunk = disk.read(key, start, stop)
        except (KeyError, FileNotFoundError):
            self._drop(key, reason="lost")
            return None
        entry.hits += 1
        self.hits += 1
        self._policies["disk"].on_access(key)
        self._hits["disk"].inc()
        self._served["disk"].inc(stop - start)
        return chunk

    def _promote(self, entry: PageEntry, data: bytes) -> None:
        key = (entry.owner.file_id, entry.index)
        if self._make_room("memory", len(data), entry.owner):
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
        key = (owner.file_id, index)
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(self._fetch_page(owner, index, promote))
            self._inflight[key] = future
            future.add_done_callback(lambda f: self._fetch_done(key, f))
        return future

    def _fetch_done(self, key: PageKey, future: asyncio.Future[bytes]) -> None:
        self._inflight.pop(key, None)
        if not future.cancelled() and future.exception() is not None:
            log.debug("page store: fetch of %s failed: %s", key, future.exception())

    async def _fetch_page(self, owner: ObjectIdentity, index: int, promote: bool) -> bytes:
        start, end = owner.page_bounds(index, self.page_size)
        loop = asyncio.get_running_loop()
        self.misses += 1
        self._metrics.page_misses.inc()
        data = await loop.run_in_executor(
            self._executor, self._under.get_range, owner.bucket, owner.key, start, end, owner.etag
        )
        if len(data) != end - start:
            raise StaleObjectError(f"s3://{owner.bucket}/{owner.key} changed size while being read")
        self._metrics.s3_bytes_read.inc(len(data))
        await self.admit(owner, index, data, promote=promote)
        return data

    # --- writes into the store ---------------------------------------------------------------------------------

    async def admit(self, owner: ObjectIdentity, index: int, data: bytes, *, promote: bool) -> bool:
        """Store ``data`` as page ``index`` of ``owner`` in the last tier (and in memory if ``promote``).

        Returns False when no tier had room (the page is then simply not cached).
        """
        digest = checksum(data)
        stored = False
        if self._last == "disk":
            if not self._make_room("disk", len(data), owner):
                return False  # every cached page lives in the last tier; memory only holds copies
            disk = self._tiers["disk"]
            group = self._quotas.group_of(owner)
            self._writing += len(data)
            self._writing_by_group[group] = self._writing_by_group.get(group, 0) + len(data)
            try:
                await asyncio.get_running_loop().run_in_executor(self._executor, disk.write, owner, index, data, digest)
            except OSError as exc:
                log.warning("page store: cannot write page to disk: %s", exc)
                return False
            finally:
                self._writing -= len(data)
                self._writing_by_group[group] -= len(data)
            entry = self._register(owner, index, len(data), digest, "disk")
            entry.verified = True
            stored = True
        if (
            "memory" in self._tiers
            and (promote or self._last == "memory")
            and self._make_room("memory", len(data), owner)
        ):
            self._tiers["memory"].write(owner, index, data, digest)
            self._register(owner, index, len(data), digest, "memory")
            stored = True
        return stored

    async def ingest(self, owner: ObjectIdentity, path: Path) -> None:
        """Cache the local file ``path``, whose bytes are those of ``owner``, without reading S3 (write-through)."""
        loop = asyncio.get_running_loop()
        with open(path, "rb") as f:
            for index in range(owner.page_count(self.page_size)):
                data = await loop.run_in_executor(self._executor, f.read, self.page_size)
                await self.admit(owner, index, data, promote=False)

    def rekey(self, old: ObjectIdentity, new: ObjectIdentity) -> None:
        """Give the cached pages of ``old`` to ``new`` (a copy of the same bytes under a new name or ETag)."""
        if old.file_id == new.file_id or old.file_id not in self._files:
            return
        self.drop_version(new.file_id, reason="replaced")
        for tier in self._tiers.values():
            tier.rekey(old, new)
        for index in self._files.pop(old.file_id):
            entry = self._entries.pop((old.file_id, index))
            for medium in entry.media:
                self._account(entry, medium, -1)
                self._policies[medium].on_remove((old.file_id, index))
                self._policies[medium].on_insert((new.file_id, index), entry.size)
            entry.owner = new
            for medium in entry.media:
                self._account(entry, medium, +1)
            self._entries[(new.file_id, index)] = entry
            self._files.setdefault(new.file_id, set()).add(index)
        self._forget_owner(old)
        self._owners[new.file_id] = new
        self._versions.setdefault((new.bucket, new.key), set()).add(new.file_id)

    # --- removal -----------------------------------------------------------------------------------------------

    def drop_version(self, file_id: str, *, reason: str) -> int:
        """Drop every page of one object version; returns the bytes freed from the last tier."""
        freed = 0
        for index in sorted(self._files.get(file_id, ())):
            freed += self._drop((file_id, index), reason=reason)
        return freed

    def drop_object(self, bucket: str, key: str, *, keep: str | None = None, reason: str) -> int:
        """Drop the pages of every cached version of ``bucket``/``key`` except file id ``keep``."""
        freed = 0
        for file_id in list(self._versions.get((bucket, key), ())):
            if file_id != keep:
                freed += self.drop_version(file_id, reason=reason)
        return freed

    def _drop(self, key: PageKey, *, reason: str) -> int:
        entry = self._entries.pop(key, None)
        if entry is None:
            return 0
        freed = 0
        for medium in entry.media:
            self._account(entry, medium, -1)
            self._policies[medium].on_remove(key)
            removed = self._tiers[medium].remove(key)
            if medium == self._last:
                freed = removed
        self._metrics.evictions.labels(tier=self._last, reason=reason).inc()
        indexes = self._files.get(key[0])
        if indexes is not None:
            indexes.discard(key[1])
            if not indexes:
                del self._files[key[0]]
                self._forget_owner(entry.owner)
        return freed

    def _forget_owner(self, owner: ObjectIdentity) -> None:
        self._owners.pop(owner.file_id, None)
        versions = self._versions.get((owner.bucket, owner.key))
        if versions is not None:
            versions.discard(owner.file_id)
            if not versions:
                del self._versions[(owner.bucket, owner.key)]

    def _account(self, entry: PageEntry, medium: str, sign: int) -> None:
        group = (medium, self._quotas.group_of(entry.owner))
        self._group_usage[group] = self._group_usage.get(group, 0) + sign * entry.size

    def _register(self, owner: ObjectIdentity, index: int, size: int, digest: int, medium: str) -> PageEntry:
        key = (owner.file_id, index)
        entry = self._entries.get(key)
        if entry is None:
            entry = PageEntry(owner=owner, index=index, size=size, checksum=digest)
            self._entries[key] = entry
            self._files.setdefault(owner.file_id, set()).add(index)
            self._owners[owner.file_id] = owner
            self._versions.setdefault((owner.bucket, owner.key), set()).add(owner.file_id)
        if medium not in entry.media:
            entry.media.add(medium)
            self._account(entry, medium, +1)
        self._policies[medium].on_insert(key, size)
        return entry

    # --- eviction ----------------------------------------------------------------------------------------------

    def _evictable(self, key: PageKey) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry.readers == 0 and not self._guard.protects(entry.owner)

    def _reserved(self, medium: str) -> int:
        return self._reserved_space.used_bytes + self._writing if medium == "disk" else 0

    def _make_room(self, medium: str, need: int, owner: ObjectIdentity) -> bool:
        """Evict from ``medium`` until ``need`` more bytes of ``owner`` fit its group's quota and the tier."""
        group = self._quotas.group_of(owner)
        quota = self._quotas.limit(group, medium)
        if quota is not None:
            pending = self._writing_by_group.get(group, 0) if medium == "disk" else 0
            while self._group_usage.get((medium, group), 0) + pending + need > quota:
                if not self.evict_one(medium, reason="quota", can_evict=lambda k: self._in_group(k, group)):
                    return False
        tier = self._tiers[medium]
        while tier.used_bytes + self._reserved(medium) + need > tier.capacity:
            if not self.evict_one(medium, reason="capacity"):
                return False
        return True

    def _in_group(self, key: PageKey, group: str) -> bool:
        entry = self._entries.get(key)
        return entry is not None and self._quotas.group_of(entry.owner) == group

    def _rule(self, can_evict: Callable[[PageKey], bool] | None) -> Callable[[PageKey], bool]:
        if can_evict is None:
            return self._evictable
        return lambda key: self._evictable(key) and can_evict(key)

    def evict_one(self, medium: str, *, reason: str, can_evict: Callable[[PageKey], bool] | None = None) -> int:
        """Evict the policy's next victim from ``medium``; returns its size (0 when nothing may go).

        ``can_evict`` narrows the candidates beyond the store's own rule (pinned and in-use pages always stay).
        """
        victim = self._policies[medium].evict(self._rule(can_evict))
        if victim is None:
            return 0
        return self._remove_victim(medium, victim, reason)

    def _remove_victim(self, medium: str, key: PageKey, reason: str) -> int:
        """Remove a page the policy of ``medium`` already gave up; returns its size."""
        entry = self._entries[key]
        if medium != self._last:
            # leaving memory is a demotion: the last tier keeps its copy
            entry.media.discard(medium)
            self._account(entry, medium, -1)
            self._tiers[medium].remove(key)
            self._metrics.demotions.inc()
            return entry.size
        for held in entry.media:
            self._account(entry, held, -1)
            self._tiers[held].remove(key)
            if held != medium:
                self._policies[held].on_remove(key)
        entry.media.clear()
        del self._entries[key]
        indexes = self._files.get(key[0], set())
        indexes.discard(key[1])
        if not indexes:
            self._files.pop(key[0], None)
            self._forget_owner(entry.owner)
        self._metrics.evictions.labels(tier=medium, reason=reason).inc()
        return entry.size

    # --- purging -----------------------------------------------------------------------------------------------

    def evict_to(
        self, medium: str, target_bytes: int, *, reason: str, can_evict: Callable[[PageKey], bool] | None = None
    ) -> list[tuple[ObjectIdentity, int]]:
        """Evict from ``medium`` in policy order until its use is at most ``target_bytes`` or nothing more may go.

        Returns (owner, bytes) per victim. Pinned pages, pages being read and staged data are never taken.
        """
        evicted: list[tuple[ObjectIdentity, int]] = []
        rule = self._rule(can_evict)
        policy = self._policies[medium]
        while self.used(medium) > target_bytes:
            victim = policy.evict(rule)
            if victim is None:
                break
            owner = self._entries[victim].owner
            evicted.append((owner, self._remove_victim(medium, victim, reason)))
        return evicted

    def plan_eviction(
        self, medium: str, target_bytes: int, *, can_evict: Callable[[PageKey], bool] | None = None
    ) -> list[tuple[ObjectIdentity, int]]:
        """What ``evict_to`` would take, in order, without changing anything (for dry runs)."""
        trial = copy.deepcopy(self._policies[medium])
        rule = self._rule(can_evict)
        used = self.used(medium)
        planned: list[tuple[ObjectIdentity, int]] = []
        while used > target_bytes:
            victim = trial.evict(rule)
            if victim is None:
                break
            entry = self._entries[victim]
            planned.append((entry.owner, entry.size))
            used -= entry.size
        return planned

    def expired(self, ttl_of: Callable[[ObjectIdentity], float | None], now: float) -> list[ObjectIdentity]:
        """Cached object versions whose oldest page has outlived the TTL that ``ttl_of`` gives them."""
        found = []
        for file_id, owner in self._owners.items():
            ttl = ttl_of(owner)
            if ttl is None:
                continue
            oldest = min(self._entries[(file_id, i)].admitted for i in self._files.get(file_id, ()))
            if oldest + ttl <= now:
                found.append(owner)
        return found

    # --- questions ---------------------------------------------------------------------------------------------

    def has_page(self, owner: ObjectIdentity, index: int) -> bool:
        """True when page ``index`` of ``owner`` is cached in some tier."""
        return (owner.file_id, index) in self._entries

    def owners(self) -> list[ObjectIdentity]:
        """Every object version with at least one cached page."""
        return list(self._owners.values())

    def usage_of_group(self, medium: str, group: str) -> int:
        """Bytes the quota group holds in ``medium``."""
        return self._group_usage.get((medium, group), 0)

    def protected_bytes(self) -> int:
        """Bytes of cached pages that eviction may not take because they are pinned."""
        return sum(self.cached_bytes(owner) for owner in self._owners.values() if self._guard.protects(owner))

    def media(self) -> list[str]:
        """The tiers, fastest first."""
        return list(self._tiers)

    def capacity(self, medium: str) -> int:
        """Capacity of one tier in bytes."""
        return self._tiers[medium].capacity

    def used(self, medium: str) -> int:
        """Bytes used in one tier (staged files count on disk)."""
        return self._tiers[medium].used_bytes + self._reserved(medium)

    def cached_bytes(self, owner: ObjectIdentity) -> int:
        """Bytes of ``owner`` held in the store."""
        return sum(self._entries[(owner.file_id, i)].size for i in self._files.get(owner.file_id, ()))

    def usage(self) -> list[TierUsage]:
        """Capacity and use of each tier, fastest first."""
        counts = {medium: 0 for medium in self._tiers}
        for entry in self._entries.values():
            for medium in entry.media:
                counts[medium] += 1
        return [
            TierUsage(medium, tier.capacity, tier.used_bytes + self._reserved(medium), counts[medium])
            for medium, tier in self._tiers.items()
        ]

    @property
    def last_medium(self) -> str:
        """The tier that holds every cached page ("disk" when there is one)."""
        return self._last

    def versions_of(self, bucket: str, key: str) -> set[str]:
        """File ids of the cached versions of an object."""
        return set(self._versions.get((bucket, key), ()))
