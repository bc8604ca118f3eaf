"""What bounds the page store from outside, handed to it at construction.

- ``ReservedSpace``: bytes on the disk tier that are not pages (staged files, parts of multipart uploads). They take
  room from pages and are never evicted. ``Reservations`` sums the areas that hold such bytes.
- ``EvictionGuard``: objects whose pages eviction and purge must leave alone (pinned paths). Pages being read are
  guarded by the store itself: their reader counts live in the page index, kept without a call on the read path.
- ``QuotaPolicy``: which group (mount) an object's pages count against, and how much of each tier a group may hold.

Each has a neutral value (``NOTHING_RESERVED``, ``NOTHING_GUARDED``, ``NO_QUOTAS``) for a store on its own.
"""

from __future__ import annotations

from typing import Protocol

from cache_service.page_store.identity import ObjectIdentity


class ReservedSpace(Protocol):
    """Something that holds bytes on the disk tier besides pages."""

    @property
    def used_bytes(self) -> int:
        """Bytes it holds now."""
        ...


class Reservations:
    """The sum of the areas of the disk tier that hold bytes other than pages.

    Each area registers once, by whoever builds it: the worker registers its staging area, the S3 API its multipart
    spool. The page store asks for the total when it needs room, so an area's use is always current.
    """

    def __init__(self, *areas: ReservedSpace) -> None:
        self._areas: list[ReservedSpace] = list(areas)

    def add(self, area: ReservedSpace) -> None:
        """Count ``area``'s bytes from now on."""
        self._areas.append(area)

    @property
    def used_bytes(self) -> int:
        """Bytes held by every registered area."""
        return sum(area.used_bytes for area in self._areas)


class EvictionGuard(Protocol):
    """Which objects' pages must stay however full a tier is."""

    def protects(self, owner: ObjectIdentity) -> bool:
        """True when no page of ``owner`` may be evicted or purged (it is pinned)."""
        ...


class QuotaPolicy(Protocol):
    """Quota groups and their limits per tier."""

    def group_of(self, owner: ObjectIdentity) -> str:
        """The group whose quota ``owner``'s pages count against ("" for none)."""
        ...

    def limit(self, group: str, medium: str) -> int | None:
        """The most bytes ``group`` may hold in tier ``medium``; None when it has no quota there."""
        ...


class _NothingReserved:
    used_bytes = 0


class _NothingGuarded:
    def protects(self, owner: ObjectIdentity) -> bool:
        return False


class _NoQuotas:
    def group_of(self, owner: ObjectIdentity) -> str:
        return ""

    def limit(self, group: str, medium: str) -> int | None:
        return None


NOTHING_RESERVED: ReservedSpace = _NothingReserved()
"""No bytes reserved: every byte of the disk tier is for pages."""
NOTHING_GUARDED: EvictionGuard = _NothingGuarded()
"""No object is pinned."""
NO_QUOTAS: QuotaPolicy = _NoQuotas()
"""One group, "", without limits."""
