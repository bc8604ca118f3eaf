"""The everyday ``hdfs dfs`` commands, run by Hadoop's own FsShell (pyspark's jars) against a cache worker, with S3
agreeing: each exits 0 with the expected effect. One JVM runs a batch of commands (``fs_shell_batch``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from yarl import URL

from infra.cache_process import CacheProcess
from tests.support.hadoop_shell import fs_shell_batch

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def cache(cache_factory, bucket: str) -> Iterator[CacheProcess]:
    yield cache_factory({"/warehouse": f"s3://{bucket}/warehouse"})


def body(s3_client, bucket: str, key: str) -> bytes:
    return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()


def keys(s3_client, bucket: str, prefix: str) -> list[str]:
    """The files under ``prefix`` (directory markers aside)."""
    found = s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return [o["Key"] for o in found if not o["Key"].endswith("/")]


def test_everyday_commands_exit_0_with_their_effect(
    cache: CacheProcess, s3_client, bucket: str, tmp_path: Path
) -> None:
    url = URL(cache.webhdfs_url)
    root = f"webhdfs://{url.host}:{url.port}/warehouse/shell"
    (tmp_path / "a.txt").write_bytes(b"hello from hadoop\n")
    (tmp_path / "more.txt").write_bytes(b"and more\n")
    s3_client.put_object(Bucket=bucket, Key="warehouse/shell/old/gone.txt", Body=b"bye")
    commands = [
        ["-mkdir", "-p", f"{root}/sub"],
        ["-put", str(tmp_path / "a.txt"), f"{root}/a.txt"],
        ["-cat", f"{root}/a.txt"],
        ["-cp", f"{root}/a.txt", f"{root}/b.txt"],
        ["-mv", f"{root}/b.txt", f"{root}/sub/c.txt"],
        ["-ls", "-R", root],
        ["-du", "-s", root],
        ["-count", root],
        ["-df", root],
        ["-checksum", f"{root}/a.txt"],
        ["-stat", "%n %b %F", f"{root}/a.txt"],
        ["-touchz", f"{root}/empty"],
        ["-setrep", "2", f"{root}/a.txt"],
        ["-chmod", "640", f"{root}/a.txt"],
        ["-appendToFile", str(tmp_path / "more.txt"), f"{root}/a.txt"],
        ["-truncate", "5", f"{root}/sub/c.txt"],
        ["-get", f"{root}/a.txt", str(tmp_path / "got.txt")],
        ["-rm", f"{root}/empty"],
        ["-rm", "-r", f"{root}/old"],
        ["-cat", f"{root}/sub/c.txt"],
    ]
    results = fs_shell_batch(tmp_path / "conf", commands)
    for command, (code, _) in zip(commands, results, strict=True):
        assert code == 0, (command, results)
    out = {
        command[0] + (command[1] if command[0] == "-cat" else ""): text
        for command, (_, text) in zip(commands, results, strict=True)
    }
    assert out[f"-cat{root}/a.txt"] == "hello from hadoop"
    assert out[f"-cat{root}/sub/c.txt"] == "hello"
    assert f"{root}/sub/c.txt" in out["-ls"] and f"{root}/old/gone.txt" in out["-ls"]
    assert out["-du"].split()[0] == str(18 + 18 + 3)
    assert out["-count"].split()[:3] == ["3", "3", str(18 + 18 + 3)]  # directories (shell, sub, old), files, bytes
    assert "Filesystem" in out["-df"] and "Size" in out["-df"]
    assert "MD5-of-0MD5-of-512CRC32C" in out["-checksum"]
    assert out["-stat"] == "a.txt 18 regular file"
    assert (tmp_path / "got.txt").read_bytes() == b"hello from hadoop\nand more\n"
    assert body(s3_client, bucket, "warehouse/shell/a.txt") == b"hello from hadoop\nand more\n"
    assert body(s3_client, bucket, "warehouse/shell/sub/c.txt") == b"hello"
    assert sorted(keys(s3_client, bucket, "warehouse/shell/")) == ["warehouse/shell/a.txt", "warehouse/shell/sub/c.txt"]
