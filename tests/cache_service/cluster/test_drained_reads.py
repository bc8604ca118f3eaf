"""What a drained worker serves while it still runs: the soak (``bench/reliability/soak.py``) read an object's
previous body through a worker that had left the ring by a drain, after the object was written through another."""

from __future__ import annotations

from typing import TYPE_CHECKING

from infra.cache_process import CacheProcess
from infra.cache_ring import cluster_report, wait_for_ring
from infra.s3_emulator import s3_client as emulator_client
from tests.support.cachectl import cachectl

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def test_a_drained_worker_still_running_reads_what_another_worker_wrote_after_the_drain(
    workers: list[CacheProcess], bucket: str, s3_client: S3Client
) -> None:
    writer, leaving = workers[0], workers[2]
    through_writer, through_leaving = emulator_client(writer.s3_url), emulator_client(leaving.s3_url)
    through_writer.put_object(Bucket=bucket, Key="lake/k.bin", Body=b"first body")
    assert through_leaving.get_object(Bucket=bucket, Key="lake/k.bin")["Body"].read() == b"first body"
    run = cachectl(
        "drain", cluster_report(leaving)["worker"], "--wait", endpoint=writer.webhdfs_url, token=writer.token
    )
    assert run.code == 0, run.stderr
    wait_for_ring(workers[:2], 2)

    through_writer.put_object(Bucket=bucket, Key="lake/k.bin", Body=b"second body")

    assert through_leaving.get_object(Bucket=bucket, Key="lake/k.bin")["Body"].read() == b"second body"
