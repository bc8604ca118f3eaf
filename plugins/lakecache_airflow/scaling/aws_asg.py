"""``AutoScalingGroupScaler``: an EC2 Auto Scaling group as a scaler (boto3 ``autoscaling``).

``current()`` reads the group (DescribeAutoScalingGroups); ``scale_to(n)`` sets its desired capacity within the
group's MinSize/MaxSize (SetDesiredCapacity); ``schedule(actions)`` stores scheduled actions
(PutScheduledUpdateGroupAction), so that peak windows are applied by AWS itself even when Airflow is down.
Graceful scale-in on an ASG belongs to the group: termination policies, scale-in protection and lifecycle hooks
decide which instances go and how they drain.

With a cache cluster (``cache``), the scaler chooses the instances that leave instead: the newest in-service ones
not protected from scale-in. It drains the cache worker of each (found by the instance's private IP and DNS name,
DescribeInstances), and only then terminates them with TerminateInstanceInAutoScalingGroup, decrementing the
desired capacity; a drain that fails terminates nothing. The group's ``autoscaling:EC2_INSTANCE_TERMINATING``
lifecycle hook (``put_drain_hook``) holds every instance the group itself terminates (a scheduled action, a health
replacement, a rebalance) in ``Terminating:Wait``: ``scale_to`` drains those first and completes their lifecycle
action with CONTINUE, and completes it at once for the instances it drained itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from lakecache_airflow.scaling import aws
from lakecache_airflow.scaling.base import (
    ClusterNotFoundError,
    ClusterState,
    Node,
    ScaleResult,
    check_target,
    clamp_to_backend,
)
from lakecache_airflow.scaling.cache_nodes import NodeCaches
from lakecache_airflow.scaling.policy import PolicyConfig, Window
from lakecache_airflow.scaling.retry import Attempts, Backoff

#: Lifecycle states of an instance that serves work.
SERVING_STATES = frozenset({"InService"})
#: The lifecycle hook ``put_drain_hook`` adds: terminations wait in ``Terminating:Wait`` for the cache's drain.
DRAIN_HOOK = "lakecache-drain"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
WAITING_TO_TERMINATE = "Terminating:Wait"


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
    :param cache: the cache cluster whose workers run on the instances: drained before their instance goes.
    :param ec2: a boto3 ``ec2`` client (DescribeInstances: the instances' addresses); by default one like ``client``.
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
        cache: NodeCaches | None = None,
        ec2: Any = None,
    ) -> None:
        self.group = group
        self.honor_cooldown = honor_cooldown
        self.cache = cache
        self._connect(client, region=region, endpoint_url=endpoint_url, backoff=backoff, on_retry=on_retry)
        self.ec2 = ec2 if ec2 is not None else aws.client("ec2", region=region, endpoint_url=endpoint_url)

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
        group = self._describe(attempts)
        notes: list[str] = []
        if self.cache is not None:
            notes.extend(self._complete_waiting(group, attempts))
            group = self._describe(attempts) if notes else group
        before = self._state(group)
        requested, clamped = clamp_to_backend(target, before)
        notes.extend(clamped)
        removed: list[Node] = []
        if self.cache is not None and requested < before.desired:
            removed, drained = self._drain_and_terminate(group, before.desired - requested, attempts)
            notes.extend(drained)
            group = self._describe(attempts)
        if requested != int(group["DesiredCapacity"]):
            self._call(
                "SetDesiredCapacity",
                attempts,
                "set_desired_capacity",
                AutoScalingGroupName=self.group,
                DesiredCapacity=requested,
                HonorCooldown=self.honor_cooldown,
            )
        final = self._describe(attempts)
        after = self._state(final)
        result = self._result(attempts, target, requested, before, after, notes)
        known = {i["InstanceId"] for i in group.get("Instances") or []}
        new = [i["InstanceId"] for i in final.get("Instances") or [] if i["InstanceId"] not in known]
        added = self._nodes(new, attempts) if new and self.cache is not None else []
        return replace(result, added=tuple(added), removed=tuple(removed))

    # --- the cache cluster on the instances ----------------------------------------------------------------------

    def put_drain_hook(self, *, name: str = DRAIN_HOOK, heartbeat_timeout: int = 3600) -> None:
        """Add (or update) the group's TERMINATING lifecycle hook: an instance the group terminates waits in
        ``Terminating:Wait`` until ``scale_to`` drained its cache worker, or ``heartbeat_timeout`` seconds."""
        self._call(
            "PutLifecycleHook",
            Attempts(),
            "put_lifecycle_hook",
            AutoScalingGroupName=self.group,
            LifecycleHookName=name,
            LifecycleTransition=TERMINATING,
            HeartbeatTimeout=heartbeat_timeout,
            DefaultResult="CONTINUE",
        )

    def lifecycle_hooks(self) -> list[dict[str, Any]]:
        """The group's lifecycle hooks (DescribeLifecycleHooks)."""
        answer = self._call(
            "DescribeLifecycleHooks", Attempts(), "describe_lifecycle_hooks", AutoScalingGroupName=self.group
        )
        return list(answer.get("LifecycleHooks") or [])

    def _nodes(self, instance_ids: Sequence[str], attempts: Attempts) -> list[Node]:
        """The instances as nodes (private IP and DNS name), newest launch first."""
        answer = aws.call(
            lambda: self.ec2.describe_instances(InstanceIds=list(instance_ids)),
            what=f"ec2 DescribeInstances for {self._target}",
            backoff=self.backoff,
            attempts=attempts,
            on_retry=self.on_retry,
        )
        found = [i for r in answer.get("Reservations") or [] for i in r.get("Instances") or []]
        found.sort(key=lambda i: (i.get("LaunchTime") or 0, i["InstanceId"]), reverse=True)
        return [
            Node(i["InstanceId"], tuple(a for a in (i.get("PrivateIpAddress"), i.get("PrivateDnsName")) if a))
            for i in found
        ]

    def _drain_and_terminate(
        self, group: dict[str, Any], count: int, attempts: Attempts
    ) -> tuple[list[Node], list[str]]:
        """Drain the cache workers of the ``count`` newest unprotected in-service instances, then terminate them."""
        candidates = [
            i["InstanceId"]
            for i in group.get("Instances") or []
            if i.get("LifecycleState") in SERVING_STATES and not i.get("ProtectedFromScaleIn")
        ]
        victims = self._nodes(candidates, attempts)[:count] if candidates else []
        notes = list(self.cache.drain_nodes(victims)) if self.cache is not None else []
        for node in victims:
            self._call(
                "TerminateInstanceInAutoScalingGroup",
                attempts,
                "terminate_instance_in_auto_scaling_group",
                InstanceId=node.name,
                ShouldDecrementDesiredCapacity=True,
            )
        notes.extend(self._complete([n.name for n in victims], attempts))
        return victims, notes

    def _complete_waiting(self, group: dict[str, Any], attempts: Attempts) -> list[str]:
        """Drain the cache workers of instances the group holds in ``Terminating:Wait``, then let them go."""
        waiting = [
            i["InstanceId"] for i in group.get("Instances") or [] if i.get("LifecycleState") == WAITING_TO_TERMINATE
        ]
        if not waiting or self.cache is None:
            return []
        notes = list(self.cache.drain_nodes(self._nodes(waiting, attempts)))
        return notes + self._complete(waiting, attempts)

    def _complete(self, instance_ids: Sequence[str], attempts: Attempts) -> list[str]:
        """CONTINUE the TERMINATING lifecycle actions of ``instance_ids`` still waiting on them."""
        if not instance_ids:
            return []
        waiting = {
            i["InstanceId"]
            for i in self._describe(attempts).get("Instances") or []
            if i.get("LifecycleState") == WAITING_TO_TERMINATE and i["InstanceId"] in instance_ids
        }
        if not waiting:
            return []  # terminated at once: the group has no TERMINATING hook (or, on the emulator, ignores it)
        hooks = [h["LifecycleHookName"] for h in self.lifecycle_hooks() if h.get("LifecycleTransition") == TERMINATING]
        notes = []
        for instance in sorted(waiting):
            for hook in hooks:
                self._call(
                    "CompleteLifecycleAction",
                    attempts,
                    "complete_lifecycle_action",
                    AutoScalingGroupName=self.group,
                    LifecycleHookName=hook,
                    InstanceId=instance,
                    LifecycleActionResult="CONTINUE",
                )
            notes.append(f"instance {instance}: lifecycle action completed with CONTINUE after its drain")
        return notes

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
