"""Metastore sync: register tables written through the cache in AWS Glue or a Hive metastore.

``MetastoreSync`` (in ``sync``) is the entry point; ``GlueCatalog`` (``glue``) and ``HiveCatalog`` (``hive``) are the
backends, imported from their modules so that using one never loads the other's dependencies (a JVM for Hive).
"""

from cache_service.catalog.errors import CatalogError, TableLayoutError, UnpublishedDataError
from cache_service.catalog.model import Column, Partition, SyncPlan, SyncResult, Table, TableSpec
from cache_service.catalog.sync import MetastoreSync

__all__ = [
    "CatalogError",
    "Column",
    "MetastoreSync",
    "Partition",
    "SyncPlan",
    "SyncResult",
    "Table",
    "TableLayoutError",
    "TableSpec",
    "UnpublishedDataError",
]
