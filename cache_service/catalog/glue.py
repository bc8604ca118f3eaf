"""``Catalog`` on the AWS Glue Data Catalog through boto3 (locally: the S3 emulator, which serves Glue's API too).

Tables are registered the way Athena expects an external Parquet table: ``EXTERNAL_TABLE`` with Hive's Parquet
SerDe and input/output formats, and directory locations ending in "/".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cache_service.catalog.errors import CatalogError
from cache_service.catalog.model import Column, Partition, Table, partition_parameters, registered_partition

if TYPE_CHECKING:
    from mypy_boto3_glue import GlueClient
else:
    GlueClient = Any

PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"

# Glue's per-request limits.
_CREATE_BATCH = 100
_UPDATE_BATCH = 100
_DELETE_BATCH = 25


def glue_client(
    *,
    endpoint_url: str | None = None,
    region: str = "us-east-1",
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
) -> GlueClient:
    """A boto3 Glue client; ``endpoint_url`` None means AWS, unset keys mean boto3's usual credential chain."""
    session = boto3.session.Session(
        aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key, region_name=region
    )
    config = Config(region_name=region, retries={"total_max_attempts": 5, "mode": "standard"})
    return session.client("glue", endpoint_url=endpoint_url, config=config)


def _columns(columns: Sequence[Column]) -> list[dict[str, str]]:
    return [{"Name": c.name, "Type": c.type} for c in columns]


def _storage(columns: Sequence[Column], location: str) -> dict[str, Any]:
    return {
        "Columns": _columns(columns),
        # Athena treats a location as a directory only with the trailing slash.
        "Location": location.rstrip("/") + "/",
        "InputFormat": PARQUET_INPUT_FORMAT,
        "OutputFormat": PARQUET_OUTPUT_FORMAT,
        "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE, "Parameters": {"serialization.format": "1"}},
        "Compressed": False,
        "StoredAsSubDirectories": False,
    }


def _table_input(table: Table, parameters: Mapping[str, str]) -> dict[str, Any]:
    return {
        "Name": table.name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {**parameters, "EXTERNAL": "TRUE", "classification": "parquet"},
        "PartitionKeys": _columns(table.partition_keys),
        "StorageDescriptor": _storage(table.columns, table.location),
    }


def _partition_input(table: Table, partition: Partition) -> dict[str, Any]:
    return {
        "Values": list(partition.values),
        "StorageDescriptor": _storage(table.columns, partition.location),
        "Parameters": partition_parameters(partition),
    }


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class GlueCatalog:
    """``Catalog`` on Glue. ``catalog_id`` is the AWS account of the catalog (None: the caller's own)."""

    def __init__(self, client: GlueClient, *, catalog_id: str | None = None) -> None:
        self._client = client
        self._ids: dict[str, str] = {"CatalogId": catalog_id} if catalog_id else {}

    def get_table(self, database: str, name: str) -> Table | None:
        """The table as registered, or None when it (or its database) does not exist."""
        response = self._call(
            f"{database}.{name}", "get_table", tolerate="EntityNotFoundException", DatabaseName=database, Name=name
        )
        if response is None:
            return None
        raw = response["Table"]
        storage = raw.get("StorageDescriptor", {})
        return Table(
            database=database,
            name=name,
            columns=tuple(Column(c["Name"], c["Type"]) for c in storage.get("Columns", [])),
            partition_keys=tuple(Column(c["Name"], c["Type"]) for c in raw.get("PartitionKeys", [])),
            location=storage.get("Location", "").rstrip("/"),
            parameters=dict(raw.get("Parameters", {})),
        )

    def create_table(self, table: Table) -> None:
        """Register ``table``, creating its database first when it does not exist."""
        if self._call(table.database, "get_database", tolerate="EntityNotFoundException", Name=table.database) is None:
            self._call(
                table.database,
                "create_database",
                tolerate="AlreadyExistsException",  # created meanwhile by a concurrent sync: just as good
                DatabaseInput={"Name": table.database, "Description": "registered by lakecache metastore sync"},
            )
        self._call(
            _name(table), "create_table", DatabaseName=table.database, TableInput=_table_input(table, table.parameters)
        )

    def update_table(self, table: Table) -> None:
        """Replace the columns and location of ``table``; parameters set by others are kept."""
        current = self.get_table(table.database, table.name)
        if current is None:
            raise CatalogError(f"Glue: table {_name(table)} does not exist")
        parameters = {**current.parameters, **table.parameters}
        self._call(
            _name(table), "update_table", DatabaseName=table.database, TableInput=_table_input(table, parameters)
        )

    def get_partitions(self, table: Table) -> list[Partition]:
        """Every registered partition of ``table``."""
        try:
            pages = self._client.get_paginator("get_partitions").paginate(
                **self._ids, DatabaseName=table.database, TableName=table.name
            )
            raws = [raw for page in pages for raw in page.get("Partitions", [])]
        except (ClientError, BotoCoreError) as exc:
            raise _error(_name(table), exc) from None
        return [
            registered_partition(
                raw["Values"], raw.get("StorageDescriptor", {}).get("Location", ""), raw.get("Parameters", {})
            )
            for raw in raws
        ]

    def add_partitions(self, table: Table, partitions: Sequence[Partition]) -> None:
        """Register new ``partitions``, up to 100 per request."""
        for batch in _batches(partitions, _CREATE_BATCH):
            response = self._call(
                _name(table),
                "batch_create_partition",
                DatabaseName=table.database,
                TableName=table.name,
                PartitionInputList=[_partition_input(table, p) for p in batch],
            )
            _raise_first(table, "add", response.get("Errors", []) if response else [])

    def update_partitions(self, table: Table, partitions: Sequence[Partition]) -> None:
        """Replace the location and statistics of existing ``partitions``, up to 100 per request."""
        for batch in _batches(partitions, _UPDATE_BATCH):
            response = self._call(
                _name(table),
                "batch_update_partition",
                DatabaseName=table.database,
                TableName=table.name,
                Entries=[
                    {"PartitionValueList": list(p.values), "PartitionInput": _partition_input(table, p)} for p in batch
                ],
            )
            _raise_first(table, "update", response.get("Errors", []) if response else [])

    def drop_partitions(self, table: Table, partitions: Sequence[Partition]) -> None:
        """Unregister ``partitions``, up to 25 per request; Glue never touches their data."""
        for batch in _batches(partitions, _DELETE_BATCH):
            response = self._call(
                _name(table),
                "batch_delete_partition",
                DatabaseName=table.database,
                TableName=table.name,
                PartitionsToDelete=[{"Values": list(p.values)} for p in batch],
            )
            errors = response.get("Errors", []) if response else []
            _raise_first(table, "drop", [e for e in errors if _code(e) != "EntityNotFoundException"])

    def _call(self, what: str, operation: str, *, tolerate: str = "", **kwargs: Any) -> dict[str, Any] | None:
        """Call Glue's ``operation``; None when it fails with error code ``tolerate``, else ``CatalogError``."""
        try:
            response: dict[str, Any] = getattr(self._client, operation)(**self._ids, **kwargs)
        except ClientError as exc:
            if tolerate and exc.response.get("Error", {}).get("Code") == tolerate:
                return None
            raise _error(what, exc) from None
        except BotoCoreError as exc:
            raise _error(what, exc) from None
        return response


def _name(table: Table) -> str:
    return f"{table.database}.{table.name}"


def _error(what: str, exc: ClientError | BotoCoreError) -> CatalogError:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return CatalogError(f"Glue: {what}: {error.get('Code', '')}: {error.get('Message', '')}")
    return CatalogError(f"Glue: {what}: {exc}")


def _raise_first(table: Table, verb: str, errors: Sequence[Mapping[str, Any]]) -> None:
    if errors:
        first = errors[0]
        values = first.get("PartitionValues") or first.get("PartitionValueList") or []
        detail = first.get("ErrorDetail", {})
        raise CatalogError(
            f"Glue refused to {verb} {len(errors)} partition(s) of {_name(table)}, first {values}: "
            f"{detail.get('ErrorCode')}: {detail.get('ErrorMessage')}"
        )


def _code(error: Mapping[str, Any]) -> str:
    return str(error.get("ErrorDetail", {}).get("ErrorCode", ""))
