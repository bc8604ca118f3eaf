"""``MetastoreSyncOperator``: register published tables in the catalog (Glue or Hive) once they are published.

The mount table comes from the cache itself (its admin status), so the catalog gets the very S3 locations the cache
wrote to. S3 and Glue endpoints and the region come from the ``lakecache`` connection's extra
(``s3_endpoint_url``, ``glue_endpoint_url``, ``region``); credentials from boto3's usual chain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import Asset, BaseOperator, Context

from lakecache_airflow.hooks.cache import CacheHook


class MetastoreSyncOperator(BaseOperator):
    """Sync each of ``tables`` (dicts with ``database``, ``name``, ``path``, ``partition_keys``) to the catalog.

    Emits an Asset event per table it synced (its outlets, ``lakecache://<path>``), with the changes in the event's
    extra. ``dry_run`` only computes the diff; ``drop_missing`` drops partitions whose data left storage.
    Fails when a table's data is not published yet (staging objects, no ``_SUCCESS``, sizes that do not match).
    """

    template_fields = ("tables", "plan_only", "drop_missing")
    ui_color = "#d9f0e3"

    def __init__(
        self,
        *,
        tables: Sequence[Mapping[str, Any]],
        catalog: str = "glue",
        lakecache_conn_id: str = CacheHook.default_conn_name,
        dry_run: bool | str = False,
        drop_missing: bool | str = False,
        **kwargs: Any,
    ) -> None:
        if catalog not in ("glue", "hive"):
            raise ValueError(f"catalog must be 'glue' or 'hive', not {catalog!r}")
        kwargs.setdefault(
            "outlets", [Asset(name=f"{t['database']}.{t['name']}", uri=f"lakecache:/{t['path']}") for t in tables]
        )
        super().__init__(**kwargs)
        self.tables = tables
        self.catalog = catalog
        self.lakecache_conn_id = lakecache_conn_id
        # Not ``self.dry_run``: BaseOperator.dry_run() is Airflow's render-only run of a task.
        self.plan_only = dry_run
        self.drop_missing = drop_missing

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Sync every table; returns one result per table (also the XCom)."""
        from cache_service.catalog.cli import describe
        from cache_service.catalog.errors import EmptyTableError
        from cache_service.catalog.model import Column, TableSpec

        sync, close = self._metastore_sync()
        results = []
        try:
            for table in self.tables:
                spec = TableSpec(
                    str(table["database"]),
                    str(table["name"]),
                    str(table["path"]),
                    tuple(Column(str(k), "string") for k in table.get("partition_keys", ())),
                )
                self.log.info("Syncing %s from %s (dry_run=%s)", spec.qualified_name, spec.path, self.plan_only)
                try:
                    result = sync.sync(spec, dry_run=bool(self.plan_only), drop_missing=bool(self.drop_missing))
                except (EmptyTableError, FileNotFoundError) as exc:
                    # not written yet (e.g. no cohort is due on the first day): nothing to register, not a failure
                    self.log.info("Skipping %s: %s", spec.qualified_name, exc)
                    results.append({"table": spec.qualified_name, "changed": False, "skipped": str(exc)})
                    continue
                for line in describe(result):
                    self.log.info("%s", line)
                summary = result.to_dict()
                results.append(summary)
                if not self.plan_only:
                    asset = Asset(name=f"{spec.database}.{spec.name}", uri=f"lakecache:/{spec.path}")
                    context["outlet_events"][asset].extra = {
                        "changed": summary["changed"],
                        "location": summary.get("location"),
                    }
        finally:
            close()
        return results

    def _metastore_sync(self) -> tuple[Any, Any]:
        from cache_service.catalog.sync import MetastoreSync
        from cache_service.config import MountConfig, UnderStoreConfig
        from cache_service.namespace.mounts import MountTable
        from cache_service.under_store.s3 import S3UnderStore

        hook = CacheHook(lakecache_conn_id=self.lakecache_conn_id)
        extra = hook.get_connection(self.lakecache_conn_id).extra_dejson
        region = str(extra.get("region") or "us-east-1")
        mounts = MountTable(MountConfig(path=m["path"], uri=m["uri"]) for m in hook.status()["mounts"])
        store = S3UnderStore(UnderStoreConfig(endpoint_url=extra.get("s3_endpoint_url"), region=region))
        location_root = None
        if self.catalog == "glue":
            from cache_service.catalog.glue import GlueCatalog, glue_client

            catalog: Any = GlueCatalog(glue_client(endpoint_url=extra.get("glue_endpoint_url"), region=region))
        else:
            from cache_service.catalog.hive import HiveCatalog, hive_session

            metastore_uri = extra.get("hive_metastore_uri")
            catalog = HiveCatalog(
                hive_session(metastore_dir=extra.get("hive_metastore_dir"), metastore_uri=metastore_uri)
            )
            if metastore_uri is None:
                # an embedded metastore opens every location with Hadoop, which has no s3 filesystem here
                location_root = hook.endpoint.url.replace("http://", "webhdfs://").replace("https://", "swebhdfs://")
        return MetastoreSync(catalog, mounts, store, location_root=location_root), store.close
