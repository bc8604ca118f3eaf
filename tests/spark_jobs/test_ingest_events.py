"""``spark_jobs/ingest_events.py`` under ``spark-submit``: a generated day through the cache, every line accounted for.

One cache and one bucket serve the whole module; the first submission is shared by the tests that only read its
outcome, and the tests that submit again come last.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from infra.cache_process import REPO_ROOT
from infra.s3_emulator import S3Emulator
from spark_jobs.ingest_events import parse_args
from spark_jobs.telemetry import RAW_FIELDS
from spark_jobs.telemetry.generator import Defect, generate_labelled_day, write_day_to_s3
from tests.support.lake import Lake, open_lake

pytestmark = pytest.mark.spark

JOB = REPO_ROOT / "spark_jobs" / "ingest_events.py"
DAY = date(2026, 11, 23)
EVENTS, SEED, DEFECT_RATE = 5_000, 7, 0.03
REASON_OF = {  # the quarantine reason (up to its ':') each planted defect must get
    Defect.MALFORMED: "malformed",
    Defect.MISSING_REQUIRED: "missing_required",
    Defect.BAD_TYPE: "bad_type",
    Defect.CLOCK_SKEW: "clock_skew",
}


@pytest.fixture(scope="module")
def lake(s3_emulator: S3Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    # Module-scoped on purpose (cache_factory and bucket are per test): the submissions below share one lake.
    with open_lake(s3_emulator, tmp_path_factory.mktemp("ingest"), "ingest", ["raw", "warehouse"]) as lake:
        yield lake


def _ingest(lake: Lake, day: date, name: str) -> dict[str, Any]:
    """Submit the job for ``day``; returns its summary (the test fails with Spark's output if the job does)."""
    args = ["--raw", lake.uri(f"raw/events/dt={day}"), "--date", day.isoformat()]
    args += ["--output", lake.uri("warehouse/events_clean"), "--quarantine", lake.uri("warehouse/events_quarantine")]
    return lake.submit(JOB, name, *args)


@pytest.fixture(scope="module")
def labelled() -> list[tuple[str, Defect | None]]:
    return list(generate_labelled_day(DAY, EVENTS, SEED, DEFECT_RATE))


@pytest.fixture(scope="module")
def first_run(lake: Lake, labelled) -> dict[str, Any]:
    write_day_to_s3(lake.client, lake.bucket, "raw/events", DAY, EVENTS, seed=SEED, files=3, defect_rate=DEFECT_RATE)
    return _ingest(lake, DAY, "first")


def test_every_raw_line_is_clean_a_duplicate_or_quarantined(first_run, labelled, lake):
    kinds = Counter(defect for _, defect in labelled)

    assert first_run["raw_lines"] == EVENTS
    assert first_run["clean"] + first_run["duplicates"] + first_run["quarantined"] == EVENTS
    assert first_run["clean"] == kinds[None]
    assert first_run["duplicates"] == kinds[Defect.DUPLICATE]
    assert first_run["quarantined"] == sum(kinds[k] for k in REASON_OF)
    assert sum(first_run["quarantined_by_reason"].values()) == first_run["quarantined"]
    assert lake.table("warehouse/events_clean").num_rows == first_run["clean"]
    assert lake.table("warehouse/events_quarantine").num_rows == first_run["quarantined"]


def test_every_broken_line_is_quarantined_whole_with_the_reason_for_its_defect(first_run, labelled, lake):
    quarantine = lake.table("warehouse/events_quarantine").to_pylist()
    planted = Counter((line, REASON_OF[d]) for line, d in labelled if d in REASON_OF)

    found = Counter((row["raw"], row["reason"].split(":")[0]) for row in quarantine)

    assert found == planted
    assert {reason for _, reason in found} == set(REASON_OF.values())
    assert all(row["dt"] == "2026-11-23" for row in quarantine)
    assert all(row["source_file"].endswith(".jsonl") for row in quarantine)
    # The reason names the field: a missing event_id reads missing_required:event_id, not just a category.
    fields = {row["reason"].split(":")[1] for row in quarantine if ":" in row["reason"]}
    assert {"event_id", "player_id", "ts"} <= fields <= set(RAW_FIELDS)


def test_clean_events_are_typed_unique_and_partitioned_by_day(first_run, labelled, lake):
    table = lake.table("warehouse/events_clean")
    rows = table.to_pylist()
    good = {json.loads(line)["event_id"]: json.loads(line) for line, d in labelled if d is None}

    assert {r["event_id"] for r in rows} == set(good)
    assert len(rows) == len(good)  # one row per event_id: the duplicates are gone
    assert table.schema.field("player_id").type == pa.int64()
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("amount").type == pa.float64()
    assert table.schema.field("duration_s").type == pa.int32()
    assert all(r["dt"] == "2026-11-23" for r in rows)
    keys = lake.keys("warehouse/events_clean")
    data = [k for k in keys if not k.endswith("/_SUCCESS")]
    assert any(k.endswith("warehouse/events_clean/_SUCCESS") for k in keys), keys  # the table is marked committed
    assert data and all(k.split("/")[3] == "dt=2026-11-23" and k.endswith(".parquet") for k in data), keys
    for row in rows[:500]:
        raw = good[row["event_id"]]
        assert row["player_id"] == raw["player_id"] and row["platform"] == raw["platform"]
        assert row["ts"].isoformat(timespec="milliseconds").replace("+00:00", "Z") == raw["ts"]
        assert row["amount"] == raw.get("amount") and row["duration_s"] == raw.get("duration_s")


def test_a_rerun_replaces_the_day_and_leaves_other_days_alone(first_run, lake):
    before = lake.table("warehouse/events_clean").sort_by("event_id")
    quarantine_before = Counter(r["raw"] for r in lake.table("warehouse/events_quarantine").to_pylist())
    other_day = io.BytesIO()
    pq.write_table(before.slice(0, 1).drop_columns("dt"), other_day)
    other_key = "warehouse/events_clean/dt=2026-11-22/part-0.parquet"
    lake.client.put_object(Bucket=lake.bucket, Key=other_key, Body=other_day.getvalue())

    again = _ingest(lake, DAY, "rerun")

    assert {k: again[k] for k in ("raw_lines", "clean", "duplicates", "quarantined", "quarantined_by_reason")} == {
        k: first_run[k] for k in ("raw_lines", "clean", "duplicates", "quarantined", "quarantined_by_reason")
    }
    after = lake.table("warehouse/events_clean")
    today = after.filter(ds.field("dt") == "2026-11-23").sort_by("event_id")
    assert today.select(before.column_names).equals(before)  # replaced, not appended
    assert f"{lake.bucket}/{other_key}" in lake.keys("warehouse/events_clean")
    quarantine_after = Counter(r["raw"] for r in lake.table("warehouse/events_quarantine").to_pylist())
    assert quarantine_after == quarantine_before


def test_a_day_of_only_broken_lines_quarantines_them_all_and_empties_its_clean_partition(lake):
    day = date(2026, 11, 24)
    client = lake.client
    valid = {"event_id": "c", "player_id": 1, "session_id": "s", "event_type": "purchase", "platform": "ios"}
    valid |= {"country": "DE", "ts": f"{day}T10:00:00Z", "amount": 0.99}
    out_of_domain = {
        json.dumps(valid | {"event_id": "d", "platform": "switch"}): "invalid_value:platform",
        json.dumps(valid | {"event_id": "e", "amount": -0.99}): "invalid_value:amount",
        json.dumps(valid | {"event_id": "f", "event_type": "levelup"}): "invalid_value:event_type",
    }
    # A truncated line, text, a blank line, an object missing nearly everything, a JSON array, then values of the
    # right type outside their domain.
    broken = ['{"event_id": "a", "player_id": ', "not json", "", '{"event_id": "b"}', "[1, 2]", *out_of_domain]
    client.put_object(Bucket=lake.bucket, Key=f"raw/events/dt={day}/part-00000.jsonl", Body="\n".join(broken) + "\n")
    stale = io.BytesIO()
    pq.write_table(pa.table({"event_id": ["stale"]}), stale)
    client.put_object(Bucket=lake.bucket, Key=f"warehouse/events_clean/dt={day}/old.parquet", Body=stale.getvalue())
    other_days_before = Counter(r["dt"] for r in lake.table("warehouse/events_quarantine").to_pylist())

    summary = _ingest(lake, day, "broken")

    assert summary["clean"] == 0 and summary["duplicates"] == 0 and summary["quarantined"] == len(broken)
    assert summary["quarantined_by_reason"] == {"malformed": 4, "missing_required:player_id": 1} | dict.fromkeys(
        out_of_domain.values(), 1
    )
    assert not [k for k in lake.keys("warehouse/events_clean") if f"dt={day}" in k]
    rows = lake.table("warehouse/events_quarantine").to_pylist()
    assert Counter(r["dt"] for r in rows) == other_days_before + Counter({day.isoformat(): len(broken)})
    expected = dict.fromkeys(broken[:5], "malformed") | {'{"event_id": "b"}': "missing_required:player_id"}
    expected |= out_of_domain
    assert {r["raw"]: r["reason"] for r in rows if r["dt"] == day.isoformat()} == expected


@pytest.mark.parametrize("option", ["--raw", "--output", "--quarantine"])
def test_a_path_outside_the_cache_is_refused_before_spark_starts(option, capsys, tmp_path):
    argv = {
        "--raw": "webhdfs://127.0.0.1:1/raw/events/dt=2026-11-23",
        "--output": "webhdfs://127.0.0.1:1/warehouse/events_clean",
        "--quarantine": "webhdfs://127.0.0.1:1/warehouse/events_quarantine",
    }
    argv[option] = f"file://{tmp_path}/elsewhere"

    with pytest.raises(SystemExit) as exited:
        parse_args([*(x for pair in argv.items() for x in pair), "--date", "2026-11-23"])

    assert exited.value.code == 2
    assert f"{option} must be a webhdfs:// URI" in capsys.readouterr().err
