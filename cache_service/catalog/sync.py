"""Metastore sync: register a table Spark wrote through the cache, with its partitions, in a catalog.

The Airflow operator and ``python -m cache_service.catalog`` both call ``MetastoreSync``; its API is ``plan`` (the
diff, read-only) and ``sync`` (plan, then apply)::

    sync = MetastoreSync(GlueCatalog(glue_client()), MountTable(config.mounts), S3UnderStore(config.under_store))
    result = sync.sync(TableSpec("analytics", "events", "/warehouse/events", (Column("dt"),)))

Nothing is registered unless the table's data is published in S3 (see ``inspect.TableInspector``), and a second
sync of unchanged data changes nothing. Partitions whose data vanished from storage are only dropped on request.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from cache_service.catalog.base import Catalog
from cache_service.catalog.errors import CatalogError
from cache_service.catalog.inspect import TableInspector
from cache_service.catalog.model import Partition, SyncPlan, SyncResult, Table, TableSpec
from cache_service.config import WriteConfig
from cache_service.namespace.mounts import MountTable
from cache_service.namespace.paths import join
from cache_service.under_store.base import UnderStore

log = logging.getLogger(__name__)

PATH_PARAMETER = "lakecache.path"  # table parameter: the cache path the table was registered from


class MetastoreSync:
    """Registers tables found under cache paths in ``catalog``.

    ``mounts`` translates cache paths to S3 locations, ``store`` reads S3, ``staging`` gives the patterns of
    unpublished paths (the cache's ``[write]`` section). Locations are ``s3://`` URIs unless ``location_root`` names a
    Hadoop filesystem to register cache paths on instead (``webhdfs://cache:9870`` gives
    ``webhdfs://cache:9870/warehouse/events``): what an embedded Hive metastore and Spark without S3A can open.
    """

    def __init__(
        self,
        catalog: Catalog,
        mounts: MountTable,
        store: UnderStore,
        *,
        staging: WriteConfig | None = None,
        location_root: str | None = None,
        parallelism: int = 8,
    ) -> None:
        self._catalog = catalog
        self._mounts = mounts
        self._inspector = TableInspector(store, staging=staging, parallelism=parallelism)
        self._location_root = location_root.rstrip("/") if location_root else None

    def location(self, path: str) -> str:
        """The location registered for cache ``path``. Raises ``FileNotFoundError`` if no mount covers it."""
        uri = self._mounts.resolve(path).uri.rstrip("/")
        return f"{self._location_root}{path}" if self._location_root else uri

    def plan(self, spec: TableSpec, *, drop_missing: bool = False) -> SyncPlan:
        """What ``sync`` would change, without changing anything.

        Raises ``UnpublishedDataError`` when the data is not published, ``TableLayoutError`` when the objects do
        not form the table asked for, ``CatalogError`` when the catalog fails or holds the table with other
        partition keys, and ``FileNotFoundError`` when ``spec.path`` is outside every mount or its bucket is missing.
        """
        where = self._mounts.resolve(spec.path)
        stored = self._inspector.inspect(where.bucket, where.key, spec.partition_keys)
        table = Table(
            database=spec.database,
            name=spec.name,
            columns=stored.columns,
            partition_keys=spec.partition_keys,
            location=self.location(spec.path),
            parameters={PATH_PARAMETER: spec.path},
        )
        current = self._catalog.get_table(spec.database, spec.name)
        if current is not None and current.partition_keys != spec.partition_keys:
            raise CatalogError(
                f"{spec.qualified_name} is partitioned by ({_keys(current)}) in the catalog but by ({_keys(table)}) "
                "here: fix the partition keys, or drop the table to register it anew"
            )
        plan = SyncPlan(
            spec=spec,
            table=table,
            create_table=current is None,
            update_table=_table_changes(current, table) if current else (),
            files=stored.files,
            bytes=stored.bytes,
        )
        if not spec.partition_keys:
            return plan  # an unpartitioned table is its location and schema; there is nothing else to register

        registered = {p.values: p for p in self._catalog.get_partitions(table)} if current else {}
        add, update, unchanged = [], [], 0
        for stored_partition in stored.partitions:
            partition = Partition(
                values=stored_partition.values,
                location=self.location(join(spec.path, stored_partition.directory)),
                files=len(stored_partition.files),
                bytes=stored_partition.bytes,
                fingerprint=stored_partition.fingerprint,
            )
            before = registered.pop(partition.values, None)
            if before is None:
                add.append(partition)
            elif (before.location, before.fingerprint) != (partition.location, partition.fingerprint):
                update.append(partition)
            else:
                unchanged += 1
        vanished = tuple(sorted(registered.values(), key=lambda p: p.values))
        return replace(
            plan,
            add_partitions=tuple(add),
            update_partitions=tuple(update),
            drop_partitions=vanished if drop_missing else (),
            kept_partitions=() if drop_missing else vanished,
            unchanged_partitions=unchanged,
        )

    def sync(self, spec: TableSpec, *, dry_run: bool = False, drop_missing: bool = False) -> SyncResult:
        """Bring the catalog in line with the published data of ``spec``; with ``dry_run``, only plan.

        Creates or updates the table, adds new partitions, updates those whose files or location changed, and drops
        registered partitions that vanished from storage only when ``drop_missing`` is set. Raises what ``plan``
        raises, and ``CatalogError`` when applying fails (the steps already applied stay applied; the next sync
        completes the rest).
        """
        plan = self.plan(spec, drop_missing=drop_missing)
        if dry_run or plan.is_empty:
            return SyncResult(plan=plan, applied=not dry_run)
        table = plan.table
        if plan.create_table:
            log.info("creating table %s at %s", spec.qualified_name, table.location)
            self._catalog.create_table(table)
        elif plan.update_table:
            log.info("updating table %s: %s", spec.qualified_name, "; ".join(plan.update_table))
            self._catalog.update_table(table)
        if plan.add_partitions:
            log.info("adding %d partition(s) to %s", len(plan.add_partitions), spec.qualified_name)
            self._catalog.add_partitions(table, plan.add_partitions)
        if plan.update_partitions:
            log.info("updating %d partition(s) of %s", len(plan.update_partitions), spec.qualified_name)
            self._catalog.update_partitions(table, plan.update_partitions)
        if plan.drop_partitions:
            log.info("dropping %d vanished partition(s) of %s", len(plan.drop_partitions), spec.qualified_name)
            self._catalog.drop_partitions(table, plan.drop_partitions)
        return SyncResult(plan=plan, applied=True)


def _keys(table: Table) -> str:
    return ", ".join(str(k) for k in table.partition_keys) or "nothing"


def _table_changes(current: Table, wanted: Table) -> tuple[str, ...]:
    """One reason per difference between the registered table and the one storage calls for."""
    reasons = []
    before = {c.name: c.type for c in current.columns}
    after = {c.name: c.type for c in wanted.columns}
    for name, type_ in after.items():
        if name not in before:
            reasons.append(f"column added: {name} {type_}")
        elif before[name] != type_:
            reasons.append(f"column type changed: {name} {before[name]} -> {type_}")
    reasons.extend(f"column removed: {name} {type_}" for name, type_ in before.items() if name not in after)
    if not reasons and list(before) != list(after):
        reasons.append("column order changed")
    if current.location != wanted.location:
        reasons.append(f"location changed: {current.location} -> {wanted.location}")
    reasons.extend(
        f"parameter {key} set to {value}"
        for key, value in wanted.parameters.items()
        if current.parameters.get(key) != value
    )
    return tuple(reasons)
