"""The Auto Scaling group scaler with a cache cluster on its instances, against the emulator (moto server mode).

The group launches into a subnet of 127.0.0.0/8, so each instance's private IP is a loopback address of this machine
and the instance's cache worker really listens there: the scaler finds it exactly as on AWS, by the instance's
private IP. What the emulator lacks (checked by ``test_the_emulator_still_lacks_complete_lifecycle_action``): it
terminates instances at once, never holding them in ``Terminating:Wait`` for a lifecycle hook, and it does not
implement CompleteLifecycleAction (nor RecordLifecycleActionHeartbeat).
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from botocore.parsers import ResponseParserError

from infra.cache_ring import wait_for_ring, worker_id
from lakecache_airflow.scaling.aws_asg import DRAIN_HOOK, TERMINATING, AutoScalingGroupScaler
from lakecache_airflow.scaling.cache_nodes import CacheDrainError, LastCacheWorkerError, NodeCaches
from lakecache_airflow.scaling.retry import Backoff
from tests.plugins.lakecache_airflow.scaling.aws_support import client
from tests.plugins.lakecache_airflow.scaling.cache_support import (
    NodeCluster,
    Timeline,
    node_caches,
    read_all,
    write_objects,
)
from tests.support.caches import CacheFactory

FAST = Backoff(attempts=2, base=0.01, cap=0.05)


class Group:
    """An Auto Scaling group on the emulator whose instances get private IPs in 127.<n>.1.0/24."""

    def __init__(self, endpoint_url: str, *, desired: int, min_size: int = 1, max_size: int = 6) -> None:
        self.endpoint_url = endpoint_url
        self.autoscaling = client("autoscaling", endpoint_url)
        self.ec2 = client("ec2", endpoint_url)
        second = random.randint(16, 250)
        vpc = self.ec2.create_vpc(CidrBlock=f"127.{second}.0.0/16")["Vpc"]["VpcId"]
        subnet = self.ec2.create_subnet(VpcId=vpc, CidrBlock=f"127.{second}.1.0/24", AvailabilityZone="us-east-1a")
        self.name = f"etl-{second}-{random.randint(0, 1 << 30):x}"
        self.autoscaling.create_launch_configuration(
            LaunchConfigurationName=self.name, ImageId="ami-12c6146b", InstanceType="m5.large"
        )
        self.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=self.name,
            LaunchConfigurationName=self.name,
            MinSize=min_size,
            MaxSize=max_size,
            DesiredCapacity=desired,
            VPCZoneIdentifier=subnet["Subnet"]["SubnetId"],
        )

    def describe(self) -> dict[str, Any]:
        answer = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[self.name])
        return dict(answer["AutoScalingGroups"][0])

    def instances(self) -> dict[str, str]:
        """Instance id -> private IP of the group's instances."""
        ids = [i["InstanceId"] for i in self.describe()["Instances"]]
        found = self.ec2.describe_instances(InstanceIds=ids)["Reservations"]
        return {i["InstanceId"]: i["PrivateIpAddress"] for r in found for i in r["Instances"]}

    def ec2_state(self, instance: str) -> str:
        found = self.ec2.describe_instances(InstanceIds=[instance])["Reservations"]
        return str(found[0]["Instances"][0]["State"]["Name"])

    def protect_all_but(self, instance: str) -> None:
        others = [i for i in self.instances() if i != instance]
        self.autoscaling.set_instance_protection(
            AutoScalingGroupName=self.name, InstanceIds=others, ProtectedFromScaleIn=True
        )

    def scaler(self, cache: NodeCaches | None) -> AutoScalingGroupScaler:
        return AutoScalingGroupScaler(self.name, client=self.autoscaling, ec2=self.ec2, backoff=FAST, cache=cache)


@pytest.fixture
def nodes(cache_factory: CacheFactory, bucket: str, redis_url: str) -> NodeCluster:
    return NodeCluster(cache_factory, bucket, redis_url)


def test_scale_in_drains_the_instances_cache_worker_until_gone_before_terminating_it(
    s3_emulator, nodes: NodeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = Group(s3_emulator.endpoint_url, desired=3)
    ips = group.instances()
    workers = dict(zip(ips, nodes.start(ips.values()), strict=True))
    objects = write_objects(nodes.bucket, s3_emulator.endpoint_url)
    victim = max(ips)  # launched together: the scaler takes the newest, ties by the highest id
    group.protect_all_but(victim)
    witness = next(w for i, w in workers.items() if i != victim)
    read_all(witness, nodes.bucket, objects)
    # The connection names the very worker that leaves: it cannot say it is gone, the others can.
    scaler = group.scaler(node_caches(monkeypatch, workers[victim]))

    probes = {
        "gone": lambda: nodes.state(workers[victim], seen_from=witness) == "gone",
        "terminated": lambda: group.ec2_state(victim) != "running",
    }
    with Timeline(probes) as timeline:
        result = scaler.scale_to(2)

    assert [n.name for n in result.removed] == [victim] and result.removed[0].addresses[0] == ips[victim]
    assert (result.before, result.requested, result.after) == (3, 2, 2)
    drained = f"drained cache worker {worker_id(workers[victim])} on node {victim}"
    assert any(n.startswith(drained) for n in result.notes), result.notes
    assert timeline.before("gone", "terminated"), timeline.first
    assert victim not in group.instances() and group.ec2_state(victim) == "terminated"
    staying = [w for i, w in workers.items() if i != victim]
    wait_for_ring(staying, 2)
    for worker in staying:
        read_all(worker, nodes.bucket, objects)


def test_scale_out_names_the_new_instances_and_waits_for_their_cache_workers(
    s3_emulator, nodes: NodeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = Group(s3_emulator.endpoint_url, desired=1)
    (first,) = nodes.start(group.instances().values())
    caches = node_caches(monkeypatch, first, join_timeout=1.0)
    result = group.scaler(caches).scale_to(2)

    (new,) = result.added
    assert new.name in group.instances() and new.addresses[0] == group.instances()[new.name]
    with pytest.raises(Exception, match=f"no active cache worker on new node {new.name} "):
        caches.wait_for_nodes(result.added)
    joined = nodes.add(new.addresses[0])  # the new instance's bootstrap starts its cache worker
    assert caches.wait_for_nodes(result.added, timeout=30) == {new.name: worker_id(joined)}


def test_scale_in_of_the_instance_with_the_last_active_cache_worker_is_refused_and_terminates_nothing(
    s3_emulator, nodes: NodeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = Group(s3_emulator.endpoint_url, desired=2)
    ips = group.instances()
    victim = max(ips)
    (only,) = nodes.start([ips[victim]])  # the other instance runs no cache worker
    group.protect_all_but(victim)

    with pytest.raises(LastCacheWorkerError, match=f"^scale-in refused: node {victim} runs w-[0-9a-f]+, the last"):
        group.scaler(node_caches(monkeypatch, only)).scale_to(1)

    assert group.describe()["DesiredCapacity"] == 2 and group.ec2_state(victim) == "running"
    assert nodes.state(only, seen_from=only) == "active"


def test_a_drain_that_fails_stops_the_scale_in_and_the_instance_stays(
    s3_emulator, cache_factory: CacheFactory, bucket: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    nodes = NodeCluster(cache_factory, bucket, redis_url, member_timeout="60s")
    group = Group(s3_emulator.endpoint_url, desired=3)
    ips = group.instances()
    workers = dict(zip(ips, nodes.start(ips.values()), strict=True))
    victim = max(ips)
    group.protect_all_but(victim)
    other = next(w for i, w in workers.items() if i != victim)
    gone_id = worker_id(workers[victim])
    workers[victim].kill()  # its cache worker died: still listed active, it cannot take the drain

    with pytest.raises(CacheDrainError) as failed:
        group.scaler(node_caches(monkeypatch, other)).scale_to(2)

    message = str(failed.value)
    assert message.startswith(f"draining cache worker {gone_id} on node {victim} was refused: "), message
    assert "Unavailable" in message and "\n" not in message
    assert group.describe()["DesiredCapacity"] == 3 and group.ec2_state(victim) == "running"
    assert victim in group.instances()


def test_the_drain_lifecycle_hook_is_put_on_the_group(s3_emulator) -> None:
    group = Group(s3_emulator.endpoint_url, desired=1)
    scaler = group.scaler(None)
    scaler.put_drain_hook(heartbeat_timeout=900)
    (hook,) = scaler.lifecycle_hooks()
    assert (hook["LifecycleHookName"], hook["LifecycleTransition"]) == (DRAIN_HOOK, TERMINATING)
    assert (hook["HeartbeatTimeout"], hook["DefaultResult"]) == (900, "CONTINUE")


def test_the_emulator_still_lacks_complete_lifecycle_action(s3_emulator) -> None:
    """When this fails the emulator learnt lifecycle actions: test ``scale_to`` completing them for real."""
    group = Group(s3_emulator.endpoint_url, desired=2)
    scaler = group.scaler(None)
    scaler.put_drain_hook()
    instance = next(iter(group.instances()))
    # moto answers an HTML page for an action it does not implement: HTTP 500, NotImplementedError.
    with pytest.raises(ResponseParserError, match="500 Internal Server Error"):
        group.autoscaling.complete_lifecycle_action(
            AutoScalingGroupName=group.name,
            LifecycleHookName=DRAIN_HOOK,
            InstanceId=instance,
            LifecycleActionResult="CONTINUE",
        )
    scaler.scale_to(1)  # with the hook in place, the emulator still terminates at once: no Terminating:Wait
    assert [i["LifecycleState"] for i in group.describe()["Instances"]] == ["InService"]
