"""Data quality with Great Expectations 1.x, called directly inside tasks.

The GX Airflow provider cannot install beside Airflow 3.3, so tasks run GX themselves, in an ephemeral context.

A task reads the partition it just produced, validates it and keeps the result beside the run::

    from lakecache_airflow.quality import check, events_clean_suite, read_partition

    frame = read_partition("webhdfs://cache:9870/warehouse/events_clean", "dt", day)
    check(frame, events_clean_suite(day, event_types=..., platforms=...), table=..., result_path=run_dir / "q.json")

Importing this package imports Great Expectations (a few seconds): import it inside the task, not at DAG level.
"""

from lakecache_airflow.quality.suites import (
    AGGREGATE_EXPECTATIONS,
    AGGREGATES,
    EVENTS_CLEAN,
    aggregates_suite,
    events_clean_suite,
)
from lakecache_airflow.quality.validate import (
    ExpectationOutcome,
    QualityError,
    QualityResult,
    check,
    read_partition,
    validate_table,
)

__all__ = [
    "AGGREGATES",
    "AGGREGATE_EXPECTATIONS",
    "EVENTS_CLEAN",
    "ExpectationOutcome",
    "QualityError",
    "QualityResult",
    "aggregates_suite",
    "check",
    "events_clean_suite",
    "read_partition",
    "validate_table",
]
