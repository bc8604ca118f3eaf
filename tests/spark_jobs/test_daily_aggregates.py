"""``spark_jobs/daily_aggregates.py`` under ``spark-submit`` agrees with pandas on a small hand-made events table.

Eight days of clean events (players join on every day, some come back, some pay) are written straight into S3 in the
layout ``ingest_events.py`` produces; the job reads them through the cache and the tests recompute every aggregate
with pandas from the same rows.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from infra.cache_process import REPO_ROOT
from infra.s3_emulator import S3Emulator
from spark_jobs.daily_aggregates import parse_args
from spark_jobs.ingest_events import CLEAN_COLUMNS
from spark_jobs.telemetry import COUNTRIES, PLATFORMS
from tests.support.lake import Lake, open_lake

pytestmark = pytest.mark.spark

JOB = REPO_ROOT / "spark_jobs" / "daily_aggregates.py"
DAY = date(2026, 11, 23)
FIRST_DAY = DAY - timedelta(days=7)
# The clean events as ingest_events.py writes them: its columns, text but for these.
CLEAN_TYPES = {
    "player_id": pa.int64(),
    "ts": pa.timestamp("us", tz="UTC"),
    "amount": pa.float64(),
    "duration_s": pa.int32(),
}
CLEAN_SCHEMA = pa.schema([(name, CLEAN_TYPES.get(name, pa.string())) for name in CLEAN_COLUMNS])


def hand_made_events(seed: int = 3) -> pd.DataFrame:
    """Eight days of clean events: ten new players a day, earlier players back with probability 0.4.

    Each active player plays one to three sessions (a few never end), with matches in between and a purchase now
    and then. ``dt`` holds the day as a ``date``.
    """
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for offset in range(8):
        day = FIRST_DAY + timedelta(days=offset)
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        earlier = np.arange(offset * 10)
        active = list(range(offset * 10, offset * 10 + 10)) + earlier[rng.random(earlier.size) < 0.4].tolist()
        for player in active:
            platform = PLATFORMS[player % len(PLATFORMS)]
            country = COUNTRIES[player % 3]
            for session in range(int(rng.integers(1, 4))):
                session_id = f"s-{day}-{player}-{session}"
                start = midnight + timedelta(seconds=int(rng.integers(0, 70_000)))
                length = int(rng.integers(60, 3_600))
                kinds = ["session_start", "match_start", "match_end"]
                if rng.random() < 0.3:
                    kinds.append("purchase")
                ended = rng.random() < 0.9
                if ended:
                    kinds.append("session_end")
                for step, kind in enumerate(kinds):
                    at = start + timedelta(seconds=length if kind == "session_end" else step * 10)
                    rows.append(
                        {
                            "event_id": f"{session_id}-{step}",
                            "player_id": 5_000 + player,
                            "session_id": session_id,
                            "event_type": kind,
                            "platform": platform,
                            "country": country,
                            "client_version": "2.4.1",
                            "ts": at,
                            "amount": float(rng.choice([0.99, 4.99, 9.99])) if kind == "purchase" else None,
                            "duration_s": length if kind == "session_end" else None,
                            "dt": day,
                        }
                    )
    return pd.DataFrame(rows)


def put_day(lake: Lake, events: pd.DataFrame, day: date) -> None:
    """Write ``day``'s rows of ``events`` as the only file of ``events_clean/dt=<day>``, straight into S3."""
    rows = events[events["dt"] == day].drop(columns="dt")
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(rows, schema=CLEAN_SCHEMA, preserve_index=False), buffer)
    key = f"warehouse/events_clean/dt={day}/part-00000.parquet"
    lake.client.put_object(Bucket=lake.bucket, Key=key, Body=buffer.getvalue())


def aggregate_table(lake: Lake, name: str, partition: str = "dt") -> pd.DataFrame:
    """Aggregate table ``name`` as S3 holds it, the partition column as text."""
    return lake.table(f"warehouse/agg/{name}", partition).to_pandas()


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return hand_made_events()


@pytest.fixture(scope="module")
def lake(s3_emulator: S3Emulator, tmp_path_factory: pytest.TempPathFactory, events) -> Iterator[Lake]:
    # Module-scoped on purpose (cache_factory and bucket are per test): the submissions below share one lake.
    # Tests here rewrite events straight in S3, behind the cache: a short sync interval lets the jobs see that.
    overrides = {"metadata": {"sync_interval": "1s"}}
    with open_lake(s3_emulator, tmp_path_factory.mktemp("agg"), "agg", ["warehouse"], overrides) as lake:
        for day in sorted(set(events["dt"])):
            put_day(lake, events, day)
        yield lake


def _aggregate(lake: Lake, name: str) -> dict[str, Any]:
    args = ["--events", lake.uri("warehouse/events_clean"), "--output-root", lake.uri("warehouse/agg")]
    return lake.submit(JOB, name, *args, "--date", DAY.isoformat())


@pytest.fixture(scope="module")
def first_run(lake: Lake) -> dict[str, Any]:
    return _aggregate(lake, "first")


def _today(events: pd.DataFrame) -> pd.DataFrame:
    return events[events["dt"] == DAY]


def test_daily_active_users_match_pandas(first_run, lake, events):
    today = _today(events)
    expected = today.groupby("platform")["player_id"].nunique().to_dict() | {"all": today["player_id"].nunique()}

    table = aggregate_table(lake, "daily_active_users")

    assert dict(zip(table["platform"], table["dau"], strict=True)) == expected
    assert set(table["dt"]) == {DAY.isoformat()}
    assert first_run["dau"] == expected["all"]
    assert first_run["dau_by_platform"] == {k: v for k, v in expected.items() if k != "all"}


def test_sessions_and_length_percentiles_match_pandas(first_run, lake, events):
    today = _today(events)
    lengths = np.sort(today.loc[today["event_type"] == "session_end", "duration_s"].to_numpy())

    row = aggregate_table(lake, "sessions_daily").to_dict("records")

    assert len(row) == 1
    assert row[0]["sessions"] == today["session_id"].nunique() == first_run["sessions"]
    assert row[0]["sessions_ended"] == lengths.size < row[0]["sessions"]
    for p in (50, 90, 99):
        # percentile_approx is exact at this size: the smallest length with at least p% of lengths at or below it.
        expected = np.percentile(lengths, p, method="inverted_cdf")
        assert row[0][f"p{p}_session_s"] == expected == first_run["session_length_s"][f"p{p}"]
    assert row[0]["avg_session_s"] == pytest.approx(lengths.mean(), abs=0.05)


def test_revenue_by_platform_and_country_matches_pandas(first_run, lake, events):
    purchases = _today(events)[lambda f: f["event_type"] == "purchase"]
    expected = purchases.groupby(["platform", "country"]).agg(
        revenue=("amount", "sum"), purchases=("event_id", "count"), payers=("player_id", "nunique")
    )

    table = aggregate_table(lake, "revenue_daily").set_index(["platform", "country"]).sort_index()

    assert list(table.index) == list(expected.index)
    assert table["revenue"].to_numpy() == pytest.approx(expected["revenue"].round(2).to_numpy(), abs=0.005)
    assert table["purchases"].tolist() == expected["purchases"].tolist()
    assert table["payers"].tolist() == expected["payers"].tolist()
    assert first_run["revenue"] == pytest.approx(purchases["amount"].sum(), abs=0.01)
    assert first_run["purchases"] == len(purchases)


def _expected_retention(events: pd.DataFrame, day: date) -> dict[tuple[str, int], tuple[int, int]]:
    history = events[events["dt"] <= day]
    first_seen = history.groupby("player_id")["dt"].min()
    active = set(zip(history["player_id"], history["dt"], strict=True))
    expected = {}
    for cohort in (day - timedelta(days=1), day - timedelta(days=7)):
        members = first_seen[first_seen == cohort].index
        for n in (1, 7):
            if cohort + timedelta(days=n) <= day and len(members):
                retained = sum((p, cohort + timedelta(days=n)) in active for p in members)
                expected[(cohort.isoformat(), n)] = (len(members), retained)
    return expected


def test_retention_cohorts_of_the_day_before_and_the_week_before_match_pandas(first_run, lake, events):
    expected = _expected_retention(events, DAY)

    table = aggregate_table(lake, "retention_cohorts", partition="cohort_dt")
    got = {(r["cohort_dt"], r["day_n"]): (r["cohort_size"], r["retained"], r["rate"]) for r in table.to_dict("records")}

    assert set(expected) == {("2026-11-22", 1), ("2026-11-16", 1), ("2026-11-16", 7)}
    assert set(got) == set(expected)
    for key, (size, retained) in expected.items():
        assert got[key][:2] == (size, retained), key
        assert got[key][2] == pytest.approx(retained / size, abs=1e-6)
        assert 0 < retained < size  # the data set makes every rate informative
    assert len(first_run["retention"]) == len(expected)


def test_a_rerun_gives_the_same_tables_in_place_of_the_old_ones(first_run, lake):
    names = [("daily_active_users", "dt"), ("sessions_daily", "dt"), ("revenue_daily", "dt")]
    names.append(("retention_cohorts", "cohort_dt"))
    before = {name: aggregate_table(lake, name, part) for name, part in names}
    files_before = {name: len(lake.keys(f"warehouse/agg/{name}")) for name, _ in names}

    again = _aggregate(lake, "rerun")

    for name, part in names:
        after = aggregate_table(lake, name, part)
        key = [c for c in after.columns if c not in ("rate", "revenue", "avg_session_s")]
        pd.testing.assert_frame_equal(
            after.sort_values(key).reset_index(drop=True), before[name].sort_values(key).reset_index(drop=True)
        )
        assert len(lake.keys(f"warehouse/agg/{name}")) == files_before[name]
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in first_run.items() if k != "seconds"}


def test_a_rerun_after_the_day_lost_its_purchases_drops_the_day_from_revenue(first_run, lake, events):
    put_day(lake, events[events["event_type"] != "purchase"], DAY)
    time.sleep(1.5)  # past the cache's sync interval: the change made behind its back is now seen whole

    summary = _aggregate(lake, "no-purchases")

    assert summary["revenue"] == 0 and summary["tables"]["revenue_daily"]["rows"] == 0
    assert not [k for k in lake.keys("warehouse/agg/revenue_daily") if f"dt={DAY}" in k]
    assert summary["dau"] == first_run["dau"]


def test_a_path_outside_the_cache_is_refused_before_spark_starts(capsys, tmp_path):
    with pytest.raises(SystemExit):
        parse_args(
            ["--events", f"file://{tmp_path}/events", "--output-root", "webhdfs://h:1/agg", "--date", "2026-11-23"]
        )

    assert "--events must be a webhdfs:// URI" in capsys.readouterr().err
