"""``CacheJobTrigger.run()`` driven to its event with asyncio, against real cache jobs."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from airflow.triggers.base import TriggerEvent

from infra.cache_process import CacheProcess
from lakecache_airflow.hooks.cache import CacheHook
from lakecache_airflow.triggers.cache_job import CacheJobTrigger
from tests.plugins.cache_data import DAY_BYTES, DAY_PATH, VANISHING_PATH, remove_behind_the_cache
from tests.support.faulty_proxy import FaultyProxy


def first_event(trigger: CacheJobTrigger, timeout: float = 60) -> tuple[TriggerEvent, int]:
    """The trigger's first event, and how many events it yielded in all (a job trigger yields exactly one)."""

    async def collect() -> list[TriggerEvent]:
        return [event async for event in trigger.run()]

    events = asyncio.run(asyncio.wait_for(collect(), timeout))
    assert events, "the trigger ended without an event"
    return events[0], len(events)


def payload(event: TriggerEvent) -> dict[str, Any]:
    assert isinstance(event.payload, dict)
    return event.payload


def test_serialize_recreates_the_same_trigger() -> None:
    trigger = CacheJobTrigger(job_id="abc", lakecache_conn_id="c", poll_interval=0.5, retries=7, cancel_on_kill=True)
    classpath, kwargs = trigger.serialize()
    assert classpath == "lakecache_airflow.triggers.cache_job.CacheJobTrigger"
    json.dumps(kwargs)  # the triggerer stores them as JSON
    assert CacheJobTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_a_succeeding_job_fires_one_success_event(lakecache_default: CacheProcess) -> None:
    job = CacheHook().load([DAY_PATH], bandwidth="2MiB")  # slow enough that the trigger sees it running
    event, count = first_event(CacheJobTrigger(job_id=job["id"], poll_interval=0.05))
    assert count == 1
    body = payload(event)
    assert body["status"] == "success"
    assert body["job"]["id"] == job["id"] and body["job"]["state"] == "succeeded"
    assert body["job"]["progress"]["bytes_done"] == DAY_BYTES
    assert body["message"].startswith(f"load job {job['id']} succeeded: 2 files")


def test_a_failing_job_fires_an_error_event_with_the_file_errors(
    lakecache_default: CacheProcess, s3_client, bucket: str
) -> None:
    remove_behind_the_cache(lakecache_default, s3_client, bucket)
    job = CacheHook().load([VANISHING_PATH])
    event, count = first_event(CacheJobTrigger(job_id=job["id"], poll_interval=0.05))
    body = payload(event)
    assert count == 1
    assert body["status"] == "error"
    assert body["job"]["state"] == "failed"
    assert body["message"].startswith(f"load job {job['id']} failed: 1 of 1 files failed: {VANISHING_PATH}: ")


def test_a_cancelled_job_fires_an_error_event(lakecache_default: CacheProcess) -> None:
    hook = CacheHook()
    job = hook.load(["/warehouse/events"], parallelism=1, bandwidth=4096)
    hook.cancel(job["id"])
    body = payload(first_event(CacheJobTrigger(job_id=job["id"], poll_interval=0.05))[0])
    assert body["status"] == "error"
    assert body["message"] == f"load job {job['id']} was cancelled"


def test_an_unknown_job_fires_an_error_event_at_once(lakecache_default: CacheProcess) -> None:
    body = payload(first_event(CacheJobTrigger(job_id="0123456789ab", poll_interval=60), timeout=10)[0])
    assert body["status"] == "error" and body["job"] is None
    assert body["message"].startswith("cannot follow Lakecache job 0123456789ab: ")
    assert "NotFound: no such job: 0123456789ab" in body["message"]


def test_a_down_cache_fires_an_error_event_after_the_retries(down_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_LAKECACHE_DEFAULT", f"lakecache://:t@127.0.0.1:{down_port}")
    body = payload(first_event(CacheJobTrigger(job_id="0123456789ab", poll_interval=0.05, retries=2))[0])
    assert body["status"] == "error" and body["job"] is None
    assert body["message"] == (
        f"cannot reach the Lakecache cache at http://127.0.0.1:{down_port}: connection refused "
        "(gave up on Lakecache job 0123456789ab after 3 attempts)"
    )


def test_a_brief_outage_is_ridden_out(events_cache: CacheProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    # A gateway in front of the cache answers 503 twice (a restart behind a load balancer), then passes through.
    with FaultyProxy(events_cache.webhdfs_url, faults=0, only=lambda method, path: method == "GET") as proxy:
        monkeypatch.setenv(
            "AIRFLOW_CONN_LAKECACHE_DEFAULT",
            json.dumps({"conn_type": "lakecache", "host": proxy.url, "password": events_cache.token}),
        )
        job = CacheHook().load([DAY_PATH])
        proxy.inject(2)
        body = payload(first_event(CacheJobTrigger(job_id=job["id"], poll_interval=0.05, retries=2))[0])
        assert proxy.faults_served == 2
    assert body["status"] == "success", body["message"]


def test_a_missing_connection_fires_an_error_event(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_NOT_CONFIGURED", raising=False)
    trigger = CacheJobTrigger(job_id="0123456789ab", lakecache_conn_id="not_configured", poll_interval=0.05)
    body = payload(first_event(trigger, timeout=10)[0])
    assert body["status"] == "error"
    assert "not_configured" in body["message"]


def test_killing_the_task_cancels_a_job_it_owns(lakecache_default: CacheProcess) -> None:
    hook = CacheHook()
    owned = hook.load(["/warehouse/events"], parallelism=1, bandwidth=4096)
    watched = hook.load(["/warehouse/events"], parallelism=1, bandwidth=4096)
    asyncio.run(CacheJobTrigger(job_id=owned["id"], cancel_on_kill=True).on_kill())
    asyncio.run(CacheJobTrigger(job_id=watched["id"]).on_kill())
    assert hook.job(owned["id"])["state"] == "cancelled"
    assert hook.job(watched["id"])["state"] in ("queued", "running")
    hook.cancel(watched["id"])
