"""The mount table: every cache path maps to exactly one S3 location, longest mount path first."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from urllib.parse import urlparse

from cache_service.access import READ, WRITE
from cache_service.namespace.paths import is_within, normalize

# S3's bucket rules, relaxed to the legacy us-east-1 ones (capitals, underscores, up to 255 characters) so that old
# buckets stay reachable; whatever passes holds no "/", "%" or "..", so it can only ever name one bucket.
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$")


def is_bucket_name(name: str) -> bool:
    """True when ``name`` can be an S3 bucket's name."""
    return bool(_BUCKET.match(name)) and ".." not in name


@dataclass(frozen=True)
class MountConfig:
    """One entry of the mount table (a ``[[mounts]]`` entry of the configuration): cache path ``path`` is the S3
    prefix ``uri``.

    ``quota`` caps the mount's share of a tier, per medium: bytes (int) or a fraction of the tier (float <= 1).
    ``read_only`` refuses every change through the cache, to everyone. ``users`` gives WebHDFS users (``user.name``)
    their access, ``read`` or ``write``; None (no table) lets everyone write, an empty table lets nobody in.
    """

    path: str
    uri: str
    quota: tuple[tuple[str, int | float], ...] = ()
    read_only: bool = False
    users: tuple[tuple[str, str], ...] | None = None

    def quota_bytes(self, medium: str, capacity: int) -> int | None:
        """The mount's cap in ``medium`` (of ``capacity`` bytes), or None when it has none."""
        for name, value in self.quota:
            if name == medium:
                return int(value * capacity) if isinstance(value, float) else value
        return None


@dataclass(frozen=True)
class Mount:
    """A cache path ``path`` backed by the S3 prefix ``bucket``/``prefix`` (``prefix`` has no trailing slash)."""

    path: str
    bucket: str
    prefix: str
    read_only: bool = False
    users: tuple[tuple[str, str], ...] | None = None
    """WebHDFS users and their access; None: everyone writes (or reads, in a read-only mount)."""

    @property
    def uri(self) -> str:
        """The mount's S3 URI."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def access_of(self, user: str) -> str | None:
        """The access WebHDFS user ``user`` has here: ``write``, ``read`` or None."""
        granted = WRITE if self.users is None else dict(self.users).get(user)
        return READ if self.read_only and granted is not None else granted


@dataclass(frozen=True)
class Location:
    """Where a cache path lives: its mount, its S3 bucket and key (``key`` is "" at a bucket-root mount's root)."""

    path: str
    mount: Mount
    bucket: str
    key: str

    @property
    def is_mount_point(self) -> bool:
        """True for the mount's own root."""
        return self.path == self.mount.path

    @property
    def uri(self) -> str:
        """The S3 URI of this location."""
        return f"s3://{self.bucket}/{self.key}"


def _parse_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme not in ("s3", "s3a") or not parsed.netloc:
        raise ValueError(f"mount uri {uri!r}: expected s3://bucket[/prefix]")
    prefix = parsed.path.strip("/")
    if any(p in (".", "..") or not p for p in prefix.split("/")) and prefix:
        raise ValueError(f"mount uri {uri!r}: prefix has empty, '.' or '..' components")
    return parsed.netloc, prefix


def _prefixes_overlap(a: str, b: str) -> bool:
    return not a or not b or is_within("/" + a, "/" + b) or is_within("/" + b, "/" + a)


class MountTable:
    """Resolves cache paths to S3 locations and back.

    Mount paths may nest (the longest prefix wins), but two mounts may not share a path, and their S3 URIs may not
    overlap: an S3 object must have exactly one cache path.
    """

    def __init__(self, mounts: Iterable[MountConfig]) -> None:
        problems: list[str] = []
        table: list[Mount] = []
        for m in mounts:
            try:
                path = normalize(m.path)
                if path == "/":
                    raise ValueError("cannot mount at '/'")
                bucket, prefix = _parse_uri(m.uri)
            except ValueError as exc:
                problems.append(f"mounts: {m.path!r}: {exc}")
                continue
            table.append(Mount(path=path, bucket=bucket, prefix=prefix, read_only=m.read_only, users=m.users))
        for i, a in enumerate(table):
            for b in table[i + 1 :]:
                if a.path == b.path:
                    problems.append(f"mounts: overlapping mounts: {a.path!r} is mounted twice")
                elif a.bucket == b.bucket and _prefixes_overlap(a.prefix, b.prefix):
                    problems.append(
                        f"mounts: overlapping mounts: {a.path!r} ({a.uri}) and {b.path!r} ({b.uri}) share S3 objects"
                    )
        if problems:
            raise ValueError("\n".join(problems))
        self._mounts = sorted(table, key=lambda m: len(m.path), reverse=True)

    @property
    def mounts(self) -> list[Mount]:
        """The mounts, longest path first."""
        return list(self._mounts)

    def resolve(self, path: str) -> Location:
        """The S3 location of normalised cache ``path``.

        Raises ``FileNotFoundError`` when the path lies outside every mount.
        """
        for mount in self._mounts:
            if is_within(path, mount.path):
                rel = path[len(mount.path) :].lstrip("/")
                key = f"{mount.prefix}/{rel}" if mount.prefix and rel else (mount.prefix or rel)
                return Location(path=path, mount=mount, bucket=mount.bucket, key=key)
        raise FileNotFoundError(f"File does not exist: {path} (outside every mount)")

    def to_path(self, bucket: str, key: str) -> str | None:
        """The cache path of S3 object ``bucket``/``key``, or None if no mount covers it.

        An object below a nested mount's path in its parent mount's prefix is shadowed (that path belongs to the
        nested mount), so it has no cache path either.
        """
        key = key.strip("/")
        for mount in self._mounts:
            if bucket != mount.bucket:
                continue
            if not mount.prefix:
                path = mount.path + ("/" + key if key else "")
            elif key == mount.prefix or key.startswith(mount.prefix + "/"):
                path = mount.path + key[len(mount.prefix) :]
            else:
                continue
            back = self.resolve(path)
            return path if (back.bucket, back.key) == (bucket, key) else None
        return None

    def cache_path(self, bucket: str, key: str) -> str | None:
        """The cache path of ``bucket``/``key``, or None: outside every mount, a mount point itself, or a key no path
        can name (``a//b``, ``a/../b``, a leading or trailing ``/``, control characters), which S3 then serves as it
        is. What any API may cache or serve from the cache; ``to_path`` alone also maps keys no path can name."""
        path = self.to_path(bucket, key)
        if path is None or key != key.strip("/"):
            return None
        try:
            if normalize(path) != path:
                return None
        except ValueError:
            return None
        return None if self.resolve(path).is_mount_point else path

    def holding(self, bucket: str, key: str) -> Mount | None:
        """The mount whose S3 prefix holds ``key`` of ``bucket`` (a path may name the key or not), or None."""
        for mount in self._mounts:
            if bucket == mount.bucket and (
                not mount.prefix or key.startswith(mount.prefix + "/") or key == mount.prefix
            ):
                return mount
        return None

    def mount_points_below(self, path: str) -> set[str]:
        """Names of the direct children of ``path`` that exist only because a mount lies at or below them."""
        names = set()
        for mount in self._mounts:
            if mount.path != path and is_within(mount.path, path):
                rest = mount.path[len(path.rstrip("/")) + 1 :]
                names.add(rest.split("/", 1)[0])
        return names

    def is_virtual_dir(self, path: str) -> bool:
        """True for "/" and for directories that are only ancestors of mount points (not inside any mount)."""
        return path == "/" or (
            bool(self.mount_points_below(path)) and not any(is_within(path, m.path) for m in self._mounts)
        )

    def is_hidden(self, path: str, hidden: Collection[str]) -> bool:
        """True when normalised ``path`` is out of sight of a caller who may not see the mounts at ``hidden`` (their
        paths): it lies in one of them, or it is a directory above mount points, "/" aside, and every mount below it
        is hidden. Such a path is left out of listings and content summaries."""
        if not hidden:
            return False
        try:
            return self.resolve(path).mount.path in hidden
        except FileNotFoundError:
            below = [m.path for m in self._mounts if is_within(m.path, path)]
            return path != "/" and bool(below) and all(p in hidden for p in below)
