"""``make demo``: the daily telemetry ETL run by Airflow through the cache, cold then warm, and what the cache saved.

``python -m infra.demo`` starts the local stack in ``.local/demo``: the S3 emulator, the S3 latency model in front of it
(``infra.s3_model``: 30 ms to first byte, 90 MB/s per connection, as a real S3 answers; ``--no-s3-model`` or
``DEMO_S3_MODEL=0`` leaves it out), and one cache worker whose under store is the model (or, with ``--workers N`` or
``DEMO_WORKERS=N``, a cluster of N workers that Spark addresses as Hadoop's HA nameservice: ``infra.demo.cluster``). It
writes a day of raw game telemetry (JSON lines, defects included) straight into the emulator (never through the cache,
so the first run finds the cache empty), and runs ``airflow dags test telemetry_daily_etl`` twice with a local
``AIRFLOW_HOME`` (SQLite): warmup, ingest (Spark), Great Expectations on the clean events, aggregates (Spark), Great
Expectations on the aggregates, metastore sync (Glue, served by the emulator). The second run reprocesses the same day
(the jobs overwrite their partitions, so it is idempotent) with the raw input already in the cache.

It prints the rows of every stage, the data-quality results, each run's totals and, task by task, the time, the bytes
the cache read from S3 and the page hit ratio, then one line saying what the cache saved the warm run. Per-task figures
come from the worker's ``/metrics`` sampled during a run (every half second, and as each task starts and ends) and split
by the tasks' start and end times in Airflow's DB (``infra.demo.task_costs`` says how, and how precise that is).

Modules, in the order a run goes through them: ``driver`` (the demo from start to end), ``cluster`` (on a cluster: its
workers and Spark's HA settings for them), ``airflow_home`` (a local Airflow home and ``airflow dags test``), ``runs``
(one run measured at the cache), ``task_costs`` (per-task attribution), ``pipeline_results`` (rows, data quality,
catalog changes), ``report`` (the tables and the savings line), ``cli`` (the command line).
"""

from __future__ import annotations


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and why, in a line (plus a log excerpt where one helps)."""
