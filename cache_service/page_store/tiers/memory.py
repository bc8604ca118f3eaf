"""The memory tier: pages as immutable bytes in process memory."""

from __future__ import annotations

from collections.abc import Iterator

from cache_service.page_store.identity import ObjectIdentity, PageKey
from cache_service.page_store.tiers.base import RecoveredPage


class MemoryTier:
    """Pages kept as ``bytes``; a read returns a zero-copy ``memoryview`` slice."""

    medium = "memory"

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._pages: dict[PageKey, bytes] = {}
        self._used = 0

    @property
    def used_bytes(self) -> int:
        """Bytes of pages held."""
        return self._used

    def write(self, owner: ObjectIdentity, index: int, data: bytes, checksum: int) -> None:
        """Keep ``data`` as page ``index`` of ``owner``."""
        key = (owner.file_id, index)
        self.remove(key)
        self._pages[key] = bytes(data)
        self._used += len(data)

    def read(self, key: PageKey, start: int = 0, end: int | None = None) -> bytes | memoryview:
        """A view of bytes ``[start, end)``. Raises ``KeyError`` if the page is not held."""
        page = self._pages[key]
        if start == 0 and (end is None or end >= len(page)):
            return page
        return memoryview(page)[start:end]

    def remove(self, key: PageKey) -> int:
        """Drop the page; returns the bytes freed."""
        page = self._pages.pop(key, None)
        if page is None:
            return 0
        self._used -= len(page)
        return len(page)

    def rekey(self, old: ObjectIdentity, new: ObjectIdentity) -> None:
        """Move ``old``'s pages to ``new`` (no bytes are copied); whatever ``new`` held is dropped first."""
        for key in [k for k in self._pages if k[0] == new.file_id]:
            self.remove(key)
        for key in [k for k in self._pages if k[0] == old.file_id]:
            self._pages[(new.file_id, key[1])] = self._pages.pop(key)

    def recover(self) -> Iterator[RecoveredPage]:
        """Memory does not survive a restart."""
        return iter(())
