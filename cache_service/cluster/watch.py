"""Seeing a peer die at once: every worker holds a watch (``GET /cluster/v1/watch``) on every other active worker.

A crashed worker's connections are closed by its kernel, so the watch ends the moment it dies; a hung one stops
sending its byte per heartbeat interval and the watch times out after three. Either way the router stops sending
reads and redirects to it until a new watch on it succeeds, long before its heartbeats run out in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from cache_service.cluster.peers import PeerError, PeerReader
from cache_service.cluster.routing import BlockRouter
from cache_service.cluster.view import ClusterView

log = logging.getLogger(__name__)


@dataclass(eq=False)
class PeerWatch:
    """Watches the active workers of ``view()`` other than this one, and tells ``router`` who is down."""

    view: Callable[[], ClusterView]
    peers: PeerReader
    router: BlockRouter
    interval: float
    _watchers: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _loop: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start watching (the set of workers follows the view, checked every ``interval``)."""
        self._loop = asyncio.create_task(self._follow(), name="cluster-watch")

    async def stop(self) -> None:
        """Stop every watch."""
        tasks = [t for t in (self._loop, *self._watchers.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._watchers.clear()

    async def _follow(self) -> None:
        while True:
            view = self.view()
            wanted = {m.id: m.webhdfs_url for m in view.active() if m.id != view.self_id}
            for worker in [w for w in self._watchers if w not in wanted]:
                self._watchers.pop(worker).cancel()
                self.router.trust(worker)
            for worker, url in wanted.items():
                if worker not in self._watchers or self._watchers[worker].done():
                    self._watchers[worker] = asyncio.create_task(self._watch(worker, url), name=f"watch-{worker}")
            await asyncio.sleep(self.interval)

    async def _watch(self, worker: str, url: str) -> None:
        while True:
            try:
                await self.peers.watch(url, silence=3 * self.interval, alive=lambda: self.router.trust(worker))
            except PeerError as exc:
                log.debug("no watch on a worker", extra={"worker": worker, "error": str(exc)})
            self.router.distrust(worker)
            await asyncio.sleep(self.interval)
