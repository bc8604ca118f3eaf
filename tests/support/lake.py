"""A lake for the Spark job tests: a bucket on the S3 emulator, a cache in front of it, and the bucket seen around it.

The jobs reach the bucket through the cache only (``Lake.uri``, ``Lake.submit``); the tests check what they wrote
as S3 holds it, with boto3 (``Lake.client``) and pyarrow (``Lake.table``, ``Lake.keys``, ``emulator_filesystem``).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from infra.cache_process import REPO_ROOT, CacheProcess
from infra.s3_emulator import EMULATOR_CREDENTIALS, S3Emulator
from infra.spark_submit import spark_submit_argv, spark_submit_env
from tests.support.buckets import remove_bucket, unique_bucket_name
from tests.support.caches import CacheFactory

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def emulator_filesystem(s3_emulator: S3Emulator) -> pafs.S3FileSystem:
    """pyarrow's S3 filesystem on the emulator: buckets as S3 holds them, no cache in between."""
    return pafs.S3FileSystem(
        endpoint_override=s3_emulator.endpoint_url,
        access_key=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        secret_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region="us-east-1",
        allow_bucket_creation=False,
    )


@dataclass
class Lake:
    """A bucket, the cache in front of it, and views of the bucket that bypass the cache."""

    bucket: str
    cache: CacheProcess
    client: S3Client
    s3: pafs.S3FileSystem
    work: Path

    def uri(self, path: str) -> str:
        """``path`` in the bucket as a job reaches it: a ``webhdfs://`` URI on the cache."""
        return f"{self.cache.webhdfs_uri}/{path}"

    def table(self, prefix: str, partition: str = "dt") -> pa.Table:
        """The Parquet table under ``prefix`` as S3 holds it, its Hive partition column ``partition`` as text."""
        partitioning = ds.partitioning(pa.schema([(partition, pa.string())]), flavor="hive")
        dataset = ds.dataset(f"{self.bucket}/{prefix}", filesystem=self.s3, format="parquet", partitioning=partitioning)
        return dataset.to_table()

    def keys(self, prefix: str) -> list[str]:
        """The objects under ``prefix`` as ``bucket/key`` paths, sorted."""
        selector = pafs.FileSelector(f"{self.bucket}/{prefix}", recursive=True, allow_not_found=True)
        return sorted(i.path for i in self.s3.get_file_info(selector) if i.type == pafs.FileType.File)

    def submit(self, job: Path, name: str, *args: str) -> dict[str, Any]:
        """``spark-submit`` PySpark script ``job`` with ``args``; returns the summary it writes as ``name``.

        The job gets ``--summary-json`` on top of ``args``; the test fails with Spark's output if the job does.
        """
        summary = self.work / f"{name}.json"
        done = subprocess.run(
            spark_submit_argv(job, *args, "--summary-json", str(summary)),
            cwd=REPO_ROOT,
            env=spark_submit_env(os.environ),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
        return json.loads(summary.read_text())


@contextmanager
def open_lake(
    s3_emulator: S3Emulator,
    root: Path,
    name: str,
    prefixes: Sequence[str],
    overrides: Mapping[str, Any] | None = None,
) -> Iterator[Lake]:
    """A new bucket named after ``name`` and a cache mounting each of ``prefixes`` at ``/<prefix>``.

    ``overrides`` go into the cache's config. The cache and the jobs' summaries live under ``root``; the cache stops
    and the bucket goes at exit.
    """
    client = s3_emulator.client()
    bucket = unique_bucket_name(name)
    client.create_bucket(Bucket=bucket)
    factory = CacheFactory(root / "caches", s3_emulator.endpoint_url)
    try:
        cache = factory({f"/{prefix}": f"s3://{bucket}/{prefix}" for prefix in prefixes}, overrides)
        work = root / "work"
        work.mkdir()
        yield Lake(bucket, cache, client, emulator_filesystem(s3_emulator), work)
    finally:
        factory.stop_all()
        remove_bucket(client, bucket)
