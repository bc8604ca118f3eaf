"""The game-telemetry pipeline's shared ground: the raw event contract, and the rules every job writes tables by.

The contract is what a raw JSON line must hold to become a clean event. The generator (``generator.py``) writes lines
that follow it, except for the defects it plants on purpose; ``ingest_events.py`` enforces it and sends every line
that breaks it to quarantine with one of the reasons below.

This module imports no Spark at load time, so the generator's command line starts without a JVM-sized import; the
helpers that drive Spark import it when called.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

EVENT_TYPES = ("session_start", "match_start", "match_end", "level_up", "ad_view", "purchase", "session_end")
PLATFORMS = ("android", "ios", "pc", "console")
COUNTRIES = ("US", "BR", "DE", "JP", "KR", "FR", "GB", "IN", "MX", "ID")

# Fields of the raw line, in the order the generator writes them. client_version is optional (old clients omit it).
RAW_FIELDS = (
    "event_id",
    "player_id",
    "session_id",
    "event_type",
    "platform",
    "country",
    "client_version",
    "ts",
    "amount",
    "duration_s",
)
REQUIRED_FIELDS = ("event_id", "player_id", "session_id", "event_type", "platform", "country", "ts")
# Fields an event of a given type cannot do without: a purchase with no amount is no revenue at all.
REQUIRED_BY_TYPE: Mapping[str, tuple[str, ...]] = {"purchase": ("amount",), "session_end": ("duration_s",)}
# Typed fields and what they must parse as; the others are free text.
NUMERIC_FIELDS: Mapping[str, str] = {"player_id": "bigint", "amount": "double", "duration_s": "int"}

# A device clock a little off is normal; beyond this margin around the day the timestamp cannot be trusted.
CLOCK_SKEW_GRACE = timedelta(hours=1)

# Quarantine reasons: exactly one per rejected line, the first rule the line breaks in this order.
MALFORMED = "malformed"  # not a JSON object (truncated, not JSON, an array, a blank line)
MISSING_REQUIRED = "missing_required"  # + ":<field>", absent or null
BAD_TYPE = "bad_type"  # + ":<field>", present but not of the field's type
INVALID_VALUE = "invalid_value"  # + ":<field>", of the right type but outside the field's domain
CLOCK_SKEW = "clock_skew"  # ts outside the day widened by CLOCK_SKEW_GRACE


def day_window(day: date) -> tuple[datetime, datetime]:
    """The accepted ``[start, end)`` of event timestamps for ``day`` (UTC): the day widened by the grace each side."""
    midnight = datetime.combine(day, time(), tzinfo=UTC)
    return midnight - CLOCK_SKEW_GRACE, midnight + timedelta(days=1) + CLOCK_SKEW_GRACE


def require_webhdfs(uri: str, option: str) -> str:
    """``uri`` without a trailing slash if it is a ``webhdfs://`` URI; raises ``ValueError`` naming ``option`` if not.

    The jobs reach storage through the cache only: a ``file://`` or ``s3a://`` path would bypass it (and its write
    semantics) without anyone noticing.
    """
    if not uri.startswith("webhdfs://"):
        raise ValueError(f"{option} must be a webhdfs:// URI, got {uri!r}")
    return uri.rstrip("/")


def replace_partitions(df: DataFrame, table: str, column: str, rows_by_partition: Mapping[date, int]) -> None:
    """Make partitions ``column=<value>`` of the Parquet ``table`` hold exactly ``df``'s rows, for every value given.

    ``rows_by_partition`` maps each partition value this run owns to the number of rows ``df`` has for it, as the
    caller already counted them. Partitions with rows are replaced by a dynamic partition overwrite (other partitions
    of the table are left alone, so a day can be rerun); partitions with none are deleted, because an overwrite that
    writes no row for a partition leaves its old files in place and a rerun would keep stale data. Rows of ``df``
    in partitions not given are not written: a job never touches a partition it does not own. Raises ``ValueError``
    if ``table`` is not a ``webhdfs://`` URI.
    """
    from pyspark.sql import functions as F  # noqa: N812 - the name every PySpark reader expects

    table = require_webhdfs(table, "table")
    spark = df.sparkSession
    owned = [value for value, rows in rows_by_partition.items() if rows > 0]
    if owned:
        # The write option, not the session setting: a static overwrite elsewhere in the job stays static.
        writer = df.where(F.col(column).isin(owned)).write.option("partitionOverwriteMode", "dynamic")
        writer.mode("overwrite").partitionBy(column).parquet(table)
    jvm: Any = spark._jvm  # py4j: no Python API deletes a path through Hadoop's FileSystem
    conf = spark._jsc.hadoopConfiguration()
    for value, rows in rows_by_partition.items():
        if rows == 0:
            path = jvm.org.apache.hadoop.fs.Path(f"{table}/{column}={value.isoformat()}")
            path.getFileSystem(conf).delete(path, True)
    # A dynamic overwrite commits through a staging directory and leaves no _SUCCESS at the table's root; write
    # it there, after every partition is in place, so readers and the metastore sync see the table as published.
    marker = jvm.org.apache.hadoop.fs.Path(f"{table}/_SUCCESS")
    marker.getFileSystem(conf).create(marker, True).close()


def job_session(app_name: str, shuffle_partitions: int) -> SparkSession:
    """The Spark session every telemetry job runs in: UTC, modern Parquet timestamps, no UI, quiet logs."""
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        # Day boundaries and ISO timestamps are UTC whatever the machine's zone.
        .config("spark.sql.session.timeZone", "UTC")
        # Spark's default INT96 timestamps are legacy; readers such as pyarrow, Athena and Glue prefer these.
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    return spark
