"""The cluster as ``GET /admin/v1/cluster`` and ``cachectl cluster`` show it, and as Prometheus discovers it
(``GET /admin/v1/cluster/targets``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from cache_service.cluster.member import MemberState
from cache_service.cluster.view import ClusterView


def cluster_totals(view: ClusterView) -> dict[str, Any]:
    """What the active workers hold together (from their last heartbeats): the cluster line of ``cachectl status``."""
    active = [m for m in view.members.values() if m.state is MemberState.ACTIVE]
    hits, misses = sum(m.stats.hits for m in active), sum(m.stats.misses for m in active)
    return {
        "workers": len(active),
        "pages": sum(m.stats.pages for m in active),
        "used_bytes": sum(m.stats.used_bytes for m in active),
        "capacity_bytes": sum(m.stats.capacity_bytes for m in active),
        "hit_ratio": hits / (hits + misses) if hits + misses else None,
        "degraded": view.degraded,
    }


def cluster_json(view: ClusterView, *, clustered: bool, now: float) -> dict[str, Any]:
    """The view as JSON: who answers, whether its knowledge is current, and every member with its ring share,
    pages, use, hit ratio and the age of its last heartbeat (``now`` in seconds since the epoch)."""
    active = len(view.ring)
    digests = {m.ring for m in view.members.values() if m.state is MemberState.ACTIVE and m.ring}
    return {
        "clustered": clustered,
        "worker": view.self_id,
        "degraded": view.degraded,
        "ring": view.digest,
        "rings_agree": len(digests) <= 1,
        "block_size": view.block_size,
        "members": [
            {
                "id": m.id,
                "webhdfs_url": m.webhdfs_url,
                "s3_url": m.s3_url,
                "state": str(m.state),
                "ring_share": 1 / active if m.state is MemberState.ACTIVE and active else 0.0,
                "pages": m.stats.pages,
                "used_bytes": m.stats.used_bytes,
                "capacity_bytes": m.stats.capacity_bytes,
                "hit_ratio": m.stats.hit_ratio,
                "heartbeat_at": m.heartbeat_at or None,
                "heartbeat_age_seconds": round(max(0.0, now - m.heartbeat_at), 3) if m.heartbeat_at else None,
            }
            for m in sorted(view.members.values(), key=lambda m: m.id)
        ],
    }


def scrape_targets(view: ClusterView) -> list[dict[str, Any]]:
    """The workers Prometheus should scrape, as HTTP service discovery's JSON: one target group per worker that is
    joining, active or draining (a gone worker is left out), its target the ``host:port`` that serves ``/metrics``
    (the WebHDFS port), labelled with its id. Not with its state: a target label that changes (active, then
    draining) would start new series for every metric of the worker, and ``state`` is a label of its metrics."""
    groups = []
    for m in sorted(view.members.values(), key=lambda m: m.id):
        if m.state is MemberState.GONE:
            continue
        address = urlsplit(m.webhdfs_url).netloc
        groups.append({"targets": [address], "labels": {"worker_id": m.id}})
    return groups
