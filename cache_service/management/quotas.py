"""Quotas by mount: a mount's cached pages may take at most its configured share of each tier.

In a cluster a quota is the cluster's: a quota in bytes is split evenly among the active workers (each holds 1/N of
every mount's blocks), and a quota as a fraction of a tier is that fraction of every worker's tier, hence of the
cluster's."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from cache_service.namespace.mounts import MountConfig, MountTable
from cache_service.namespace.paths import normalize
from cache_service.page_store import ObjectIdentity


class MountQuotas:
    """The page store's ``QuotaPolicy``: an object's group is the mount its cache path resolves in.

    An object no mount covers belongs to the group "", which has no quota.
    """

    def __init__(
        self,
        mounts: MountTable,
        entries: Iterable[MountConfig],
        capacities: Mapping[str, int],
        workers: Callable[[], int] = lambda: 1,
    ) -> None:
        """Quotas of the mount table's ``entries`` for tiers of ``capacities`` (bytes by medium), shared by the
        ``workers()`` active workers of a cluster."""
        self._mounts = mounts
        self._workers = workers
        self._limits: dict[str, dict[str, int]] = {}
        self._in_bytes: set[tuple[str, str]] = set()
        for entry in entries:
            caps = {m: q for m, capacity in capacities.items() if (q := entry.quota_bytes(m, capacity)) is not None}
            if caps:
                self._limits[normalize(entry.path)] = caps
            self._in_bytes |= {(normalize(entry.path), m) for m, value in entry.quota if not isinstance(value, float)}

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
        """The most bytes mount ``group`` may hold in ``medium`` on this worker; None when it has no quota there."""
        limit = self._limits.get(group, {}).get(medium)
        if limit is None or (group, medium) not in self._in_bytes:
            return limit
        return limit // max(1, self._workers())

    def limits(self, group: str) -> dict[str, int]:
        """Every limit of mount ``group`` on this worker, by medium (empty without a quota)."""
        return {m: limit for m in self._limits.get(group, {}) if (limit := self.limit(group, m)) is not None}
