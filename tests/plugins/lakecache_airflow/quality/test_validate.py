"""Great Expectations inside a task: good data passes, bad data fails with a summary a person can act on, and the
result is kept as JSON beside the run."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakecache_airflow.quality import (
    QualityError,
    aggregates_suite,
    check,
    events_clean_suite,
    read_partition,
    validate_table,
)
from spark_jobs.telemetry import EVENT_TYPES, PLATFORMS
from tests.support.metrics import s3_bytes_read

DAY = date(2026, 11, 23)
MIDNIGHT = datetime(2026, 11, 23, tzinfo=UTC)


def _suite():
    return events_clean_suite(DAY, event_types=EVENT_TYPES, platforms=PLATFORMS)


def good_events(rows: int = 2_000, seed: int = 1) -> pd.DataFrame:
    """A day of clean events as ``ingest_events.py`` writes them (one purchase in twenty)."""
    rng = np.random.default_rng(seed)
    kinds = np.where(np.arange(rows) % 20 == 0, "purchase", np.asarray(EVENT_TYPES)[rng.integers(0, 7, size=rows)])
    kinds = np.where((kinds == "purchase") & (np.arange(rows) % 20 != 0), "ad_view", kinds)
    return pd.DataFrame(
        {
            "event_id": [f"e{i:06d}" for i in range(rows)],
            "player_id": rng.integers(1_000, 1_300, size=rows),
            "session_id": [f"s{i // 10}" for i in range(rows)],
            "event_type": kinds,
            "platform": np.asarray(PLATFORMS)[rng.integers(0, len(PLATFORMS), size=rows)],
            "country": "DE",
            "ts": pd.to_datetime(MIDNIGHT) + pd.to_timedelta(rng.integers(0, 86_400, size=rows), unit="s"),
            "amount": np.where(kinds == "purchase", 4.99, np.nan),
        }
    )


def bad_events() -> pd.DataFrame:
    """``good_events`` with three event_ids repeated and one purchase of a negative amount."""
    frame = good_events()
    frame.loc[[1, 2, 3], "event_id"] = frame.loc[[11, 12, 13], "event_id"].to_numpy()
    frame.loc[40, "amount"] = -4.99
    return frame


def test_good_clean_events_pass_every_expectation():
    result = validate_table(good_events(), _suite(), table="events_clean/dt=2026-11-23")

    assert result.success, result.summary()
    assert result.failures == ()
    assert len(result.outcomes) == len(_suite().expectations)
    assert result.summary().startswith("quality check passed: suite events_clean on events_clean/dt=2026-11-23")


def test_duplicate_ids_and_a_negative_purchase_fail_with_one_readable_line_each():
    result = validate_table(bad_events(), _suite(), table="events_clean/dt=2026-11-23")

    assert not result.success
    assert {(f.expectation, f.kwargs.get("column")) for f in result.failures} == {
        ("expect_column_values_to_be_unique", "event_id"),
        ("expect_column_values_to_be_between", "amount"),
    }
    lines = result.summary().splitlines()
    assert lines[0] == (
        "quality check failed: suite events_clean on events_clean/dt=2026-11-23, "
        f"2 of {len(result.outcomes)} expectations failed"
    )
    unique = next(line for line in lines if "be_unique" in line)
    assert "expected event_id unique" in unique
    assert "observed 6 of 2,000 values unexpected" in unique
    assert "'e000011' x2" in unique  # the offending key, with how often it occurs
    amount = next(line for line in lines if "be_between" in line)
    assert "expected amount >= 0 where event_type == 'purchase'; observed" in amount
    assert "observed 1 of 100 values unexpected" in amount and "-4.99" in amount
    assert len(lines) == 3


def test_check_keeps_the_json_beside_the_run_then_raises_with_the_summary(tmp_path):
    result_path = tmp_path / "run-2026-11-23" / "quality" / "events_clean.json"

    with pytest.raises(QualityError) as failed:
        check(bad_events(), _suite(), table="events_clean/dt=2026-11-23", result_path=result_path)

    assert str(failed.value) == failed.value.result.summary()
    stored = json.loads(result_path.read_text())
    assert stored["success"] is False and stored["failed"] == 2
    assert stored["summary"] == str(failed.value)
    assert stored["suite"] == "events_clean" and stored["table"] == "events_clean/dt=2026-11-23"
    assert len(stored["expectations"]) == stored["evaluated"] == len(_suite().expectations)
    unique = next(e for e in stored["expectations"] if e["expectation"] == "expect_column_values_to_be_unique")
    assert unique["details"]["unexpected_count"] == 6
    assert stored["gx_result"]["success"] is False and len(stored["gx_result"]["results"]) == stored["evaluated"]


def test_check_returns_the_result_and_still_writes_the_json_when_everything_holds(tmp_path):
    result = check(good_events(), _suite(), result_path=tmp_path / "q.json")

    assert result.success
    assert json.loads((tmp_path / "q.json").read_text())["success"] is True


def test_timestamps_off_the_day_unknown_values_and_nulls_are_each_named():
    frame = good_events()
    frame.loc[5, "ts"] = MIDNIGHT - timedelta(hours=3)
    frame.loc[6, "platform"] = "switch"
    frame.loc[7, "player_id"] = None
    frame.loc[20, "amount"] = np.nan  # a purchase without an amount

    result = validate_table(frame, _suite())

    failed = {(f.expectation, f.kwargs.get("column")) for f in result.failures}
    assert failed == {
        ("expect_column_values_to_be_between", "ts"),
        ("expect_column_values_to_be_in_set", "platform"),
        ("expect_column_values_to_not_be_null", "player_id"),
        ("expect_column_values_to_not_be_null", "amount"),
    }
    summary = result.summary()
    assert "expected ts >= 2026-11-22T23:00:00+00:00 and < 2026-11-24T01:00:00+00:00" in summary
    assert "'switch'" in summary


def test_an_empty_day_fails_on_its_row_count():
    result = validate_table(good_events().iloc[0:0], _suite())

    assert [f.expectation for f in result.failures] == ["expect_table_row_count_to_be_between"]
    assert "expected row count >= 1; observed 0" in result.summary()


def test_an_expectation_on_a_missing_column_fails_with_the_error_as_observation():
    result = validate_table(good_events().drop(columns="platform"), _suite())

    failure = next(f for f in result.failures if f.kwargs.get("column") == "platform")
    assert failure.observed.startswith("an error:")
    assert "platform" in failure.observed


def _aggregates() -> dict[str, pd.DataFrame]:
    return {
        "daily_active_users": pd.DataFrame({"platform": ["all", "ios", "pc"], "dau": [30, 18, 12]}),
        "sessions_daily": pd.DataFrame(
            {"sessions": [50], "sessions_ended": [45], "p50_session_s": [600], "p90_session_s": [1800]}
            | {"p99_session_s": [3400], "avg_session_s": [820.5]}
        ),
        "revenue_daily": pd.DataFrame(
            {"platform": ["ios", "pc"], "country": ["DE", "US"], "revenue": [9.98, 4.99]}
            | {"purchases": [2, 1], "payers": [1, 1]}
        ),
        "retention_cohorts": pd.DataFrame(
            {"day_n": [1, 1, 7], "cohort_size": [10, 12, 12], "retained": [4, 5, 2], "rate": [0.4, 5 / 12, 2 / 12]}
        ),
    }


def test_good_aggregates_pass_their_suites():
    for table, frame in _aggregates().items():
        result = validate_table(frame, aggregates_suite(table), table=table)
        assert result.success, result.summary()
        assert result.suite == f"aggregates.{table}"


@pytest.mark.parametrize(
    ("table", "column", "value", "expected"),
    [
        ("daily_active_users", "dau", 0, "expected dau >= 1"),
        ("sessions_daily", "p90_session_s", 500, "expected p90_session_s >= p50_session_s"),
        ("revenue_daily", "revenue", -1.0, "expected revenue >= 0"),
        ("retention_cohorts", "rate", 1.5, "expected rate >= 0 and <= 1"),
        ("retention_cohorts", "retained", 20, "expected cohort_size >= retained"),
    ],
)
def test_a_broken_aggregate_fails_naming_what_was_expected(table, column, value, expected):
    frame = _aggregates()[table]
    frame.loc[0, column] = value

    with pytest.raises(QualityError) as failed:
        check(frame, aggregates_suite(table), table=table)

    assert expected in str(failed.value)
    assert str(failed.value).startswith(f"quality check failed: suite aggregates.{table} on {table}, 1 of ")


def test_what_cannot_be_validated_is_refused():
    with pytest.raises(ValueError, match="no aggregates suite for table 'nope'"):
        aggregates_suite("nope")
    with pytest.raises(TypeError, match="pandas or Spark DataFrame"):
        validate_table([{"event_id": "a"}], _suite())


def test_the_same_suite_object_validates_twice():
    suite = _suite()

    assert validate_table(good_events(), suite).success
    assert not validate_table(bad_events(), suite).success


def test_read_partition_loads_a_day_through_the_cache_for_validation(cache_factory, bucket, s3_client):
    frame = _aggregates()["daily_active_users"]
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    prefix = "warehouse/agg/daily_active_users/dt=2026-11-23"
    s3_client.put_object(Bucket=bucket, Key=f"{prefix}/part-00000.snappy.parquet", Body=buffer.getvalue())
    s3_client.put_object(Bucket=bucket, Key=f"{prefix}/_SUCCESS", Body=b"")
    cache = cache_factory({"/warehouse": f"s3://{bucket}/warehouse"})
    table_uri = f"{cache.webhdfs_uri}/warehouse/agg/daily_active_users"

    loaded = read_partition(table_uri, "dt", DAY)

    assert loaded.drop(columns="dt").to_dict("records") == frame.to_dict("records")
    assert set(loaded["dt"]) == {"2026-11-23"}
    assert s3_bytes_read(cache.webhdfs_url) > 0  # the bytes came through the cache
    assert validate_table(loaded, aggregates_suite("daily_active_users"), table=table_uri).success
    with pytest.raises(FileNotFoundError, match="no such partition"):
        read_partition(table_uri, "dt", date(2026, 11, 24))
    with pytest.raises(ValueError, match="webhdfs://"):
        read_partition(f"s3://{bucket}/warehouse/agg/daily_active_users", "dt", DAY)


@pytest.mark.spark
def test_a_spark_dataframe_is_validated_with_the_same_outcome(spark):
    frame = bad_events()
    rows = [
        (
            r.event_id,
            int(r.player_id),
            r.event_type,
            r.platform,
            r.ts.to_pydatetime(),
            None if np.isnan(r.amount) else r.amount,
        )
        for r in frame.itertuples()
    ]
    data = spark.createDataFrame(
        rows, "event_id string, player_id bigint, event_type string, platform string, ts timestamp, amount double"
    )

    result = validate_table(data, _suite(), table="spark")

    assert {(f.expectation, f.kwargs.get("column")) for f in result.failures} == {
        ("expect_column_values_to_be_unique", "event_id"),
        ("expect_column_values_to_be_between", "amount"),
    }
    assert "observed 6 of 2,000 values unexpected" in result.summary()
