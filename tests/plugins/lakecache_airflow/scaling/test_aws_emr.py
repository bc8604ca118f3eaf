"""``EmrInstanceGroupScaler`` against the emulator's real HTTP server, faults injected by a proxy."""

from __future__ import annotations

import pytest

from lakecache_airflow.scaling.aws_emr import EmrInstanceGroupScaler
from lakecache_airflow.scaling.base import ClusterNotFoundError, RetriesExhaustedError, Scaler
from lakecache_airflow.scaling.retry import Backoff
from tests.plugins.lakecache_airflow.scaling.aws_support import AwsFaultyProxy, client, create_emr_cluster

FAST = Backoff(attempts=4, base=0.01, cap=0.05)


def scaler(endpoint_url: str, cluster_id: str, **options) -> EmrInstanceGroupScaler:
    return EmrInstanceGroupScaler(cluster_id, client=client("emr", endpoint_url), backoff=FAST, **options)


def requested(endpoint_url: str, cluster_id: str, group_type: str) -> int:
    groups = client("emr", endpoint_url).list_instance_groups(ClusterId=cluster_id)["InstanceGroups"]
    return next(int(g["RequestedInstanceCount"]) for g in groups if g["InstanceGroupType"] == group_type)


def test_current_reads_the_task_group(s3_emulator) -> None:
    cluster = create_emr_cluster(s3_emulator.endpoint_url, core=2, task=1)
    emr = scaler(s3_emulator.endpoint_url, cluster)
    assert isinstance(emr, Scaler)
    state = emr.current()
    assert (state.nodes, state.desired, state.min_nodes) == (1, 1, 0)
    assert state.detail["group_type"] == "TASK" and state.detail["cluster_id"] == cluster


def test_scale_to_resizes_the_task_group_out_and_in(s3_emulator) -> None:
    cluster = create_emr_cluster(s3_emulator.endpoint_url, task=1)
    emr = scaler(s3_emulator.endpoint_url, cluster)
    out = emr.scale_to(4)
    assert (out.before, out.after, out.changed) == (1, 4, True)
    assert requested(s3_emulator.endpoint_url, cluster, "TASK") == 4
    shrink = emr.scale_to(0)  # graceful: a ShrinkPolicy with the decommission timeout goes with it
    assert (shrink.before, shrink.after) == (4, 0)
    assert requested(s3_emulator.endpoint_url, cluster, "TASK") == 0
    assert requested(s3_emulator.endpoint_url, cluster, "CORE") == 2  # the other groups are untouched


def test_the_core_group_can_be_chosen_and_keeps_one_node(s3_emulator) -> None:
    cluster = create_emr_cluster(s3_emulator.endpoint_url, core=3)
    core = scaler(s3_emulator.endpoint_url, cluster, group_type="CORE")
    result = core.scale_to(0)
    assert (result.requested, result.after) == (1, 1)
    assert result.notes == ("asked for 0 nodes; an EMR CORE group keeps at least 1",)


def test_a_group_can_be_named_by_its_id(s3_emulator) -> None:
    cluster = create_emr_cluster(s3_emulator.endpoint_url, core=2, task=1)
    groups = client("emr", s3_emulator.endpoint_url).list_instance_groups(ClusterId=cluster)["InstanceGroups"]
    core_id = next(g["Id"] for g in groups if g["InstanceGroupType"] == "CORE")
    emr = scaler(s3_emulator.endpoint_url, cluster, instance_group_id=core_id)
    assert emr.scale_to(5).after == 5
    assert requested(s3_emulator.endpoint_url, cluster, "CORE") == 5
    with pytest.raises(ClusterNotFoundError, match=f"EMR cluster {cluster} has no ig-missing"):
        scaler(s3_emulator.endpoint_url, cluster, instance_group_id="ig-missing").current()


@pytest.mark.parametrize(
    ("code", "faults", "nodes"),
    [("ThrottlingException", 2, 3), ("InsufficientCapacityException", 1, 2)],
    ids=["throttling", "insufficient capacity"],
)
def test_a_passing_error_is_retried_with_backoff_until_it_clears_and_reported(
    s3_emulator, code: str, faults: int, nodes: int
) -> None:
    cluster = create_emr_cluster(s3_emulator.endpoint_url, task=1)
    with AwsFaultyProxy(s3_emulator.endpoint_url, faults=faults, code=code, action="ModifyInstanceGroups") as proxy:
        result = scaler(proxy.url, cluster).scale_to(nodes)
    assert proxy.faulted == ["ModifyInstanceGroups"] * faults
    assert result.after == nodes and len(result.retries) == faults
    assert (
        f"emr ModifyInstanceGroups on {cluster}: attempt {faults} of 4 failed ({code} (HTTP 400)" in result.retries[-1]
    )


def test_throttling_beyond_the_retries_is_one_line_and_changes_nothing(s3_emulator) -> None:
    cluster = create_emr_cluster(s3_emulator.endpoint_url, task=1)
    proxy = AwsFaultyProxy(
        s3_emulator.endpoint_url, faults=100, code="ThrottlingException", action="ModifyInstanceGroups"
    )
    with (
        proxy,
        pytest.raises(RetriesExhaustedError, match=f"^emr ModifyInstanceGroups on {cluster} failed 4 times over"),
    ):
        scaler(proxy.url, cluster).scale_to(3)
    assert requested(s3_emulator.endpoint_url, cluster, "TASK") == 1


def test_a_bad_group_type_is_refused() -> None:
    with pytest.raises(ValueError, match="group_type must be one of TASK, CORE, not 'MASTER'"):
        EmrInstanceGroupScaler("j-1", group_type="MASTER", client=object())
