"""Malformed WebHDFS requests get a 4xx RemoteException naming the problem, change nothing, and the server stays up."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from infra.cache_process import CacheProcess
from tests.support.caches import warehouse_cache
from tests.support.webhdfs import WebHdfsClient


@pytest.fixture(scope="module")
def cache(s3_emulator, tmp_path_factory) -> Iterator[CacheProcess]:
    objects = {"warehouse/data.bin": b"0123456789", "outside/secret": b"classified-bytes"}
    with warehouse_cache(s3_emulator, tmp_path_factory.mktemp("bad-input"), objects) as cache:
        yield cache


@pytest.fixture
def hdfs(cache: CacheProcess) -> WebHdfsClient:
    return WebHdfsClient(cache.webhdfs_url)


@pytest.fixture(autouse=True)
def server_stays_up(hdfs: WebHdfsClient) -> Iterator[None]:
    yield
    assert hdfs.request("GET", "/healthz").status == 200


TRAVERSALS = [
    "/warehouse/../outside/secret",
    "/warehouse/%2e%2e/outside/secret",
    "/warehouse/%2E%2E/outside/secret",
    "/warehouse/.%2e/outside/secret",
    "/warehouse/..%2Foutside/secret",
    "/warehouse%2F..%2Foutside/secret",
    "/warehouse/./data.bin",
    "/warehouse/data.bin%00.txt",
    "/warehouse/a%0Ab",
]


@pytest.mark.parametrize("raw_path", TRAVERSALS)
def test_traversal_is_refused_not_resolved(hdfs: WebHdfsClient, raw_path: str) -> None:
    reply = hdfs.request("GET", f"/webhdfs/v1{raw_path}?op=OPEN&user.name=x")
    assert reply.status == 400, reply.body
    assert reply.exception == "IllegalArgumentException"
    assert b"classified-bytes" not in reply.body


@pytest.mark.parametrize("raw_path", TRAVERSALS)
def test_traversal_cannot_create_anything(hdfs: WebHdfsClient, cache: CacheProcess, s3_client, raw_path: str) -> None:
    reply = hdfs.request("PUT", f"/webhdfs/v1{raw_path}?op=CREATE&data=true&overwrite=true", body=b"pwned")
    assert reply.status == 400
    assert s3_client.get_object(Bucket=cache.bucket, Key="outside/secret")["Body"].read() == b"classified-bytes"
    keys = {o["Key"] for o in s3_client.list_objects_v2(Bucket=cache.bucket)["Contents"]}
    assert keys == {"warehouse/data.bin", "outside/secret"}


def test_unknown_endpoints_get_a_remote_exception(hdfs: WebHdfsClient) -> None:
    reply = hdfs.request("GET", "/nothing/here")
    assert reply.status == 404 and reply.exception == "FileNotFoundException"


def test_paths_outside_every_mount_are_not_found(hdfs: WebHdfsClient) -> None:
    for op, method in (("GETFILESTATUS", "GET"), ("MKDIRS", "PUT"), ("CREATE", "PUT")):
        reply = hdfs.call(method, "/elsewhere/x", op)
        assert reply.status == 404 and reply.exception == "FileNotFoundException", op


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"offset": "-1"}, "offset"),
        ({"offset": "abc"}, "offset"),
        ({"length": "-5"}, "length"),
        ({"length": "1e3"}, "length"),
        ({"buffersize": "x"}, "buffersize"),
    ],
)
def test_bad_numbers_name_the_parameter(hdfs: WebHdfsClient, params: dict[str, str], name: str) -> None:
    reply = hdfs.read("/warehouse/data.bin", **params)
    assert reply.status == 400 and reply.exception == "IllegalArgumentException"
    assert f'"{name}"' in reply.json()["RemoteException"]["message"]


def test_offset_past_the_end_is_refused(hdfs: WebHdfsClient) -> None:
    reply = hdfs.read("/warehouse/data.bin", offset=11)
    assert reply.status == 400 and "out of the range" in reply.json()["RemoteException"]["message"]


@pytest.mark.parametrize(("op", "method", "param"), [("DELETE", "DELETE", "recursive"), ("CREATE", "PUT", "overwrite")])
def test_bad_booleans_name_the_parameter(hdfs: WebHdfsClient, op: str, method: str, param: str) -> None:
    reply = hdfs.call(method, "/warehouse/data.bin", op, **{param: "yes"})
    assert reply.status == 400 and f'"{param}"' in reply.json()["RemoteException"]["message"]


def test_rename_needs_an_absolute_destination(hdfs: WebHdfsClient) -> None:
    for params in ({}, {"destination": "relative/x"}, {"destination": "/warehouse/../outside/x"}):
        reply = hdfs.call("PUT", "/warehouse/data.bin", "RENAME", **params)
        assert reply.status == 400 and reply.exception == "IllegalArgumentException", params
    assert hdfs.status("/warehouse/data.bin").status == 200


def test_bad_permission_is_refused(hdfs: WebHdfsClient) -> None:
    reply = hdfs.call("PUT", "/warehouse/d", "MKDIRS", permission="999")
    assert reply.status == 400 and '"permission"' in reply.json()["RemoteException"]["message"]


def _raw_exchange(cache: CacheProcess, payload: bytes) -> tuple[int, bytes]:
    with socket.create_connection((cache.host, cache.webhdfs_port), timeout=10) as sock:
        sock.sendall(payload)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.parametrize(
    "payload",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /webhdfs/v1/" + b"a" * 20000 + b"?op=OPEN HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /webhdfs/v1/warehouse?op=LISTSTATUS HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,
    ],
    ids=["garbage-line", "oversized-line", "oversized-header", "tls-hello"],
)
def test_unparsable_requests_get_a_remote_exception(cache: CacheProcess, payload: bytes) -> None:
    status, body = _raw_exchange(cache, payload)
    assert 400 <= status < 500
    error = json.loads(body)["RemoteException"]
    assert error["exception"] == "IllegalArgumentException" and error["message"].startswith("Bad HTTP request")


def test_client_disconnect_mid_stream_costs_nothing(cache: CacheProcess, s3_client, hdfs: WebHdfsClient) -> None:
    s3_client.put_object(Bucket=cache.bucket, Key="warehouse/big.bin", Body=b"x" * (8 * 1024**2))
    for _ in range(5):
        with socket.create_connection((cache.host, cache.webhdfs_port), timeout=10) as sock:
            sock.sendall(b"GET /webhdfs/v1/warehouse/big.bin?op=OPEN HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(1024).startswith(b"HTTP/1.1 200")
    assert hdfs.read("/warehouse/big.bin", offset=8 * 1024**2 - 3).body == b"xxx"
