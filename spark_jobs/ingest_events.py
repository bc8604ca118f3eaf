"""Ingest a day of raw telemetry: clean, deduplicate and type the JSON lines into Parquet; quarantine what is broken.

Submit it with ``spark-submit``::

    spark-submit --master local[2] spark_jobs/ingest_events.py \\
        --raw webhdfs://127.0.0.1:9870/raw/events/dt=2026-11-23 \\
        --output webhdfs://127.0.0.1:9870/warehouse/events_clean \\
        --quarantine webhdfs://127.0.0.1:9870/warehouse/events_quarantine \\
        --date 2026-11-23 --summary-json ingest.json

Every raw line ends up in exactly one place: the clean table (one row per ``event_id``), the duplicates count (an
``event_id`` seen before in the same day), or the quarantine table with the reason it was refused (the reasons are
defined in ``spark_jobs.telemetry``). A broken line never fails the job and is never dropped unaccounted: the
summary's ``raw_lines`` equals ``clean + duplicates + quarantined``.

Both tables are partitioned by ``dt`` (the run's ``--date``) and written by dynamic partition overwrite, so rerunning
a day replaces that day and nothing else.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # spark-submit runs this file as a script: make the repository root importable for spark_jobs.telemetry.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F  # noqa: N812 - the name every PySpark reader expects
from pyspark.sql import types as T  # noqa: N812

from spark_jobs.driver import job_parser, parse_job_args, run_job
from spark_jobs.telemetry import (
    BAD_TYPE,
    CLOCK_SKEW,
    EVENT_TYPES,
    INVALID_VALUE,
    MALFORMED,
    MISSING_REQUIRED,
    NUMERIC_FIELDS,
    PLATFORMS,
    RAW_FIELDS,
    REQUIRED_BY_TYPE,
    REQUIRED_FIELDS,
    day_window,
    replace_partitions,
)

CORRUPT = "_corrupt_record"
# Parsed with every field as a string: Spark keeps a number's or an object's JSON text, so a wrong type stays
# visible (and becomes bad_type below) instead of nulling the whole record as a typed schema would.
RAW_SCHEMA = T.StructType(
    [T.StructField(name, T.StringType()) for name in RAW_FIELDS] + [T.StructField(CORRUPT, T.StringType())]
)
# ISO-8601 with a time and a zone: Spark's cast would also take a bare date or a local time and guess the rest.
ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$"
COUNTRY_CODE = r"^[A-Z]{2}$"
CLEAN_COLUMNS = RAW_FIELDS  # the clean table keeps every raw field, typed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; every table path must be a ``webhdfs://`` URI (the job reaches storage through the cache)."""
    parser = job_parser(__doc__)
    parser.add_argument("--raw", required=True, help="the day's raw JSON lines, e.g. webhdfs://.../raw/events/dt=D")
    parser.add_argument("--output", required=True, help="the clean events table, e.g. webhdfs://.../events_clean")
    parser.add_argument("--quarantine", required=True, help="the quarantine table")
    parser.add_argument("--date", type=date.fromisoformat, required=True, help="the day ingested, YYYY-MM-DD")
    return parse_job_args(parser, argv, webhdfs=("--raw", "--output", "--quarantine"))


def _present(field: str) -> Column:
    value = F.col(f"j.{field}")
    return value.isNotNull() & (F.trim(value) != "")


def classify(lines: DataFrame, day: date) -> DataFrame:
    """Every line of ``lines`` (a ``value`` column) with its typed fields and ``reason``: null for a good event.

    A line gets the reason of the first rule it breaks, in this order: malformed, missing_required:<field>,
    bad_type:<field>, invalid_value:<field>, clock_skew.
    """
    parsed = lines.withColumn(
        "j", F.from_json("value", RAW_SCHEMA, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT})
    )
    typed = {field: F.expr(f"try_cast(j.{field} AS {sql_type})") for field, sql_type in NUMERIC_FIELDS.items()}
    typed["ts"] = F.when(F.col("j.ts").rlike(ISO_TIMESTAMP), F.expr("try_cast(j.ts AS timestamp)"))
    start, end = day_window(day)
    rules: list[Column] = [F.when(F.col("j").isNull() | F.col(f"j.{CORRUPT}").isNotNull(), F.lit(MALFORMED))]
    rules += [F.when(~_present(f), F.lit(f"{MISSING_REQUIRED}:{f}")) for f in REQUIRED_FIELDS]
    rules += [
        F.when((F.col("j.event_type") == kind) & ~_present(f), F.lit(f"{MISSING_REQUIRED}:{f}"))
        for kind, fields in REQUIRED_BY_TYPE.items()
        for f in fields
    ]
    rules += [F.when(_present(f) & typed[f].isNull(), F.lit(f"{BAD_TYPE}:{f}")) for f in (*NUMERIC_FIELDS, "ts")]
    amount, duration = typed["amount"], typed["duration_s"]
    rules += [
        F.when(~F.col("j.event_type").isin(*EVENT_TYPES), F.lit(f"{INVALID_VALUE}:event_type")),
        F.when(~F.col("j.platform").isin(*PLATFORMS), F.lit(f"{INVALID_VALUE}:platform")),
        F.when(~F.col("j.country").rlike(COUNTRY_CODE), F.lit(f"{INVALID_VALUE}:country")),
        F.when((amount < 0) | F.isnan(amount) | (F.abs(amount) == float("inf")), F.lit(f"{INVALID_VALUE}:amount")),
        F.when(duration < 0, F.lit(f"{INVALID_VALUE}:duration_s")),
        F.when((typed["ts"] < F.lit(start)) | (typed["ts"] >= F.lit(end)), F.lit(CLOCK_SKEW)),
    ]
    event_type = F.col("j.event_type")
    return parsed.select(
        F.col("value").alias("raw"),
        "source_file",
        F.coalesce(*rules).alias("reason"),
        F.col("j.event_id").alias("event_id"),
        typed["player_id"].alias("player_id"),
        F.col("j.session_id").alias("session_id"),
        event_type.alias("event_type"),
        F.col("j.platform").alias("platform"),
        F.col("j.country").alias("country"),
        F.col("j.client_version").alias("client_version"),
        typed["ts"].alias("ts"),
        # Only purchases carry money and only session ends a length; a stray value elsewhere means nothing.
        F.when(event_type == "purchase", amount).alias("amount"),
        F.when(event_type == "session_end", duration).alias("duration_s"),
    )


def deduplicate(good: DataFrame) -> DataFrame:
    """One row per ``event_id``: the earliest by ``ts``, ties broken by the raw line, so a rerun keeps the same row."""
    first = Window.partitionBy("event_id").orderBy("ts", "raw")
    return good.withColumn("_n", F.row_number().over(first)).where(F.col("_n") == 1).drop("_n")


def ingest_events(spark: SparkSession, raw: str, output: str, quarantine: str, day: date) -> dict[str, Any]:
    """Ingest the raw lines under ``raw`` as day ``day``; returns the summary (without ``seconds``)."""
    lines = spark.read.text(raw).select("value", F.col("_metadata.file_path").alias("source_file"))
    # Parsed once, used for the counts and both writes; spills to disk rather than reparse a day of JSON.
    classified = classify(lines, day).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counts = (
            classified.groupBy("reason")
            .agg(F.count(F.lit(1)).alias("lines"), F.count_distinct("event_id").alias("events"))
            .collect()
        )
        by_reason = {r["reason"]: int(r["lines"]) for r in counts if r["reason"] is not None}
        good = next((r for r in counts if r["reason"] is None), None)
        good_lines, clean = (int(good["lines"]), int(good["events"])) if good else (0, 0)
        dt = F.lit(day).cast("date").alias("dt")

        events = deduplicate(classified.where(F.col("reason").isNull()))
        events = events.select(*CLEAN_COLUMNS, dt).sortWithinPartitions("ts")
        replace_partitions(events, output, "dt", {day: clean})

        rejects = classified.where(F.col("reason").isNotNull()).select("raw", "reason", "source_file", dt)
        replace_partitions(rejects, quarantine, "dt", {day: sum(by_reason.values())})
    finally:
        classified.unpersist()
    quarantined = sum(by_reason.values())
    return {
        "date": day.isoformat(),
        "raw": raw,
        "output": output,
        "quarantine": quarantine,
        "raw_lines": good_lines + quarantined,
        "clean": clean,
        "duplicates": good_lines - clean,
        "quarantined": quarantined,
        "quarantined_by_reason": dict(sorted(by_reason.items())),
    }


def format_report(summary: dict[str, Any]) -> str:
    """A few lines for the log: the reconciliation, then one line per quarantine reason."""
    lines = [
        f"ingested {summary['raw_lines']:,} raw lines for {summary['date']} in {summary['seconds']:.1f}s: "
        f"{summary['clean']:,} clean, {summary['duplicates']:,} duplicates, {summary['quarantined']:,} quarantined"
    ]
    lines += [f"  quarantined {count:>9,}  {reason}" for reason, count in summary["quarantined_by_reason"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the ingestion; exit 0 on success (Spark's own errors, such as a missing raw path, fail the submission)."""
    args = parse_args(argv)
    return run_job(
        lambda spark: ingest_events(spark, args.raw, args.output, args.quarantine, args.date),
        app_name="lakecache-ingest-events",
        args=args,
        report=format_report,
    )


if __name__ == "__main__":
    sys.exit(main())
