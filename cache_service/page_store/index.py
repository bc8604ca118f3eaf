"""The page index: which pages are cached, in which tiers, for which object version, and what each quota group holds.

Bookkeeping only: the tiers hold the bytes and the eviction policies the order in which pages leave. The index is
the one place that knows every cached page, so every question about what is cached is answered here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cache_service.page_store.constraints import QuotaPolicy
from cache_service.page_store.identity import ObjectIdentity, PageKey


@dataclass
class PageEntry:
    """Bookkeeping for one cached page."""

    owner: ObjectIdentity
    index: int
    size: int
    checksum: int
    media: set[str] = field(default_factory=set)
    hits: int = 0
    readers: int = 0
    admitted: float = field(default_factory=time.time)


class PageIndex:
    """Every cached page by key, by object version and by object, with the bytes per (medium, quota group)."""

    def __init__(self, quotas: QuotaPolicy) -> None:
        """An empty index whose group usage follows ``quotas.group_of``."""
        self.entries: dict[PageKey, PageEntry] = {}
        """Page key -> entry. The read path looks pages up here directly: a method call per page would cost."""
        self._quotas = quotas
        self._files: dict[str, set[int]] = {}
        self._owners: dict[str, ObjectIdentity] = {}
        self._versions: dict[tuple[str, str], set[str]] = {}
        self._group_usage: dict[tuple[str, str], int] = {}

    # --- changes -----------------------------------------------------------------------------------------------

    def add(self, owner: ObjectIdentity, index: int, size: int, digest: int, medium: str) -> PageEntry:
        """Record page ``index`` of ``owner`` as held in ``medium`` (a page already known gains the medium)."""
        key = (owner.file_id, index)
        entry = self.entries.get(key)
        if entry is None:
            entry = PageEntry(owner=owner, index=index, size=size, checksum=digest)
            self.entries[key] = entry
            self._files.setdefault(owner.file_id, set()).add(index)
            self._owners[owner.file_id] = owner
            self._versions.setdefault((owner.bucket, owner.key), set()).add(owner.file_id)
        if medium not in entry.media:
            entry.media.add(medium)
            self._account(entry, medium, +1)
        return entry

    def leave(self, entry: PageEntry, medium: str) -> None:
        """``entry``'s page is no longer held in ``medium`` but stays cached elsewhere (a demotion)."""
        entry.media.discard(medium)
        self._account(entry, medium, -1)

    def remove(self, key: PageKey) -> PageEntry | None:
        """Forget page ``key``; returns its entry, whose ``media`` still say where its bytes are, or None."""
        entry = self.entries.pop(key, None)
        if entry is None:
            return None
        for medium in entry.media:
            self._account(entry, medium, -1)
        indexes = self._files.get(key[0])
        if indexes is not None:
            indexes.discard(key[1])
            if not indexes:
                del self._files[key[0]]
                self._forget_owner(entry.owner)
        return entry

    def rekey(self, old: ObjectIdentity, new: ObjectIdentity) -> list[PageEntry]:
        """Give every page of ``old`` to ``new``; returns the moved entries (their ``owner`` is now ``new``)."""
        moved = []
        for index in self._files.pop(old.file_id, set()):
            entry = self.entries.pop((old.file_id, index))
            for medium in entry.media:
                self._account(entry, medium, -1)
            entry.owner = new
            for medium in entry.media:
                self._account(entry, medium, +1)
            self.entries[(new.file_id, index)] = entry
            self._files.setdefault(new.file_id, set()).add(index)
            moved.append(entry)
        self._forget_owner(old)
        self._owners[new.file_id] = new
        self._versions.setdefault((new.bucket, new.key), set()).add(new.file_id)
        return moved

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

    # --- questions ---------------------------------------------------------------------------------------------

    def holds(self, file_id: str) -> bool:
        """True when some page of object version ``file_id`` is cached."""
        return file_id in self._files

    def pages_of(self, file_id: str) -> list[int]:
        """Indexes of the cached pages of object version ``file_id``, in order."""
        return sorted(self._files.get(file_id, ()))

    def versions_of(self, bucket: str, key: str) -> set[str]:
        """File ids of the cached versions of an object."""
        return set(self._versions.get((bucket, key), ()))

    def owners(self) -> list[ObjectIdentity]:
        """Every object version with at least one cached page."""
        return list(self._owners.values())

    def cached_bytes(self, owner: ObjectIdentity) -> int:
        """Bytes of ``owner`` held in the store."""
        return sum(self.entries[(owner.file_id, i)].size for i in self._files.get(owner.file_id, ()))

    def in_group(self, key: PageKey, group: str) -> bool:
        """True when page ``key`` is cached and counts against quota ``group``."""
        entry = self.entries.get(key)
        return entry is not None and self._quotas.group_of(entry.owner) == group

    def usage_of_group(self, medium: str, group: str) -> int:
        """Bytes the quota group holds in ``medium``."""
        return self._group_usage.get((medium, group), 0)

    def page_counts(self, media: list[str]) -> dict[str, int]:
        """Pages held in each of ``media``."""
        counts = dict.fromkeys(media, 0)
        for entry in self.entries.values():
            for medium in entry.media:
                counts[medium] += 1
        return counts

    def expired(self, ttl_of: Callable[[ObjectIdentity], float | None], now: float) -> list[ObjectIdentity]:
        """Cached object versions whose oldest page has outlived the TTL that ``ttl_of`` gives them."""
        found = []
        for file_id, owner in self._owners.items():
            ttl = ttl_of(owner)
            if ttl is None:
                continue
            oldest = min(self.entries[(file_id, i)].admitted for i in self._files.get(file_id, ()))
            if oldest + ttl <= now:
                found.append(owner)
        return found
