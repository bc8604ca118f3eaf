"""The narrow interface metastore sync needs from a catalog; ``glue.py`` and ``hive.py`` implement it.

Every method raises ``cache_service.catalog.errors.CatalogError`` (one line, naming the table) when the metastore
refuses the request or cannot be reached.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from cache_service.catalog.model import Partition, Table


class Catalog(Protocol):
    """A metastore holding external Parquet tables and their partitions."""

    def get_table(self, database: str, name: str) -> Table | None:
        """The table as registered, or None when the table (or its database) does not exist."""
        ...

    def create_table(self, table: Table) -> None:
        """Register ``table`` as an external Parquet table, creating its database first if needed.

        Raises ``CatalogError`` if the table already exists.
        """
        ...

    def update_table(self, table: Table) -> None:
        """Replace the columns and location of the existing ``table`` and merge in its parameters.

        Partition keys are never changed (existing partitions would no longer match them).
        """
        ...

    def get_partitions(self, table: Table) -> list[Partition]:
        """Every registered partition of ``table`` (``fingerprint`` "" where it was registered by someone else)."""
        ...

    def add_partitions(self, table: Table, partitions: Sequence[Partition]) -> None:
        """Register new ``partitions``. Raises ``CatalogError`` if one already exists."""
        ...

    def update_partitions(self, table: Table, partitions: Sequence[Partition]) -> None:
        """Replace the location and file statistics of existing ``partitions`` (matched by their values)."""
        ...

    def drop_partitions(self, table: Table, partitions: Sequence[Partition]) -> None:
        """Unregister ``partitions``; their data is never deleted. Partitions already gone are not an error."""
        ...
