"""``CacheWorkersJoinedOperator``: nothing to wait for returns at once, new nodes defer to the trigger with the
policy's limit and connection, and the trigger's verdict becomes the task's. (The whole DAG, deferral included, runs
in tests/plugins/lakecache_airflow/scaling/test_cluster_autoscale_cache_dag.py.)"""

from __future__ import annotations

import time
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, TaskDeferred

from lakecache_airflow.operators.cache_workers_joined import CacheWorkersJoinedOperator
from lakecache_airflow.scaling.base import Node
from lakecache_airflow.triggers.cache_workers import CacheWorkersJoinedTrigger

POLICY: dict[str, Any] = {
    "backend": {
        "kind": "asg",
        "asg": {"group": "compute"},
        "cache": {"conn_id": "lakecache_nodes", "join_timeout": "90s", "poll_interval": "1s"},
    }
}
NEW = Node("i-0abc", ("10.0.0.7", "ip-10-0-0-7.ec2.internal"))


def operator(scaled: Any, config: Any = POLICY) -> CacheWorkersJoinedOperator:
    return CacheWorkersJoinedOperator(task_id="cache_workers_joined", scaled=scaled, config=config)


@pytest.mark.parametrize(
    "scaled, config",
    [
        ({"result": {"added": []}}, POLICY),  # a scale-in, or no change
        (None, POLICY),  # a dry run pushes no result
        ({"result": {"added": [NEW.to_json()]}}, {"backend": {"kind": "asg", "asg": {"group": "g"}}}),  # no cache
    ],
)
def test_nothing_to_wait_for_returns_at_once(scaled: Any, config: Any) -> None:
    assert operator(scaled, config).execute({}) == {}  # type: ignore[arg-type]


def test_new_nodes_defer_to_the_trigger_with_the_policys_limit_and_connection() -> None:
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        operator({"result": {"added": [NEW.to_json()]}}).execute({})  # type: ignore[arg-type]

    trigger = deferred.value.trigger
    assert isinstance(trigger, CacheWorkersJoinedTrigger)
    assert deferred.value.method_name == "execute_complete"
    assert trigger.nodes == [NEW.to_json()]
    assert trigger.lakecache_conn_id == "lakecache_nodes"
    assert (trigger.timeout, trigger.poll_interval) == (90.0, 1.0)
    assert before + 90 <= trigger.deadline <= time.time() + 90


def test_the_triggers_verdict_is_the_tasks() -> None:
    task = operator({"result": {"added": [NEW.to_json()]}})
    assert task.execute_complete({}, {"status": "success", "joined": {"i-0abc": "w-1"}}) == {"i-0abc": "w-1"}  # type: ignore[arg-type]
    with pytest.raises(AirflowException, match="the cache did not follow the scale-out: no active cache worker"):
        task.execute_complete({}, {"status": "error", "message": "no active cache worker on new node i-0abc"})  # type: ignore[arg-type]


def test_a_bad_policy_fails_the_task_in_one_line() -> None:
    config = {"backend": {"kind": "asg", "asg": {"group": "g"}, "cache": {"join_timeout": "soon"}}}
    with pytest.raises(AirflowException, match=r"^the cache did not follow the scale-out: backend.cache.join_timeout"):
        operator({"result": {"added": [NEW.to_json()]}}, config).execute({})  # type: ignore[arg-type]
