"""Escapes the plain traversals of ``test_bad_input.py`` do not try: double encoding, backslashes, a doubled slash,
and ``..`` in the paths an op takes as parameters (a RENAME's destination, a CONCAT's sources). Each is refused, or
names a path of its own inside the mount; nothing outside it is read or written."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.cache_process import CacheProcess
from tests.support.caches import warehouse_cache
from tests.support.webhdfs import WebHdfsClient

SECRET = b"classified-bytes"


@pytest.fixture(scope="module")
def cache(s3_emulator, tmp_path_factory) -> Iterator[CacheProcess]:
    objects = {"warehouse/data.bin": b"0123456789", "outside/secret": SECRET}
    with warehouse_cache(s3_emulator, tmp_path_factory.mktemp("escapes"), objects) as cache:
        yield cache


@pytest.fixture
def hdfs(cache: CacheProcess) -> WebHdfsClient:
    return WebHdfsClient(cache.webhdfs_url)


@pytest.fixture(autouse=True)
def outside_untouched(cache: CacheProcess, s3_client) -> Iterator[None]:
    yield
    bucket = str(vars(cache)["bucket"])  # set by warehouse_cache
    assert s3_client.get_object(Bucket=bucket, Key="outside/secret")["Body"].read() == SECRET
    keys = {o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert {k for k in keys if not k.startswith("warehouse/")} == {"outside/secret"}


CONFINED = [
    "/warehouse/%252e%252e/outside/secret",
    "/warehouse/%252E%252E%252Foutside%252Fsecret",
    "/warehouse/..%5Coutside%5Csecret",
    "/warehouse/%5C..%5C..%5Coutside%5Csecret",
    "//outside/secret",
    "/warehouse//../outside/secret",
]


@pytest.mark.parametrize("raw_path", CONFINED)
def test_escapes_once_decoded_read_nothing_outside_the_mount(hdfs: WebHdfsClient, raw_path: str) -> None:
    reply = hdfs.request("GET", f"/webhdfs/v1{raw_path}?op=OPEN&user.name=x")
    assert reply.status in (400, 404), reply.body
    assert reply.exception in ("IllegalArgumentException", "FileNotFoundException")
    assert SECRET not in reply.body


@pytest.mark.parametrize("raw_path", CONFINED)
def test_escapes_once_decoded_write_inside_the_mount_or_nowhere(hdfs: WebHdfsClient, raw_path: str) -> None:
    reply = hdfs.request("PUT", f"/webhdfs/v1{raw_path}?op=CREATE&data=true&overwrite=true&user.name=x", b"pwned")
    assert reply.status in (201, 400, 404), reply.body  # the fixture checks where anything landed


@pytest.mark.parametrize("destination", ["/warehouse/../outside/secret", "/warehouse/./x", "warehouse/x", "/a\x00b"])
def test_a_rename_destination_that_could_escape_is_refused(hdfs: WebHdfsClient, destination: str) -> None:
    reply = hdfs.rename("/warehouse/data.bin", destination)
    assert reply.status == 400 and reply.exception == "IllegalArgumentException", reply.body
    assert hdfs.read("/warehouse/data.bin").body == b"0123456789"


@pytest.mark.parametrize("source", ["/warehouse/../outside/secret", "/outside/secret", "/warehouse/%2e%2e/x"])
def test_concat_sources_outside_the_targets_directory_are_refused(hdfs: WebHdfsClient, source: str) -> None:
    reply = hdfs.call("POST", "/warehouse/data.bin", "CONCAT", sources=source)
    assert 400 <= reply.status < 500, reply.body
    assert hdfs.read("/warehouse/data.bin").body == b"0123456789"
