"""A cluster's warmup: asked of any worker, a load warms every block on its owner, all owners at once.

The worker asked starts the same load on every other active worker (``owned_only``: each loads only the pages of
the blocks it owns, from S3 in runs, see ``cache_service.jobs.load``) and loads its own blocks meanwhile. Its job
is the sum of the parts: progress adds the workers' bytes, errors name the worker they happened on, and the job
fails if a part fails. Cancelling it cancels the parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from cache_service.admin_client import ADMIN_PREFIX, job_route
from cache_service.cluster.member import Member
from cache_service.cluster.peers import PeerError, PeerReader
from cache_service.jobs.model import FileError, Job, JobProgress, JobState

_POLL = 0.25
_SUMMED = ("bytes_done", "bytes_from_s3", "bytes_skipped", "bytes_total")


@dataclass
class _Part:
    """One other worker's part of the load: where its job is, and what it said last."""

    member: Member
    url: str
    answer: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return str(self.answer.get("state", "")) in ("succeeded", "failed", "cancelled")


async def load_everywhere(
    job: Job,
    here: Callable[[Job], Awaitable[None]],
    *,
    others: list[Member],
    peers: PeerReader,
    request: dict[str, Any],
) -> None:
    """Run ``job``: this worker's part (``here``) and the same load, ``owned_only``, on each of ``others``."""
    parts: list[_Part] = []
    for member in others:
        try:
            status, answer = await peers.admin_post(member.webhdfs_url, "load", request | {"owned_only": True})
        except PeerError as exc:
            job.errors.append(FileError(path=f"worker {member.id}", error=str(exc)))
            continue
        if status != 202:
            message = (answer.get("error") or {}).get("message", answer) if isinstance(answer, dict) else answer
            job.errors.append(FileError(path=f"worker {member.id}", error=f"refused the load: {message}"))
            continue
        parts.append(_Part(member, f"{member.webhdfs_url}{ADMIN_PREFIX}/{job_route(answer['id'])}", answer))
    mine = Job(id=f"{job.id}-here", kind=job.kind, request=job.request)
    local: asyncio.Future[None] = asyncio.ensure_future(here(mine))
    try:
        while True:
            await asyncio.wait([local], timeout=_POLL)
            for part in parts:
                if not part.finished:
                    with contextlib.suppress(PeerError):
                        part.answer = await peers.admin_get(part.url)
            _sum(job, mine, parts)
            if local.done() and all(p.finished for p in parts):
                break
    except asyncio.CancelledError:
        local.cancel()
        for part in parts:
            with contextlib.suppress(PeerError):
                await peers.admin_post(part.member.webhdfs_url, job_route(part.answer["id"]) + "/cancel", {})
        raise
    local.result()  # this worker's own failure fails the job as it would alone
    job.errors += mine.errors
    for part in parts:
        for error in part.answer.get("errors") or []:
            job.errors.append(
                FileError(path=str(error.get("path")), error=f"on {part.member.id}: {error.get('error')}")
            )
        if part.answer.get("state") != JobState.SUCCEEDED and not part.answer.get("errors"):
            reason = part.answer.get("message") or part.answer.get("state")
            job.errors.append(FileError(path=f"worker {part.member.id}", error=f"its part {reason}"))


def _sum(job: Job, mine: Job, parts: list[_Part]) -> None:
    total = JobProgress(**vars(mine.progress))
    for part in parts:
        progress = part.answer.get("progress") or {}
        for name in _SUMMED:
            setattr(total, name, getattr(total, name) + int(progress.get(name) or 0))
        total.files_done = min(total.files_done, int(progress.get("files_done") or 0))
    job.progress = total
    job.update_rate(time.time())
