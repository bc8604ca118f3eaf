"""``python -m cache_service.catalog sync``: metastore sync for operators.

    python -m cache_service.catalog sync --config cache.toml --catalog glue --database analytics \\
        --table events --path /warehouse/events --partition-keys dt [--dry-run] [--drop-missing] [--json]

Exit codes: 0 done (or nothing to do), 1 the catalog or S3 failed, 2 bad usage or configuration, 3 the data is not
published yet (retry once the writing job has committed).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import NoReturn

from cache_service.catalog.base import Catalog
from cache_service.catalog.errors import CatalogError, TableLayoutError, UnpublishedDataError
from cache_service.catalog.model import Column, Partition, SyncResult, TableSpec
from cache_service.config import CacheConfig, ConfigError, load_config
from cache_service.units import format_size

PROG = "python -m cache_service.catalog"
EXIT_FAILED, EXIT_USAGE, EXIT_UNPUBLISHED = 1, 2, 3


class _Parser(argparse.ArgumentParser):
    """Usage mistakes are reported in one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def partition_keys(text: str) -> tuple[Column, ...]:
    """Parse ``dt`` or ``dt:date,hour:int`` (the type defaults to string) into partition key columns."""
    keys = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, type_ = item.partition(":")
        keys.append(Column(name.strip(), type_.strip() or "string"))
    return tuple(keys)  # names are checked by TableSpec


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Register tables written through the cache in Glue or Hive.")
    commands = parser.add_subparsers(dest="command", required=True)
    sync = commands.add_parser(
        "sync",
        help="create or update a table and its partitions from its published data",
        description="Create or update a table and its partitions from its published data in S3.",
    )
    sync.add_argument("--config", help="the cache's TOML config (mounts, under store); env CACHE_* overrides it")
    sync.add_argument("--catalog", choices=("glue", "hive"), required=True)
    sync.add_argument("--database", required=True)
    sync.add_argument("--table", required=True)
    sync.add_argument("--path", required=True, help="cache path of the table's root directory, e.g. /warehouse/events")
    sync.add_argument(
        "--partition-keys", type=partition_keys, default=(), metavar="KEYS", help="e.g. dt or dt:date,hour:int"
    )
    sync.add_argument("--dry-run", action="store_true", help="only show what would change")
    sync.add_argument("--drop-missing", action="store_true", help="drop partitions whose data left storage")
    sync.add_argument("--json", action="store_true", help="machine-readable output")
    sync.add_argument(
        "--location-root",
        metavar="URI",
        help="register cache paths on this filesystem (e.g. webhdfs://cache:9870) instead of s3:// locations; "
        "default for an embedded Hive metastore: the config's WebHDFS address",
    )
    glue = sync.add_argument_group("glue")
    glue.add_argument("--glue-endpoint", metavar="URL", help="Glue API endpoint (default AWS; locally the emulator)")
    glue.add_argument("--glue-catalog-id", metavar="ACCOUNT", help="the catalog's AWS account (default yours)")
    hive = sync.add_argument_group("hive")
    hive.add_argument("--metastore-uri", metavar="URI", help="thrift metastore, e.g. thrift://metastore:9083")
    hive.add_argument(
        "--metastore-dir", default="metastore", help="embedded Derby metastore directory (default ./metastore)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
        spec = TableSpec(args.database, args.table, args.path, args.partition_keys)
    except ConfigError as exc:
        return _fail(EXIT_USAGE, "invalid configuration: " + "; ".join(exc.problems))
    except (OSError, ValueError) as exc:
        return _fail(EXIT_USAGE, str(exc))
    try:
        result = _sync(args, config, spec)
    except UnpublishedDataError as exc:
        return _fail(EXIT_UNPUBLISHED, f"not published: {exc}")
    except (CatalogError, TableLayoutError, OSError) as exc:
        return _fail(EXIT_FAILED, str(exc))
    except KeyboardInterrupt:
        return _fail(130, "interrupted")
    except Exception as exc:  # a bug of ours: still one line, never a stack trace
        return _fail(EXIT_FAILED, f"unexpected error: {type(exc).__name__}: {exc}")
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print("\n".join(describe(result)))
    return 0


def _sync(args: argparse.Namespace, config: CacheConfig, spec: TableSpec) -> SyncResult:
    # Imported here: the Hive backend starts a JVM, and neither backend is needed to print --help.
    from cache_service.catalog.sync import MetastoreSync
    from cache_service.namespace.mounts import MountTable
    from cache_service.under_store.s3 import S3UnderStore

    catalog: Catalog
    location_root = args.location_root
    if args.catalog == "glue":
        from cache_service.catalog.glue import GlueCatalog, glue_client

        store = config.under_store
        client = glue_client(
            endpoint_url=args.glue_endpoint,
            region=store.region,
            access_key_id=store.access_key_id,
            secret_access_key=store.secret_access_key,
        )
        catalog = GlueCatalog(client, catalog_id=args.glue_catalog_id)
    else:
        from cache_service.catalog.hive import HiveCatalog, hive_session

        spark = hive_session(metastore_dir=args.metastore_dir, metastore_uri=args.metastore_uri)
        spark.sparkContext.setLogLevel("ERROR")
        catalog = HiveCatalog(spark)
        if location_root is None and args.metastore_uri is None:
            # An embedded metastore opens every location with Hadoop, which has no s3 filesystem here.
            location_root = f"webhdfs://{config.server.host}:{config.server.webhdfs_port}"
    under_store = S3UnderStore(config.under_store)
    try:
        sync = MetastoreSync(
            catalog, MountTable(config.mounts), under_store, staging=config.write, location_root=location_root
        )
        return sync.sync(spec, dry_run=args.dry_run, drop_missing=args.drop_missing)
    finally:
        under_store.close()


def _fail(code: int, message: str) -> int:
    print(f"metastore sync: {message}", file=sys.stderr)
    return code


def describe(result: SyncResult) -> list[str]:
    """The result for humans: one line per change."""
    plan = result.plan
    keys = plan.spec.partition_keys

    def line(mark: str, partition: Partition, note: str = "") -> str:
        size = f"{partition.files} file(s), {format_size(partition.bytes)}"
        return f"  {mark} partition {partition.label(keys)} -> {partition.location} ({size}){note}"

    lines = [
        f"{plan.spec.qualified_name} <- {plan.spec.path} ({plan.table.location}): "
        f"{plan.files} file(s), {format_size(plan.bytes)}"
    ]
    if plan.create_table:
        partitioned = f", partitioned by {', '.join(map(str, keys))}" if keys else ""
        lines.append(f"  + table: {', '.join(map(str, plan.table.columns))}{partitioned}")
    lines.extend(f"  ~ table: {reason}" for reason in plan.update_table)
    lines.extend(line("+", p) for p in plan.add_partitions)
    lines.extend(line("~", p) for p in plan.update_partitions)
    lines.extend(line("-", p, ": gone from storage") for p in plan.drop_partitions)
    lines.extend(line("!", p, ": gone from storage, kept (use --drop-missing)") for p in plan.kept_partitions)
    if plan.unchanged_partitions:
        lines.append(f"  = {plan.unchanged_partitions} partition(s) unchanged")
    if plan.is_empty:
        lines.append("up to date: nothing to change")
    elif result.applied:
        lines.append("applied")
    else:
        lines.append("dry run: nothing changed")
    return lines
