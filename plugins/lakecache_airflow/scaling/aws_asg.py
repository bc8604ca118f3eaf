"""``AutoScalingGroupScaler``: an EC2 Auto Scaling group as a scaler (boto3 ``autoscaling``).

``current()`` reads the group (DescribeAutoScalingGroups); ``scale_to(n)`` sets its desired capacity within the
group's MinSize/MaxSize (SetDesiredCapacity); ``schedule(actions)`` stores scheduled actions
(PutScheduledUpdateGroupAction), so that peak windows are applied by AWS itself even when Airflow is down.
Graceful scale-in on an ASG belongs to the group: termination policies, scale-in protection and lifecycle hooks
decide which instances go and how they drain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lakecache_airflow.scaling import aws
from lakecache_airflow.scaling.base import (
    ClusterNotFoundError,
    ClusterState,
    ScaleResult,
    check_target,
    clamp_to_backend,
)
from lakecache_airflow.scaling.policy import PolicyConfig, Window
from lakecache_airflow.scaling.retry import Attempts, Backoff

#: Lifecycle states of an instance that serves work.
SERVING_STATES = frozenset({"InService"})


@dataclass(frozen=True)
class ScheduledAction:
    """One scheduled update of the group: from ``recurrence`` (cron, in ``timezone``), run ``desired`` nodes.

    ``min_size``/``max_size`` change the group's limits too when given. ``start``/``end`` bound a recurring
    action in time.
    """

    name: str
    recurrence: str
    desired: int
    timezone: str = "UTC"
    min_size: int | None = None
    max_size: int | None = None
    start: datetime | None = None
    end: datetime | None = None

    def request(self, group: str) -> dict[str, Any]:
        """The PutScheduledUpdateGroupAction parameters."""
        params: dict[str, Any] = {
            "AutoScalingGroupName": group,
            "ScheduledActionName": self.name,
            "Recurrence": self.recurrence,
            "DesiredCapacity": self.desired,
            "TimeZone": self.timezone,
        }
        for key, value in (
            ("MinSize", self.min_size),
            ("MaxSize", self.max_size),
            ("StartTime", self.start),
            ("EndTime", self.end),
        ):
            if value is not None:
                params[key] = value
        return params


class AutoScalingGroupScaler(aws.AwsScaler):
    """The Auto Scaling group ``group``.

    :param group: the group's name.
    :param client: a boto3 ``autoscaling`` client; by default one is made for ``region`` and ``endpoint_url``
        with botocore's own retries off (``aws.client``), so that every throttled call is retried here and reported.
    :param backoff: how to retry throttling, ``ScalingActivityInProgress`` and capacity errors.
    :param honor_cooldown: pass HonorCooldown to SetDesiredCapacity (the group's own cooldown then applies on top
        of the policy's).
    """

    backend = "asg"
    service = "autoscaling"

    def __init__(
        self,
        group: str,
        *,
        client: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        backoff: Backoff | None = None,
        honor_cooldown: bool = False,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self.group = group
        self.honor_cooldown = honor_cooldown
        self._connect(client, region=region, endpoint_url=endpoint_url, backoff=backoff, on_retry=on_retry)

    @property
    def _target(self) -> str:
        return repr(self.group)

    def _describe(self, attempts: Attempts) -> dict[str, Any]:
        answer = self._call(
            "DescribeAutoScalingGroups", attempts, "describe_auto_scaling_groups", AutoScalingGroupNames=[self.group]
        )
        groups = answer.get("AutoScalingGroups") or []
        if not groups:
            raise ClusterNotFoundError(f"no Auto Scaling group named {self.group!r}")
        return dict(groups[0])

    def _state(self, group: dict[str, Any]) -> ClusterState:
        instances = group.get("Instances") or []
        serving = [i for i in instances if i.get("LifecycleState") in SERVING_STATES]
        return ClusterState(
            backend="Auto Scaling group",
            nodes=len(serving),
            desired=int(group["DesiredCapacity"]),
            min_nodes=int(group["MinSize"]),
            max_nodes=int(group["MaxSize"]),
            detail={
                "group": self.group,
                "instances": {i["InstanceId"]: i.get("LifecycleState") for i in instances},
            },
        )

    def current(self) -> ClusterState:
        """The group's desired capacity, in-service instances and MinSize/MaxSize."""
        return self._state(self._describe(Attempts()))

    def scale_to(self, target: int, *, graceful: bool = True) -> ScaleResult:
        """Set the group's desired capacity to ``target``, moved into [MinSize, MaxSize] (with a note) if needed.

        ``graceful`` is the group's business (termination policies, lifecycle hooks); it is accepted for the
        interface. Raises ``ClusterNotFoundError``, ``RetriesExhaustedError``, ``BackendRefusedError``.
        """
        check_target(target)
        attempts = Attempts()
        before = self._state(self._describe(attempts))
        requested, notes = clamp_to_backend(target, before)
        if requested != before.desired:
            self._call(
                "SetDesiredCapacity",
                attempts,
                "set_desired_capacity",
                AutoScalingGroupName=self.group,
                DesiredCapacity=requested,
                HonorCooldown=self.honor_cooldown,
            )
        after = self._state(self._describe(attempts))
        return self._result(attempts, target, requested, before, after, notes)

    def schedule(self, actions: Sequence[ScheduledAction]) -> list[str]:
        """Store ``actions`` on the group (an action of the same name is replaced); returns their names.

        Raises ``RetriesExhaustedError`` or ``BackendRefusedError`` (a bad cron or time zone, for one).
        """
        attempts = Attempts()
        for action in actions:
            self._call(
                "PutScheduledUpdateGroupAction",
                attempts,
                "put_scheduled_update_group_action",
                **action.request(self.group),
            )
        return [action.name for action in actions]

    def scheduled_actions(self) -> list[dict[str, Any]]:
        """The scheduled actions stored on the group (DescribeScheduledActions)."""
        answer = self._call(
            "DescribeScheduledActions", Attempts(), "describe_scheduled_actions", AutoScalingGroupName=self.group
        )
        return list(answer.get("ScheduledUpdateGroupActions") or [])


def scheduled_actions_for(policy: PolicyConfig, *, prefix: str = "lakecache") -> list[ScheduledAction]:
    """The policy's peak windows as scheduled actions: each window opens at its target and closes to min_nodes.

    With these stored on the group, the peaks happen even when Airflow does not run; the ``cluster_autoscale`` DAG
    still adds the reactive part and the cache warmups. A closing action is left out when another window opens at
    the same moment (the opening one sets the size). Raises ``ValueError`` for a cron window whose closing time
    cannot be written as a cron (several start minutes or hours, or a day-of-month that moves past midnight).
    """
    opening = {_fields(w.cron.source) for w in policy.windows}
    actions = []
    for window in policy.windows:
        actions.append(
            ScheduledAction(f"{prefix}-{window.name}-open", window.cron.source, window.target, window.timezone)
        )
        closing = _closing_cron(window)
        if _fields(closing) not in opening:
            actions.append(ScheduledAction(f"{prefix}-{window.name}-close", closing, policy.min_nodes, window.timezone))
    return actions


def _fields(cron: str) -> tuple[str, ...]:
    return tuple(cron.split())


def _closing_cron(window: Window) -> str:
    cron = window.cron
    _, _, days, months, weekdays = cron.source.split()
    if len(cron.minutes) != 1 or len(cron.hours) != 1:
        raise ValueError(f"window {window.name!r}: its cron starts at several times; give days/start/end instead")
    end = next(iter(cron.hours)) * 60 + next(iter(cron.minutes)) + int(window.duration.total_seconds() // 60)
    shift, end = divmod(end, 24 * 60)
    if shift and not cron.days_any:
        raise ValueError(f"window {window.name!r} closes on another day of the month than it opens")
    if shift and not cron.weekdays_any:
        weekdays = ",".join(str(d) for d in sorted({(d + shift) % 7 for d in cron.weekdays}))
    return f"{end % 60} {end // 60} {days} {months} {weekdays}"
