"""This worker as one of a cluster: its membership, the router its reads go through, and the announcements of the
changes it makes. Built by ``CacheService`` when ``[cluster] redis_url`` is set."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cache_service.cluster.drain import HandOver, check_drainable, drain, hand_over_staging
from cache_service.cluster.handoff import HandOff
from cache_service.cluster.invalidation import Invalidation
from cache_service.cluster.member import Member, MemberState, MemberStats
from cache_service.cluster.membership import Membership
from cache_service.cluster.peers import PageRange, PeerError, PeerReader
from cache_service.cluster.routing import BlockRouter
from cache_service.cluster.rules import SharedRules
from cache_service.cluster.staging import HomeKeeper, StagingCopies, StagingHomes
from cache_service.cluster.view import ClusterView
from cache_service.cluster.watch import PeerWatch
from cache_service.config import CacheConfig, WriteConfig
from cache_service.errors import StaleObjectError
from cache_service.jobs.model import Job
from cache_service.management.rules import PathRules
from cache_service.page_store import ObjectIdentity, PageStore
from cache_service.write.staging import StagingArea

log = logging.getLogger(__name__)


def advertised(config: CacheConfig, worker: str) -> Member:
    """Worker ``worker``'s record as ``config`` says it is reached (``advertise_host``, default ``server.host``)."""
    host = config.cluster.advertise_host or config.server.host
    return Member(
        id=worker,
        webhdfs_url=f"http://{host}:{config.server.webhdfs_port}",
        s3_url=f"http://{host}:{config.server.s3_port}",
        started_at=time.time(),
    )


class ChangeLog(Protocol):
    """What a worker does with changes another worker announced: apply them to its status cache."""

    def apply(self, bucket: str, prefix: str, *, exact: bool) -> None:
        """Forget the statuses the change touched."""
        ...

    def clear(self) -> None:
        """Forget every status."""
        ...


@dataclass(eq=False)
class ClusterNode:
    """See the module docstring. ``join`` before serving; ``leave`` on the way out."""

    membership: Membership
    router: BlockRouter
    peers: PeerReader
    watch: PeerWatch
    handoff: HandOff
    hand_over: HandOver
    poll: float
    homes: StagingHomes
    copies: StagingCopies
    write: WriteConfig
    keeper: HomeKeeper
    rules: SharedRules | None = None
    """The cluster's pins and TTLs, once joined."""

    @classmethod
    def build(
        cls,
        config: CacheConfig,
        worker: str,
        *,
        stats: Callable[[], MemberStats],
        pages: PageStore,
        staging: StagingArea,
    ) -> ClusterNode:
        """The node of worker ``worker`` as ``config``'s ``[cluster]`` section describes it."""
        cluster = config.cluster
        membership = Membership(
            redis_url=cluster.redis_url,
            me=advertised(config, worker),
            block_size=cluster.block_size,
            heartbeat_interval=cluster.heartbeat_interval,
            member_timeout=cluster.member_timeout,
            stats=stats,
        )
        peers = PeerReader(config.admin.token, cluster.peer_timeout)

        def view() -> ClusterView:  # every part reads the view membership holds now
            return membership.view

        router = BlockRouter(view=view, peers=peers, direct=pages.pass_through)
        handoff = HandOff(view, peers, pages, usable=router.answering)
        router.fill = handoff.fill
        watch = PeerWatch(view, peers, router, cluster.heartbeat_interval)
        hand_over = HandOver(pages, peers, view)
        replicas = max(1, config.write.staging_replicas)
        homes = StagingHomes(membership.redis, view, replicas, usable=router.answering)
        copies = StagingCopies(staging, config.admin.token, cluster.peer_timeout)
        return cls(
            membership,
            router,
            peers,
            watch,
            handoff,
            hand_over,
            cluster.heartbeat_interval,
            homes,
            copies,
            config.write,
            HomeKeeper(homes, copies, config.write, cluster.heartbeat_interval),
        )

    @property
    def view(self) -> ClusterView:
        """The cluster as this worker sees it now."""
        return self.membership.view

    async def join(self, statuses: ChangeLog, rules: PathRules) -> None:
        """Join the cluster; from now on changes the others announce are applied to ``statuses``, and ``rules`` are
        the cluster's pins and TTLs.

        Raises ``ClusterError`` (Redis does not answer, or this identity is taken).
        """

        def received(change: Invalidation | None) -> None:
            if change is None:
                statuses.clear()
            else:
                statuses.apply(change.bucket, change.prefix, exact=change.exact)

        await self.membership.join(received)
        self.rules = SharedRules(self.membership, rules)
        await self.rules.join()
        self.watch.start()
        self.keeper.start()

    async def retire(self) -> None:
        """Leave the ring after a drain but keep serving: reads that reach this worker still go to the owners over
        the same connections, streams under way finish, and changes other workers announce still drop what they
        change from this worker's caches."""
        await self.keeper.stop()
        await self.watch.stop()
        await self.membership.leave(keep_listening=True)

    async def leave(self) -> None:
        """Leave the cluster and close the connections to peers."""
        await self.keeper.stop()
        await self.watch.stop()
        await self.membership.leave()
        await self.peers.close()
        await self.copies.close()

    def owns(self, obj: ObjectIdentity, offset: int) -> bool:
        """True when the block holding byte ``offset`` of ``obj`` is this worker's (or no worker is active)."""
        view = self.view
        owners = view.owners(obj.bucket, obj.key, offset // view.block_size)
        return not owners or owners[0].id == view.self_id

    async def place(self, obj: ObjectIdentity, index: int, data: bytes) -> bool:
        """Give a page just written through this worker to its block's owner, if that is another worker; True when
        the owner took it (a job's output read back then reads nothing from S3). A page the owner cannot take stays
        here, as with the next worker in line for its block."""
        start, end = obj.page_bounds(index, self.hand_over.pages.page_size)
        if self.owns(obj, start):
            return False
        view = self.view
        owner = view.owners(obj.bucket, obj.key, start // view.block_size)[0]
        try:
            await self.peers.give(owner.webhdfs_url, PageRange(obj, start, end), data, hot=False)
        except (PeerError, OSError, LookupError, StaleObjectError) as exc:
            log.warning(
                "a written page stays here: its owner did not take it", extra={"worker": owner.id, "error": str(exc)}
            )
            return False
        return True

    async def drain(self, job: Job, *, staged_bytes: Callable[[], int], budget: int | None) -> None:
        """Drain this worker as ``job`` (``cluster.drain``): hand its pages over, wait for its staged files, leave.

        Raises ``DrainRefusedError`` when this worker may not be drained now.
        """
        check_drainable(self.view, self.membership.worker_id)
        await drain(
            job,
            hand_over=self.hand_over,
            set_state=self.membership.set_state,
            staged_bytes=staged_bytes,
            hand_over_staging=lambda: hand_over_staging(self.copies.staging, self.write, self.homes, self.copies),
            leave=self.retire,
            budget=budget,
            poll=self.poll,
        )

    async def announce(self, bucket: str, prefix: str, exact: bool) -> None:
        """Tell the other workers that statuses at ``bucket``/``prefix`` changed (``StatusCache.announce``).

        Each live worker (active or draining: both serve reads) is told directly, and this returns once each has
        applied the change (or failed to answer within ``peer_timeout``), so that the caller's next request sees it
        on any worker; the announcement on Redis reaches the ones that could not be told directly.
        """
        change = Invalidation(bucket, prefix, exact, self.membership.worker_id)
        view = self.view
        others = [m for m in view.members.values() if m.id != view.self_id and m.state is not MemberState.GONE]
        told = await asyncio.gather(
            *(self.peers.invalidate(m.webhdfs_url, change) for m in others), return_exceptions=True
        )
        for member, outcome in zip(others, told, strict=True):
            if isinstance(outcome, Exception):
                log.warning("a worker was not told of a change", extra={"worker": member.id, "error": str(outcome)})
        await self.membership.announce(change)
