"""``CacheJobTrigger``: wait in the triggerer for a cache job (a warmup, for instance) to finish."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk.exceptions import AirflowException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from lakecache_airflow.hooks.cache import FINISHED_STATES, UNAVAILABLE_RETRIES, CacheHook, is_transient, summarize_job


class CacheJobTrigger(BaseTrigger):
    """Polls ``GET /admin/v1/jobs/{job_id}`` every ``poll_interval`` seconds until the job finishes.

    Fires one event: ``{"status": "success", "job": {...}, "message": ...}`` when the job succeeded, and
    ``{"status": "error", "job": {...} or None, "message": ...}`` when it failed or was cancelled, when the cache
    forgot it (a restarted worker keeps no jobs), or when the cache stayed unreachable (or its gateway answered
    502/503/504) for more than ``retries`` polls in a row.

    :param job_id: the job to wait for.
    :param lakecache_conn_id: the ``lakecache`` connection of the cache that runs it.
    :param poll_interval: seconds between polls.
    :param retries: consecutive transient failures tolerated before giving up.
    :param cancel_on_kill: cancel the job when a user kills the waiting task (the task that started the job says
        yes; a sensor waiting on someone else's job says no).
    """

    def __init__(
        self,
        *,
        job_id: str,
        lakecache_conn_id: str = CacheHook.default_conn_name,
        poll_interval: float = 5.0,
        retries: int = UNAVAILABLE_RETRIES,
        cancel_on_kill: bool = False,
    ) -> None:
        super().__init__()
        self.job_id = job_id
        self.lakecache_conn_id = lakecache_conn_id
        self.poll_interval = poll_interval
        self.retries = retries
        self.cancel_on_kill = cancel_on_kill

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and keyword arguments that recreate this trigger in the triggerer."""
        return (
            "lakecache_airflow.triggers.cache_job.CacheJobTrigger",
            {
                "job_id": self.job_id,
                "lakecache_conn_id": self.lakecache_conn_id,
                "poll_interval": self.poll_interval,
                "retries": self.retries,
                "cancel_on_kill": self.cancel_on_kill,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the job finishes, then yield its one event."""
        hook = CacheHook(self.lakecache_conn_id)
        failures = 0
        while True:
            try:
                job = await hook.job_async(self.job_id)
            except AirflowException as exc:
                if not is_transient(exc):
                    # NotFound (a restarted worker forgets its jobs), a bad connection: waiting will not help.
                    yield _error(f"cannot follow Lakecache job {self.job_id}: {exc}")
                    return
                failures += 1
                if failures > self.retries:
                    yield _error(f"{exc} (gave up on Lakecache job {self.job_id} after {failures} attempts)")
                    return
                self.log.warning("%s; retrying in %gs (%d of %d)", exc, self.poll_interval, failures, self.retries)
            else:
                failures = 0
                if job["state"] in FINISHED_STATES:
                    status = "success" if job["state"] == "succeeded" else "error"
                    yield TriggerEvent({"status": status, "job": job, "message": summarize_job(job)})
                    return
                self.log.info("Lakecache job %s is %s: %s", self.job_id, job["state"], job.get("progress"))
            await asyncio.sleep(self.poll_interval)

    async def on_kill(self) -> None:
        """A user killed the waiting task: cancel the job too when this trigger's task owns it."""
        if self.cancel_on_kill:
            try:
                await CacheHook(self.lakecache_conn_id).cancel_async(self.job_id)
            except AirflowException as exc:
                self.log.warning("could not cancel Lakecache job %s: %s", self.job_id, exc)


def _error(message: str) -> TriggerEvent:
    return TriggerEvent({"status": "error", "job": None, "message": message})
