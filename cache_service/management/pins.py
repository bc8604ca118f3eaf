"""Pinned objects: the page store's eviction guard, read from the pins kept by path."""

from __future__ import annotations

from cache_service.management.rules import PathRules
from cache_service.namespace.mounts import MountTable
from cache_service.page_store import ObjectIdentity


class PinnedObjects:
    """The page store's ``EvictionGuard``: an object is protected when its cache path is at or below a pin."""

    def __init__(self, mounts: MountTable, rules: PathRules) -> None:
        self._mounts = mounts
        self._rules = rules

    def protects(self, owner: ObjectIdentity) -> bool:
        """True when ``owner`` has a cache path and that path is pinned."""
        path = self._mounts.to_path(owner.bucket, owner.key)
        return path is not None and self._rules.is_pinned(path)
