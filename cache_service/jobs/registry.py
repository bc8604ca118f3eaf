"""The registry of background jobs: runs each as an asyncio task that outlives the request that started it."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from cache_service.jobs.model import Job, JobState

log = logging.getLogger(__name__)

Runner = Callable[[Job], Awaitable[None]]


class JobRegistry:
    """Submitted jobs, newest last; finished ones beyond ``keep_finished`` are forgotten oldest first."""

    def __init__(self, keep_finished: int = 200) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._keep = keep_finished

    def submit(self, kind: str, request: dict[str, Any], runner: Runner) -> Job:
        """Start ``runner`` on a new job in the background and return the job at once."""
        job = Job(id=uuid.uuid4().hex[:12], kind=kind, request=request)
        self._jobs[job.id] = job
        self._tasks[job.id] = asyncio.create_task(self._run(job, runner), name=f"job-{job.id}")
        self._trim()
        return job

    async def _run(self, job: Job, runner: Runner) -> None:
        job.state, job.started_at = JobState.RUNNING, time.time()
        try:
            await runner(job)
        except asyncio.CancelledError:
            job.state, job.message = JobState.CANCELLED, "cancelled"
        except Exception as exc:  # a job's failure is its record's business, never the server's
            log.warning("job %s failed: %s", job.id, exc)
            job.state, job.message = JobState.FAILED, f"{type(exc).__name__}: {exc}"
        else:
            if job.errors:
                job.state = JobState.FAILED
                job.message = f"{len(job.errors)} of {job.progress.files_total} files failed"
            else:
                job.state = JobState.SUCCEEDED
        finally:
            job.finished_at = time.time()
            job.update_rate(job.finished_at)
            if job.state is JobState.SUCCEEDED:
                job.progress.eta_seconds = 0.0
            self._tasks.pop(job.id, None)

    def get(self, job_id: str) -> Job:
        """The job, its rate and ETA brought up to date. Raises ``KeyError`` for an unknown id."""
        job = self._jobs[job_id]
        if job.state is JobState.RUNNING:
            job.update_rate(time.time())
        return job

    def list(self) -> list[Job]:
        """Every job still remembered, oldest first."""
        now = time.time()
        for job in self._jobs.values():
            if job.state is JobState.RUNNING:
                job.update_rate(now)
        return list(self._jobs.values())

    async def cancel(self, job_id: str) -> Job:
        """Cancel a queued or running job (a finished one is returned as it is). Raises ``KeyError``."""
        job = self._jobs[job_id]
        task = self._tasks.get(job_id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return job

    def running(self) -> int:
        """How many jobs are running now."""
        return len(self._tasks)

    async def close(self) -> None:
        """Cancel every running job (at shutdown)."""
        for job_id in list(self._tasks):
            await self.cancel(job_id)

    def _trim(self) -> None:
        finished = [j for j in self._jobs.values() if j.state.finished]
        for job in finished[: max(0, len(finished) - self._keep)]:
            del self._jobs[job.id]
