"""Scan a game-telemetry Parquet table and aggregate it: events, revenue and players by platform and event type.

Submit it with ``spark-submit``::

    spark-submit --master local[2] spark_jobs/scan_events.py \\
        --input webhdfs://127.0.0.1:9870/warehouse/events --output-json summary.json

The table has the columns ``player_id``, ``event_type``, ``platform`` and ``amount`` (others, such as ``event_id``,
``country``, ``ts`` and the partition column ``dt``, are read past). Every column is scanned once, by one aggregate
per (platform, event_type). Events and revenue are exact. Players are counted with an HLL sketch per group
(``hll_sketch_agg``, lgConfigK 14: about 0.8% standard error, exact for small groups), and the table's distinct
players come from the union of those sketches, so no second pass rereads the data. Exact distinct counts, per group
and overall, would cost this job four to five times the CPU of the scan itself (a grouping-sets aggregate measured
6 to 9 s against 1.6 s on 202 MiB and 2 cores), which is why telemetry scans count players this way.

The printed report goes to stdout; the JSON summary (``rows``, ``distinct_players``, ``revenue``, ``aggregate_rows``,
``groups``, ``seconds``) to ``--output-json``, a local file for whoever submitted the job.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # spark-submit runs this file as a script: make the repository root importable for spark_jobs.driver.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812 - the name every PySpark reader expects

from spark_jobs.driver import job_parser, parse_job_args, run_job

GROUP_COLUMNS = ("platform", "event_type")
SKETCH_LG_K = 14  # 2**14 HLL registers per group


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; ``--input`` must be a ``webhdfs://`` URI (the job reaches storage through the cache only)."""
    parser = job_parser(__doc__, summary_option="--output-json")
    parser.add_argument("--input", required=True, help="the table, e.g. webhdfs://127.0.0.1:9870/warehouse/events")
    parser.add_argument("--top", type=int, default=10, help="aggregate rows to print (default: %(default)s)")
    return parse_job_args(parser, argv, webhdfs=("--input",))


def scan_events(spark: SparkSession, table: str) -> dict[str, Any]:
    """Aggregate ``table`` by platform and event type; returns the summary (without ``seconds``).

    ``groups`` is sorted by revenue, then events, descending; revenue is rounded to cents; ``players`` and
    ``distinct_players`` are sketch estimates (see the module's docstring).
    """
    aggregate = (
        spark.read.parquet(table)
        .groupBy(*GROUP_COLUMNS)
        .agg(
            F.count(F.lit(1)).alias("events"),
            F.sum("amount").alias("revenue"),
            F.hll_sketch_agg("player_id", SKETCH_LG_K).alias("sketch"),
        )
        .withColumn("players", F.hll_sketch_estimate("sketch"))
    )
    rows = aggregate.collect()
    groups = [
        {
            "platform": r["platform"],
            "event_type": r["event_type"],
            "events": int(r["events"]),
            "revenue": round(float(r["revenue"] or 0.0), 2),
            "players": int(r["players"]),
        }
        for r in rows
    ]
    groups.sort(key=lambda g: (-g["revenue"], -g["events"], str(g["platform"]), str(g["event_type"])))
    return {
        "input": table,
        "rows": sum(g["events"] for g in groups),
        "distinct_players": _union_estimate(spark, [r["sketch"] for r in rows]),
        "revenue": round(sum(float(r["revenue"] or 0.0) for r in rows), 2),
        "aggregate_rows": len(groups),
        "groups": groups,
    }


def _union_estimate(spark: SparkSession, sketches: list[bytes]) -> int:
    """Distinct values over all groups: the estimate of the union of their HLL sketches (a few KiB each)."""
    if not sketches:
        return 0
    frame = spark.createDataFrame([(bytes(s),) for s in sketches], "sketch binary")
    row = frame.select(F.hll_sketch_estimate(F.hll_union_agg("sketch"))).first()
    return int(row[0]) if row is not None else 0


def format_report(summary: dict[str, Any], top: int) -> str:
    """A plain-text report of the summary: totals, then the ``top`` groups by revenue."""
    lines = [
        f"scanned {summary['rows']:,} events of {summary['distinct_players']:,} players "
        f"in {summary['seconds']:.1f}s; revenue {summary['revenue']:,.2f}; {summary['aggregate_rows']} groups",
        f"{'platform':<10} {'event_type':<14} {'events':>10} {'revenue':>14} {'players':>9}",
    ]
    lines += [
        f"{g['platform']!s:<10} {g['event_type']!s:<14} {g['events']:>10,} {g['revenue']:>14,.2f} {g['players']:>9,}"
        for g in summary["groups"][:top]
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the scan; exit 0 on success (Spark's own errors propagate and fail the submission)."""
    args = parse_args(argv)
    return run_job(
        lambda spark: scan_events(spark, args.input),
        app_name="lakecache-scan-events",
        args=args,
        report=lambda summary: format_report(summary, args.top),
    )


if __name__ == "__main__":
    sys.exit(main())
