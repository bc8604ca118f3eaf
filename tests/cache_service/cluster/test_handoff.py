"""Scale-out and scale-in, warm: a joining worker takes its blocks' pages from their previous owners, a drained
worker hands its pages to their new owners, and re-reading the warm data set afterwards reads at most 5% of it from
S3 (without hand-off about 1/N of it would come from S3). Drains that cannot be done are refused precisely."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest

from infra.cache_process import CacheProcess
from infra.cache_ring import cluster_report, wait_for_ring, worker_id
from infra.s3_emulator import s3_client as emulator_client
from tests.cache_service.cluster.conftest import CLUSTER
from tests.cache_service.cluster.test_staging import holders
from tests.support.cachectl import cachectl
from tests.support.caches import CacheFactory
from tests.support.metrics import s3_bytes_read, scrape
from tests.support.waiting import wait_until

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BLOCK = 1 << 20
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def data_set(s3_client: S3Client, bucket: str, objects: int = 3, blocks: int = 8) -> dict[str, bytes]:
    """``objects`` objects of ``blocks`` 1 MiB blocks of random bytes under ``lake/set/``."""
    written = {}
    for n in range(objects):
        key = f"lake/set/part-{n}.bin"
        written[key] = os.urandom(blocks * BLOCK)
        s3_client.put_object(Bucket=bucket, Key=key, Body=written[key])
    return written


def read_all(worker: CacheProcess, bucket: str, objects: dict[str, bytes]) -> None:
    """Read every object whole through ``worker``'s S3 API and check its bytes."""
    client = emulator_client(worker.s3_url)
    for key, data in objects.items():
        assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == data, key


def from_s3(workers: list[CacheProcess]) -> float:
    return sum(s3_bytes_read(w.webhdfs_url) for w in workers)


def post(worker: CacheProcess, route: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{worker.webhdfs_url}/admin/v1/{route}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {worker.token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with NO_PROXY.open(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_a_joining_worker_takes_its_blocks_pages_from_their_previous_owners_not_from_s3(
    cache_factory: CacheFactory, redis_url: str, bucket: str, s3_client: S3Client
) -> None:
    workers = cache_factory.cluster(2, {"/lake": f"s3://{bucket}/lake"}, redis_url, CLUSTER)
    objects = data_set(s3_client, bucket)
    total = sum(len(d) for d in objects.values())
    read_all(workers[0], bucket, objects)
    cold = from_s3(workers)
    assert cold >= total

    joined = cache_factory.join(workers)
    everyone = [*workers, joined]
    read_all(joined, bucket, objects)
    read_all(workers[1], bucket, objects)

    assert from_s3(everyone) - cold <= 0.05 * total  # without hand-off about a third would come from S3
    me = worker_id(joined)
    wait_until(lambda: next(m["pages"] for m in cluster_report(workers[0])["members"] if m["id"] == me) > 0)


def test_a_drained_worker_hands_its_pages_over_then_leaves_and_the_warm_set_stays_warm(
    workers: list[CacheProcess], bucket: str, s3_client: S3Client
) -> None:
    objects = data_set(s3_client, bucket)
    total = sum(len(d) for d in objects.values())
    read_all(workers[0], bucket, objects)
    cold = from_s3(workers)
    leaving, staying = workers[2], workers[:2]
    held = int(scrape(leaving.webhdfs_url)['lakecache_tier_pages{tier="disk"}'])
    assert held > 0

    run = cachectl("drain", worker_id(leaving), "--wait", endpoint=staying[0].webhdfs_url, token=staying[0].token)

    assert run.code == 0, run.stderr
    said = " ".join(run.stdout.split())
    assert f"handed {held} pages ({held}.0 MiB) to their new owners; left the ring" in said, said
    wait_for_ring(staying, 2)
    members = {m["id"]: m["state"] for m in cluster_report(staying[0])["members"]}
    assert members[worker_id(leaving)] == "gone"
    own = {m["id"]: m["state"] for m in cluster_report(leaving)["members"]}
    assert own[worker_id(leaving)] == "gone"  # the drained worker says so itself too
    read_all(staying[1], bucket, objects)
    read_all(leaving, bucket, objects)  # a drained worker still answers while it runs, from the others
    assert from_s3(workers) - cold <= 0.05 * total  # without hand-off about a third would come from S3


def test_a_drain_hands_its_staging_directories_to_their_home_and_loses_no_staged_byte(
    workers: list[CacheProcess], bucket: str, s3_client: S3Client
) -> None:
    path = "/lake/out/_temporary/0/part-0"
    data = os.urandom(300_000)
    staged = f"{workers[1].webhdfs_url}/webhdfs/v1{path}?op=CREATE&user.name=etl&data=true"
    with NO_PROXY.open(urllib.request.Request(staged, data=data, method="PUT"), timeout=30) as response:
        assert response.status == 201
    leaving = holders(workers, path)[0]  # a worker of the staging directory's home
    staying = [w for w in workers if w is not leaving]

    status, job = post(staying[0], "cluster/drain", {"worker": worker_id(leaving)})
    assert status == 202, job
    status, again = post(staying[1], "cluster/drain", {"worker": worker_id(leaving)})
    assert (status, again["error"]["code"]) == (409, "Conflict"), again
    wait_until(lambda: fetch(job["job_url"])["state"] == "succeeded", timeout=20)
    wait_for_ring(staying, 2)

    assert holders(staying, path) == staying and holders([leaving], path) == []  # two copies, none on the drained
    with NO_PROXY.open(f"{staying[1].webhdfs_url}/webhdfs/v1{path}?op=OPEN&user.name=etl", timeout=30) as response:
        assert response.read() == data
    publish = f"{staying[0].webhdfs_url}/webhdfs/v1{path}?op=RENAME&destination=/lake/out/part-0&user.name=etl"
    with NO_PROXY.open(urllib.request.Request(publish, method="PUT"), timeout=30) as response:
        assert json.load(response)["boolean"] is True
    assert s3_client.get_object(Bucket=bucket, Key="lake/out/part-0")["Body"].read() == data


def test_a_second_drain_asked_before_the_first_has_begun_is_refused(workers: list[CacheProcess]) -> None:
    leaving = workers[2]
    # Both to the worker itself, back to back: its view still says active when the second arrives.
    status, job = post(leaving, "cluster/drain", {"worker": worker_id(leaving)})
    again_status, again = post(leaving, "cluster/drain", {"worker": worker_id(leaving)})

    assert status == 202, job
    assert (again_status, again.get("error", {}).get("code")) == (409, "Conflict"), again
    assert "already draining" in again["error"]["message"]
    wait_until(lambda: fetch(job["job_url"])["state"] == "succeeded", timeout=20)
    wait_for_ring(workers[:2], 2)


@pytest.mark.parametrize(
    ("body", "status", "code", "says"),
    [
        ({"worker": "w-000000000000"}, 404, "NotFound", "no worker w-000000000000 in the cluster"),
        ({"worker": "cache-1"}, 400, "InvalidArgument", "worker must be a worker id"),
        ({}, 400, "InvalidArgument", "worker"),
        ({"worker": "SELF", "budget": -1}, 400, "InvalidArgument", "budget must be a positive number of bytes"),
        ({"worker": "SELF", "budget": True}, 400, "InvalidArgument", "budget must be a positive number of bytes"),
    ],
)
def test_a_drain_that_cannot_be_done_is_refused_precisely_and_changes_nothing(
    workers: list[CacheProcess], body: dict[str, Any], status: int, code: str, says: str
) -> None:
    ids = [worker_id(w) for w in workers]
    body = {k: (ids[0] if v == "SELF" else v) for k, v in body.items()}
    got, answer = post(workers[1], "cluster/drain", body)
    assert (got, answer["error"]["code"]) == (status, code), answer
    assert says in answer["error"]["message"]
    assert sorted(m["id"] for m in cluster_report(workers[2])["members"] if m["state"] == "active") == sorted(ids)


def test_the_last_active_worker_cannot_be_drained(cache_factory: CacheFactory, redis_url: str, bucket: str) -> None:
    first, second = cache_factory.cluster(2, {"/lake": f"s3://{bucket}/lake"}, redis_url, CLUSTER)
    run = cachectl("drain", worker_id(second), "--wait", endpoint=first.webhdfs_url, token=first.token)
    assert run.code == 0, run.stderr
    wait_for_ring([first], 1)

    refused = cachectl("drain", worker_id(first), endpoint=first.webhdfs_url, token=first.token)

    line = refused.assert_one_line_error()
    assert "is the last active worker" in line
    assert [m["state"] for m in cluster_report(first)["members"] if m["id"] == worker_id(first)] == ["active"]


def test_a_single_worker_is_not_a_cluster_to_drain(cache_factory: CacheFactory, bucket: str) -> None:
    alone = cache_factory({"/lake": f"s3://{bucket}/lake"})
    status, answer = post(alone, "cluster/drain", {"worker": worker_id(alone)})
    assert (status, answer["error"]["code"]) == (409, "NotClustered")


def fetch(url: str) -> dict[str, Any]:
    with NO_PROXY.open(url, timeout=10) as response:
        answer: dict[str, Any] = json.load(response)
    return answer
