"""What metastore sync works with: the table asked for, the columns and partitions, and the diff it applies.

Types are Hive type strings (``bigint``, ``decimal(10,2)``, ``array<string>``), the common language of Glue, the
Hive metastore, Athena and Spark. Locations carry no trailing slash; a backend that wants one adds it on write.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cache_service.namespace.paths import normalize

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

# Partition parameter naming which data files a partition held when it was registered. numFiles and totalSize are
# Hive's own statistics parameters, which Spark's planner reads too.
FINGERPRINT_PARAMETER = "lakecache.fingerprint"


def check_name(kind: str, name: str) -> str:
    """Return ``name`` if it is a valid lower-case metastore identifier, else raise ``ValueError``.

    Hive lower-cases every name and Athena needs lower case, so accepting "Events" would register a table whose
    name differs from the one asked for.
    """
    if not _NAME.match(name):
        raise ValueError(f"{kind} name {name!r}: use lower-case letters, digits and '_' (not starting with a digit)")
    return name


def normalize_type(hive_type: str) -> str:
    """The canonical spelling of a Hive type string, so that two catalogs' spellings compare equal."""
    return re.sub(r"\s+", "", hive_type).lower()


@dataclass(frozen=True)
class Column:
    """A column: a name and a Hive type string (kept in canonical spelling).

    Names are not checked here: a catalog may hold names metastore sync would not choose. ``TableSpec`` checks its
    partition keys and inspection the data columns it derives.
    """

    name: str
    type: str = "string"

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", normalize_type(self.type))

    def __str__(self) -> str:
        return f"{self.name} {self.type}"


@dataclass(frozen=True)
class TableSpec:
    """The table to register: catalog ``database`` and ``name``, the cache ``path`` of its root directory, and its
    ``partition_keys`` in directory order (``dt`` for ``.../dt=2026-11-01/``)."""

    database: str
    name: str
    path: str
    partition_keys: tuple[Column, ...] = ()

    def __post_init__(self) -> None:
        check_name("database", self.database)
        check_name("table", self.name)
        object.__setattr__(self, "path", normalize(self.path))
        object.__setattr__(self, "partition_keys", tuple(self.partition_keys))
        names = [check_name("partition key", k.name) for k in self.partition_keys]
        if len(set(names)) != len(names):
            raise ValueError(f"partition keys {names}: a key is listed twice")

    @property
    def qualified_name(self) -> str:
        """``database.name``."""
        return f"{self.database}.{self.name}"


@dataclass(frozen=True)
class Table:
    """A table definition, as metastore sync wants it or as a catalog holds it.

    ``parameters`` are table properties; on update a backend merges ours into the ones already there.
    """

    database: str
    name: str
    columns: tuple[Column, ...]
    partition_keys: tuple[Column, ...]
    location: str
    parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Partition:
    """One partition: its ``values`` (one per partition key, unescaped), ``location``, and what it holds.

    ``fingerprint`` identifies the exact set of data files (names, sizes, ETags); a partition read from a catalog
    that metastore sync did not register has "" there, and counts as changed.
    """

    values: tuple[str, ...]
    location: str
    files: int = 0
    bytes: int = 0
    fingerprint: str = ""

    def spec(self, keys: Sequence[Column]) -> dict[str, str]:
        """The partition as ``{key: value}``."""
        return {k.name: v for k, v in zip(keys, self.values, strict=True)}

    def label(self, keys: Sequence[Column]) -> str:
        """The partition as Hive writes its directory name, unescaped (``dt=2026-11-01/hour=3``)."""
        return "/".join(f"{k}={v}" for k, v in self.spec(keys).items()) or "(whole table)"


def partition_parameters(partition: Partition) -> dict[str, str]:
    """The parameters a catalog stores with ``partition``."""
    return {
        FINGERPRINT_PARAMETER: partition.fingerprint,
        "numFiles": str(partition.files),
        "totalSize": str(partition.bytes),
    }


def registered_partition(values: Sequence[str], location: str, parameters: Mapping[str, Any]) -> Partition:
    """A partition as a catalog holds it, from its ``values``, ``location`` and stored ``parameters``."""
    return Partition(
        values=tuple(str(v) for v in values),
        location=location.rstrip("/"),
        files=_count(parameters.get("numFiles")),
        bytes=_count(parameters.get("totalSize")),
        fingerprint=str(parameters.get(FINGERPRINT_PARAMETER, "")),
    )


def _count(value: Any) -> int:
    """A statistic set by whoever registered the partition: 0 when absent or not a number."""
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class SyncPlan:
    """The diff between the table in storage and in the catalog: what a sync applies, in this order.

    ``update_table`` holds one human-readable reason per change ("column added: country string"); empty means the
    table is up to date. ``drop_partitions`` are registered partitions whose data is gone from storage, dropped
    because that was asked for; ``kept_partitions`` are such partitions left registered because it was not.
    """

    spec: TableSpec
    table: Table
    create_table: bool = False
    update_table: tuple[str, ...] = ()
    add_partitions: tuple[Partition, ...] = ()
    update_partitions: tuple[Partition, ...] = ()
    drop_partitions: tuple[Partition, ...] = ()
    kept_partitions: tuple[Partition, ...] = ()
    unchanged_partitions: int = 0
    files: int = 0
    bytes: int = 0

    @property
    def is_empty(self) -> bool:
        """True when the catalog already matches storage: a sync would change nothing."""
        return not (
            self.create_table
            or self.update_table
            or self.add_partitions
            or self.update_partitions
            or self.drop_partitions
        )

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data (the CLI's ``--json`` output)."""
        keys = self.spec.partition_keys

        def partitions(items: Sequence[Partition]) -> list[dict[str, Any]]:
            return [{"values": p.spec(keys), "location": p.location, "files": p.files, "bytes": p.bytes} for p in items]

        return {
            "table": self.spec.qualified_name,
            "path": self.spec.path,
            "location": self.table.location,
            "columns": [{"name": c.name, "type": c.type} for c in self.table.columns],
            "partition_keys": [{"name": c.name, "type": c.type} for c in keys],
            "files": self.files,
            "bytes": self.bytes,
            "create_table": self.create_table,
            "update_table": list(self.update_table),
            "add_partitions": partitions(self.add_partitions),
            "update_partitions": partitions(self.update_partitions),
            "drop_partitions": partitions(self.drop_partitions),
            "kept_partitions": partitions(self.kept_partitions),
            "unchanged_partitions": self.unchanged_partitions,
        }


@dataclass(frozen=True)
class SyncResult:
    """What a sync did: its ``plan``, and whether the plan was ``applied`` (False for a dry run)."""

    plan: SyncPlan
    applied: bool

    @property
    def changed(self) -> bool:
        """True when the catalog was changed."""
        return self.applied and not self.plan.is_empty

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data."""
        return {**self.plan.to_dict(), "dry_run": not self.applied, "changed": self.changed}
