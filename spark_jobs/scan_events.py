"""Scan a game-telemetry Parquet table and aggregate it: events, revenue and players by platform and event type.

Submit it with ``spark-submit``::

    spark-submit --master local[2] spark_jobs/scan_events.py \\
        --input webhdfs://127.0.0.1:9870/warehouse/events --output-json summary.json

The table has the columns ``player_id``, ``event_type``, ``platform`` and ``amount`` (others, such as ``event_id``,
``country``, ``ts`` and the partition column ``dt``, are read past). Every column is scanned once: one grouping-sets
aggregate yields the per-group rows and the table's totals together, so a second pass never rereads the data.

The printed report goes to stdout; the JSON summary (``rows``, ``distinct_players``, ``revenue``, ``aggregate_rows``,
``groups``, ``seconds``) to ``--output-json``, a local file for whoever submitted the job.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812 - the name every PySpark reader expects

GROUP_COLUMNS = ("platform", "event_type")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; ``--input`` must be a ``webhdfs://`` URI (the job reaches storage through the cache only)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--input", required=True, help="the table, e.g. webhdfs://127.0.0.1:9870/warehouse/events")
    parser.add_argument("--output-json", type=Path, help="write the JSON summary to this local file")
    parser.add_argument("--top", type=int, default=10, help="aggregate rows to print (default: %(default)s)")
    parser.add_argument("--shuffle-partitions", type=int, default=4, help="default: %(default)s")
    args = parser.parse_args(argv)
    if not args.input.startswith("webhdfs://"):
        parser.error(f"--input must be a webhdfs:// URI, got {args.input!r}")
    return args


def scan_events(spark: SparkSession, table: str) -> dict[str, Any]:
    """Aggregate ``table`` by platform and event type; returns the summary (without ``seconds``).

    ``groups`` is sorted by revenue, then events, descending; revenue is rounded to cents.
    """
    events = spark.read.parquet(table)
    # The empty grouping set gives the table's totals in the same pass; grouping_id() tells it from the groups.
    aggregate = events.groupingSets([list(GROUP_COLUMNS), []], *GROUP_COLUMNS).agg(
        F.count(F.lit(1)).alias("events"),
        F.sum("amount").alias("revenue"),
        F.count_distinct("player_id").alias("players"),
        F.grouping_id().alias("level"),
    )
    rows = aggregate.collect()
    totals = next((r for r in rows if r["level"] != 0), None)
    groups = [
        {
            "platform": r["platform"],
            "event_type": r["event_type"],
            "events": int(r["events"]),
            "revenue": round(float(r["revenue"] or 0.0), 2),
            "players": int(r["players"]),
        }
        for r in rows
        if r["level"] == 0
    ]
    groups.sort(key=lambda g: (-g["revenue"], -g["events"], str(g["platform"]), str(g["event_type"])))
    return {
        "input": table,
        "rows": int(totals["events"]) if totals else 0,
        "distinct_players": int(totals["players"]) if totals else 0,
        "revenue": round(float(totals["revenue"] or 0.0), 2) if totals else 0.0,
        "aggregate_rows": len(groups),
        "groups": groups,
    }


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
    spark = (
        SparkSession.builder.appName("lakecache-scan-events")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(args.shuffle_partitions))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    try:
        started = time.monotonic()
        summary = scan_events(spark, args.input)
        summary["seconds"] = round(time.monotonic() - started, 3)
    finally:
        spark.stop()
    print(format_report(summary, args.top), flush=True)
    if args.output_json is not None:
        args.output_json.parent.mkdir(parents=True, exist_ok=True)
        args.output_json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
