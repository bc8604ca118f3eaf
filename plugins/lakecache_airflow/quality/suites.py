"""The expectation suites of the telemetry pipeline: what a day of clean events and of aggregates must look like.

Each function returns a new Great Expectations 1.x ``ExpectationSuite``; nothing is stored anywhere. The suites
describe one ``dt`` partition of a table (``validate.read_partition`` loads one).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, date, datetime, time, timedelta

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.expectations.row_conditions import Column

EVENTS_CLEAN = "events_clean"
AGGREGATES = "aggregates"
# The same margin the ingestion grants a device clock: a clean event may sit this far outside its day.
DEFAULT_GRACE = timedelta(hours=1)


def events_clean_suite(
    day: date, *, event_types: Collection[str], platforms: Collection[str], grace: timedelta = DEFAULT_GRACE
) -> gx.ExpectationSuite:
    """Expectations for partition ``dt=day`` of the clean events table.

    ``event_types`` and ``platforms`` are the producer's vocabulary (``spark_jobs.telemetry.EVENT_TYPES`` and
    ``PLATFORMS``), passed in so that this package does not import the Spark jobs.
    """
    start = datetime.combine(day, time(), tzinfo=UTC) - grace
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC) + grace
    purchase = Column("event_type") == "purchase"
    return gx.ExpectationSuite(
        name=EVENTS_CLEAN,
        expectations=[
            gxe.ExpectTableRowCountToBeBetween(min_value=1),
            *(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in ("event_id", "player_id", "event_type", "ts")),
            gxe.ExpectColumnValuesToBeUnique(column="event_id"),
            gxe.ExpectColumnValuesToBeInSet(column="event_type", value_set=sorted(event_types)),
            gxe.ExpectColumnValuesToBeInSet(column="platform", value_set=sorted(platforms)),
            gxe.ExpectColumnValuesToNotBeNull(column="amount", row_condition=purchase),
            gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=0, row_condition=purchase),
            gxe.ExpectColumnValuesToBeBetween(column="ts", min_value=start, max_value=end, strict_max=True),
        ],
    )


def _daily_active_users() -> list[gxe.Expectation]:
    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToNotBeNull(column="platform"),
        gxe.ExpectColumnValuesToBeUnique(column="platform"),
        gxe.ExpectColumnValuesToNotBeNull(column="dau"),
        gxe.ExpectColumnValuesToBeBetween(column="dau", min_value=1),
    ]


def _sessions_daily() -> list[gxe.Expectation]:
    return [
        gxe.ExpectTableRowCountToEqual(value=1),
        gxe.ExpectColumnValuesToBeBetween(column="sessions", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="p50_session_s", min_value=0),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="p90_session_s", column_B="p50_session_s", or_equal=True),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="p99_session_s", column_B="p90_session_s", or_equal=True),
    ]


def _revenue_daily() -> list[gxe.Expectation]:
    # No row-count floor: a day without a purchase is possible, and then the partition is empty.
    return [
        gxe.ExpectColumnValuesToNotBeNull(column="revenue"),
        gxe.ExpectColumnValuesToBeBetween(column="revenue", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="payers", min_value=1),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="purchases", column_B="payers", or_equal=True),
    ]


def _retention_cohorts() -> list[gxe.Expectation]:
    return [
        gxe.ExpectColumnValuesToBeInSet(column="day_n", value_set=[1, 7]),
        gxe.ExpectColumnValuesToNotBeNull(column="rate"),
        gxe.ExpectColumnValuesToBeBetween(column="rate", min_value=0, max_value=1),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="cohort_size", column_B="retained", or_equal=True),
    ]


AGGREGATE_EXPECTATIONS: dict[str, Callable[[], list[gxe.Expectation]]] = {
    "daily_active_users": _daily_active_users,
    "sessions_daily": _sessions_daily,
    "revenue_daily": _revenue_daily,
    "retention_cohorts": _retention_cohorts,
}


def aggregates_suite(table: str) -> gx.ExpectationSuite:
    """Expectations for one partition of aggregate ``table`` (a key of ``AGGREGATE_EXPECTATIONS``).

    The suite is named ``aggregates.<table>``. Raises ``ValueError`` for a table it has no expectations for.
    """
    try:
        expectations = AGGREGATE_EXPECTATIONS[table]()
    except KeyError:
        raise ValueError(
            f"no aggregates suite for table {table!r}; known: {', '.join(AGGREGATE_EXPECTATIONS)}"
        ) from None
    return gx.ExpectationSuite(name=f"{AGGREGATES}.{table}", expectations=expectations)
