"""What the measured sections (``http_reads``, ``parquet_lookups``, ``spark_scan``) share around their measurements.

Each works in a folder of its own, emptied first, and returns a ``Section`` that ``python -m bench.run --only NAME``
runs again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.report import WORK_ROOT
from bench.section import Section

if TYPE_CHECKING:
    from infra.s3_emulator import S3Emulator


def fresh_work_dir(name: str, work_dir: Path | None = None) -> Path:
    """``work_dir``, or section ``name``'s folder under ``WORK_ROOT``, emptied of an earlier run and created."""
    work = (work_dir or WORK_ROOT / name).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return work


def measured_section(
    name: str, title: str, *, full: bool, markdown: str, results: dict[str, Any], targets: dict[str, Any]
) -> Section:
    """Section ``name``, whose command is the ``make bench`` run of it alone (with ``BENCH_FULL=1`` if ``full``)."""
    command = f"{'BENCH_FULL=1 ' if full else ''}python -m bench.run --only {name}"
    return Section(name, title, command, markdown, results, targets)


def upload_random(s3: S3Emulator, bucket: str, prefix: str, objects: int, object_bytes: int) -> dict[str, str]:
    """Write ``objects`` objects of ``object_bytes`` random bytes under ``prefix`` into the emulator's ``bucket``;
    returns each key's digest (BLAKE2b, hex)."""
    client = s3.client()
    digests = {}
    for index in range(objects):
        key = f"{prefix}/part-{index:04d}.bin"
        body = os.urandom(object_bytes)
        client.put_object(Bucket=bucket, Key=key, Body=body)
        digests[key] = hashlib.blake2b(body).hexdigest()
    return digests
