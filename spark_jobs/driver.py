"""What every job does on the Spark driver around its own work: read its command line, run, report.

``spark-submit`` runs a job's file as a script, with no ``--py-files``: each job puts the repository root on
``sys.path`` before it imports this module. Only the driver needs it; nothing here runs on an executor.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spark_jobs.telemetry import job_session, require_webhdfs

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

Summary = dict[str, Any]


def job_parser(doc: str, *, summary_option: str = "--summary-json") -> argparse.ArgumentParser:
    """A job's command line, described by the first line of its module's ``doc``, with the options ``run_job`` reads.

    Those are ``--shuffle-partitions`` and ``summary_option``, the summary's local file (read as ``summary_json``);
    the job adds its own.
    """
    parser = argparse.ArgumentParser(description=doc.split("\n", 1)[0])
    parser.add_argument(
        summary_option, type=Path, dest="summary_json", metavar="FILE", help="write the JSON summary to this local file"
    )
    parser.add_argument("--shuffle-partitions", type=int, default=4, help="default: %(default)s")
    return parser


def parse_job_args(
    parser: argparse.ArgumentParser, argv: list[str] | None, *, webhdfs: Sequence[str]
) -> argparse.Namespace:
    """``argv`` (None: the process's) read by ``parser``; the options named in ``webhdfs`` must be ``webhdfs://`` URIs.

    They are the tables the job reads and writes, and a job reaches storage through the cache only: each comes back
    without a trailing slash, and one that is not such a URI ends the process (status 2, one line naming the option)
    before a Spark session starts.
    """
    args = parser.parse_args(argv)
    for option in webhdfs:
        dest = option.removeprefix("--").replace("-", "_")
        try:
            setattr(args, dest, require_webhdfs(getattr(args, dest), option))
        except ValueError as exc:
            parser.error(str(exc))
    return args


def run_job(
    job: Callable[[SparkSession], Summary], *, app_name: str, args: argparse.Namespace, report: Callable[[Summary], str]
) -> int:
    """Run ``job`` in a new ``job_session``, print its ``report``, and write its summary where ``args`` says.

    ``args`` is the job's command line as ``parse_job_args`` read it: ``shuffle_partitions`` for the session, and
    ``summary_json``, the local file for the summary (None: none is written). The summary gains ``seconds``, the
    time ``job`` took; the session is stopped before the report is printed. Returns 0, the exit status of a job that
    succeeded: Spark's own errors (a missing table, say) propagate and fail the submission.
    """
    spark = job_session(app_name, args.shuffle_partitions)
    try:
        started = time.monotonic()
        summary = job(spark)
        summary["seconds"] = round(time.monotonic() - started, 3)
    finally:
        spark.stop()
    print(report(summary), flush=True)
    if args.summary_json is not None:
        args.summary_json.parent.mkdir(parents=True, exist_ok=True)
        args.summary_json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0
