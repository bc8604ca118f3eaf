"""What the namespace says of a path: ``FileStatus`` and ``ContentSummary``, and how S3's and the staging area's
answers become one.
"""

from __future__ import annotations

from dataclasses import dataclass

from cache_service.namespace.paths import basename
from cache_service.page_store import ObjectIdentity
from cache_service.under_store import ObjectStatus
from cache_service.write.staging import StagedEntry


@dataclass(frozen=True)
class FileStatus:
    """A file or directory as clients see it. ``object`` names the S3 object version of a published file."""

    path: str
    is_dir: bool
    length: int = 0
    mtime: float = 0.0
    object: ObjectIdentity | None = None
    staged: bool = False

    @property
    def name(self) -> str:
        """The last path component."""
        return basename(self.path)

    def read_count(self, offset: int, length: int | None) -> int:
        """Bytes a read of ``length`` (None: to the end) from ``offset`` (at most the length) returns."""
        return self.length - offset if length is None else min(length, self.length - offset)


@dataclass(frozen=True)
class ContentSummary:
    """Totals below a path."""

    length: int
    files: int
    directories: int


def identity_of(obj: ObjectStatus) -> ObjectIdentity:
    """The identity of the object version S3 described: what its cached pages are keyed by."""
    return ObjectIdentity(obj.bucket, obj.key, obj.etag, obj.size)


def published_status(path: str, obj: ObjectStatus) -> FileStatus:
    """The status of published file ``path``, stored in S3 as ``obj``."""
    return FileStatus(path=path, is_dir=False, length=obj.size, mtime=obj.mtime, object=identity_of(obj))


def staged_status(entry: StagedEntry) -> FileStatus:
    """The status of a file or directory held in the staging area."""
    return FileStatus(path=entry.path, is_dir=entry.is_dir, length=entry.size, mtime=entry.mtime, staged=True)
