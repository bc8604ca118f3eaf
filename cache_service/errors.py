"""Errors of the cache that are part of its interface.

Inside the service a missing path is a ``FileNotFoundError``, an existing one a ``FileExistsError`` and bad input a
``ValueError``; the API layers map those to their protocol's errors. The classes here add what Python lacks.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager


class UnderStoreUnavailableError(ConnectionError):
    """S3 (the under store) could not be reached or kept failing after retries."""


class StaleObjectError(RuntimeError):
    """The object changed in S3 while it was being read (its ETag no longer matches)."""


class UnsupportedOperationError(ValueError):
    """The request asks for an operation this service does not implement."""


class StagedDataError(PermissionError):
    """The operation would drop data that is held only in the cache (staged, not yet in S3)."""


class DirectoryNotEmptyError(OSError):
    """A non-recursive delete of a directory that has children."""


class DiskFullError(OSError):
    """The cache's disk had no room for a file being written locally (staged, or spooled before its upload).

    Nothing of the file was kept and nothing acknowledged before is touched: the write may be sent again once purges
    or eviction have made room, so the APIs answer it as a retriable failure, never as an internal error.
    """


@contextmanager
def disk_full_as(path: str) -> Iterator[None]:
    """Turn a full disk (``ENOSPC``, ``EDQUOT``) met inside the block into ``DiskFullError`` naming ``path``."""
    try:
        yield
    except DiskFullError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise DiskFullError(
            exc.errno, f"no room left on the cache's disk to write {path} ({exc.strerror}); retry once room is freed"
        ) from exc
