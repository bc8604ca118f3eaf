"""The ``cluster_autoscale`` DAG (as is) through ``airflow dags test`` with a cache cluster on an Auto Scaling group.

The group runs on the emulator in a subnet of 127.0.0.0/8; a bootstrap thread plays each instance's start-up script
and starts a cache worker on every new instance's private IP. A first run scales 2 -> 3 and its
``cache_workers_joined`` task waits for the new instance's worker; a second run scales 3 -> 2, draining the worker
of the instance it terminates first.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infra.cache_ring import worker_id
from infra.s3_emulator import EMULATOR_CREDENTIALS
from tests.plugins.airflow_home import REPO_ROOT, AirflowHome, DagRun, connection_json
from tests.plugins.lakecache_airflow.scaling.cache_support import NodeCluster, read_all, write_objects
from tests.plugins.lakecache_airflow.scaling.test_aws_asg_cache import Group
from tests.plugins.lakecache_airflow.scaling.test_cluster_autoscale_dag import windows
from tests.support.caches import CacheFactory

pytestmark = pytest.mark.airflow

DAG_ID = "cluster_autoscale"
DAG_SOURCE = (REPO_ROOT / "dags" / "cluster_autoscale.py").read_text()
STATE_VARIABLE = "lakecache_autoscale_state"


class Bootstrap:
    """Starts a cache worker on each instance of ``group`` that has none, as an instance's start-up script would."""

    def __init__(self, group: Group, nodes: NodeCluster, started: set[str]) -> None:
        self.group, self.nodes, self.started = group, nodes, started
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Bootstrap:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                for ip in self.group.instances().values():
                    if ip not in self.started:
                        self.started.add(ip)
                        self.nodes.add(ip, wait=False)
            except Exception as exc:  # reported by the test, not lost in a thread
                self.errors.append(exc)


def policy(path: Path, group: Group, target: int) -> None:
    path.write_text(
        f"""
min_nodes = 1
max_nodes = 4
cooldown = "0m"
scale_in_cooldown = "0m"
scale_lead = "0m"
[reactive]
enabled = false
{windows(datetime.now(UTC), target=target)}
[backend]
kind = "asg"
retry = {{ attempts = 2, base = 0.01, cap = 0.05 }}
[backend.asg]
group = "{group.name}"
endpoint_url = "{group.endpoint_url}"
[backend.cache]
conn_id = "lakecache_default"
drain_timeout = "60s"
join_timeout = "90s"
poll_interval = "1s"
"""
    )


@pytest.fixture
def forget_policy_state(airflow_db: AirflowHome) -> Iterator[None]:
    """The policy's memory (a Variable of the session's Airflow DB) is this test's alone, before and after."""
    airflow_db.airflow("variables", "delete", STATE_VARIABLE)
    yield
    airflow_db.airflow("variables", "delete", STATE_VARIABLE)


def test_a_scale_out_waits_for_the_new_nodes_cache_worker_and_a_scale_in_drains_it_first(
    airflow_db: AirflowHome,
    forget_policy_state: None,
    s3_emulator,
    cache_factory: CacheFactory,
    bucket: str,
    redis_url: str,
    tmp_path: Path,
) -> None:
    group = Group(s3_emulator.endpoint_url, desired=2, min_size=1, max_size=4)
    ips = group.instances()
    nodes = NodeCluster(cache_factory, bucket, redis_url)
    witness = nodes.start(ips.values())[0]  # the connection's worker: its instance is the oldest, it stays
    objects = write_objects(bucket, s3_emulator.endpoint_url)
    read_all(witness, bucket, objects)
    config = tmp_path / "policy.toml"
    env = {
        **EMULATOR_CREDENTIALS,
        "AIRFLOW_VAR_LAKECACHE_AUTOSCALE_CONFIG": str(config),
        "AIRFLOW_CONN_LAKECACHE_DEFAULT": connection_json(witness),
    }

    policy(config, group, target=3)
    with Bootstrap(group, nodes, set(ips.values())) as bootstrap:
        out: DagRun = airflow_db.run_dag(DAG_ID, DAG_SOURCE, logical_date="2026-11-24", env=env)
    assert not bootstrap.errors, bootstrap.errors
    assert out.task_state("scale") == "success", out.tail()
    assert out.task_state("cache_workers_joined") == "success", out.tail()
    (added,) = out.xcom("scale")["result"]["added"]
    new_ip = group.instances()[added["name"]]
    joined = next(w for w in nodes.workers if w.host == new_ip)
    assert out.xcom("cache_workers_joined") == {added["name"]: worker_id(joined)}

    policy(config, group, target=2)
    back = airflow_db.run_dag(DAG_ID, DAG_SOURCE, logical_date="2026-11-25", env=env)
    assert back.task_state("scale") == "success", back.tail()
    result = back.xcom("scale")["result"]
    assert (result["before"], result["after"]) == (3, 2)
    assert [n["name"] for n in result["removed"]] == [added["name"]]
    drained = f"drained cache worker {worker_id(joined)} on node {added['name']}"
    assert any(n.startswith(drained) for n in result["notes"]), result["notes"]
    assert nodes.state(joined, seen_from=witness) == "gone"
    assert group.ec2_state(added["name"]) == "terminated"
    assert back.xcom("cache_workers_joined") == {}
    read_all(witness, bucket, objects)
