"""``CacheWorkersJoinedOperator``: after a scale-out, wait (in the triggerer) until each new node's cache worker is
active in the cache cluster."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowException

from lakecache_airflow.operators.cluster_scale import config_data, option_text
from lakecache_airflow.scaling.backends import BackendConfig
from lakecache_airflow.scaling.base import Node
from lakecache_airflow.scaling.policy import PolicyConfigError
from lakecache_airflow.triggers.cache_workers import CacheWorkersJoinedTrigger


class CacheWorkersJoinedOperator(BaseOperator):
    """Wait until every node a ``ClusterScaleOperator`` run added runs an active cache worker; returns node name ->
    cache worker id (empty when nothing was added, or when the policy's backend follows no cache).

    The wait is deferred: ``CacheWorkersJoinedTrigger`` reads the cluster in the triggerer, for at most the policy's
    ``[backend.cache] join_timeout``, through its ``conn_id`` connection, every ``poll_interval``; no worker slot is
    held meanwhile. The task fails naming the nodes still without a worker when the time is up.

    :param scaled: the scale task's XCom (its ``result.added`` names the new nodes). Templated.
    :param config: the policy (a TOML file path, or a dict), as the scale task was given it. Templated.
    :param backend: ``[backend] kind`` override, as the scale task was given it. Templated.
    """

    template_fields: Sequence[str] = ("scaled", "config", "backend")
    ui_color = "#fdebd0"

    def __init__(
        self,
        *,
        scaled: Any,
        config: str | Mapping[str, Any],
        backend: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.scaled = scaled
        self.config = config
        self.backend = backend

    def execute(self, context: Context) -> dict[str, str]:
        """Return at once when there is nothing to wait for; else defer to the trigger."""
        try:
            backend = BackendConfig.from_dict(config_data(self.config), kind=option_text(self.backend))
        except PolicyConfigError as exc:
            raise AirflowException(f"the cache did not follow the scale-out: {exc}") from None
        scaled = self.scaled if isinstance(self.scaled, Mapping) else {}
        result = scaled.get("result") or {}
        added = [Node.from_json(node) for node in result.get("added") or []]
        if backend.cache is None or not added:
            self.log.info("No new node has a cache worker to wait for")
            return {}
        following = backend.cache
        names = ", ".join(node.name for node in added)
        self.log.info("Waiting up to %gs for a cache worker on %s", following.join_timeout, names)
        self.defer(
            trigger=CacheWorkersJoinedTrigger(
                nodes=[node.to_json() for node in added],
                deadline=time.time() + following.join_timeout,
                timeout=following.join_timeout,
                lakecache_conn_id=following.conn_id,
                poll_interval=following.poll_interval,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, str]:
        """Resume after the trigger fired: the nodes' workers, or fail with why not."""
        if event.get("status") != "success":
            why = event.get("message") or repr(event)
            raise AirflowException(f"the cache did not follow the scale-out: {why}")
        joined = {str(node): str(worker) for node, worker in (event.get("joined") or {}).items()}
        for node, worker in sorted(joined.items()):
            self.log.info("Cache worker %s is active on new node %s", worker, node)
        return joined
