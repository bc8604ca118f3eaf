"""The cache workers on the compute nodes: which worker runs on which node, draining it before its node goes, and
waiting for a new node's worker to join.

A node is known by its addresses: a Spark worker's host, an EC2 instance's private IP and private DNS name. A cache
worker is known by the host of the WebHDFS URL it advertises in ``GET /admin/v1/cluster`` (``[cluster]
advertise_host``, default ``[server] host``). A worker runs on a node when that host is one of the node's addresses
(compared without case); ports are not compared, so each node needs an address of its own: nodes that share one
address (every Spark worker on 127.0.0.1) cannot be told apart, and each would be taken for the host of every worker.

Scale-in drains every active worker on the leaving nodes, one at a time, and waits for each drain job; only then
may the backend stop the nodes. Nothing is drained, and ``LastCacheWorkerError`` is raised, when the leaving nodes
hold every active worker. A drain that fails or outlasts ``drain_timeout`` is cancelled (the worker is active again)
and raised as ``CacheDrainError``: the backend then removes no node.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from lakecache_airflow.scaling.base import Node, ScalingError


class CacheDrainError(ScalingError):
    """A cache worker could not be drained (refused, failed, or too slow): its node must not be removed."""


class LastCacheWorkerError(CacheDrainError):
    """The nodes to remove run every active cache worker: draining them would leave the cache with no worker."""


class CacheJoinTimeoutError(ScalingError):
    """A new node's cache worker was not active in the cluster within the join timeout."""


class CacheAdmin(Protocol):
    """The admin API calls this module makes; ``CacheHook`` implements them."""

    def cluster(self) -> dict[str, Any]:
        """``GET /admin/v1/cluster``."""
        ...

    def cluster_at(self, webhdfs_url: str) -> dict[str, Any]:
        """``GET /admin/v1/cluster`` on another worker of the cluster."""
        ...

    def drain(self, worker: str, budget: int | None = None) -> dict[str, Any]:
        """Start the drain of ``worker``; the job with its ``job_url``."""
        ...

    def wait_for_drain(
        self, job: Mapping[str, Any], *, poll_interval: float = 2.0, timeout: float | None = None
    ) -> dict[str, Any]:
        """The drain job's final record; raises after ``timeout`` seconds."""
        ...

    def cancel_drain(self, job: Mapping[str, Any]) -> dict[str, Any]:
        """Cancel a drain job."""
        ...


@dataclass(frozen=True)
class CacheWorker:
    """One member of the cache cluster: its id, the host it advertises, its WebHDFS URL and its state."""

    id: str
    host: str
    webhdfs_url: str
    state: str

    @classmethod
    def from_member(cls, member: Mapping[str, Any]) -> CacheWorker:
        """A member of ``GET /admin/v1/cluster``."""
        url = str(member.get("webhdfs_url") or "")
        return cls(str(member["id"]), urlsplit(url).hostname or "", url, str(member.get("state") or ""))


class NodeCaches:
    """The cache cluster behind ``admin`` as the nodes of a compute cluster see it.

    :param admin: the admin API of any worker of the cache cluster (``CacheHook``).
    :param drain_timeout: seconds one worker's drain may take before it is cancelled and the scale-in stopped.
    :param join_timeout: seconds a new node's worker gets to be active.
    :param budget: bytes of pages each drained worker hands over (None: the worker's ``handoff_budget``).
    :param poll_interval: seconds between two looks at a drain job or at the cluster.
    """

    def __init__(
        self,
        admin: CacheAdmin,
        *,
        drain_timeout: float = 1800.0,
        join_timeout: float = 600.0,
        budget: int | None = None,
        poll_interval: float = 2.0,
    ) -> None:
        self.admin = admin
        self.drain_timeout = drain_timeout
        self.join_timeout = join_timeout
        self.budget = budget
        self.poll_interval = poll_interval

    def workers(self, seen_from: CacheWorker | None = None) -> tuple[bool, list[CacheWorker]]:
        """Whether the cache is a cluster, and its members (as ``seen_from`` lists them, else the connection's
        worker). Raises ``CacheDrainError`` when the cluster cannot be read."""
        try:
            report = self.admin.cluster() if seen_from is None else self.admin.cluster_at(seen_from.webhdfs_url)
        except Exception as exc:  # the hook's AirflowException, or a client's error: each is one line
            raise CacheDrainError(f"cannot read the cache cluster: {exc}") from None
        return bool(report.get("clustered")), [CacheWorker.from_member(m) for m in report.get("members") or []]

    def drain_nodes(self, nodes: Sequence[Node]) -> list[str]:
        """Drain every active cache worker running on ``nodes``, one after the other; returns one note per node.

        Raises ``LastCacheWorkerError`` (and drains nothing) when ``nodes`` run every active worker, and
        ``CacheDrainError`` when a drain is refused, fails or outlasts ``drain_timeout`` (it is cancelled first, so
        its worker is active again; workers drained before it stay drained).
        """
        if not nodes:
            return []
        clustered, members = self.workers()
        if not clustered:
            return ["the cache is one worker, not a cluster: no cache worker was drained"]
        active = [w for w in members if w.state == "active"]
        leaving = {node.name: [w for w in active if node.has_address(w.host)] for node in nodes}
        staying = [w for w in active if not any(w in on for on in leaving.values())]
        if not staying and any(leaving.values()):
            holders = [name for name, on in leaving.items() if on]
            ids = [w.id for on in leaving.values() for w in on]
            one = len(holders) == 1
            raise LastCacheWorkerError(
                f"scale-in refused: node{'' if one else 's'} {', '.join(holders)} run{'s' if one else ''} "
                f"{', '.join(ids)}, the last active cache worker{'' if len(ids) == 1 else 's'}; removing "
                f"{'it' if one else 'them'} would leave the cache with no worker (keep a node that runs one, or "
                "start a cache worker elsewhere first)"
            )
        notes = []
        for node in nodes:
            if not leaving[node.name]:
                notes.append(f"node {node.name} runs no active cache worker: nothing to drain")
            for worker in leaving[node.name]:
                notes.append(self._drain(node, worker, staying[0]))
        return notes

    def _drain(self, node: Node, worker: CacheWorker, witness: CacheWorker) -> str:
        started = time.monotonic()
        try:
            job = self.admin.drain(worker.id, self.budget)
        except Exception as exc:
            raise CacheDrainError(f"draining cache worker {worker.id} on node {node.name} was refused: {exc}") from None
        try:
            final = self.admin.wait_for_drain(job, poll_interval=self.poll_interval, timeout=self.drain_timeout)
        except Exception as exc:
            cancelled = self._cancel(job)
            raise CacheDrainError(
                f"draining cache worker {worker.id} on node {node.name} failed: {exc} ({cancelled}); "
                "no node was removed"
            ) from None
        if final.get("state") != "succeeded":
            raise CacheDrainError(
                f"draining cache worker {worker.id} on node {node.name} {final.get('state')}: "
                f"{final.get('message') or 'no message'}; no node was removed"
            )
        self._await_gone(node, worker, witness, started + self.drain_timeout)
        seconds = time.monotonic() - started
        return f"drained cache worker {worker.id} on node {node.name} in {seconds:.1f}s: {final.get('message')}"

    def _await_gone(self, node: Node, worker: CacheWorker, witness: CacheWorker, deadline: float) -> None:
        """Wait until ``witness``, a worker that stays, lists ``worker`` as gone: its node may be stopped only then."""
        while True:
            _, members = self.workers(seen_from=witness)
            state = next((m.state for m in members if m.id == worker.id), "gone")
            if state == "gone":
                return
            if time.monotonic() >= deadline:
                raise CacheDrainError(
                    f"cache worker {worker.id} on node {node.name} finished its drain but is still {state} in the "
                    "cluster; no node was removed"
                )
            time.sleep(min(self.poll_interval, 0.2))

    def _cancel(self, job: Mapping[str, Any]) -> str:
        try:
            record = self.admin.cancel_drain(job)
        except Exception as exc:
            return f"cancelling the drain failed too: {exc}"
        return f"drain job {record.get('id', job.get('id'))} {record.get('state', 'cancelled')}"

    def wait_for_nodes(self, nodes: Iterable[Node], timeout: float | None = None) -> dict[str, str]:
        """Wait until an active cache worker runs on each of ``nodes``; returns node name -> worker id.

        Raises ``CacheJoinTimeoutError`` naming the nodes still without one after ``timeout`` (default
        ``join_timeout``) seconds. A cache that cannot be read meanwhile is asked again until then. (The
        ``cluster_autoscale`` DAG waits in Airflow's triggerer instead: ``CacheWorkersJoinedTrigger``.)
        """
        pending = list(nodes)
        limit = self.join_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        joined: dict[str, str] = {}
        last_error = ""
        while True:
            try:
                _, members = self.workers()
            except CacheDrainError as exc:
                last_error = str(exc)
            else:
                found = workers_on(pending, members)
                joined.update(found)
                pending = [node for node in pending if node.name not in found]
            if not pending:
                return joined
            if time.monotonic() >= deadline:
                raise CacheJoinTimeoutError(join_timeout_message(pending, limit, last_error))
            time.sleep(self.poll_interval)


def workers_on(nodes: Iterable[Node], members: Iterable[CacheWorker]) -> dict[str, str]:
    """Node name -> id of an active cache worker on it, for each of ``nodes`` that runs one."""
    active = [w for w in members if w.state == "active"]
    found = {}
    for node in nodes:
        worker = next((w for w in active if node.has_address(w.host)), None)
        if worker is not None:
            found[node.name] = worker.id
    return found


def join_timeout_message(pending: Sequence[Node], limit: float, last_error: str = "") -> str:
    """What a wait for new nodes' cache workers says when ``pending`` still run none after ``limit`` seconds
    (``last_error``: why the cluster could not be read at the last look, if it could not)."""
    names = ", ".join(f"{n.name} ({', '.join(n.addresses)})" for n in pending)
    seen = f" (last look: {last_error})" if last_error else ""
    return (
        f"no active cache worker on new node{'s' if len(pending) > 1 else ''} {names} after {limit:g}s: "
        f"start a cache worker there with the cluster's [cluster] redis_url and admin token{seen}"
    )
