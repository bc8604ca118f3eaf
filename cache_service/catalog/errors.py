"""Errors of metastore sync. Each message is one line an operator can act on without a stack trace."""

from __future__ import annotations


class UnpublishedDataError(RuntimeError):
    """The table's data in S3 is not (or no longer) a published whole: staging objects are present, ``_SUCCESS``
    is missing, or a data file's size or footer does not check out. Nothing was registered; retry after the job
    that writes the table has committed."""


class TableLayoutError(ValueError):
    """The objects under the table's prefix do not form the table that was asked for (wrong partition directories,
    data files at the wrong depth, no data files at all, or a schema that cannot be merged or expressed)."""


class EmptyTableError(TableLayoutError):
    """The table has no data files yet, so there is nothing (no schema) to register."""


class CatalogError(RuntimeError):
    """The metastore refused a request or could not be reached."""
