"""``Catalog`` on a Hive metastore through Spark's catalog (``enableHiveSupport()``).

The metastore is either embedded (Derby in a local directory, one process at a time) or a thrift service
(``hive.metastore.uris``, what production runs). Tables are created with Spark SQL; partitions go through Spark's
``ExternalCatalog``, the only way to keep our partition parameters (the fingerprint of the files registered), and
one call per batch instead of one statement per partition.

Locations. The metastore checks every table and partition location with Hadoop's ``FileSystem`` (it creates a
missing directory and counts the files). Spark's pip wheel ships no ``s3`` filesystem, so an embedded metastore
refuses ``s3://`` locations (``No FileSystem for scheme "s3"``). With it, register the cache's ``webhdfs://`` paths
(``MetastoreSync(location_root="webhdfs://cache:9870")``), which is also the only way Spark here reads the table. A
thrift metastore whose server has an S3 filesystem (EMR's, say) takes ``s3://`` locations.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from py4j.protocol import Py4JError
from pyspark.errors import PySparkException
from pyspark.sql import SparkSession

from cache_service.catalog.errors import CatalogError
from cache_service.catalog.model import Column, Partition, Table, partition_parameters, registered_partition


def hive_session(
    *,
    metastore_dir: str | Path | None = None,
    metastore_uri: str | None = None,
    master: str = "local[1]",
    app_name: str = "lakecache-metastore-sync",
) -> SparkSession:
    """A SparkSession with Hive support on the thrift metastore ``metastore_uri``, or else on an embedded Derby
    metastore in ``metastore_dir`` (created on first use; ``derby.log`` goes there too).

    Spark allows one session configuration per process: a session with Hive support already running here is
    returned as it is; if one without Hive support runs, this raises ``CatalogError`` rather than returning it.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        _require_hive(active)
        return active
    if metastore_uri is None and metastore_dir is None:
        raise ValueError("give a thrift metastore URI or a directory for an embedded metastore")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.catalogImplementation", "hive")
    )
    derby_log = None
    if metastore_uri is not None:
        builder = builder.config("spark.hadoop.hive.metastore.uris", metastore_uri)
    else:
        root = Path(metastore_dir or ".").resolve()
        root.mkdir(parents=True, exist_ok=True)
        derby_log = root / "derby.log"
        builder = builder.config(
            "spark.hadoop.javax.jdo.option.ConnectionURL", f"jdbc:derby:;databaseName={root}/metastore_db;create=true"
        ).config("spark.sql.warehouse.dir", str(root / "warehouse"))
    spark = builder.enableHiveSupport().getOrCreate()
    _require_hive(spark)
    if derby_log is not None:
        # Derby boots with the metastore, on first catalog use: early enough to keep derby.log out of the cwd.
        _jvm(spark).java.lang.System.setProperty("derby.stream.error.file", str(derby_log))
    return spark


def _require_hive(spark: SparkSession) -> None:
    if spark.conf.get("spark.sql.catalogImplementation", "in-memory") != "hive":
        raise CatalogError(
            "a SparkSession without Hive support already runs in this process; the Hive catalog needs one built "
            "with enableHiveSupport() (run metastore sync in a process of its own)"
        )


def _jvm(spark: SparkSession) -> Any:
    return spark._jvm  # py4j's view of the driver JVM; pyspark offers no public one


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ddl(columns: Sequence[Column]) -> str:
    return ", ".join(f"{_ident(c.name)} {c.type}" for c in columns)


def _properties(parameters: Mapping[str, str]) -> str:
    return ", ".join(f"{_string(k)}={_string(v)}" for k, v in parameters.items())


class HiveCatalog:
    """``Catalog`` on the Hive metastore of ``spark`` (a session from ``hive_session`` or any with Hive support).

    Raises ``CatalogError`` if the session has no Hive support.
    """

    def __init__(self, spark: SparkSession) -> None:
        _require_hive(spark)
        self._spark = spark
        self._jvm = _jvm(spark)
        self._external: Any = spark._jsparkSession.sessionState().catalog().externalCatalog()
        self._uris = self._jvm.org.apache.spark.sql.catalyst.catalog.CatalogUtils
        self._scala = self._jvm.org.apache.spark.api.python.PythonUtils
        self._java = self._jvm.scala.jdk.javaapi.CollectionConverters

    def get_table(self, database: str, name: str) -> Table | None:
        """The table as registered, or None when it (or its database) does not exist."""
        with self._errors(f"{database}.{name}"):
            if not self._external.databaseExists(database) or not self._external.tableExists(database, name):
                return None
            raw = self._external.getTable(database, name)
            return Table(
                database=database,
                name=name,
                columns=self._columns(raw.dataSchema()),
                partition_keys=self._columns(raw.partitionSchema()),
                location=self._uris.URIToString(raw.location()),
                parameters=dict(self._java.asJava(raw.properties())),
            )

    def create_table(self, table: Table) -> None:
        """Register ``table`` as an external Parquet table, creating its database first if needed."""
        partitioned = f" PARTITIONED BY ({_ddl(table.partition_keys)})" if table.partition_keys else ""
        properties = f" TBLPROPERTIES ({_properties(table.parameters)})" if table.parameters else ""
        with self._errors(_name(table)):
            self._spark.sql(f"CREATE DATABASE IF NOT EXISTS {_ident(table.database)}")
            self._spark.sql(
                f"CREATE EXTERNAL TABLE {_qualified(table)} ({_ddl(table.columns)}){partitioned} "
                f"STORED AS PARQUET LOCATION {_string(table.location)}{properties}"
            )

    def update_table(self, table: Table) -> None:
        """Replace the columns and location of ``table`` and merge in its parameters."""
        current = self.get_table(table.database, table.name)
        if current is None:
            raise CatalogError(f"Hive: table {_name(table)} does not exist")
        with self._errors(_name(table)):
            if current.columns != table.columns:
                # Spark SQL can only add columns to a Hive table; the catalog replaces the whole data schema.
                schema = self._jvm.org.apache.spark.sql.types.StructType.fromDDL(_ddl(table.columns))
                self._external.alterTableDataSchema(table.database, table.name, schema)
            if current.location != table.location:
                self._spark.sql(f"ALTER TABLE {_qualified(table)} SET LOCATION {_string(table.location)}")
            if table.parameters:
                self._spark.sql(f"ALTER TABLE {_qualified(table)} SET TBLPROPERTIES ({_properties(table.parameters)})")
            self._spark.catalog.refreshTable(_qualified(table))

    def get_partitions(self, table: Table) -> list[Partition]:
        """Every registered partition of ``table``."""
        partitions = []
        with self._errors(_name(table)):
            raw = self._external.listPartitions(table.database, table.name, self._jvm.scala.Option.empty())
            for part in self._java.asJava(raw):
                spec = self._java.asJava(part.spec())
                location = part.storage().locationUri()
                partitions.append(
                    registered_partition(
                        [spec[k.name] for k in table.partition_keys],
                        self._uris.URIToString(location.get()) if location.isDefined() else "",
                        dict(self._java.asJava(part.parameters())),
                    )
                )
        return partitions

    def add_partitions(self, table: Table, partitions: Sequence[Partition]) -> None:
        """Register new ``partitions`` in one call."""
        with self._errors(_name(table)):
            self._external.createPartitions(table.database, table.name, self._partitions(table, partitions), False)
            self._spark.catalog.refreshTable(_qualified(table))

    def update_partitions(self, table: Table, partitions: Sequence[Partition]) -> None:
        """Replace the location and parameters of existing ``partitions`` in one call."""
        with self._errors(_name(table)):
            self._external.alterPartitions(table.database, table.name, self._partitions(table, partitions))
            self._spark.catalog.refreshTable(_qualified(table))

    def drop_partitions(self, table: Table, partitions: Sequence[Partition]) -> None:
        """Unregister ``partitions``; their data is kept (retainData), even were the table managed."""
        specs = self._scala.toSeq([self._scala.toScalaMap(p.spec(table.partition_keys)) for p in partitions])
        with self._errors(_name(table)):
            self._external.dropPartitions(table.database, table.name, specs, True, False, True)
            self._spark.catalog.refreshTable(_qualified(table))

    def _columns(self, struct: Any) -> tuple[Column, ...]:
        return tuple(Column(f.name(), f.dataType().catalogString()) for f in struct.fields())

    def _partitions(self, table: Table, partitions: Sequence[Partition]) -> Any:
        """Spark ``CatalogTablePartition``s: the table's storage format with each partition's location."""
        jvm, scala = self._jvm, self._scala
        storage = self._external.getTable(table.database, table.name).storage()
        now = jvm.java.lang.System.currentTimeMillis()
        result = []
        for p in partitions:
            located = storage.copy(
                jvm.scala.Option.apply(self._uris.stringToURI(p.location)),
                storage.inputFormat(),
                storage.outputFormat(),
                storage.serde(),
                storage.compressed(),
                storage.properties(),
            )
            result.append(
                jvm.org.apache.spark.sql.catalyst.catalog.CatalogTablePartition(
                    scala.toScalaMap(p.spec(table.partition_keys)),
                    located,
                    scala.toScalaMap(partition_parameters(p)),
                    now,
                    -1,
                    jvm.scala.Option.empty(),
                )
            )
        return scala.toSeq(result)

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn Spark's and the JVM's exceptions into one-line ``CatalogError``s."""
        try:
            yield
        except PySparkException as exc:
            raise CatalogError(f"Hive: {what}: {_first_line(str(exc))}") from None
        except Py4JError as exc:
            java = getattr(exc, "java_exception", None)
            message = java.toString() if java is not None else str(exc)
            raise CatalogError(f"Hive: {what}: {_first_line(message)}") from None


def _name(table: Table) -> str:
    return f"{table.database}.{table.name}"


def _qualified(table: Table) -> str:
    return f"{_ident(table.database)}.{_ident(table.name)}"


def _first_line(message: str) -> str:
    return next((line.strip() for line in message.splitlines() if line.strip()), "unknown error")
