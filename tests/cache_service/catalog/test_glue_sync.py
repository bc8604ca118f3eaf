"""Metastore sync into Glue (the emulator's Glue API): create, stay idempotent, follow the data, drop on request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cache_service.catalog.errors import CatalogError, UnpublishedDataError
from cache_service.catalog.glue import PARQUET_INPUT_FORMAT, PARQUET_SERDE, GlueCatalog
from cache_service.catalog.model import Column, TableSpec
from cache_service.catalog.sync import MetastoreSync
from cache_service.namespace.mounts import MountTable
from cache_service.under_store.s3 import S3UnderStore
from infra.cache_process import REPO_ROOT
from infra.s3_emulator import S3Emulator
from tests.support.tables import TableWriter, parquet_bytes

DAYS = ("2026-11-01", "2026-11-02")


@pytest.fixture
def sync(glue: Any, mounts: MountTable, store: S3UnderStore) -> MetastoreSync:
    return MetastoreSync(GlueCatalog(glue), mounts, store)


@pytest.fixture
def spec(database: str) -> TableSpec:
    return TableSpec(database, "events", "/warehouse/events", (Column("dt"),))


@pytest.fixture
def published(events: TableWriter) -> TableWriter:
    """``/warehouse/events`` with two committed partitions."""
    for day in DAYS:
        events.partition(f"dt={day}")
    events.commit()
    return events


def _partitions(glue: Any, spec: TableSpec) -> dict[tuple[str, ...], dict[str, Any]]:
    response = glue.get_partitions(DatabaseName=spec.database, TableName=spec.name)
    return {tuple(p["Values"]): p for p in response["Partitions"]}


def test_first_sync_registers_an_external_parquet_table_at_its_s3_locations(
    sync: MetastoreSync, spec: TableSpec, published: TableWriter, glue: Any, bucket: str
) -> None:
    result = sync.sync(spec)

    assert result.applied and result.plan.create_table
    assert [p.values for p in result.plan.add_partitions] == [(d,) for d in DAYS]
    table = glue.get_table(DatabaseName=spec.database, Name="events")["Table"]
    storage = table["StorageDescriptor"]
    assert table["TableType"] == "EXTERNAL_TABLE"
    assert storage["Location"] == f"s3://{bucket}/warehouse/events/"
    assert storage["InputFormat"] == PARQUET_INPUT_FORMAT
    assert storage["SerdeInfo"]["SerializationLibrary"] == PARQUET_SERDE
    assert [(c["Name"], c["Type"]) for c in storage["Columns"]] == [("id", "bigint"), ("amount", "double")]
    assert [(c["Name"], c["Type"]) for c in table["PartitionKeys"]] == [("dt", "string")]
    partitions = _partitions(glue, spec)
    assert {v: p["StorageDescriptor"]["Location"] for v, p in partitions.items()} == {
        (d,): f"s3://{bucket}/warehouse/events/dt={d}/" for d in DAYS
    }


def test_second_sync_of_unchanged_data_changes_nothing(
    sync: MetastoreSync, spec: TableSpec, published: TableWriter
) -> None:
    sync.sync(spec)
    again = sync.sync(spec)
    assert again.plan.is_empty and not again.changed
    assert again.plan.unchanged_partitions == 2


def test_dry_run_returns_the_diff_and_changes_nothing(
    sync: MetastoreSync, spec: TableSpec, published: TableWriter, glue: Any
) -> None:
    result = sync.sync(spec, dry_run=True)
    assert not result.applied and result.plan.create_table and len(result.plan.add_partitions) == 2
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_table(DatabaseName=spec.database, Name="events")

    sync.sync(spec)
    published.partition("dt=2026-11-03")
    result = sync.sync(spec, dry_run=True)
    assert [p.values for p in result.plan.add_partitions] == [("2026-11-03",)]
    assert len(_partitions(glue, spec)) == 2


def test_new_partition_is_added(sync: MetastoreSync, spec: TableSpec, published: TableWriter, glue: Any) -> None:
    sync.sync(spec)
    published.partition("dt=2026-11-03")
    result = sync.sync(spec)
    assert [p.values for p in result.plan.add_partitions] == [("2026-11-03",)]
    assert not result.plan.update_partitions and result.plan.unchanged_partitions == 2
    assert set(_partitions(glue, spec)) == {("2026-11-01",), ("2026-11-02",), ("2026-11-03",)}


def test_partition_with_new_files_is_updated(
    sync: MetastoreSync, spec: TableSpec, published: TableWriter, glue: Any
) -> None:
    sync.sync(spec)
    before = _partitions(glue, spec)[("2026-11-02",)]["Parameters"]
    published.partition("dt=2026-11-02", rows=5, name="part-00001.parquet")

    result = sync.sync(spec)

    assert [p.values for p in result.plan.update_partitions] == [("2026-11-02",)]
    after = _partitions(glue, spec)[("2026-11-02",)]["Parameters"]
    assert after["numFiles"] == "2" and before["numFiles"] == "1"
    assert int(after["totalSize"]) > int(before["totalSize"])
    assert sync.sync(spec).plan.is_empty


def test_vanished_partition_is_dropped_only_when_asked(
    sync: MetastoreSync, spec: TableSpec, published: TableWriter, glue: Any
) -> None:
    sync.sync(spec)
    published.delete("dt=2026-11-01/")

    kept = sync.sync(spec)
    assert [p.values for p in kept.plan.kept_partitions] == [("2026-11-01",)] and not kept.plan.drop_partitions
    assert kept.plan.is_empty
    assert ("2026-11-01",) in _partitions(glue, spec)

    dropped = sync.sync(spec, drop_missing=True)
    assert [p.values for p in dropped.plan.drop_partitions] == [("2026-11-01",)]
    assert set(_partitions(glue, spec)) == {("2026-11-02",)}


def test_new_column_updates_the_table(sync: MetastoreSync, spec: TableSpec, published: TableWriter, glue: Any) -> None:
    sync.sync(spec)
    published.partition("dt=2026-11-03", country=["fr", "de", "jp"])
    result = sync.sync(spec)
    assert result.plan.update_table == ("column added: country string",)
    columns = glue.get_table(DatabaseName=spec.database, Name="events")["Table"]["StorageDescriptor"]["Columns"]
    assert [c["Name"] for c in columns] == ["id", "amount", "country"]


def test_unpublished_data_registers_nothing(
    sync: MetastoreSync, spec: TableSpec, events: TableWriter, glue: Any
) -> None:
    events.partition("dt=2026-11-01")
    with pytest.raises(UnpublishedDataError):
        sync.sync(spec)
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_table(DatabaseName=spec.database, Name="events")


def test_other_partition_keys_than_registered_are_refused(
    sync: MetastoreSync, spec: TableSpec, published: TableWriter
) -> None:
    sync.sync(spec)
    with pytest.raises(CatalogError, match="partitioned by"):
        sync.plan(TableSpec(spec.database, spec.name, spec.path, (Column("dt", "date"),)))


def test_unpartitioned_table_is_registered_with_its_location_and_schema(
    sync: MetastoreSync, database: str, events: TableWriter, glue: Any, bucket: str
) -> None:
    events.put("part-00000.parquet", parquet_bytes({"Id": [1, 2], "Name": ["a", "b"]}))
    events.commit()
    spec = TableSpec(database, "events", "/warehouse/events")

    result = sync.sync(spec)

    assert result.plan.create_table and not result.plan.add_partitions
    table = glue.get_table(DatabaseName=database, Name="events")["Table"]
    assert table["StorageDescriptor"]["Location"] == f"s3://{bucket}/warehouse/events/"
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == ["id", "name"]
    assert table["PartitionKeys"] == []
    assert sync.sync(spec).plan.is_empty


# --- the command line --------------------------------------------------------------------------------------


def _cli(config: Path, emulator: S3Emulator, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CACHE_")}
    command = [sys.executable, "-m", "cache_service.catalog", "sync", "--config", str(config), "--catalog", "glue"]
    return subprocess.run(
        [*command, "--glue-endpoint", emulator.endpoint_url, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def config_file(tmp_path: Path, bucket: str, s3_emulator: S3Emulator) -> Path:
    path = tmp_path / "cache.toml"
    path.write_text(
        f"""
[under_store]
endpoint_url = "{s3_emulator.endpoint_url}"
access_key_id = "test"
secret_access_key = "test"

[[mounts]]
path = "/warehouse"
uri = "s3://{bucket}/warehouse"

[[store.tiers]]
medium = "disk"
path = "{tmp_path / "data"}"
capacity = "1GiB"
"""
    )
    return path


def test_cli_dry_run_then_sync_as_json(
    config_file: Path, s3_emulator: S3Emulator, database: str, published: TableWriter
) -> None:
    table = ["--database", database, "--table", "events", "--path", "/warehouse/events", "--partition-keys", "dt"]

    dry = _cli(config_file, s3_emulator, *table, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "+ partition dt=2026-11-01" in dry.stdout and dry.stdout.strip().endswith("dry run: nothing changed")

    done = _cli(config_file, s3_emulator, *table, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["create_table"] and report["changed"] and len(report["add_partitions"]) == 2

    again = _cli(config_file, s3_emulator, *table)
    assert again.returncode == 0 and "up to date" in again.stdout


def test_cli_reports_unpublished_data_in_one_line(
    config_file: Path, s3_emulator: S3Emulator, database: str, events: TableWriter
) -> None:
    events.partition("dt=2026-11-01")
    done = _cli(config_file, s3_emulator, "--database", database, "--table", "events", "--path", "/warehouse/events")
    assert done.returncode == 3
    line = done.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith("metastore sync: not published:") and "_SUCCESS is missing" in line


def test_cli_reports_a_path_outside_the_mounts_in_one_line(
    config_file: Path, s3_emulator: S3Emulator, database: str
) -> None:
    done = _cli(config_file, s3_emulator, "--database", database, "--table", "events", "--path", "/elsewhere/x")
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "outside every mount" in done.stderr
