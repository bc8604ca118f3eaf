"""The Spark scan job's data set: a few days of game telemetry as Hive-partitioned Snappy Parquet in S3.

For the Spark job tests (``tests/spark_jobs``) and the Spark scan benchmark (``bench/spark_scan.py``), which run
``spark_jobs/scan_events.py`` over it. ``game_event_files`` makes the tables, ``upload_event_files`` writes them.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import BotoCoreError, ClientError

from infra.cache_process import REPO_ROOT

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class UploadError(RuntimeError):
    """S3 refused a file of the data set or did not answer; the message names the object."""


EVENTS_PREFIX = "warehouse/events"
SCAN_JOB = REPO_ROOT / "spark_jobs" / "scan_events.py"

EVENT_TYPES = ("session_start", "match_start", "match_end", "level_up", "ad_view", "purchase", "session_end")
EVENT_WEIGHTS = (0.18, 0.22, 0.21, 0.07, 0.17, 0.03, 0.12)
PLATFORMS = ("android", "ios", "pc", "console")
PLATFORM_WEIGHTS = (0.45, 0.30, 0.15, 0.10)
COUNTRIES = ("US", "BR", "DE", "JP", "KR", "FR", "GB", "IN", "MX", "ID")
PRICES = (0.99, 1.99, 4.99, 9.99, 19.99, 49.99, 99.99)
PRICE_WEIGHTS = (0.35, 0.25, 0.18, 0.12, 0.06, 0.03, 0.01)
# s > 1 gives the long tail of game telemetry: a few whales and grinders, many players seen once or twice.
ZIPF_EXPONENT = 1.1

EVENT_SCHEMA = pa.schema(
    [
        ("event_id", pa.int64()),
        ("player_id", pa.int64()),
        ("event_type", pa.string()),
        ("platform", pa.string()),
        ("country", pa.string()),
        ("amount", pa.float64()),
        ("ts", pa.timestamp("ms", tz="UTC")),
    ]
)


def game_event_files(
    events: int,
    *,
    days: int = 3,
    files_per_day: int = 4,
    first_day: date = date(2026, 11, 1),
    seed: int = 2026,
) -> Iterator[tuple[str, pa.Table]]:
    """Game telemetry as Hive-partitioned files: yields ``("dt=YYYY-MM-DD/part-NNNNN.parquet", table)`` pairs.

    ``events`` rows in all, spread evenly over ``days`` partitions of ``files_per_day`` files each, with the columns
    of ``EVENT_SCHEMA`` (``dt`` lives in the path only, as Spark writes it). Player activity follows a Zipf law; each
    player keeps one platform and country; only purchases carry an amount. The same arguments give the same data.
    """
    if events < 0 or days < 1 or files_per_day < 1:
        raise ValueError("events must be >= 0, days and files_per_day >= 1")
    rng = np.random.default_rng(seed)
    players = max(100, events // 20)
    activity = 1.0 / np.arange(1, players + 1) ** ZIPF_EXPONENT
    activity /= activity.sum()
    # Rank 1 should not be player 1: ids are a shuffled range, so the busiest players are scattered.
    player_ids = rng.permutation(players).astype(np.int64) + 100_000
    player_platform = rng.choice(len(PLATFORMS), size=players, p=PLATFORM_WEIGHTS)
    player_country = rng.integers(0, len(COUNTRIES), size=players)
    platforms, countries, event_types = (np.array(v, dtype=object) for v in (PLATFORMS, COUNTRIES, EVENT_TYPES))
    purchase = EVENT_TYPES.index("purchase")

    files = days * files_per_day
    next_id = 0
    for index in range(files):
        rows = events // files + (1 if index < events % files else 0)
        day = first_day + timedelta(days=index // files_per_day)
        rank = rng.choice(players, size=rows, p=activity)
        kind = rng.choice(len(EVENT_TYPES), size=rows, p=EVENT_WEIGHTS)
        price = np.asarray(PRICES)[rng.choice(len(PRICES), size=rows, p=PRICE_WEIGHTS)]
        midnight_ms = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
        ts = np.sort(rng.integers(0, 86_400_000, size=rows)) + midnight_ms
        table = pa.table(
            {
                "event_id": np.arange(next_id, next_id + rows, dtype=np.int64),
                "player_id": player_ids[rank],
                "event_type": event_types[kind],
                "platform": platforms[player_platform[rank]],
                "country": countries[player_country[rank]],
                "amount": np.where(kind == purchase, price, 0.0),
                "ts": ts,
            },
            schema=EVENT_SCHEMA,
        )
        next_id += rows
        yield f"dt={day.isoformat()}/part-{index % files_per_day:05d}.parquet", table


@dataclass(frozen=True)
class UploadedTable:
    """What ``upload_event_files`` put in S3."""

    uri: str
    files: int
    rows: int
    bytes: int


def upload_event_files(
    client: S3Client, bucket: str, prefix: str, files: Iterable[tuple[str, pa.Table]]
) -> UploadedTable:
    """Write each ``(relative path, table)`` as Snappy Parquet to ``s3://bucket/prefix/<relative path>``.

    Raises ``UploadError`` if S3 refuses a file or does not answer.
    """
    count = rows = size = 0
    for relative, table in files:
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="snappy")
        body = buffer.getvalue()
        key = f"{prefix.strip('/')}/{relative}"
        try:
            client.put_object(Bucket=bucket, Key=key, Body=body)
        except (BotoCoreError, ClientError) as exc:
            raise UploadError(f"cannot write s3://{bucket}/{key}: {exc}") from exc
        count, rows, size = count + 1, rows + table.num_rows, size + len(body)
    return UploadedTable(uri=f"s3://{bucket}/{prefix.strip('/')}/", files=count, rows=rows, bytes=size)
