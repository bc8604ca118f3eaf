"""Changes to a file's bytes after it was written: HDFS's APPEND, TRUNCATE and CONCAT.

S3 objects cannot change in place, so a published file changes by becoming a new object version: its new bytes are
assembled in a local spool file (the old bytes read through ``ObjectReader``, so from the cache's pages where they are
cached, the appended ones from the request) and uploaded write-through, as CREATE does. The upload caches every page of
the new version from the spool file (``Uploader.upload`` ingests it), so the untouched prefix is read from the cache
afterwards without asking S3, and the old version's pages go. A staged file changes on the cache's disk, atomically
(a new local file replaces the old one). A new object version keeps the old one's S3 metadata (Content-Type,
``x-amz-meta-*``, ...).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

from cache_service.errors import disk_full_as
from cache_service.namespace.filesystem import CacheFileSystem
from cache_service.namespace.paths import parent
from cache_service.namespace.reads import ObjectReader
from cache_service.namespace.status import FileStatus, published_status


@dataclass(frozen=True, eq=False)
class FileChanges:
    """APPEND, TRUNCATE and CONCAT on cache paths; see the module docstring."""

    fs: CacheFileSystem
    reads: ObjectReader
    _writers: dict[str, tuple[asyncio.Lock, int]] = field(init=False, default_factory=dict)
    """One lock per file being changed: two changes of one file on this worker take turns (as HDFS's lease makes
    writers of one file), so neither loses the other's bytes. The count is of the changes holding or awaiting it."""

    async def file(self, path: str, *, current: bool = True) -> FileStatus:
        """Status of the existing file ``path``: a published one as S3 holds it now (``CacheFileSystem.current``),
        what a change builds on, or, without ``current``, as the status cache has it (enough to say whether it is
        there, as the first step of a two-step APPEND does). Raises ``FileNotFoundError`` for a missing path or a
        directory."""
        st = await (self.fs.current(path) if current else self.fs.lookup(path))
        if st is None:
            raise FileNotFoundError(f"File does not exist: {path}")
        if st.is_dir:
            raise FileNotFoundError(f"Path is not a file: {path}")
        return st

    async def append(self, path: str, body: AsyncIterator[bytes]) -> FileStatus:
        """Add ``body``'s bytes to the end of file ``path``. Raises ``FileNotFoundError`` (missing, a directory)."""
        async with self._writing(path):
            return await self._append(path, body)

    async def _append(self, path: str, body: AsyncIterator[bytes]) -> FileStatus:
        st = await self.file(path)
        first = await anext(body, None)
        if not first:  # nothing to add (fsspec closes a file with an empty APPEND): no new version
            async for chunk in body:
                if chunk:
                    first = chunk
                    break
            else:
                return st

        async def fill(out: BinaryIO) -> None:
            await self._copy(path, st.length, out)
            out.write(first)
            async for chunk in body:
                out.write(chunk)

        return await self._rewrite(path, st, fill)

    async def truncate(self, path: str, new_length: int) -> FileStatus:
        """Cut file ``path`` to ``new_length`` bytes. Raises ``FileNotFoundError`` and ``ValueError`` (longer than
        the file)."""
        async with self._writing(path):
            return await self._truncate(path, new_length)

    async def _truncate(self, path: str, new_length: int) -> FileStatus:
        st = await self.file(path)
        if new_length > st.length:
            raise ValueError(
                f"Cannot truncate {path} to a larger file size: newlength={new_length} > length={st.length}"
            )
        if new_length == st.length:
            return st

        async def fill(out: BinaryIO) -> None:
            await self._copy(path, new_length, out)

        return await self._rewrite(path, st, fill)

    async def concat(self, target: str, sources: list[str]) -> FileStatus:
        """Append the files ``sources`` to ``target`` in order, then delete them (HDFS's CONCAT: every file in the
        target's directory). Raises ``FileNotFoundError`` and ``ValueError``."""
        async with self._writing(target):
            return await self._concat(target, sources)

    async def _concat(self, target: str, sources: list[str]) -> FileStatus:
        if not sources:
            raise ValueError('Invalid value for webhdfs parameter "sources": no source files given')
        if len(set(sources)) != len(sources) or target in sources:
            raise ValueError(f"concat: the sources must be distinct and differ from the target {target}")
        st = await self.file(target)
        found = [await self.file(source) for source in sources]
        for source in sources:
            if parent(source) != parent(target):
                raise ValueError(f"concat: source {source} is not in the target's directory {parent(target)}")
            if self.fs.is_staging(source) != self.fs.is_staging(target):
                raise ValueError(f"concat: {source} and {target} must both be staged or both be published")

        async def fill(out: BinaryIO) -> None:
            await self._copy(target, st.length, out)
            for source, source_st in zip(sources, found, strict=True):
                await self._copy(source, source_st.length, out)

        result = await self._rewrite(target, st, fill)
        for source in sources:
            await self.fs.delete(source, recursive=False)
        return result

    @asynccontextmanager
    async def _writing(self, path: str) -> AsyncIterator[None]:
        lock, users = self._writers.get(path, (asyncio.Lock(), 0))
        self._writers[path] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._writers[path]
            if users == 1:
                del self._writers[path]
            else:
                self._writers[path] = (lock, users - 1)

    # --- the new bytes --------------------------------------------------------------------------------------------

    async def _copy(self, path: str, count: int, out: BinaryIO) -> None:
        """Write the first ``count`` bytes of file ``path`` to ``out``."""
        if count == 0:
            return
        read = await self.reads.open(path, 0, count)
        try:
            if read.first is not None:
                out.write(read.first)
            async for chunk in read.rest:
                out.write(chunk)
        finally:
            await read.rest.aclose()  # type: ignore[attr-defined]

    async def _rewrite(self, path: str, st: FileStatus, fill) -> FileStatus:  # type: ignore[no-untyped-def]
        """Make ``fill``'s bytes the new content of file ``path`` (status ``st``)."""
        if st.staged:
            tmp = self.fs.staging.new_file(path)
            try:
                with disk_full_as(path):
                    with open(tmp, "wb") as out:
                        await fill(out)
                    size = self.fs.staging.commit(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
            return FileStatus(path=path, is_dir=False, length=size, staged=True)
        loc = self.fs.mounts.resolve(path)
        current = await self.fs.status_cache.head(loc.bucket, loc.key)
        metadata = None if current is None else current.metadata  # the new version keeps Content-Type and the rest
        spool = self.fs.uploader.spool_file()
        try:
            with disk_full_as(path), open(spool, "wb") as out:
                await fill(out)
            obj = await self.fs.uploader.upload(loc.bucket, loc.key, spool, metadata)
        finally:
            spool.unlink(missing_ok=True)
        return published_status(path, obj)
