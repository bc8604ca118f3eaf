"""``AutoScalingGroupScaler`` against the emulator's real HTTP server (moto server mode), faults injected by a proxy."""

from __future__ import annotations

import pytest

from infra.ports import free_port
from lakecache_airflow.scaling.aws_asg import AutoScalingGroupScaler, ScheduledAction, scheduled_actions_for
from lakecache_airflow.scaling.base import (
    BackendRefusedError,
    ClusterNotFoundError,
    RetriesExhaustedError,
    Scaler,
)
from lakecache_airflow.scaling.policy import PolicyConfig
from lakecache_airflow.scaling.retry import Backoff
from tests.plugins.lakecache_airflow.scaling.aws_support import AwsFaultyProxy, client, create_group
from tests.support.faulty_proxy import FaultyProxy

FAST = Backoff(attempts=4, base=0.01, cap=0.05)


def scaler(endpoint_url: str, group: str, backoff: Backoff = FAST) -> AutoScalingGroupScaler:
    return AutoScalingGroupScaler(group, client=client("autoscaling", endpoint_url), backoff=backoff)


def desired(endpoint_url: str, group: str) -> int:
    answer = client("autoscaling", endpoint_url).describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    return int(answer["AutoScalingGroups"][0]["DesiredCapacity"])


def test_current_reads_desired_capacity_in_service_instances_and_bounds(s3_emulator) -> None:
    group = create_group(s3_emulator.endpoint_url, min_size=1, max_size=6, desired=2)
    asg = scaler(s3_emulator.endpoint_url, group)
    assert isinstance(asg, Scaler)
    state = asg.current()
    assert (state.nodes, state.desired, state.min_nodes, state.max_nodes) == (2, 2, 1, 6)
    assert len(state.detail["instances"]) == 2


def test_scale_to_sets_the_desired_capacity_out_and_in(s3_emulator) -> None:
    group = create_group(s3_emulator.endpoint_url, desired=1)
    asg = scaler(s3_emulator.endpoint_url, group)
    out = asg.scale_to(4)
    assert (out.before, out.requested, out.after, out.changed) == (1, 4, 4, True)
    assert desired(s3_emulator.endpoint_url, group) == 4 and asg.current().nodes == 4
    back = asg.scale_to(2)
    assert (back.before, back.after) == (4, 2) and desired(s3_emulator.endpoint_url, group) == 2
    same = asg.scale_to(2)
    assert not same.changed and same.retries == ()


def test_a_target_outside_the_groups_bounds_is_moved_into_them_with_a_note(s3_emulator) -> None:
    group = create_group(s3_emulator.endpoint_url, min_size=1, max_size=5, desired=2)
    asg = scaler(s3_emulator.endpoint_url, group)
    result = asg.scale_to(9)
    assert (result.target, result.requested, result.after) == (9, 5, 5)
    assert result.notes == ("asked for 9 nodes; the Auto Scaling group allows at most 5",)
    assert asg.scale_to(0).requested == 1
    with pytest.raises(ValueError, match="0 or more nodes"):
        asg.scale_to(-1)


def test_scheduled_actions_are_stored_on_the_group(s3_emulator) -> None:
    group = create_group(s3_emulator.endpoint_url)
    asg = scaler(s3_emulator.endpoint_url, group)
    asg.schedule([ScheduledAction("morning-peak", "0 6 * * 1-5", 5, timezone="Europe/Paris", min_size=1, max_size=6)])
    stored = {a["ScheduledActionName"]: a for a in asg.scheduled_actions()}
    action = stored["morning-peak"]
    assert (action["Recurrence"], action["DesiredCapacity"], action["TimeZone"]) == ("0 6 * * 1-5", 5, "Europe/Paris")
    # The emulator stores scheduled actions and never fires them: the size stays.
    assert desired(s3_emulator.endpoint_url, group) == 1


def test_a_policys_windows_become_opening_and_closing_actions(s3_emulator) -> None:
    policy = PolicyConfig.from_dict(
        {
            "min_nodes": 1,
            "max_nodes": 6,
            "windows": [
                {
                    "name": "etl",
                    "days": "mon-fri",
                    "start": "06:00",
                    "end": "09:00",
                    "target": 5,
                    "timezone": "Europe/Paris",
                },
                {
                    "name": "office",
                    "days": "mon-fri",
                    "start": "09:00",
                    "end": "17:00",
                    "target": 3,
                    "timezone": "Europe/Paris",
                },
                {"name": "friday-night", "days": "fri", "start": "22:00", "end": "02:00", "target": 4},
            ],
        }
    )
    actions = {a.name: a for a in scheduled_actions_for(policy)}
    assert actions["lakecache-etl-open"].recurrence == "0 6 * * 1,2,3,4,5"
    assert "lakecache-etl-close" not in actions  # "office" opens when "etl" closes: it sets the size
    assert (actions["lakecache-office-close"].recurrence, actions["lakecache-office-close"].desired) == (
        "0 17 * * 1,2,3,4,5",
        1,
    )
    assert actions["lakecache-friday-night-close"].recurrence == "0 2 * * 6"  # Saturday, past midnight
    group = create_group(s3_emulator.endpoint_url, max_size=6)
    asg = scaler(s3_emulator.endpoint_url, group)
    asg.schedule(list(actions.values()))
    assert {a["ScheduledActionName"] for a in asg.scheduled_actions()} == set(actions)


def test_an_unknown_group_is_reported_as_such(s3_emulator) -> None:
    with pytest.raises(ClusterNotFoundError, match="no Auto Scaling group named 'no-such-group'"):
        scaler(s3_emulator.endpoint_url, "no-such-group").current()


@pytest.mark.parametrize(
    ("code", "faults", "nodes"),
    [("Throttling", 2, 3), ("ScalingActivityInProgress", 1, 2)],
    ids=["throttling", "scaling activity in progress"],
)
def test_a_passing_error_is_retried_with_backoff_until_it_clears_and_reported(
    s3_emulator, code: str, faults: int, nodes: int
) -> None:
    group = create_group(s3_emulator.endpoint_url, desired=1)
    with AwsFaultyProxy(s3_emulator.endpoint_url, faults=faults, code=code, action="SetDesiredCapacity") as proxy:
        result = scaler(proxy.url, group).scale_to(nodes)
    assert proxy.faulted == ["SetDesiredCapacity"] * faults
    assert result.after == nodes and desired(s3_emulator.endpoint_url, group) == nodes
    assert len(result.retries) == faults
    assert result.retries[0].startswith(
        f"autoscaling SetDesiredCapacity on '{group}': attempt 1 of 4 failed ({code} (HTTP 400): Rate exceeded"
    )
    assert result.attempts == faults + 3  # describe, a set per fault and one that succeeds, describe


def test_a_service_unavailable_answer_is_retried_too(s3_emulator) -> None:
    group = create_group(s3_emulator.endpoint_url, desired=1)
    # The shared S3 faulty proxy: a 503 whose body is no Auto Scaling error; its status alone says "retry".
    with FaultyProxy(s3_emulator.endpoint_url, faults=1, status=503, code="ServiceUnavailable") as proxy:
        result = scaler(proxy.url, group).scale_to(2)
    assert proxy.faults_served == 1
    assert result.after == 2 and "(HTTP 503)" in result.retries[0]


def test_throttling_that_outlasts_the_retries_fails_with_one_line_and_changes_nothing(s3_emulator) -> None:
    group = create_group(s3_emulator.endpoint_url, desired=1)
    proxy = AwsFaultyProxy(s3_emulator.endpoint_url, faults=100, code="Throttling", action="SetDesiredCapacity")
    with proxy, pytest.raises(RetriesExhaustedError) as raised:
        scaler(proxy.url, group).scale_to(3)
    assert len(proxy.faulted) == 4
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"autoscaling SetDesiredCapacity on '{group}' failed 4 times over ")
    assert raised.value.attempts[-1].startswith("Throttling (HTTP 400)")
    assert desired(s3_emulator.endpoint_url, group) == 1


def test_a_validation_error_is_not_retried(s3_emulator) -> None:
    group = create_group(s3_emulator.endpoint_url, desired=1)
    proxy = AwsFaultyProxy(s3_emulator.endpoint_url, faults=5, code="ValidationError", action="SetDesiredCapacity")
    with proxy, pytest.raises(BackendRefusedError, match=r"refused: ValidationError \(HTTP 400\)"):
        scaler(proxy.url, group).scale_to(3)
    assert proxy.faulted == ["SetDesiredCapacity"]
    assert desired(s3_emulator.endpoint_url, group) == 1


def test_an_endpoint_that_does_not_answer_is_retried_then_reported() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RetriesExhaustedError, match=r"DescribeAutoScalingGroups on 'etl' failed 4 times .*no answer"):
        scaler(url, "etl").current()
