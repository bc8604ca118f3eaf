"""The one way the cache reads data for a client: WebHDFS ``OPEN``, S3 ``GetObject``/``HeadObject`` and the source of
an S3 ``UploadPartCopy`` all go through ``ObjectReader``.

It looks up what a read is of (through the file system's status lookup, which names a published file's S3 object
version: bucket, key and ETag), works out how many bytes the read returns, and starts it: the first bytes are in
hand before the caller sends anything, so a read that cannot start is still an error the caller can report. If the
object changed in S3 since its status was cached (``StaleObjectError``), its status is forgotten and the read starts
over, once, with the new version; if the object is gone, its status is forgotten and ``FileNotFoundError`` raised.

Bytes of published files come from the page store, bytes of staged files from the staging area. In a cluster the
``BlockRouter`` sends each block's part of a read to the block's owner (the page store here when this worker owns
it). An object no cache path names (a copy source outside every mount) streams from S3 uncached
(``PageStore.pass_through``). The protocol layers only parse, authorise and render around this.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from cache_service.cluster.member import Member
from cache_service.cluster.routing import BlockRouter
from cache_service.cluster.view import Segment
from cache_service.errors import StaleObjectError
from cache_service.metadata import StatusCache
from cache_service.namespace.mounts import MountTable
from cache_service.namespace.status import FileStatus, identity_of
from cache_service.page_store import ObjectIdentity, PageStore
from cache_service.under_store import ObjectStatus
from cache_service.write.staging import StagingArea

Chunk = bytes | memoryview
Span = tuple[int, int]
"""Bytes ``[start, end)`` of a file."""


class FileLookup(Protocol):
    """What the read path asks of the file system (``CacheFileSystem``): statuses, and where paths' bytes are."""

    @property
    def mounts(self) -> MountTable:
        """The mount table."""
        ...

    @property
    def staging(self) -> StagingArea:
        """Where staged files' bytes are."""
        ...

    async def status(self, path: str) -> FileStatus:
        """Status of ``path`` (a published or staged file, or a directory). Raises ``FileNotFoundError``."""
        ...

    async def object_status(self, path: str) -> FileStatus | None:
        """Status of the S3 object ``path`` names, or None. Raises ``FileNotFoundError`` outside every mount."""
        ...

    def known_status(self, path: str) -> FileStatus | None:
        """Status of a published file if the status cache holds it fresh, without waiting; None otherwise."""
        ...

    def forget(self, path: str) -> None:
        """Drop what is cached of ``path``'s status, so that the next lookup asks S3."""
        ...


class ReadPlan(Protocol):
    """What a caller answers for one version of a file; ``span`` is the bytes that answer needs (None: none)."""

    @property
    def span(self) -> Span | None:
        """Bytes ``[start, end)`` to read for the answer, or None when it sends no bytes (HEAD, 304)."""
        ...


PlanT = TypeVar("PlanT", bound=ReadPlan)


@dataclass(frozen=True)
class OpenRead:
    """A started read of ``count`` bytes from ``offset`` of the file ``status`` describes.

    ``first`` is the first chunk (None when there are no bytes) and ``rest`` the others; close ``rest`` (``aclose``)
    when done, whether or not it was read to its end.
    """

    status: FileStatus
    offset: int
    count: int
    first: Chunk | None
    rest: AsyncIterator[Chunk]


@dataclass(frozen=True)
class _Range:
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class ObjectReader:
    """Reads of files and objects, with the stale-ETag retry; see the module's docstring."""

    files: FileLookup
    status: StatusCache
    pages: PageStore
    router: BlockRouter | None = None
    """Where blocks are read in a cluster; None for a worker alone (it owns every block)."""

    def cache_path(self, bucket: str, key: str) -> str | None:
        """The cache path of ``bucket``/``key``, or None: outside every mount, a mount point itself, or a key no path
        can name (``a//b``, ``a/../b``, a trailing ``/``, control characters), which S3 then serves as it is."""
        return self.files.mounts.cache_path(bucket, key)

    # --- reads of files (WebHDFS) and of objects with a cache path (S3) --------------------------------------------

    async def open(self, path: str, offset: int, length: int | None) -> OpenRead:
        """Start reading file ``path`` (published or staged) at ``offset``: ``length`` bytes, or to the end.

        Raises ``FileNotFoundError``, ``IsADirectoryError``, ``ValueError`` when ``offset`` is past the end, and what
        the page store raises for a page it cannot fetch (``UnderStoreUnavailableError``, or ``StaleObjectError`` when
        the object changed again since the retry).
        """

        def whole(st: FileStatus) -> _Range:
            if st.is_dir:
                raise IsADirectoryError(f"Path is not a file: {path}")
            if offset > st.length:
                raise ValueError(f"Offset={offset} out of the range [0, {st.length}]: {path}")
            return _Range((offset, offset + st.read_count(offset, length)))

        return (await self._open(path, self.files.status, whole))[1]

    async def open_object(self, path: str, plan: Callable[[FileStatus], PlanT]) -> tuple[PlanT, OpenRead]:
        """Start reading the S3 object cache path ``path`` names (staged data and directories aside).

        ``plan`` sees the object's status and says what the caller will answer for that version, including the bytes
        to read; it may raise to refuse (a failed precondition). After a stale read it sees the new version too. Returns
        the plan for the version read, with the read. Raises ``FileNotFoundError`` when there is no such object, and
        what ``open`` raises for pages.
        """
        return await self._open(path, self._object_status, plan)

    async def _object_status(self, path: str) -> FileStatus:
        st = await self.files.object_status(path)
        if st is None:
            raise FileNotFoundError(f"No such object: {path}")
        return st

    async def _open(
        self, path: str, lookup: Callable[[str], Awaitable[FileStatus]], plan: Callable[[FileStatus], PlanT]
    ) -> tuple[PlanT, OpenRead]:
        for attempt in (1, 2):
            st = await lookup(path)
            chosen = plan(st)
            start, end = chosen.span or (0, 0)
            if end <= start:
                return chosen, OpenRead(st, start, 0, None, _no_chunks())
            chunks = self._chunks(path, st, start, end - start)
            try:
                first = await anext(chunks, None)
            except StaleObjectError:
                # The object changed in S3 since its status was cached: look again, once.
                self.files.forget(path)
                if attempt == 2:
                    raise
                continue
            except FileNotFoundError:
                # Deleted behind the cache's back: its cached status is wrong too.
                self.files.forget(path)
                raise
            return chosen, OpenRead(st, start, end - start, first, chunks)
        raise AssertionError("unreachable: the loop returns or raises")

    def _chunks(self, path: str, st: FileStatus, offset: int, count: int) -> AsyncIterator[Chunk]:
        if st.object is not None:
            return self._published(st.object, offset, count)
        return _read_local(self.files.staging.local(path).as_posix(), offset, count)

    def _published(self, obj: ObjectIdentity, offset: int, count: int) -> AsyncIterator[Chunk]:
        if self.router is None:
            return self.pages.read(obj, offset, count)
        return self.router.read(obj, offset, count, lambda start, n: self.pages.read(obj, start, n))

    # --- where data lives in a cluster ---------------------------------------------------------------------------

    def owner_elsewhere(self, st: FileStatus, offset: int) -> Member | None:
        """The other worker that owns the block of ``st`` holding byte ``offset``; None when this worker owns it,
        for staged files (they are read where they are) and for a worker alone."""
        if self.router is None or st.object is None:
            return None
        return self.router.owner_elsewhere(st.object, offset)

    def blocks(self, st: FileStatus, start: int, end: int) -> list[Segment] | None:
        """The blocks of ``st`` that bytes ``[start, end)`` touch, each with its workers (owner first); None for a
        worker alone and for staged files, which live where they were written."""
        if self.router is None or st.object is None:
            return None
        return self.router.blocks(st.object, start, end)

    def read_in_memory(self, path: str, offset: int, length: int | None, *, most: int) -> Sequence[Chunk] | None:
        """What ``open`` would read, now, when it needs no wait: a published file whose status is fresh in the status
        cache and whose pages in range (at most ``most`` bytes) are all in memory. None otherwise, and for anything
        ``open`` would refuse: the caller then takes ``open``, which answers it properly.
        """
        st = self.files.known_status(path)
        if st is None or st.object is None or offset > st.length:
            return None
        count = st.read_count(offset, length)
        if count > most:
            return None
        return self.span_in_memory(st, offset, count)

    def span_in_memory(self, st: FileStatus, offset: int, count: int) -> Sequence[Chunk] | None:
        """Bytes ``[offset, offset + count)`` of the published file ``st`` (a status ``known_status`` gave), now, if
        every page they span is in memory; None otherwise, with nothing counted or touched."""
        if st.object is None:
            return None
        return self.pages.read_in_memory(st.object, offset, count)

    # --- reads of any object (S3 UploadPartCopy) -------------------------------------------------------------------

    async def head(self, bucket: str, key: str) -> ObjectStatus | None:
        """The status of object ``bucket``/``key``, inside a mount or not; None if there is no such object.

        Raises ``UnderStoreUnavailableError``.
        """
        return await self.status.head(bucket, key)

    async def read_range(self, obj: ObjectStatus, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``[start, end)`` of ``obj``: from the page store when it has a cache path, else from S3 uncached.

        Raises ``StaleObjectError`` if the object changed since ``obj`` was read, ``FileNotFoundError`` (its status
        forgotten) if it is gone.
        """
        try:
            if self.cache_path(obj.bucket, obj.key) is not None:
                async for chunk in self._published(identity_of(obj), start, end - start):
                    yield bytes(chunk)
            else:
                async for piece in self.pages.pass_through(identity_of(obj), start, end):
                    yield piece
        except FileNotFoundError:
            self.status.forget(obj.bucket, obj.key)
            raise


async def _no_chunks() -> AsyncIterator[Chunk]:
    return
    yield  # an async generator, so that it can be closed like any other read


async def _read_local(local_path: str, offset: int, count: int) -> AsyncIterator[bytes]:
    with open(local_path, "rb") as f:
        f.seek(offset)
        while count > 0:
            block = f.read(min(count, 1 << 20))
            if not block:
                break
            count -= len(block)
            yield block
