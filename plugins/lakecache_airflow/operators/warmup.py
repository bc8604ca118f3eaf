"""``CacheWarmupOperator``: load data into the cache ahead of the jobs that read it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowException

from lakecache_airflow.hooks.cache import FINISHED_STATES, CacheHook, job_summary, path_list, summarize_job
from lakecache_airflow.triggers.cache_job import CacheJobTrigger

TIERS = ("disk", "memory")


class CacheWarmupOperator(BaseOperator):
    """Start a warmup (load) job for ``paths`` and wait for it; the job's summary goes to XCom.

    By default the task defers while the job runs: ``CacheJobTrigger`` polls the job in the triggerer and no
    worker slot is held. With ``deferrable=False`` the task polls the job itself. A job that fails (a file vanished
    from S3, S3 unreachable) fails the task with the job's per-file errors; so does a cache that cannot be reached.

    :param paths: cache paths to load: files, directories (recursively) or globs; templated
        (``"/warehouse/events/dt={{ ds }}"``). One path or a list.
    :param parallelism: pages fetched from S3 at once.
    :param bandwidth: a cap on S3 reads, as a size per second (``"50MiB"``) or bytes per second; None: no cap.
    :param tier: ``"disk"`` or ``"memory"`` (also promote the pages to the memory tier).
    :param lakecache_conn_id: the ``lakecache`` connection of the cache.
    :param poll_interval: seconds between polls of the job.
    :param deferrable: wait in the triggerer (default) rather than in the worker.
    """

    template_fields: Sequence[str] = ("paths", "parallelism")
    ui_color = "#d6eaf8"

    def __init__(
        self,
        *,
        paths: str | Sequence[str],
        parallelism: int | str = 4,
        bandwidth: str | int | None = None,
        tier: str = "disk",
        lakecache_conn_id: str = CacheHook.default_conn_name,
        poll_interval: float = 5.0,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # Checked here, at DAG parse time: a typo should break the DAG file, not a run at 3 a.m. A template (a DAG
        # param) is checked once rendered.
        if not is_template(parallelism):
            _check_parallelism(parallelism)
        if tier not in TIERS:
            raise ValueError(f"tier must be one of {', '.join(TIERS)}, not {tier!r}")
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be a positive number of seconds, not {poll_interval!r}")
        self.paths = paths
        self.parallelism = parallelism
        self.bandwidth = bandwidth
        self.tier = tier
        self.lakecache_conn_id = lakecache_conn_id
        self.poll_interval = poll_interval
        self.deferrable = deferrable
        self.job_id: str | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        """Start the job, then defer to the trigger (or poll) until it finishes."""
        paths = path_list(self.paths)
        _check_parallelism(self.parallelism)
        hook = CacheHook(self.lakecache_conn_id)
        self.log.info("Warming up %s into the %s tier of %s", ", ".join(paths), self.tier, hook.endpoint.url)
        job = hook.load(paths, parallelism=int(self.parallelism), bandwidth=self.bandwidth, tier=self.tier)
        self.job_id = job["id"]
        self.log.info("Lakecache load job %s is %s", job["id"], job["state"])
        if job["state"] not in FINISHED_STATES:
            if self.deferrable:
                self.defer(
                    trigger=CacheJobTrigger(
                        job_id=job["id"],
                        lakecache_conn_id=self.lakecache_conn_id,
                        poll_interval=self.poll_interval,
                        cancel_on_kill=True,
                    ),
                    method_name="execute_complete",
                )
            job = hook.wait_for_job(job["id"], poll_interval=self.poll_interval)
        return self._finished(job)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: fail with its message, or return the job's summary."""
        job = event.get("job")
        if not job:  # the cache could not be reached or forgot the job
            raise AirflowException(event.get("message") or f"Lakecache warmup failed: {event!r}")
        return self._finished(job)

    def _finished(self, job: dict[str, Any]) -> dict[str, Any]:
        if job["state"] != "succeeded":
            raise AirflowException(summarize_job(job))
        self.log.info(summarize_job(job))
        return job_summary(job)

    def on_kill(self) -> None:
        """Cancel the job when the task is killed while it polls (a deferred task's trigger cancels it instead)."""
        if self.job_id is not None:
            try:
                CacheHook(self.lakecache_conn_id).cancel(self.job_id)
            except AirflowException as exc:
                self.log.warning("could not cancel Lakecache job %s: %s", self.job_id, exc)


def is_template(value: object) -> bool:
    """True for a Jinja template string, whose value is known only when the task renders it."""
    return isinstance(value, str) and "{{" in value


def _check_parallelism(parallelism: object) -> None:
    if isinstance(parallelism, bool) or not isinstance(parallelism, int) or parallelism < 1:
        raise ValueError(f"parallelism must be a positive integer, not {parallelism!r}")
