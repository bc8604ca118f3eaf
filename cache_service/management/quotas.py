"""Quotas by mount: a mount's cached pages may take at most its configured share of each tier."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cache_service.namespace.mounts import MountConfig, MountTable
from cache_service.namespace.paths import normalize
from cache_service.page_store import ObjectIdentity


class MountQuotas:
    """The page store's ``QuotaPolicy``: an object's group is the mount its cache path resolves in.

    An object no mount covers belongs to the group "", which has no quota.
    """

    def __init__(self, mounts: MountTable, entries: Iterable[MountConfig], capacities: Mapping[str, int]) -> None:
        """Quotas of the mount table's ``entries`` for tiers of ``capacities`` (bytes by medium)."""
        self._mounts = mounts
        self._limits: dict[str, dict[str, int]] = {}
        for entry in entries:
            caps = {m: q for m, capacity in capacities.items() if (q := entry.quota_bytes(m, capacity)) is not None}
            if caps:
                self._limits[normalize(entry.path)] = caps

    def group_of(self, owner: ObjectIdentity) -> str:
        """The path of the mount holding ``owner``, or "" when no mount covers it."""
        path = self._mounts.to_path(owner.bucket, owner.key)
        return "" if path is None else self.mount_of(path)

    def mount_of(self, path: str) -> str:
        """The path of the mount that resolves cache ``path`` (the innermost), or "" outside every mount."""
        try:
            return self._mounts.resolve(path).mount.path
        except FileNotFoundError:
            return ""

    def limit(self, group: str, medium: str) -> int | None:
        """The most bytes mount ``group`` may hold in ``medium``; None when it has no quota there."""
        return self._limits.get(group, {}).get(medium)

    def limits(self, group: str) -> dict[str, int]:
        """Every limit of mount ``group``, by medium (empty without a quota)."""
        return dict(self._limits.get(group, {}))
