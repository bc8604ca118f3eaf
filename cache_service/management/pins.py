"""Pins and TTLs by path: setting them, sweeping expired pages, and the page store's guard for pinned objects."""

from __future__ import annotations

import time

from cache_service.management.reports import FreeReport, InvalidFieldError, PathReport
from cache_service.management.rules import PathRules
from cache_service.management.selection import PathSelection
from cache_service.management.status import CacheStatus
from cache_service.namespace.mounts import MountTable
from cache_service.page_store import ObjectIdentity, PageStore


class PinnedObjects:
    """The page store's ``EvictionGuard``: an object is protected when its cache path is at or below a pin."""

    def __init__(self, mounts: MountTable, rules: PathRules) -> None:
        self._mounts = mounts
        self._rules = rules

    def protects(self, owner: ObjectIdentity) -> bool:
        """True when ``owner`` has a cache path and that path is pinned."""
        path = self._mounts.to_path(owner.bucket, owner.key)
        return path is not None and self._rules.is_pinned(path)


class PinsAndTtls:
    """``cachectl pin``, ``unpin`` and ``ttl``: rules kept by path, answered with what the cache holds there."""

    def __init__(self, rules: PathRules, pages: PageStore, *, select: PathSelection, status: CacheStatus) -> None:
        self._rules = rules
        self._pages = pages
        self._select = select
        self._status = status

    async def pin(self, path: str) -> PathReport:
        """Protect ``path`` (and everything below) from eviction and purge. Raises ``PathNotFoundError``."""
        path = self._select.field_path("path", path)
        await self._select.existing("path", path)
        self._rules.pin(path)
        return await self._status.stat(path)

    async def unpin(self, path: str) -> PathReport:
        """Remove the pin on exactly ``path`` (a path that was not pinned is left as it is)."""
        path = self._select.field_path("path", path)
        self._rules.unpin(path)
        return await self._status.stat(path)

    def pins(self) -> list[str]:
        """Pinned paths."""
        return self._rules.pins()

    async def set_ttl(self, path: str, seconds: float | None) -> PathReport:
        """Free ``path``'s cached pages once older than ``seconds`` (None clears). S3 data is never deleted."""
        path = self._select.field_path("path", path)
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0):
            raise InvalidFieldError("ttl", f"ttl must not be negative, got {seconds!r}")
        await self._select.existing("path", path)
        self._rules.set_ttl(path, None if seconds is None else float(seconds))
        return await self._status.stat(path)

    def ttls(self) -> dict[str, float]:
        """TTLs by path."""
        return self._rules.ttls()

    async def sweep_ttl(self, now: float | None = None) -> FreeReport:
        """Free the pages of every object whose TTL has run out."""

        def ttl_of(owner: ObjectIdentity) -> float | None:
            path = self._select.path_of(owner)
            return None if path is None else self._rules.ttl_for(path)

        freed_bytes = freed_pages = 0
        for owner in self._pages.expired(ttl_of, time.time() if now is None else now):
            freed_pages += len(
                [i for i in range(owner.page_count(self._pages.page_size)) if self._pages.has_page(owner, i)]
            )
            freed_bytes += self._pages.drop_version(owner.file_id, reason="ttl")
        return FreeReport(freed_bytes=freed_bytes, freed_pages=freed_pages)
