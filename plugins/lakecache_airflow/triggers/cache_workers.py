"""``CacheWorkersJoinedTrigger``: wait in the triggerer until new compute nodes run active cache workers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from lakecache_airflow.hooks.cache import CacheHook
from lakecache_airflow.scaling.base import Node
from lakecache_airflow.scaling.cache_nodes import CacheWorker, join_timeout_message, workers_on


class CacheWorkersJoinedTrigger(BaseTrigger):
    """Reads ``GET /admin/v1/cluster`` every ``poll_interval`` seconds until each of ``nodes`` runs an active cache
    worker (``lakecache_airflow.scaling.cache_nodes``: a worker runs on a node when the host it advertises is one of
    the node's addresses).

    Fires one event: ``{"status": "success", "joined": {node name: worker id}}``, or ``{"status": "error",
    "message": ..., "pending": [node names]}`` once ``deadline`` (a Unix time, so that a triggerer that restarts
    keeps the task's limit) has passed. A cache that cannot be read meanwhile is asked again until then: a cluster
    that is scaling out may answer slowly.

    :param nodes: the new nodes, as ``Node.to_json`` gives them.
    :param deadline: when to give up (seconds since the epoch).
    :param timeout: the limit in seconds, for the message.
    :param lakecache_conn_id: the ``lakecache`` connection to any worker of the cache cluster.
    :param poll_interval: seconds between two looks.
    """

    def __init__(
        self,
        *,
        nodes: Sequence[Mapping[str, Any]],
        deadline: float,
        timeout: float,
        lakecache_conn_id: str = CacheHook.default_conn_name,
        poll_interval: float = 2.0,
    ) -> None:
        super().__init__()
        self.nodes = [dict(node) for node in nodes]
        self.deadline = deadline
        self.timeout = timeout
        self.lakecache_conn_id = lakecache_conn_id
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and keyword arguments that recreate this trigger in the triggerer."""
        return (
            "lakecache_airflow.triggers.cache_workers.CacheWorkersJoinedTrigger",
            {
                "nodes": self.nodes,
                "deadline": self.deadline,
                "timeout": self.timeout,
                "lakecache_conn_id": self.lakecache_conn_id,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Look until every node has its worker or the deadline passes, then yield the one event."""
        hook = CacheHook(self.lakecache_conn_id)
        pending = [Node.from_json(node) for node in self.nodes]
        joined: dict[str, str] = {}
        last_error = ""
        while True:
            try:
                report = await hook.cluster_async()
            except AirflowException as exc:
                last_error = f"cannot read the cache cluster: {exc}"
                self.log.warning("%s; looking again in %gs", last_error, self.poll_interval)
            else:
                members = [CacheWorker.from_member(m) for m in report.get("members") or []]
                found = workers_on(pending, members)
                for node, worker in sorted(found.items()):
                    self.log.info("Cache worker %s is active on new node %s", worker, node)
                joined.update(found)
                pending = [node for node in pending if node.name not in found]
                last_error = ""
            if not pending:
                yield TriggerEvent({"status": "success", "joined": joined})
                return
            if time.time() >= self.deadline:
                message = join_timeout_message(pending, self.timeout, last_error)
                yield TriggerEvent({"status": "error", "message": message, "pending": [n.name for n in pending]})
                return
            await asyncio.sleep(min(self.poll_interval, max(0.0, self.deadline - time.time())))
