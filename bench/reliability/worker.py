"""A throwaway worker (or cluster) for the live campaigns: its own S3 emulator (or a given one), a bucket with a small
data set under a mount, and cache workers with small tiers and an admin token (the cluster's secret too). Everything
goes at exit."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from bench.cache_cluster import QUICK_MEMBERSHIP, cache_workers
from infra.cache_process import CacheProcess
from infra.s3_emulator import S3Emulator

MOUNT = "/warehouse"
DATA_SET = {f"warehouse/events/dt=2026-12-0{day}/part-0.bin": bytes([day]) * (5000 * day) for day in range(1, 4)}
"""Three small files in two directory levels: enough for stat, ls, load, pin, free and purge to find something, and
for a cluster's blocks of 4 KiB to put each on several owners."""


CLUSTER = {"cluster": {**QUICK_MEMBERSHIP, "block_size": "4KiB"}, "store": {"page_size": "4KiB"}}
"""A cluster's settings: blocks of the smallest page, so that each file of ``DATA_SET`` spans several owners."""


@dataclass(frozen=True)
class ThrowawayWorker:
    """The first worker (``webhdfs_url``, ``s3_url``, ``token``), all of them (``workers``: the first alone unless a
    cluster), and the bucket their mount ``MOUNT`` is on."""

    cache: CacheProcess
    bucket: str
    workers: tuple[CacheProcess, ...]


@contextmanager
def throwaway_worker(work: Path, s3: S3Emulator | None = None, *, workers: int = 1) -> Iterator[ThrowawayWorker]:
    """``workers`` started workers under ``work`` (a cluster if more than one) mounting ``MOUNT`` on a new bucket
    holding ``DATA_SET``; on ``s3`` if given, else on an emulator of its own. Stopped (and the bucket emptied) at
    exit."""
    with ExitStack() as stack:
        if s3 is None:
            s3 = stack.enter_context(S3Emulator(work / "s3"))
        client = s3.client()
        bucket = f"fuzz-{uuid.uuid4().hex[:12]}"
        client.create_bucket(Bucket=bucket)
        stack.callback(_remove_bucket, client, bucket)
        for key, body in DATA_SET.items():
            client.put_object(Bucket=bucket, Key=key, Body=body)
        started, _ = stack.enter_context(
            cache_workers(
                work,
                workers,
                s3_endpoint=s3.endpoint_url,
                mounts={MOUNT: f"s3://{bucket}/warehouse"},
                overrides=CLUSTER if workers > 1 else None,
                memory_capacity="16MiB",
                disk_capacity="64MiB",
            )
        )
        yield ThrowawayWorker(started[0], bucket, tuple(started))


def _remove_bucket(client: Any, bucket: str) -> None:
    # The emulator may trip over a key a campaign made; its data goes when it stops.
    with contextlib.suppress(ClientError):
        _empty_and_delete(client, bucket)


def _empty_and_delete(client: Any, bucket: str) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    client.delete_bucket(Bucket=bucket)
