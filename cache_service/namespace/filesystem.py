"""The cache's file system: one namespace over S3 (through the mount table) and the staging area.

This is where HDFS semantics live (what exists, what a rename or a delete means); the protocol layers only translate
requests and errors. Inside, a missing path is ``FileNotFoundError``, an existing one ``FileExistsError``, a
mount point that may not change ``PermissionError``, and bad arguments ``ValueError``. Reads go through
``namespace.reads.ObjectReader``, which uses the status lookup here.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Collection, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field

from cache_service.config import WriteConfig
from cache_service.errors import DirectoryNotEmptyError, UnsupportedOperationError, disk_full_as
from cache_service.metadata import StatusCache
from cache_service.namespace.mounts import Location, MountTable
from cache_service.namespace.paths import basename, is_within, join, parent
from cache_service.namespace.status import ContentSummary, FileStatus, identity_of, published_status, staged_status
from cache_service.page_store import PageStore
from cache_service.under_store import ObjectStatus, UnderStore
from cache_service.write.staging import StagingArea
from cache_service.write.uploads import Uploader

__all__ = ["CacheFileSystem", "ContentSummary", "FileStatus"]

log = logging.getLogger(__name__)

_MEMO_ENTRIES = 65536
RETRY_WINDOW = 60.0
"""Seconds a RENAME done here is remembered, so that the same RENAME sent again answers true (a retry)."""


@dataclass(frozen=True, eq=False)
class CacheFileSystem:
    """HDFS-like operations on cache paths."""

    mounts: MountTable
    write_config: WriteConfig
    under: UnderStore
    status_cache: StatusCache
    pages: PageStore
    staging: StagingArea
    uploader: Uploader
    executor: Executor
    # Memos of the read path, both bounded: path -> its S3 location when it names a published object (not staging,
    # not a directory of mounts), and path -> the status built from the last ObjectStatus seen for it (so a warm
    # read reuses the object's identity and its file id instead of hashing it again).
    _published: dict[str, Location | None] = field(init=False, default_factory=dict)
    _statuses: dict[str, tuple[ObjectStatus, FileStatus]] = field(init=False, default_factory=dict)
    # Renames done lately, (src, dst) -> when, as HDFS's NameNode keeps a retry cache: a client whose answer was lost
    # (its worker died, a connection broke) sends the same RENAME again and must hear it succeeded, not false.
    _renamed: dict[tuple[str, str], float] = field(init=False, default_factory=dict)

    async def _run(self, fn, *args):  # type: ignore[no-untyped-def]
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def _objects_below(self, bucket: str, prefix: str) -> list[ObjectStatus]:
        return await self._run(lambda: list(self.under.list_recursive(bucket, prefix)))

    def is_staging(self, path: str) -> bool:
        """True for paths whose data stays in the cache until published."""
        return self.write_config.is_staging(path)

    # --- status and listings -----------------------------------------------------------------------------------

    async def status(self, path: str) -> FileStatus:
        """Status of normalised ``path``. Raises ``FileNotFoundError``."""
        found = await self.lookup(path)
        if found is None:
            raise FileNotFoundError(f"File does not exist: {path}")
        return found

    async def lookup(self, path: str) -> FileStatus | None:
        """Status of normalised ``path``, or None if nothing is there. Raises ``FileNotFoundError`` outside mounts."""
        if self.mounts.is_virtual_dir(path):
            return FileStatus(path=path, is_dir=True)
        loc = self.mounts.resolve(path)
        if self.is_staging(path):
            staged = self.staging.stat(path)
            return None if staged is None else staged_status(staged)
        # Published files are the hot path: the status cache answers them without touching the staging area.
        published = await self._object_status(loc)
        if published is not None:
            return published
        staged = self.staging.stat(path)
        if staged is not None and self.staging.children(path):
            # a non-staging directory that so far holds only staged data (e.g. a table's _temporary)
            return staged_status(staged)
        if loc.is_mount_point:
            return FileStatus(path=path, is_dir=True)
        listing = await self.status_cache.listing(loc.bucket, _dir_prefix(loc.key))
        return FileStatus(path=path, is_dir=True) if listing.exists else None

    async def current(self, path: str) -> FileStatus | None:
        """``lookup``, with a published file's status asked of S3 rather than the status cache
        (``StatusCache.recheck``): what a change of the file's bytes builds on. Raises ``FileNotFoundError``
        outside mounts."""
        if not self.mounts.is_virtual_dir(path) and not self.is_staging(path):
            loc = self.mounts.resolve(path)
            if loc.key and not loc.is_mount_point:
                await self.status_cache.recheck(loc.bucket, loc.key)
        return await self.lookup(path)

    async def list(self, path: str, *, hidden: Collection[str] = ()) -> list[FileStatus]:
        """Children of directory ``path`` sorted by name, or ``[status]`` for a file; what ``MountTable.is_hidden``
        hides of the mounts at ``hidden`` (those the caller may not see) is left out. Raises ``FileNotFoundError``."""
        st = await self.status(path)
        if not st.is_dir:
            return [st]
        children: dict[str, FileStatus] = {}
        if not self.mounts.is_virtual_dir(path) and not self.is_staging(path):
            loc = self.mounts.resolve(path)
            prefix = _dir_prefix(loc.key)
            listing = await self.status_cache.listing(loc.bucket, prefix)
            for obj in listing.objects:
                name = obj.key[len(prefix) :]
                if _addressable(name):
                    children[name] = published_status(join(path, name), obj)
            for sub in listing.prefixes:
                name = sub[len(prefix) :]
                if _addressable(name):
                    children[name] = FileStatus(path=join(path, name), is_dir=True)
        for entry in self.staging.children(path):
            children[basename(entry.path)] = staged_status(entry)
        for name in self.mounts.mount_points_below(path):
            children.setdefault(name, FileStatus(path=join(path, name), is_dir=True))
        return [children[name] for name in sorted(children) if not self.mounts.is_hidden(children[name].path, hidden)]

    async def content_summary(self, path: str, *, hidden: Collection[str] = ()) -> ContentSummary:
        """Total length, file count and directory count at or below ``path``, the mounts below it included (so "/"
        sums every mount); the mounts at ``hidden`` (those the caller may not see) are left out, as their directories
        are. Raises ``FileNotFoundError``."""
        st = await self.status(path)
        if not st.is_dir:
            return ContentSummary(st.length, 1, 0)
        length, files, dirs = 0, 0, {path}
        for top, loc in self._subtrees(path, hidden):
            if top != path:  # a mount below: its point and the directories leading to it
                leading = [up for up in _ancestors(top) if is_within(up, path)]
                dirs.update(up for up in leading if not self.mounts.is_hidden(up, hidden))
            shadowed = [m.path for m in self.mounts.mounts if m.path != loc.mount.path and is_within(m.path, top)]
            prefix = _dir_prefix(loc.key)
            for obj in await self._objects_below(loc.bucket, prefix):
                rel = obj.key[len(prefix) :]
                if any(is_within(join(top, rel.rstrip("/")), nested) for nested in shadowed):
                    continue  # keys a nested mount's path hides: that mount counts its own
                parts = rel.split("/")
                for depth in range(1, len(parts)):
                    dirs.add(join(top, "/".join(parts[:depth])))
                if not rel.endswith("/"):
                    length += obj.size
                    files += 1
        for entry in self.staging.walk(path):
            if self.mounts.is_hidden(entry.path, hidden):
                continue
            if entry.is_dir:
                dirs.add(entry.path)
            else:
                length, files = length + entry.size, files + 1
        return ContentSummary(length, files, len(dirs))

    def _subtrees(self, path: str, hidden: Collection[str]) -> Iterator[tuple[str, Location]]:
        """Where the published files at or below directory ``path`` are: ``path`` in its own mount (unless it is a
        staging path or above every mount), then each mount point below it; none of the mounts at ``hidden``."""
        tops = [m.path for m in self.mounts.mounts if m.path != path and is_within(m.path, path)]
        if not self.mounts.is_virtual_dir(path) and not self.is_staging(path):
            tops.insert(0, path)
        for top in tops:
            loc = self.mounts.resolve(top)
            if loc.mount.path not in hidden:
                yield top, loc

    async def checksum(self, path: str) -> tuple[str, bytes]:
        """An HDFS-shaped file checksum (algorithm name, 28 bytes): equal for equal S3 identities.

        Derived from the ETag and length, so it costs no data read. Raises ``FileNotFoundError`` for a missing
        path and ``IsADirectoryError`` for a directory.
        """
        st = await self.status(path)
        if st.is_dir:
            raise IsADirectoryError(f"Path is not a file: {path}")
        digest = hashlib.md5(usedforsecurity=False)
        if st.object is not None:
            digest.update(f"{st.object.etag}:{st.length}".encode())
        else:
            with open(self.staging.local(path), "rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
        return "MD5-of-0MD5-of-512CRC32C", struct.pack(">iq", 512, 0) + digest.digest()

    # --- published objects: the status lookup of the read path ------------------------------------------------

    async def object_status(self, path: str) -> FileStatus | None:
        """Status of the S3 object ``path`` names (staged data and directories aside); None if there is none.

        Raises ``FileNotFoundError`` outside every mount.
        """
        return await self._object_status(self.mounts.resolve(path))

    async def _object_status(self, loc: Location) -> FileStatus | None:
        if not loc.key or loc.is_mount_point:
            return None
        obj = await self.status_cache.head(loc.bucket, loc.key)
        return None if obj is None else self._file_status(loc.path, obj)

    def known_status(self, path: str) -> FileStatus | None:
        """``status`` of a published file, now, if the status cache holds it fresh; None for anything else."""
        loc = self._published_location(path)
        if loc is None:
            return None
        obj = self.status_cache.known(loc.bucket, loc.key)
        return None if obj is None else self._file_status(path, obj)

    def _published_location(self, path: str) -> Location | None:
        if path in self._published:
            return self._published[path]
        loc: Location | None = None
        if not self.mounts.is_virtual_dir(path) and not self.is_staging(path):
            try:
                found = self.mounts.resolve(path)
            except FileNotFoundError:  # outside every mount: ``open`` says so
                found = None
            loc = found if found is not None and found.key and not found.is_mount_point else None
        if len(self._published) >= _MEMO_ENTRIES:
            self._published.clear()
        self._published[path] = loc
        return loc

    def _file_status(self, path: str, obj: ObjectStatus) -> FileStatus:
        memo = self._statuses.get(path)
        if memo is not None and memo[0] is obj:
            return memo[1]
        st = published_status(path, obj)
        if len(self._statuses) >= _MEMO_ENTRIES:
            self._statuses.clear()
        self._statuses[path] = (obj, st)
        return st

    def forget(self, path: str) -> None:
        """Drop cached metadata of ``path`` (after a stale read) so the next lookup asks S3."""
        loc = self.mounts.resolve(path)
        self.status_cache.forget(loc.bucket, loc.key)

    # --- writes ------------------------------------------------------------------------------------------------

    async def create(self, path: str, body: AsyncIterator[bytes], *, overwrite: bool) -> FileStatus:
        """Write a file from ``body``. Staging paths stay in the cache; other paths are acknowledged only once in S3.

        Raises ``FileExistsError`` (exists and not ``overwrite``, or a directory is there), ``FileNotFoundError``
        outside every mount, ``NotADirectoryError`` when the parent is a file.
        """
        loc = self.mounts.resolve(path)
        existing = await self.lookup(path)
        if existing is not None:
            if existing.is_dir:
                raise FileExistsError(f"{path} already exists as a directory")
            if not overwrite:
                raise FileExistsError(f"{path} already exists")
        await self._check_parent_is_dir(path)
        if self.is_staging(path):
            tmp = self.staging.new_file(path)
            try:
                with disk_full_as(path):
                    await _drain_to(body, tmp.as_posix())
                    size = self.staging.commit(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
            return FileStatus(path=path, is_dir=False, length=size, staged=True)
        spool = self.uploader.spool_file()
        try:
            with disk_full_as(path):
                await _drain_to(body, spool.as_posix())
            obj = await self.uploader.upload(loc.bucket, loc.key, spool)
        finally:
            spool.unlink(missing_ok=True)
        return published_status(path, obj)

    async def _check_parent_is_dir(self, path: str) -> None:
        up = parent(path)
        if self.mounts.is_virtual_dir(up):
            return
        st = await self.lookup(up)
        if st is not None and not st.is_dir:
            raise NotADirectoryError(f"Parent path is not a directory: {up}")

    async def mkdirs(self, path: str) -> bool:
        """Create directory ``path`` with its parents. Raises ``FileExistsError`` if a file is in the way."""
        st = await self.lookup(path)
        if st is not None:
            if not st.is_dir:
                raise FileExistsError(f"Parent path is not a directory: {path}")
            return True
        await self._check_parent_is_dir(path)
        if self.is_staging(path):
            self.staging.mkdirs(path)
            return True
        loc = self.mounts.resolve(path)
        marker = await self._run(self.under.put_bytes, loc.bucket, _dir_prefix(loc.key), b"")
        self.status_cache.record(marker)
        return True

    async def rename(self, src: str, dst: str) -> bool:
        """Move ``src`` to ``dst`` with HDFS semantics; False when HDFS would refuse quietly.

        Moving staged data to a non-staging path publishes it: this returns only once every byte is in S3.
        Moving published data copies it within S3 and re-keys its cached pages. Raises ``PermissionError`` for
        mount points and ``UnsupportedOperationError`` across buckets.
        """
        for p in (src, dst):
            if self.mounts.is_virtual_dir(p) and p == src:
                raise PermissionError(f"Cannot rename {p}: it is the namespace root")
        if any(m.path == src for m in self.mounts.mounts):
            raise PermissionError(f"Cannot rename mount point {src}")
        asked = dst
        src_st = await self.lookup(src)
        if src_st is None:
            return time.monotonic() - self._renamed.get((src, dst), -RETRY_WINDOW) < RETRY_WINDOW
        if src == dst:
            return not src_st.is_dir
        if is_within(dst, src):
            return False
        dst_st = await self.lookup(dst)
        if dst_st is not None:
            if not dst_st.is_dir:
                return False
            dst = join(dst, src_st.name)
            if await self.lookup(dst) is not None:
                return False
        else:
            up = await self.lookup(parent(dst))
            if up is None or not up.is_dir:
                return False
        src_loc, dst_loc = self.mounts.resolve(src), self.mounts.resolve(dst)
        if not self.is_staging(src) and src_loc.bucket != dst_loc.bucket:
            raise UnsupportedOperationError(f"Cannot rename across buckets: {src_loc.uri} -> {dst_loc.uri}")
        if self.staging.stat(src) is not None:
            await self._move_staged(src, dst)
        if not self.is_staging(src):
            await self._move_objects(src_loc, dst_loc, src_st)
        self._remember_rename(src, asked)
        return True

    def _remember_rename(self, src: str, dst: str) -> None:
        now = time.monotonic()
        if len(self._renamed) > 4096:
            for old in [k for k, t in self._renamed.items() if now - t >= RETRY_WINDOW]:
                del self._renamed[old]
        self._renamed[(src, dst)] = now

    async def _move_staged(self, src: str, dst: str) -> None:
        """Move the staged tree at ``src``: to staging paths locally, to other paths by publishing to S3."""
        if self.is_staging(dst):
            self.staging.rename(src, dst)
            return
        entries = list(self.staging.walk(src))
        uploads: list[Awaitable[object]] = []
        for entry in entries:
            target = dst + entry.path[len(src) :]
            if self.is_staging(target):
                continue
            loc = self.mounts.resolve(target)
            if not entry.is_dir:
                uploads.append(self.uploader.upload(loc.bucket, loc.key, self.staging.local(entry.path)))
            elif not any(e.path != entry.path and is_within(e.path, entry.path) for e in entries):
                uploads.append(self.uploader.mark_directory(loc.bucket, _dir_prefix(loc.key)))
        await asyncio.gather(*uploads)
        # Everything bound for S3 is durable now; entries bound for nested staging paths move locally.
        for entry in entries:
            target = dst + entry.path[len(src) :]
            if not entry.is_dir and self.is_staging(target):
                self.staging.rename(entry.path, target)
        self.staging.remove(src)
        self.staging.prune_empty_parents(src, keep=self.is_staging)

    async def _move_objects(self, src_loc: Location, dst_loc: Location, src_st: FileStatus) -> None:
        if not src_st.is_dir:
            assert src_st.object is not None
            await self.uploader.move(src_st.object, dst_loc.key)
            return
        src_prefix, dst_prefix = _dir_prefix(src_loc.key), _dir_prefix(dst_loc.key)
        objects = await self._objects_below(src_loc.bucket, src_prefix)
        moves = []
        for obj in objects:
            moves.append(self.uploader.move(identity_of(obj), dst_prefix + obj.key[len(src_prefix) :]))
        await asyncio.gather(*moves)
        if not objects:
            await self.uploader.mark_directory(dst_loc.bucket, dst_prefix)
        self.status_cache.forget_prefix(src_loc.bucket, src_prefix)
        self.status_cache.forget_prefix(dst_loc.bucket, dst_prefix)

    async def delete(self, path: str, *, recursive: bool) -> bool:
        """Delete a file or directory from S3, the cache and the staging area; False if nothing was there.

        Raises ``PermissionError`` for mount points and ``OSError`` for a non-empty directory without ``recursive``.
        """
        if self.mounts.is_virtual_dir(path) or any(m.path == path for m in self.mounts.mounts):
            raise PermissionError(f"Cannot delete mount point {path}")
        st = await self.lookup(path)
        if st is None:
            return False
        if st.is_dir and not recursive and await self.list(path):
            raise DirectoryNotEmptyError(f"`{path} is non empty': Directory is not empty")
        self.staging.remove(path)
        self.staging.prune_empty_parents(path, keep=self.is_staging)
        if self.is_staging(path):
            return True
        loc = self.mounts.resolve(path)
        if not st.is_dir:
            await self.uploader.delete(loc.bucket, [loc.key])
            return True
        prefix = _dir_prefix(loc.key)
        objects = await self._objects_below(loc.bucket, prefix)
        await self.uploader.delete(loc.bucket, [o.key for o in objects] + [prefix])
        self.status_cache.forget_prefix(loc.bucket, prefix)
        return True


def _ancestors(path: str) -> list[str]:
    """``path`` and each directory above it, "/" included."""
    found = [path]
    while path != "/":
        path = parent(path)
        found.append(path)
    return found


def _dir_prefix(key: str) -> str:
    return f"{key}/" if key else ""


def _addressable(name: str) -> bool:
    """S3 keys can hold names a path cannot ("a//b", ".."); those stay invisible rather than break listings."""
    return bool(name) and name not in (".", "..") and "/" not in name


async def _drain_to(body: AsyncIterator[bytes], local_path: str) -> None:
    with open(local_path, "wb") as f:
        async for chunk in body:
            f.write(chunk)
