"""The peer API (``/cluster/v1/...``) and the marks workers put on the WebHDFS requests they relay answer only the
cluster's secret: every peer route, taken from the API's own routing, refuses a request without it or with a forged
one, and a page request for a key outside every mount (``..`` included) is refused even with it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast
from urllib.parse import urlencode

import pytest
from aiohttp import web

from cache_service.api.peer import PeerApi
from cache_service.api.webhdfs.staging_relay import FORWARDED
from cache_service.cluster.staging import REPLICA
from infra.cache_process import CacheProcess
from infra.cache_ring import cluster_report
from tests.support.buckets import throwaway_bucket
from tests.support.caches import lone_cluster_worker
from tests.support.webhdfs import Reply, WebHdfsClient

SIZE = 10


def peer_routes() -> list[tuple[str, str]]:
    """Every (method, path) the peer API registers; its handlers check the secret before anything else."""
    app = web.Application()
    nothing = cast(Any, None)
    PeerApi(nothing, nothing, nothing, "secret", 1.0, nothing).add_routes(app)
    found = sorted({(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None})
    assert {path for _, path in found} >= {"/cluster/v1/pages", "/cluster/v1/watch", "/cluster/v1/invalidations"}
    return found


ROUTES = peer_routes()


@pytest.fixture(scope="module")
def peer_bucket(s3_emulator) -> Iterator[str]:
    with throwaway_bucket(s3_emulator.client(), "peer") as bucket:
        yield bucket


@pytest.fixture(scope="module")
def worker(s3_emulator, tmp_path_factory, redis_server, peer_bucket: str) -> Iterator[CacheProcess]:
    """A cluster of one worker mounting ``/lake``: enough to serve the peer API."""
    mounts = {"/lake": f"s3://{peer_bucket}/lake"}
    with lone_cluster_worker(s3_emulator, tmp_path_factory.mktemp("peer"), redis_server, mounts) as cache:
        yield cache


def pages_of(worker: CacheProcess) -> int:
    report = cluster_report(worker)
    return next(m["pages"] for m in report["members"] if m["id"] == report["worker"])


def _request(
    worker: CacheProcess, bucket: str, method: str, path: str, headers: dict[str, str], key: str = "lake/x"
) -> Reply:
    query = urlencode({"bucket": bucket, "key": key, "etag": "e", "size": SIZE, "start": 0, "end": SIZE})
    body: bytes | None = None
    if method == "PUT":
        body = b"0" * SIZE
    elif method == "POST":
        body = json.dumps({"bucket": bucket, "prefix": "lake/", "exact": False, "origin": "w-0"}).encode()
    return WebHdfsClient(worker.webhdfs_url).request(method, f"{path}?{query}", body=body, headers=headers)


def forgeries(token: str) -> dict[str, dict[str, str]]:
    return {
        "none": {},
        "wrong": {"Authorization": "Bearer not-the-secret"},
        "one byte more": {"Authorization": f"Bearer {token}x"},
        "one byte less": {"Authorization": f"Bearer {token[:-1]}"},
        "no scheme": {"Authorization": token},
        "another scheme": {"Authorization": f"Basic {token}"},
        "another header": {"X-Lakecache-Secret": token, REPLICA: token},
    }


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_every_peer_route_refuses_a_request_without_the_cluster_secret(
    worker: CacheProcess, peer_bucket: str, method: str, path: str
) -> None:
    for name, headers in forgeries(worker.token).items():
        reply = _request(worker, peer_bucket, method, path, headers)
        assert reply.status == 401, (name, reply.body)
        if method != "HEAD":
            assert reply.json()["error"]["code"] == "Unauthorized", name
            assert worker.token.encode() not in reply.body
    assert pages_of(worker) == 0  # no refused PUT cached anything


@pytest.mark.parametrize(
    "key", ["lake/../outside/secret", "../lake/x", "/lake/x", "lake//x", "lake/./x", "lake/x/", "lake", "outside/x"]
)
@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_a_peer_page_request_outside_every_mount_is_refused_with_the_secret(
    worker: CacheProcess, peer_bucket: str, method: str, key: str
) -> None:
    secret = {"Authorization": f"Bearer {worker.token}"}
    reply = _request(worker, peer_bucket, method, "/cluster/v1/pages", secret, key=key)
    assert reply.status == 403, reply.body
    assert reply.json()["error"]["code"] == "AccessDenied"
    assert pages_of(worker) == 0


@pytest.mark.parametrize("mark", [REPLICA, FORWARDED])
def test_a_relay_mark_without_the_cluster_secret_is_refused(worker: CacheProcess, mark: str) -> None:
    hdfs = WebHdfsClient(worker.webhdfs_url)
    for forged in ("guess", worker.token + "x", f"Bearer {worker.token}"):
        reply = hdfs.request("PUT", "/webhdfs/v1/lake/forged?op=MKDIRS&user.name=etl", headers={mark: forged})
        assert reply.status == 403 and reply.exception == "AccessControlException", reply.body
    assert hdfs.status("/lake/forged").status == 404
