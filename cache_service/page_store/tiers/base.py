"""The storage tier interface: a byte store for pages, with byte accounting against a capacity."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from cache_service.page_store.identity import ObjectIdentity, PageKey


@dataclass(frozen=True)
class RecoveredPage:
    """A page found in a persistent tier at start-up."""

    owner: ObjectIdentity
    index: int
    size: int
    checksum: int


class Tier(Protocol):
    """A store of page bytes. Methods are blocking; the page store decides which thread calls them."""

    medium: str
    capacity: int

    @property
    def used_bytes(self) -> int:
        """Bytes of pages held."""
        ...

    def write(self, owner: ObjectIdentity, index: int, data: bytes, checksum: int) -> None:
        """Store page ``index`` of ``owner``, replacing any previous copy. Raises ``OSError`` if it cannot."""
        ...

    def read(self, key: PageKey, start: int = 0, end: int | None = None) -> bytes | memoryview:
        """Bytes ``[start, end)`` of the page (all of it by default). Raises ``KeyError`` if it is not held."""
        ...

    def remove(self, key: PageKey) -> int:
        """Drop the page; returns the bytes freed (0 if it was not held)."""
        ...

    def rekey(self, old: ObjectIdentity, new: ObjectIdentity) -> None:
        """Give every page of ``old`` to ``new`` (same bytes, new identity) without copying where possible."""
        ...

    def recover(self) -> Iterator[RecoveredPage]:
        """Pages that survive a restart (none for volatile tiers)."""
        ...
