"""Users and rights in a two-worker cluster: a request is checked by the worker it reaches, and a refused write leaves
nothing anywhere (no staged copy on any worker's disk, no S3 object), while an allowed one is staged on both workers,
published and readable through either, over WebHDFS and S3 alike."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from infra.cache_process import CacheProcess
from tests.cache_service.api.s3.support import s3_client
from tests.cache_service.cluster.conftest import CLUSTER
from tests.cache_service.cluster.test_staging import holders
from tests.support.caches import CacheFactory
from tests.support.metrics import requests_by_user
from tests.support.webhdfs import WebHdfsClient

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@pytest.fixture
def pair(cache_factory: CacheFactory, bucket: str, redis_url: str) -> list[CacheProcess]:
    """Two workers; ``/lake`` lets ``etl`` write and ``analyst`` read, and so do their S3 keys; ``/finance`` is
    ``cfo``'s alone."""
    grant = {"bucket": bucket, "prefix": "lake/"}
    users = [
        {"access_key": "etl", "secret_key": "etl-secret-in-cluster", "grants": [{**grant, "access": "write"}]},
        {"access_key": "analyst", "secret_key": "analyst-secret-in-cluster", "grants": [{**grant, "access": "read"}]},
    ]
    mount = {"path": "/lake", "uri": f"s3://{bucket}/lake", "users": {"etl": "write", "analyst": "read"}}
    finance = {"path": "/finance", "uri": f"s3://{bucket}/finance", "users": {"cfo": "write"}}
    overrides = {**CLUSTER, "mounts": [mount, finance], "s3_api": {"users": users}}
    return cache_factory.cluster(2, {"/lake": f"s3://{bucket}/lake"}, redis_url, overrides)


def _s3(worker: CacheProcess, user: str) -> S3Client:
    return s3_client(worker.s3_url, access_key=user, secret=f"{user}-secret-in-cluster")


def _keys(s3: S3Client, bucket: str, prefix: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def test_a_refused_write_through_either_worker_leaves_nothing_and_an_allowed_one_reaches_both(
    pair: list[CacheProcess], s3_client: S3Client, bucket: str
) -> None:
    second = pair[1]
    tag = uuid.uuid4().hex[:8]
    staged, published = f"/lake/{tag}/_temporary/0/task_0/part-0", f"/lake/{tag}/part-0"

    for worker in pair:
        analyst = WebHdfsClient(worker.webhdfs_url, user="analyst")
        for path in (staged, published):
            reply = analyst.create(path, b"refused")
            assert reply.status == 403 and reply.exception == "AccessControlException", reply.body
            assert "user=analyst, access=WRITE" in reply.json()["RemoteException"]["message"]
        with pytest.raises(ClientError) as excinfo:
            _s3(worker, "analyst").put_object(Bucket=bucket, Key=f"lake/{tag}/by-s3", Body=b"refused")
        assert excinfo.value.response["Error"]["Code"] == "AccessDenied"
    assert holders(pair, staged) == []
    assert _keys(s3_client, bucket, f"lake/{tag}/") == []

    etl = WebHdfsClient(second.webhdfs_url, user="etl")
    assert etl.create(staged, b"allowed").status == 201
    assert len(holders(pair, staged)) == 2  # the copy to the other worker was not refused as a second request
    assert etl.rename(f"/lake/{tag}/_temporary/0/task_0/part-0", published).json() == {"boolean": True}
    _s3(second, "etl").put_object(Bucket=bucket, Key=f"lake/{tag}/by-s3", Body=b"allowed too")
    for worker in pair:
        analyst = WebHdfsClient(worker.webhdfs_url, user="analyst")
        reply = analyst.read(published)
        if reply.status == 307:  # to the block's owner, which checks the same user again
            owner = urlsplit(reply.headers["location"])
            reply = WebHdfsClient(f"http://{owner.netloc}").request("GET", f"{owner.path}?{owner.query}")
        assert reply.status == 200 and reply.body == b"allowed", reply.body
        assert (
            _s3(worker, "analyst").get_object(Bucket=bucket, Key=f"lake/{tag}/by-s3")["Body"].read() == b"allowed too"
        )
    assert sorted(_keys(s3_client, bucket, f"lake/{tag}/")) == [f"lake/{tag}/by-s3", f"lake/{tag}/part-0"]


def test_every_worker_lists_and_sums_only_the_mounts_the_caller_may_use(
    pair: list[CacheProcess], s3_client: S3Client, bucket: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    s3_client.put_object(Bucket=bucket, Key=f"finance/{tag}/ledger.csv", Body=b"f" * 1000)
    cfo = WebHdfsClient(pair[0].webhdfs_url, user="cfo")
    assert cfo.create(f"/finance/{tag}/_temporary/0/part-0", b"staged" * 10).status == 201  # on both workers
    # counted by user where it entered the cluster, not again as the copy the other worker was sent
    assert requests_by_user(pair[0].webhdfs_url, "webhdfs")[("cfo", "allowed")] >= 1
    assert ("cfo", "allowed") not in requests_by_user(pair[1].webhdfs_url, "webhdfs")
    assert WebHdfsClient(pair[1].webhdfs_url, user="etl").create(f"/lake/{tag}/part-0", b"lake").status == 201
    for worker in pair:
        analyst = WebHdfsClient(worker.webhdfs_url, user="analyst")
        assert analyst.list("/") == ["lake"]
        lake = analyst.summary("/lake")
        assert analyst.summary("/") == (lake[0], lake[1], lake[2] + 1)  # "/" and /lake's tree, no /finance
        reply = analyst.status("/finance")
        assert reply.status == 403 and reply.exception == "AccessControlException", reply.body
        cfo = WebHdfsClient(worker.webhdfs_url, user="cfo")
        assert cfo.list("/") == ["finance"]
        assert cfo.summary("/")[:2] == (1000 + 60, 2)
