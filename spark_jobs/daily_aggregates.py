"""Build a day's aggregates from the clean events: active users, sessions, revenue, and D1/D7 retention cohorts.

Submit it with ``spark-submit``::

    spark-submit --master local[2] spark_jobs/daily_aggregates.py \\
        --events webhdfs://127.0.0.1:9870/warehouse/events_clean \\
        --output-root webhdfs://127.0.0.1:9870/warehouse/agg --date 2026-11-23 --summary-json agg.json

Four tables under ``--output-root``, each written by dynamic partition overwrite so a day can be rerun:

- ``daily_active_users`` (``dt``, ``platform``, ``dau``): distinct players per platform, and ``platform = 'all'``
  for the day (a player on two platforms counts once there);
- ``sessions_daily`` (``dt``, ``sessions``, ``sessions_ended``, ``p50/p90/p99_session_s``, ``avg_session_s``):
  lengths are the ``duration_s`` the client reports on ``session_end``, percentiles by ``percentile_approx``;
- ``revenue_daily`` (``dt``, ``platform``, ``country``, ``revenue``, ``purchases``, ``payers``);
- ``retention_cohorts`` (``cohort_dt``, ``day_n``, ``cohort_size``, ``retained``, ``rate``): a player's cohort is
  the first ``dt`` the player appears in the clean table; a cohort member is retained on day n if active on
  ``cohort_dt + n``. A run for day D completes the cohorts of D-1 (day 1) and D-7 (days 1 and 7) and rewrites
  those two partitions whole.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # spark-submit runs this file as a script: make the repository root importable for spark_jobs.telemetry.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F  # noqa: N812 - the name every PySpark reader expects

from spark_jobs.driver import job_parser, parse_job_args, run_job
from spark_jobs.telemetry import replace_partitions

RETENTION_DAYS = (1, 7)
ALL_PLATFORMS = "all"
PERCENTILES = (0.5, 0.9, 0.99)
# percentile_approx's relative error is 1/accuracy: with 10,000 it is exact for days of up to 10,000 sessions.
PERCENTILE_ACCURACY = 10_000
TABLES = ("daily_active_users", "sessions_daily", "revenue_daily", "retention_cohorts")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; ``--events`` and ``--output-root`` must be ``webhdfs://`` URIs (storage through the cache)."""
    parser = job_parser(__doc__)
    parser.add_argument("--events", required=True, help="the clean events table, e.g. webhdfs://.../events_clean")
    parser.add_argument("--output-root", required=True, help="the aggregates' parent, e.g. webhdfs://.../agg")
    parser.add_argument("--date", type=date.fromisoformat, required=True, help="the day aggregated, YYYY-MM-DD")
    return parse_job_args(parser, argv, webhdfs=("--events", "--output-root"))


def daily_active_users(day_events: DataFrame) -> DataFrame:
    """Distinct players per platform, plus the day's total as platform ``'all'``."""
    by_platform = day_events.groupingSets([["platform"], []], "platform").agg(
        F.count_distinct("player_id").alias("dau"), F.grouping_id().alias("level")
    )
    # grouping_id() is 1 on the total's row, whose platform is null.
    platform = F.when(F.col("level") == 0, F.col("platform")).otherwise(F.lit(ALL_PLATFORMS))
    return by_platform.select(platform.alias("platform"), "dau")


def sessions_daily(day_events: DataFrame) -> DataFrame:
    """One row: sessions started or continued that day, sessions ended, and the ended sessions' length percentiles."""
    length = F.when(F.col("event_type") == "session_end", F.col("duration_s"))
    quantiles = F.percentile_approx(length, list(PERCENTILES), PERCENTILE_ACCURACY)
    return day_events.agg(
        F.count_distinct("session_id").alias("sessions"),
        F.count(length).alias("sessions_ended"),
        quantiles.alias("q"),
        F.round(F.avg(length), 1).alias("avg_session_s"),
    ).select(
        "sessions",
        "sessions_ended",
        *(F.col("q")[i].cast("int").alias(f"p{round(p * 100)}_session_s") for i, p in enumerate(PERCENTILES)),
        "avg_session_s",
    )


def revenue_daily(day_events: DataFrame) -> DataFrame:
    """Revenue (rounded to cents), purchases and paying players per platform and country."""
    return (
        day_events.where(F.col("event_type") == "purchase")
        .groupBy("platform", "country")
        .agg(
            F.round(F.sum("amount"), 2).alias("revenue"),
            F.count(F.lit(1)).alias("purchases"),
            F.count_distinct("player_id").alias("payers"),
        )
    )


def retention_cohorts(events: DataFrame, day: date) -> DataFrame:
    """The cohorts whose day 1 or day 7 is ``day``, with every day n already known for them (``cohort_dt + n <= day``).

    Only the history up to ``day`` counts: a rerun of an old day gives the answer it gave then.
    """
    history = events.where(F.col("dt") <= F.lit(day)).select("player_id", "dt")
    first_seen = history.groupBy("player_id").agg(F.min("dt").alias("cohort_dt"))
    cohort_days = sorted({day - timedelta(days=n) for n in RETENTION_DAYS})
    members = first_seen.where(F.col("cohort_dt").isin(cohort_days))
    wanted = [(c, n) for c in cohort_days for n in RETENTION_DAYS if c + timedelta(days=n) <= day]
    active_days = sorted({c + timedelta(days=n) for c, n in wanted})
    activity = history.where(F.col("dt").isin(active_days)).distinct()
    returns = (
        members.join(activity, "player_id")
        .select("cohort_dt", F.datediff("dt", "cohort_dt").alias("day_n"), "player_id")
        .where(F.col("day_n").isin(*RETENTION_DAYS))
        .groupBy("cohort_dt", "day_n")
        .agg(F.count_distinct("player_id").alias("retained"))
    )
    sizes = members.groupBy("cohort_dt").agg(F.count(F.lit(1)).alias("cohort_size"))
    spark = events.sparkSession
    pairs = spark.createDataFrame([(c, n) for c, n in wanted], "cohort_dt date, day_n int")
    return (
        pairs.join(sizes, "cohort_dt")  # a cohort with no member has no row
        .join(returns, ["cohort_dt", "day_n"], "left")
        .select(
            "cohort_dt",
            "day_n",
            "cohort_size",
            F.coalesce("retained", F.lit(0)).cast("bigint").alias("retained"),
            F.round(F.coalesce("retained", F.lit(0)) / F.col("cohort_size"), 6).alias("rate"),
        )
    )


def _publish(
    spark: SparkSession, rows: list[Row], source: DataFrame, table: str, column: str, owned: list[date]
) -> None:
    """Write the collected ``rows`` (``source``'s schema) as the partitions ``owned`` of ``table``."""
    counts = {value: sum(1 for r in rows if r[column] == value) for value in owned}
    # The aggregates are a few rows: written from the driver's copy, so the events are not scanned again.
    replace_partitions(spark.createDataFrame(rows, source.schema), table, column, counts)


def daily_aggregates(spark: SparkSession, events_table: str, output_root: str, day: date) -> dict[str, Any]:
    """Build and write the four tables for ``day``; returns the summary (without ``seconds``)."""
    events = spark.read.parquet(events_table)
    day_events = (
        events.where(F.col("dt") == F.lit(day))
        .select("player_id", "session_id", "event_type", "platform", "country", "amount", "duration_s")
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        dated = {
            "daily_active_users": daily_active_users(day_events),
            "sessions_daily": sessions_daily(day_events),
            "revenue_daily": revenue_daily(day_events),
        }
        tables: dict[str, dict[str, Any]] = {}
        collected: dict[str, list[Row]] = {}
        for name, frame in dated.items():
            frame = frame.select(*frame.columns, F.lit(day).cast("date").alias("dt"))
            rows = collected[name] = frame.collect()
            # A day with no event at all has sessions 0 and nothing else worth a row.
            if name == "sessions_daily" and rows and rows[0]["sessions"] == 0:
                rows = collected[name] = []
            table = f"{output_root}/{name}"
            _publish(spark, rows, frame, table, "dt", [day])
            tables[name] = {"path": table, "rows": len(rows)}
    finally:
        day_events.unpersist()
    retention = retention_cohorts(events, day)
    cohort_rows = retention.collect()
    table = f"{output_root}/retention_cohorts"
    _publish(spark, cohort_rows, retention, table, "cohort_dt", [day - timedelta(days=n) for n in RETENTION_DAYS])
    tables["retention_cohorts"] = {"path": table, "rows": len(cohort_rows)}

    total = next((r for r in collected["daily_active_users"] if r["platform"] == ALL_PLATFORMS), None)
    sessions = collected["sessions_daily"][0] if collected["sessions_daily"] else None
    return {
        "date": day.isoformat(),
        "events": events_table,
        "tables": tables,
        "dau": int(total["dau"]) if total else 0,
        "dau_by_platform": {
            r["platform"]: int(r["dau"]) for r in collected["daily_active_users"] if r["platform"] != ALL_PLATFORMS
        },
        "sessions": int(sessions["sessions"]) if sessions else 0,
        "session_length_s": {
            f"p{round(p * 100)}": sessions[f"p{round(p * 100)}_session_s"] if sessions else None for p in PERCENTILES
        },
        "revenue": round(sum(float(r["revenue"] or 0.0) for r in collected["revenue_daily"]), 2),
        "purchases": sum(int(r["purchases"]) for r in collected["revenue_daily"]),
        "retention": [
            {
                "cohort_dt": r["cohort_dt"].isoformat(),
                "day_n": int(r["day_n"]),
                "cohort_size": int(r["cohort_size"]),
                "retained": int(r["retained"]),
                "rate": float(r["rate"]),
            }
            for r in sorted(cohort_rows, key=lambda r: (r["cohort_dt"], r["day_n"]))
        ],
    }


def format_report(summary: dict[str, Any]) -> str:
    """A few lines for the log: the day's headline numbers and the retention rows."""
    lengths = summary["session_length_s"]
    lines = [
        f"aggregated {summary['date']} in {summary['seconds']:.1f}s: DAU {summary['dau']:,}, "
        f"{summary['sessions']:,} sessions (p50/p90/p99 {lengths['p50']}/{lengths['p90']}/{lengths['p99']} s), "
        f"revenue {summary['revenue']:,.2f} from {summary['purchases']:,} purchases"
    ]
    lines += [
        f"  cohort {r['cohort_dt']} D{r['day_n']}: {r['retained']:,} of {r['cohort_size']:,} ({r['rate']:.1%})"
        for r in summary["retention"]
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Build the aggregates; exit 0 on success (Spark's own errors, such as a missing table, fail the submission)."""
    args = parse_args(argv)
    return run_job(
        lambda spark: daily_aggregates(spark, args.events, args.output_root, args.date),
        app_name="lakecache-daily-aggregates",
        args=args,
        report=format_report,
    )


if __name__ == "__main__":
    sys.exit(main())
