"""Draining a worker: it leaves the ring without taking the cache with it.

1. The worker says it is draining: every worker (itself included) routes its blocks to their new owners at once,
   and a new owner that misses a page asks the draining worker for it before S3 (``HandOff``), so reads stay warm and
   keep working throughout.
2. It hands its pages to their new owners, peer to peer: the memory tier first, then the disk tier, each in the
   order its eviction policy would keep them (what is worth most goes first), until ``budget`` bytes are given.
3. It hands each staging directory it holds to the workers of the directory's home that remain (a home loses its
   draining worker and gains the next active one, which gets a copy), then drops its own copy. A directory it could
   not hand over it keeps, and it waits until its writers publish or delete it: acknowledged writes are never lost
   to a drain.
4. It leaves the ring (gone).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cache_service.cluster.member import MemberState
from cache_service.cluster.peers import PageRange, PeerReader
from cache_service.cluster.staging import StagingCopies, StagingHomes, staged_roots
from cache_service.cluster.view import ClusterView
from cache_service.config import WriteConfig
from cache_service.jobs.model import FileError, Job
from cache_service.page_store import PageStore
from cache_service.page_store.identity import ObjectIdentity
from cache_service.page_store.index import PageEntry
from cache_service.units import format_size
from cache_service.write.staging import StagingArea

log = logging.getLogger(__name__)

GIVE_ATTEMPTS = 3
"""Tries to give one page to its new owner: a peer busy past ``peer_timeout`` usually answers the next."""
GIVE_PAUSE = 0.25
"""Seconds before the second try, twice that before the third."""


class DrainRefusedError(ValueError):
    """A drain that cannot start: the worker is not active, is the last active one, or is not in the cluster."""


def check_drainable(view: ClusterView, worker: str) -> None:
    """Refuse a drain of ``worker`` that cannot be done. Raises ``KeyError`` for a worker the cluster does not know
    and ``DrainRefusedError`` for one that is not active or is the last active worker."""
    member = view.members.get(worker)
    if member is None:
        raise KeyError(worker)
    if member.state is MemberState.DRAINING:
        raise DrainRefusedError(f"worker {worker} is already draining")
    if member.state is not MemberState.ACTIVE:
        raise DrainRefusedError(f"worker {worker} is {member.state.value}, not active: there is nothing to drain")
    if view.ring.workers == (worker,):
        raise DrainRefusedError(
            f"worker {worker} is the last active worker: draining it would leave no worker to hand its pages to"
        )


@dataclass
class HandOver:
    """The pages a draining worker gives away, in order, and to whom; see the module docstring."""

    pages: PageStore
    peers: PeerReader
    view: Callable[[], ClusterView]
    parallelism: int = 4

    def plan(self, budget: int | None) -> list[tuple[PageEntry, bool]]:
        """(page, hot) to give, in order: memory first, then disk, each most worth keeping first; at most ``budget``
        bytes (None: all). ``hot`` pages go to their new owner's memory tier."""
        chosen: list[tuple[PageEntry, bool]] = []
        seen: set[tuple[str, int]] = set()
        total = 0
        media = self.pages.media()
        for medium in media:
            hot = medium != self.pages.last_medium
            for entry in self.pages.keep_order(medium):
                key = (entry.owner.file_id, entry.index)
                if key in seen:
                    continue
                if budget is not None and total + entry.size > budget:
                    return chosen
                seen.add(key)
                chosen.append((entry, hot))
                total += entry.size
        return chosen

    async def give(self, job: Job, plan: list[tuple[PageEntry, bool]]) -> tuple[int, int]:
        """Give every page of ``plan`` to its block's owner in the current view; returns the pages given and those
        gone from this worker before they could be (evicted or purged since the plan: nothing to give, and no
        failure). A page that could not be given otherwise is named in the job's errors. Both are counted as skipped
        (S3 still holds their bytes)."""
        progress = job.progress
        progress.bytes_total = sum(entry.size for entry, _ in plan)
        progress.files_total = len(plan)
        slots = asyncio.Semaphore(self.parallelism)
        given = evicted = 0

        async def one(entry: PageEntry, hot: bool) -> None:
            nonlocal given, evicted
            obj, index = entry.owner, entry.index
            start, end = obj.page_bounds(index, self.pages.page_size)
            async with slots:
                for attempt in range(1, GIVE_ATTEMPTS + 1):
                    try:
                        await self._give_one(obj, index, start, end, hot)
                    except Exception as exc:
                        if not self.pages.has_page(obj, index):
                            evicted += 1  # purged or evicted meanwhile: nothing left to give
                        elif attempt < GIVE_ATTEMPTS:  # a peer slow under load: once more, after a pause
                            await asyncio.sleep(GIVE_PAUSE * attempt)
                            continue
                        else:
                            error = FileError(path=f"s3://{obj.bucket}/{obj.key}#page={index}", error=str(exc))
                            job.errors.append(error)
                        progress.bytes_skipped += end - start
                    else:
                        given += 1
                        progress.bytes_done += end - start
                    break
            progress.files_done += 1
            job.update_rate(time.time())

        await asyncio.gather(*(one(entry, hot) for entry, hot in plan))
        return given, evicted

    async def _give_one(self, obj: ObjectIdentity, index: int, start: int, end: int, hot: bool) -> None:
        """Give page ``index`` of ``obj`` (bytes ``[start, end)``) to its block's owner in the current view."""
        view = self.view()
        owners = view.owners(obj.bucket, obj.key, start // view.block_size)
        target = next((m for m in owners if m.id != view.self_id), None)
        if target is None:
            raise RuntimeError("no other active worker")
        if not self.pages.has_page(obj, index):
            raise LookupError("evicted before it could be given")
        data = b"".join([bytes(c) async for c in self.pages.read(obj, start, end - start)])
        await self.peers.give(target.webhdfs_url, PageRange(obj, start, end), data, hot=hot)


async def drain(
    job: Job,
    *,
    hand_over: HandOver,
    set_state: Callable[[MemberState], Awaitable[None]],
    staged_bytes: Callable[[], int],
    hand_over_staging: Callable[[], Awaitable[list[str]]],
    leave: Callable[[], Awaitable[None]],
    budget: int | None,
    poll: float,
) -> None:
    """Run one drain of this worker as ``job``; see the module docstring. A drain cancelled or failed before it
    leaves makes the worker active again."""
    await set_state(MemberState.DRAINING)
    try:
        job.message = "handing staging directories to their homes"
        kept = await hand_over_staging()
        plan = hand_over.plan(budget)
        job.message = f"handing {len(plan)} pages to their new owners"
        given, evicted = await hand_over.give(job, plan)
        while (staged := staged_bytes()) > 0:
            job.message = f"waiting for {format_size(staged)} of staged files to be published or deleted" + (
                f" (could not hand over {', '.join(kept)})" if kept else ""
            )
            await asyncio.sleep(poll)
    except BaseException:
        await asyncio.shield(set_state(MemberState.ACTIVE))
        raise
    await leave()
    failed = len(plan) - given - evicted
    job.message = (
        f"handed {given} pages ({format_size(job.progress.bytes_done)}) to their new owners"
        + (f", {evicted} were evicted before they could be" if evicted else "")
        + (f", {failed} could not be given (see errors)" if failed else "")
        + "; left the ring"
    )
    log.info("drained", extra={"pages": given, "bytes": job.progress.bytes_done, "evicted": evicted, "failed": failed})
    if job.errors:
        log.warning("pages not handed over", extra={"errors": [f"{e.path}: {e.error}" for e in job.errors[:5]]})


async def hand_over_staging(
    staging: StagingArea, write: WriteConfig, homes: StagingHomes, copies: StagingCopies
) -> list[str]:
    """Give every staging directory held here to its home's remaining workers and drop it here; returns the ones
    that could not be handed over (kept)."""
    kept = []
    for root in staged_roots(staging, write):
        if await homes.hand_over(root, copies):
            staging.remove(root)
            staging.prune_empty_parents(root, keep=write.is_staging)
        else:
            kept.append(root)
    return kept
