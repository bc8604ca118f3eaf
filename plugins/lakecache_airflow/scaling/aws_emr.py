"""``EmrInstanceGroupScaler``: one instance group (TASK by default, or CORE) of an EMR cluster as a scaler.

``current()`` reads the group (ListInstanceGroups); ``scale_to(n)`` resizes it (ModifyInstanceGroups). Scale-in is
graceful through EMR's ``ShrinkPolicy.DecommissionTimeout``: YARN decommissions the nodes and lets their containers
finish for up to that many seconds before the instances go.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lakecache_airflow.scaling import aws
from lakecache_airflow.scaling.base import (
    ClusterNotFoundError,
    ClusterState,
    ScaleResult,
    check_target,
)
from lakecache_airflow.scaling.retry import Attempts, Backoff

GROUP_TYPES = ("TASK", "CORE")


class EmrInstanceGroupScaler(aws.AwsScaler):
    """The instance group of EMR cluster ``cluster_id`` with id ``instance_group_id``, or the first of ``group_type``.

    :param decommission_timeout: seconds EMR gives shrinking nodes to finish their work (graceful scale-in).
    :param client: a boto3 ``emr`` client; by default one with botocore's retries off (``aws.client``).
    :param backoff: how to retry throttling and capacity errors.
    """

    backend = "emr"
    service = "emr"

    def __init__(
        self,
        cluster_id: str,
        *,
        group_type: str = "TASK",
        instance_group_id: str | None = None,
        decommission_timeout: int = 3600,
        client: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        backoff: Backoff | None = None,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        if group_type not in GROUP_TYPES:
            raise ValueError(f"group_type must be one of {', '.join(GROUP_TYPES)}, not {group_type!r}")
        if decommission_timeout < 0:
            raise ValueError(f"decommission_timeout must be 0 or more seconds, not {decommission_timeout}")
        self.cluster_id = cluster_id
        self.group_type = group_type
        self.instance_group_id = instance_group_id
        self.decommission_timeout = decommission_timeout
        self._connect(client, region=region, endpoint_url=endpoint_url, backoff=backoff, on_retry=on_retry)

    @property
    def _target(self) -> str:
        return self.cluster_id

    def _group(self, attempts: Attempts) -> dict[str, Any]:
        groups: list[dict[str, Any]] = []
        params: dict[str, Any] = {"ClusterId": self.cluster_id}
        while True:  # paginated: a cluster may have many task groups
            answer = self._call("ListInstanceGroups", attempts, "list_instance_groups", **params)
            groups.extend(answer.get("InstanceGroups") or [])
            if not answer.get("Marker"):
                break
            params["Marker"] = answer["Marker"]
        for group in groups:
            if self.instance_group_id is not None:
                if group.get("Id") == self.instance_group_id:
                    return group
            elif group.get("InstanceGroupType") == self.group_type:
                return group
        wanted = self.instance_group_id or f"a {self.group_type} instance group"
        raise ClusterNotFoundError(f"EMR cluster {self.cluster_id} has no {wanted}")

    def _state(self, group: dict[str, Any]) -> ClusterState:
        return ClusterState(
            backend="EMR instance group",
            nodes=int(group.get("RunningInstanceCount") or 0),
            desired=int(group.get("RequestedInstanceCount") or 0),
            # EMR keeps at least one CORE node (HDFS lives there); a TASK group may be empty.
            min_nodes=1 if group.get("InstanceGroupType") == "CORE" else 0,
            detail={
                "cluster_id": self.cluster_id,
                "instance_group_id": group.get("Id"),
                "group_type": group.get("InstanceGroupType"),
                "instance_type": group.get("InstanceType"),
                "status": (group.get("Status") or {}).get("State"),
            },
        )

    def current(self) -> ClusterState:
        """The group's requested and running instance counts."""
        return self._state(self._group(Attempts()))

    def scale_to(self, target: int, *, graceful: bool = True) -> ScaleResult:
        """Resize the group to ``target`` instances; a graceful shrink gives nodes ``decommission_timeout`` seconds.

        Raises ``ClusterNotFoundError``, ``RetriesExhaustedError``, ``BackendRefusedError``.
        """
        check_target(target)
        attempts = Attempts()
        group = self._group(attempts)
        before = self._state(group)
        requested, notes = target, []
        if before.min_nodes is not None and requested < before.min_nodes:
            requested = before.min_nodes
            notes.append(f"asked for {target} nodes; an EMR CORE group keeps at least {before.min_nodes}")
        if requested != before.desired:
            change: dict[str, Any] = {"InstanceGroupId": group["Id"], "InstanceCount": requested}
            if requested < before.desired:
                change["ShrinkPolicy"] = {"DecommissionTimeout": self.decommission_timeout if graceful else 0}
            self._call(
                "ModifyInstanceGroups",
                attempts,
                "modify_instance_groups",
                ClusterId=self.cluster_id,
                InstanceGroups=[change],
            )
        after = self._state(self._group(attempts))
        return self._result(attempts, target, requested, before, after, notes)
