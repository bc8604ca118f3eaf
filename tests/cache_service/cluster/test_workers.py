"""Three real workers sharing a real Redis: one namespace, each block cached by its owner only, every worker an
entry point (WebHDFS redirects to the owner, S3 fetches from it), changes seen everywhere at once, and a killed
worker costing no read."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cache_service.cluster.ring import BlockId, Ring
from infra.cache_process import CacheProcess
from infra.cache_ring import cluster_report, wait_for_ring
from infra.s3_emulator import s3_client as emulator_client
from tests.support.hadoop_shell import fs_shell
from tests.support.metrics import s3_bytes_read, scrape
from tests.support.waiting import wait_until

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BLOCK = 1 << 20
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


RAW = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())


def owners_of(workers: list[CacheProcess], bucket: str, key: str, blocks: int) -> list[CacheProcess]:
    """Each block's owner, computed here from the workers' ids as every worker computes it."""
    ids = {cluster_report(w)["worker"]: w for w in workers}
    ring = Ring.of(ids)
    return [ids[str(ring.owner(BlockId(bucket, key, i)))] for i in range(blocks)]


def pages_of(worker: CacheProcess) -> int:
    report = cluster_report(worker)
    return next(m["pages"] for m in report["members"] if m["id"] == report["worker"])


def s3(worker: CacheProcess) -> S3Client:
    return emulator_client(worker.s3_url)


def spread_object(
    workers: list[CacheProcess], s3_client: S3Client, bucket: str, key: str, blocks: int
) -> tuple[bytes, list[CacheProcess]]:
    """Put ``blocks`` blocks of random bytes at ``key``; returns them and each block's owner."""
    data = os.urandom(blocks * BLOCK)
    s3_client.put_object(Bucket=bucket, Key=key, Body=data)
    return data, owners_of(workers, bucket, key, blocks)


def test_any_worker_serves_any_read_and_each_block_is_cached_by_its_owner_only(
    workers: list[CacheProcess], s3_client: S3Client, bucket: str
) -> None:
    data, owners = spread_object(workers, s3_client, bucket, "lake/events.bin", 6)
    assert len({w.webhdfs_port for w in owners}) > 1, "the blocks should spread over the workers"

    assert s3(workers[0]).get_object(Bucket=bucket, Key="lake/events.bin")["Body"].read() == data
    ranged = s3(workers[1]).get_object(Bucket=bucket, Key="lake/events.bin", Range="bytes=1048000-3146000")
    assert ranged["Body"].read() == data[1048000:3146001]

    expected = {w.webhdfs_port: sum(o is w for o in owners) for w in workers}
    for worker in workers:  # stats travel with heartbeats: wait for one
        wait_until(lambda w=worker: {x.webhdfs_port: pages_of(x) for x in workers} == expected)


def test_webhdfs_open_is_redirected_to_the_owner_of_the_block(
    workers: list[CacheProcess], s3_client: S3Client, bucket: str
) -> None:
    data, owners = spread_object(workers, s3_client, bucket, "lake/f.bin", 4)
    block = next(i for i, o in enumerate(owners) if o is not workers[0])
    url = f"{workers[0].webhdfs_url}/webhdfs/v1/lake/f.bin?op=OPEN&user.name=etl&offset={block * BLOCK + 5}"
    with pytest.raises(urllib.error.HTTPError) as redirect:
        RAW.open(url, timeout=10)
    assert redirect.value.code == 307
    location = redirect.value.headers["Location"]
    assert location.startswith(owners[block].webhdfs_url + "/webhdfs/v1/lake/f.bin?")
    assert "redirected=true" in location and "user.name=etl" in location
    with NO_PROXY.open(location, timeout=10) as response:
        assert response.read() == data[block * BLOCK + 5 :]

    locations = json.load(
        NO_PROXY.open(f"{workers[2].webhdfs_url}/webhdfs/v1/lake/f.bin?op=GETFILEBLOCKLOCATIONS", timeout=10)
    )["BlockLocations"]["BlockLocation"]
    assert [b["offset"] for b in locations] == [0, BLOCK, 2 * BLOCK, 3 * BLOCK]
    assert [b["names"][0] for b in locations] == [f"127.0.0.1:{o.webhdfs_port}" for o in owners]
    assert all(len(b["names"]) == 3 for b in locations)


def test_hadoop_fs_shell_reads_and_writes_through_any_worker(
    workers: list[CacheProcess], s3_client: S3Client, bucket: str, tmp_path: Path
) -> None:
    data = os.urandom(3 * BLOCK + 123)
    (tmp_path / "in.bin").write_bytes(data)
    put = fs_shell(tmp_path / "conf", ["-put", str(tmp_path / "in.bin"), f"{workers[1].webhdfs_uri}/lake/in.bin"])
    assert put.returncode == 0, put.stderr.decode()[-2000:]
    for worker in workers:
        cat = fs_shell(tmp_path / "conf", ["-cat", f"{worker.webhdfs_uri}/lake/in.bin"])
        assert cat.returncode == 0, cat.stderr.decode()[-2000:]
        assert cat.stdout == data
    assert s3_client.get_object(Bucket=bucket, Key="lake/in.bin")["Body"].read() == data


def test_a_write_through_one_worker_is_seen_by_every_other_at_once(
    workers: list[CacheProcess], s3_client: S3Client, bucket: str
) -> None:
    status = "/webhdfs/v1/lake/new.txt?op=GETFILESTATUS"
    for worker in workers:  # every worker now remembers "no such file" for an hour (sync_interval)
        with pytest.raises(urllib.error.HTTPError) as missing:
            NO_PROXY.open(worker.webhdfs_url + status, timeout=10)
        assert missing.value.code == 404
    s3(workers[0]).put_object(Bucket=bucket, Key="lake/new.txt", Body=b"fresh")
    for worker in workers[1:]:
        assert json.load(NO_PROXY.open(worker.webhdfs_url + status, timeout=10))["FileStatus"]["length"] == 5
    s3(workers[2]).delete_object(Bucket=bucket, Key="lake/new.txt")
    with pytest.raises(urllib.error.HTTPError) as gone:
        NO_PROXY.open(workers[0].webhdfs_url + status, timeout=10)
    assert gone.value.code == 404


def test_a_killed_worker_fails_no_read_and_leaves_the_ring(
    workers: list[CacheProcess], s3_client: S3Client, bucket: str
) -> None:
    data, _ = spread_object(workers, s3_client, bucket, "lake/big.bin", 6)
    assert s3(workers[0]).get_object(Bucket=bucket, Key="lake/big.bin")["Body"].read() == data  # warm
    workers[2].kill()
    for _ in range(3):  # before and after the ring notices
        assert s3(workers[0]).get_object(Bucket=bucket, Key="lake/big.bin")["Body"].read() == data
        assert (
            s3(workers[1]).get_object(Bucket=bucket, Key="lake/big.bin", Range="bytes=0-4194303")["Body"].read()
            == data[: 4 * BLOCK]
        )
    wait_for_ring(workers[:2], 2)
    report = cluster_report(workers[0])
    gone = [m for m in report["members"] if m["state"] == "gone"]
    assert len(gone) == 1 and gone[0]["webhdfs_url"] == workers[2].webhdfs_url
    assert s3(workers[1]).get_object(Bucket=bucket, Key="lake/big.bin")["Body"].read() == data

    workers[2].start()  # its identity is on its disk: it takes its blocks back
    wait_for_ring(workers, 3)
    assert {m["id"] for m in cluster_report(workers[2])["members"]} == {m["id"] for m in report["members"]}


RANGE = "bucket=b&key=lake/x&etag=e&size=10&start=0&end=5"


@pytest.mark.parametrize(
    ("method", "query", "headers", "body", "status", "code"),
    [
        ("GET", RANGE, {}, None, 401, "Unauthorized"),
        ("GET", RANGE, {"Authorization": "Bearer nope"}, None, 401, "Unauthorized"),
        ("GET", "bucket=b&key=lake/x&etag=e&size=ten&start=0&end=5", "token", None, 400, "InvalidArgument"),
        ("GET", "bucket=b&key=lake/x&etag=e&size=10&start=4&end=40", "token", None, 400, "InvalidArgument"),
        ("GET", RANGE + "&evil=1", "token", None, 400, "InvalidArgument"),
        ("GET", "bucket=elsewhere&key=x&etag=e&size=10&start=0&end=5", "token", None, 403, "AccessDenied"),
        ("GET", RANGE + "&cached=only", "token", None, 404, "NotCached"),
        ("GET", RANGE + "&cached=maybe", "token", None, 400, "InvalidArgument"),
        ("PUT", "bucket=b&key=lake/x&etag=e&size=10&start=0&end=10", {}, b"0123456789", 401, "Unauthorized"),
        ("PUT", "bucket=b&key=lake/x&etag=e&size=10&start=3&end=10", "token", b"3456789", 400, "InvalidArgument"),
        ("PUT", "bucket=b&key=lake/x&etag=e&size=10&start=0&end=10", "token", b"01234", 400, "InvalidArgument"),
        (
            "PUT",
            "bucket=b&key=lake/x&etag=e&size=10&start=0&end=10&tier=ssd",
            "token",
            b"0" * 10,
            400,
            "InvalidArgument",
        ),
        (
            "PUT",
            "bucket=b&key=lake/x&etag=e&size=10&start=0&end=10&cached=only",
            "token",
            b"0" * 10,
            400,
            "InvalidArgument",
        ),
        ("PUT", "bucket=elsewhere&key=x&etag=e&size=10&start=0&end=10", "token", b"0" * 10, 403, "AccessDenied"),
    ],
)
def test_peer_requests_need_the_secret_and_a_well_formed_range_inside_a_mount(
    workers: list[CacheProcess],
    bucket: str,
    method: str,
    query: str,
    headers: Any,
    body: bytes | None,
    status: int,
    code: str,
) -> None:
    if headers == "token":
        headers = {"Authorization": f"Bearer {workers[0].token}"}
    query = query.replace("bucket=b&", f"bucket={bucket}&")
    url = f"{workers[0].webhdfs_url}/cluster/v1/pages?{query}"
    request = urllib.request.Request(url, headers=headers, data=body, method=method)
    with pytest.raises(urllib.error.HTTPError) as refused:
        NO_PROXY.open(request, timeout=10)
    assert refused.value.code == status
    assert json.load(refused.value)["error"]["code"] == code
    assert pages_of(workers[0]) == 0  # nothing was cached by a refused request


def test_a_page_handed_to_a_worker_is_served_from_its_cache_only(workers: list[CacheProcess], bucket: str) -> None:
    secret = {"Authorization": f"Bearer {workers[0].token}"}
    page = os.urandom(BLOCK)
    query = f"bucket={bucket}&key=lake/given.bin&etag=abc&size={BLOCK + 10}&start=0&end={BLOCK}"
    url = f"{workers[0].webhdfs_url}/cluster/v1/pages?{query}"
    with NO_PROXY.open(urllib.request.Request(url, headers=secret, data=page, method="PUT"), timeout=10) as given:
        assert given.status == 204

    with NO_PROXY.open(urllib.request.Request(url + "&cached=only", headers=secret), timeout=10) as answer:
        assert answer.read() == page
    rest = url.replace(f"start=0&end={BLOCK}", f"start={BLOCK}&end={BLOCK + 10}") + "&cached=only"
    with pytest.raises(urllib.error.HTTPError) as missing:  # the object's last page was never given
        NO_PROXY.open(urllib.request.Request(rest, headers=secret), timeout=10)
    assert json.load(missing.value)["error"]["code"] == "NotCached"


def test_each_worker_exports_its_id_and_what_it_knows_of_the_cluster(workers: list[CacheProcess]) -> None:
    for worker in workers:
        report = cluster_report(worker)
        metrics = scrape(worker.webhdfs_url)
        assert metrics[f'lakecache_worker_info{{ring="{report["ring"]}",worker="{report["worker"]}"}}'] == 1
        assert metrics['lakecache_cluster_members{state="active"}'] == 3
        assert metrics['lakecache_cluster_members{state="gone"}'] == 0
        assert metrics["lakecache_cluster_degraded"] == 0


def test_a_file_written_through_one_worker_is_cached_on_its_blocks_owners_and_read_back_from_them(
    workers: list[CacheProcess], bucket: str
) -> None:
    data = os.urandom(6 * BLOCK + 1000)
    create = f"{workers[0].webhdfs_url}/webhdfs/v1/lake/written.bin?op=CREATE&user.name=etl&data=true"
    with NO_PROXY.open(urllib.request.Request(create, data=data, method="PUT"), timeout=30) as response:
        assert response.status == 201
    owners = owners_of(workers, bucket, "lake/written.bin", 7)

    for worker in workers:
        with NO_PROXY.open(f"{worker.webhdfs_url}/webhdfs/v1/lake/written.bin?op=OPEN", timeout=30) as response:
            assert response.read() == data
        assert s3(worker).get_object(Bucket=bucket, Key="lake/written.bin")["Body"].read() == data
    assert sum(s3_bytes_read(w.webhdfs_url) for w in workers) == 0  # every block was on its owner already
    for worker in workers:
        assert scrape(worker.webhdfs_url)['lakecache_tier_pages{tier="disk"}'] == sum(o is worker for o in owners)
