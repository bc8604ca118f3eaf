"""Errors of the cache that are part of its interface.

Inside the service a missing path is a ``FileNotFoundError``, an existing one a ``FileExistsError`` and bad input a
``ValueError``; the API layers map those to their protocol's errors. The classes here add what Python lacks.
"""

from __future__ import annotations


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
