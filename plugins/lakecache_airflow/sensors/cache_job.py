"""``CacheJobSensor``: wait for a cache job started elsewhere (another task, ``cachectl load``) to finish."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from lakecache_airflow.hooks.cache import FINISHED_STATES, CacheHook, job_summary, summarize_job
from lakecache_airflow.triggers.cache_job import CacheJobTrigger


class CacheJobSensor(BaseSensorOperator):
    """Succeeds when job ``job_id`` succeeds (its summary goes to XCom); fails when the job fails or is cancelled.

    With ``deferrable=True`` the wait happens in the triggerer (``CacheJobTrigger``, polling every
    ``poke_interval`` seconds) and holds no worker slot; ``timeout`` still bounds it.

    :param job_id: the job to wait for; templated (``"{{ ti.xcom_pull('start_load')['id'] }}"``).
    :param lakecache_conn_id: the ``lakecache`` connection of the cache that runs the job.
    :param deferrable: wait in the triggerer rather than in the worker.
    """

    template_fields: Sequence[str] = ("job_id",)
    ui_color = "#d6eaf8"

    def __init__(
        self,
        *,
        job_id: str,
        lakecache_conn_id: str = CacheHook.default_conn_name,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.lakecache_conn_id = lakecache_conn_id
        self.deferrable = deferrable

    def execute(self, context: Context) -> Any:
        """Poke (the default), or defer to the trigger unless the job is already finished."""
        if not self.deferrable:
            return super().execute(context)
        outcome = self.poke(context)
        if outcome:
            return outcome.xcom_value if isinstance(outcome, PokeReturnValue) else None
        self.defer(
            trigger=CacheJobTrigger(
                job_id=self.job_id, lakecache_conn_id=self.lakecache_conn_id, poll_interval=self.poke_interval
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """Is the job finished? Raises ``AirflowFailException`` when it failed: waiting longer cannot help."""
        job = CacheHook(self.lakecache_conn_id).job(str(self.job_id))
        if job["state"] not in FINISHED_STATES:
            self.log.info("Lakecache job %s is %s", job["id"], job["state"])
            return False
        return PokeReturnValue(is_done=True, xcom_value=self._finished(job))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired."""
        job = event.get("job")
        if not job:  # the trigger gave up on the cache, not on the job: a retry may see it finish
            raise AirflowException(event.get("message") or f"waiting for Lakecache job {self.job_id} failed")
        return self._finished(job)

    def _finished(self, job: dict[str, Any]) -> dict[str, Any]:
        if job["state"] != "succeeded":
            raise AirflowFailException(summarize_job(job))
        self.log.info(summarize_job(job))
        return job_summary(job)
