"""Staged files in a cluster: acknowledged only once on two workers' disks, served and published through any worker,
and still publishable after the SIGKILL of the worker that first took them."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio as aioredis
from aiohttp import web

from cache_service.cluster.member import Member, MemberState
from cache_service.cluster.staging import HOMES, REPLICA, HomeKeeper, StagingCopies, StagingHomes
from cache_service.cluster.view import ClusterView
from cache_service.config import WriteConfig
from cache_service.write.staging import StagingArea
from infra.cache_process import CacheProcess
from infra.cache_ring import wait_for_ring, worker_id
from infra.ports import free_port
from infra.service_process import http_ok
from tests.cache_service.async_tests import run_async
from tests.support.waiting import wait_until

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
ROOT = "/lake/out/_temporary"
TASK = f"{ROOT}/0/task_0001"


def webhdfs(worker: CacheProcess, method: str, path: str, op: str, body: bytes | None = None, **params: str) -> Any:
    """One WebHDFS call through ``worker`` (a CREATE in one step); the JSON answer, or None for an empty one."""
    query = "&".join(f"{k}={v}" for k, v in {"op": op, "user.name": "etl", **params}.items())
    request = urllib.request.Request(f"{worker.webhdfs_url}/webhdfs/v1{path}?{query}", data=body, method=method)
    with NO_PROXY.open(request, timeout=30) as response:
        text = response.read()
    return json.loads(text) if text else None


def holders(workers: list[CacheProcess], path: str) -> list[CacheProcess]:
    """The workers whose disk holds staged file ``path``."""
    return [w for w in workers if any(Path(w.state_dir).rglob(f"staging{path}"))]


def write_task_output(worker: CacheProcess, files: int = 3) -> dict[str, bytes]:
    webhdfs(worker, "PUT", TASK, "MKDIRS")
    written = {}
    for n in range(files):
        path = f"{TASK}/part-{n:05d}.bin"
        written[path] = os.urandom(200_000 + n)
        webhdfs(worker, "PUT", path, "CREATE", written[path], data="true", overwrite="false")
    return written


def test_a_staged_file_is_on_two_workers_disks_once_acknowledged_and_any_worker_serves_it(
    workers: list[CacheProcess],
) -> None:
    written = write_task_output(workers[0])

    for path, data in written.items():
        assert len(holders(workers, path)) == 2, path
        for worker in workers:  # the worker it reached asks the staging directory's home
            assert webhdfs(worker, "GET", path, "GETFILESTATUS")["FileStatus"]["length"] == len(data)
            url = f"{worker.webhdfs_url}/webhdfs/v1{path}?op=OPEN&user.name=etl"
            with NO_PROXY.open(url, timeout=30) as response:
                assert response.read() == data
    listed = webhdfs(workers[2], "GET", TASK, "LISTSTATUS")["FileStatuses"]["FileStatus"]
    assert sorted(e["pathSuffix"] for e in listed) == ["part-00000.bin", "part-00001.bin", "part-00002.bin"]


def test_a_staged_file_survives_the_sigkill_of_the_worker_that_took_it_and_is_published_from_its_copy(
    workers: list[CacheProcess], s3_client: S3Client, bucket: str
) -> None:
    written = write_task_output(workers[0])
    first = next(iter(written))
    primary, secondary = holders(workers, first)
    survivors = [w for w in workers if w is not primary]
    entry = next(w for w in survivors if w is not secondary) if len(survivors) > 1 else secondary

    primary.kill()
    wait_for_ring(survivors, 2)

    listed = webhdfs(entry, "GET", TASK, "LISTSTATUS")["FileStatuses"]["FileStatus"]
    assert len(listed) == len(written)
    for path in written:  # the job commit: each task file moves to the output directory
        assert webhdfs(entry, "PUT", path, "RENAME", destination=path.replace(f"{TASK}/", "/lake/out/"))["boolean"]
    assert webhdfs(entry, "DELETE", ROOT, "DELETE", recursive="true")["boolean"]

    keys = sorted(o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket, Prefix="lake/")["Contents"])
    assert keys == sorted(p.replace(f"{TASK}/", "lake/out/").lstrip("/") for p in written)
    for path, data in written.items():
        key = path.replace(f"{TASK}/", "lake/out/").lstrip("/")
        assert s3_client.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    assert holders(survivors, first) == []  # published: no staged copy is left anywhere


def test_a_home_that_lost_a_worker_grows_back_at_once_so_a_second_loss_loses_nothing(
    workers: list[CacheProcess], s3_client: S3Client, bucket: str
) -> None:
    written = write_task_output(workers[0])
    first = next(iter(written))
    home = holders(workers, first)
    (outsider,) = [w for w in workers if w not in home]

    home[1].kill()
    wait_for_ring([home[0], outsider], 2)
    # No request about the directory: the home's remaining worker gives the outsider a copy on its own.
    wait_until(lambda: all(holders([outsider], path) for path in written), 15, "a copy on the worker added")
    home[0].kill()
    wait_for_ring([outsider], 1)

    for path in written:
        assert webhdfs(outsider, "PUT", path, "RENAME", destination=path.replace(f"{TASK}/", "/lake/out/"))["boolean"]
    for path, data in written.items():
        key = path.replace(f"{TASK}/", "lake/out/").lstrip("/")
        assert s3_client.get_object(Bucket=bucket, Key=key)["Body"].read() == data


def test_a_copy_a_worker_refuses_does_not_count_and_the_file_goes_to_another_worker(
    workers: list[CacheProcess], redis_url: str
) -> None:
    written = write_task_output(workers[0], files=1)
    home = holders(workers, next(iter(written)))
    with redis.Redis.from_url(redis_url) as client:
        primary_id, replica_id = json.loads(client.get(HOMES + ROOT) or b"[]")
    by_id = {worker_id(w): w for w in workers}
    primary, replica = by_id[primary_id], by_id[replica_id]
    (outsider,) = [w for w in workers if w not in home]
    # The replica's copy differs: a file where the directory the next write goes into will be.
    (clash,) = Path(replica.state_dir).rglob(f"staging{TASK}")
    (clash / "sub").write_bytes(b"not a directory")

    path = f"{TASK}/sub/part-00000.bin"
    data = os.urandom(100_000)
    webhdfs(workers[0], "PUT", path, "CREATE", data, data="true", overwrite="false")

    # The replica refused its copy (a 4xx): the write is on the outsider, which took the replica's place, too.
    assert holders(workers, path) == [w for w in workers if w in (primary, outsider)]
    with redis.Redis.from_url(redis_url) as client:
        assert json.loads(client.get(HOMES + ROOT) or b"[]") == [primary_id, worker_id(outsider)]


def test_a_forged_replica_request_is_refused(workers: list[CacheProcess]) -> None:
    request = urllib.request.Request(
        f"{workers[0].webhdfs_url}/webhdfs/v1{TASK}?op=MKDIRS&user.name=etl",
        method="PUT",
        headers={"X-Lakecache-Replica": "guess"},
    )
    try:
        NO_PROXY.open(request, timeout=10)
        raise AssertionError("a forged replica request was accepted")
    except urllib.error.HTTPError as refused:
        assert refused.code == 403
        assert json.load(refused)["RemoteException"]["exception"] == "AccessControlException"
    assert holders(workers, TASK) == []


def test_append_truncate_and_concat_of_staged_files_reach_every_copy(workers: list[CacheProcess]) -> None:
    written = write_task_output(workers[0], files=2)
    (path, first), (source, second) = written.items()
    webhdfs(workers[1], "POST", path, "CONCAT", sources=source)
    assert holders(workers, source) == []
    data = first + second
    webhdfs(workers[1], "POST", path, "APPEND", b"appended", data="true")
    assert webhdfs(workers[2], "POST", path, "TRUNCATE", newlength=str(len(data) + 3)) == {"boolean": True}
    expected = data + b"app"
    copies = holders(workers, path)
    assert len(copies) == 2
    for worker in copies:
        (local,) = Path(worker.state_dir).rglob(f"staging{path}")
        assert local.read_bytes() == expected, worker
    url = f"{workers[0].webhdfs_url}/webhdfs/v1{path}?op=OPEN&user.name=etl"
    with NO_PROXY.open(url, timeout=30) as response:
        assert response.read() == expected


def refused(call: Callable[[], object]) -> int:
    """The HTTP status of ``call``'s refusal (it must raise ``HTTPError``)."""
    try:
        call()
    except urllib.error.HTTPError as error:
        assert json.load(error)["RemoteException"]["exception"] == "RetriableException"
        return error.code
    raise AssertionError("the request was not refused")


def test_a_worker_still_starting_refuses_staged_writes_rather_than_keeping_them_alone(
    workers: list[CacheProcess],
) -> None:
    webhdfs(workers[0], "PUT", TASK, "MKDIRS")
    restarting = workers[2]
    restarting.kill()
    starter = threading.Thread(target=restarting.start)
    starter.start()  # it waits for its claim in Redis (member_timeout) before it joins and is ready
    wait_until(lambda: http_ok(f"{restarting.webhdfs_url}/healthz"), timeout=30, what="the port answers")
    assert not http_ok(f"{restarting.webhdfs_url}/readyz")

    path = f"{TASK}/part-00000.bin"
    try:
        status = refused(lambda: webhdfs(restarting, "PUT", path, "CREATE", b"x", data="true", overwrite="false"))
    finally:
        starter.join()
    assert status == 503
    assert holders(workers, path) == []


def test_staged_files_stay_publishable_when_the_whole_cluster_is_killed_and_a_worker_outside_their_home_starts_first(
    workers: list[CacheProcess], s3_client: S3Client, bucket: str
) -> None:
    written = write_task_output(workers[0])
    home = holders(workers, next(iter(written)))
    (outsider,) = [w for w in workers if w not in home]
    for worker in workers:
        worker.kill()
    outsider.start()
    wait_for_ring([outsider], 1)

    status = refused(lambda: webhdfs(outsider, "GET", TASK, "LISTSTATUS"))  # not an empty new home: retry later
    for worker in home:
        worker.start()
    wait_for_ring(workers, 3)

    assert status == 503
    for path in written:
        assert webhdfs(outsider, "PUT", path, "RENAME", destination=path.replace(f"{TASK}/", "/lake/out/"))["boolean"]
    for path, data in written.items():
        key = path.replace(f"{TASK}/", "lake/out/").lstrip("/")
        assert s3_client.get_object(Bucket=bucket, Key=key)["Body"].read() == data


@run_async
async def test_a_draining_worker_of_a_home_is_told_of_moves_and_deletions_not_given_bytes(redis_url: str) -> None:
    members = {
        "w-a": Member("w-a", "http://a", "http://a-s3", state=MemberState.ACTIVE),
        "w-c": Member("w-c", "http://c", "http://c-s3", state=MemberState.DRAINING),
        "w-d": Member("w-d", "http://d", "http://d-s3", state=MemberState.ACTIVE),
    }
    view = ClusterView("w-a", members, 1 << 20)
    client = aioredis.Redis.from_url(redis_url)
    root = "/out/job-draining/_temporary"
    await client.set(HOMES + root, json.dumps(["w-a", "w-c"]))  # its home before w-c began to drain
    try:
        home = await StagingHomes(client, lambda: view, replicas=2).home(root)
    finally:
        await client.delete(HOMES + root)
        await client.aclose()

    assert [m.id for m in home.members] == ["w-a", "w-d"]  # w-d takes w-c's place, and a copy of the files
    assert [m.id for m in home.joined] == ["w-d"]
    assert [m.id for m in home.leaving] == ["w-c"]  # it may hold a copy sent before its drain was known


@run_async
async def test_a_worker_whose_copy_failed_is_left_out_of_the_home_and_given_the_files_again(
    redis_url: str, tmp_path: Path
) -> None:
    root = "/out/job-copy-failed/_temporary"
    staging = StagingArea(tmp_path / "staging")
    staging.mkdirs(f"{root}/0")
    upload = staging.new_file(f"{root}/0/part-00000")
    upload.write_bytes(b"staged bytes")
    staging.commit(upload, f"{root}/0/part-00000")
    port = free_port()
    a = Member("w-a", "http://127.0.0.1:1", "http://a-s3", state=MemberState.ACTIVE)
    b = Member("w-b", f"http://127.0.0.1:{port}", "http://b-s3", state=MemberState.ACTIVE)
    views = [ClusterView("w-a", {"w-a": a}, 1 << 20)]
    client = aioredis.Redis.from_url(redis_url)
    copies = StagingCopies(staging, "cluster-secret", timeout=2)
    homes = StagingHomes(client, lambda: views[-1], replicas=2)
    keeper = HomeKeeper(homes, copies, WriteConfig(), poll=0.05)
    received: list[tuple[str, str]] = []

    async def worker_b(request: web.Request) -> web.Response:
        assert request.headers[REPLICA] == "cluster-secret"
        received.append((request.query["op"], request.path))
        await request.read()
        return web.Response(status=201)

    async def record() -> list[str] | None:
        raw = await client.get(HOMES + root)
        return json.loads(raw) if raw is not None else None

    runner = web.AppRunner(web.Application())
    runner.app.router.add_route("PUT", "/{tail:.*}", worker_b)
    await client.set(HOMES + root, json.dumps(["w-a", "w-gone"]))  # its home before w-gone was lost
    try:
        keeper.start()
        views.append(ClusterView("w-a", {"w-a": a, "w-b": b}, 1 << 20))  # w-b joins the ring; nothing listens yet
        for _ in range(100):
            await asyncio.sleep(0.05)
            if await record() == ["w-a"]:
                break
        # The copy to w-b failed: the home does not name it, as it would a worker holding the files.
        assert await record() == ["w-a"]
        assert [m.id for m in (await homes.home(root)).joined] == ["w-b"]  # still to be added, so tried again

        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()  # w-b answers now: the keeper's next round gives it
        for _ in range(100):
            await asyncio.sleep(0.05)
            if await record() == ["w-a", "w-b"]:
                break
        assert await record() == ["w-a", "w-b"]
        assert ("CREATE", f"/webhdfs/v1{root}/0/part-00000") in received
    finally:
        await keeper.stop()
        await copies.close()
        await runner.cleanup()
        await client.delete(HOMES + root)
        await client.aclose()
