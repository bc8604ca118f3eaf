"""Management asked of any worker acts on the whole cluster: ``free``, ``purge`` and the TTL sweep run on the worker
asked (which checks the request), then on every other active worker (``local: true``), and the answer adds theirs up,
with each worker's part under ``workers``. A worker that does not answer is named under ``unreachable``; the
others' parts stand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from cache_service.cluster.node import ClusterNode
from cache_service.cluster.peers import PeerError

Answer = dict[str, Any]


async def everywhere(node: ClusterNode, route: str, body: Answer, here: Callable[[], Awaitable[Answer]]) -> Answer:
    """``here`` on this worker, then ``route`` with ``body`` on every other active worker; the merged answer."""
    mine = await here()
    view = node.view
    others = [m for m in view.active() if m.id != view.self_id]
    answers = await asyncio.gather(
        *(node.peers.admin_post(m.webhdfs_url, route, body | {"local": True}) for m in others), return_exceptions=True
    )
    parts: dict[str, Answer] = {view.self_id: mine}
    unreachable: dict[str, str] = {}
    for member, outcome in zip(others, answers, strict=True):
        if isinstance(outcome, PeerError):
            unreachable[member.id] = str(outcome)
        elif isinstance(outcome, BaseException):
            raise outcome
        elif outcome[0] != 200:
            unreachable[member.id] = f"answered {outcome[0]}: {outcome[1]}"
        else:
            parts[member.id] = outcome[1]
    merged = _MERGES[route](list(parts.values()))
    merged["workers"] = parts
    merged["unreachable"] = unreachable
    return merged


def _refusals(parts: list[Answer]) -> list[Answer]:
    seen: dict[str, Answer] = {}
    for part in parts:
        for refusal in part.get("refused") or []:
            seen.setdefault(str(refusal.get("path")), refusal)
    return [seen[p] for p in sorted(seen)]


def _freed(parts: list[Answer]) -> Answer:
    return {
        "freed_bytes": sum(int(p.get("freed_bytes") or 0) for p in parts),
        "freed_pages": sum(int(p.get("freed_pages") or 0) for p in parts),
        "refused": _refusals(parts),
    }


def _purged(parts: list[Answer]) -> Answer:
    evicted: dict[str, int] = {}
    for part in parts:
        for entry in part.get("evicted") or []:
            evicted[str(entry["path"])] = evicted.get(str(entry["path"]), 0) + int(entry["bytes"])
    shortfalls = [p["shortfall"] for p in parts if p.get("shortfall")]
    first = parts[0]
    return {
        "target": first.get("target"),
        "dry_run": first.get("dry_run"),
        "used_bytes_before": sum(int(p.get("used_bytes_before") or 0) for p in parts),
        "used_bytes_after": sum(int(p.get("used_bytes_after") or 0) for p in parts),
        "freed_bytes": sum(int(p.get("freed_bytes") or 0) for p in parts),
        "evicted": [{"path": path, "bytes": n} for path, n in sorted(evicted.items())],
        "refused": _refusals(parts),
        "reached_target": all(bool(p.get("reached_target")) for p in parts),
        "shortfall": " ".join(dict.fromkeys(shortfalls)) or None,
    }


_MERGES: dict[str, Callable[[list[Answer]], Answer]] = {"free": _freed, "purge": _purged, "ttl/sweep": _freed}
