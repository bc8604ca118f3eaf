"""The raw telemetry generator: seeded, Zipf-skewed, realistic sessions, and exactly the defects it claims."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from datetime import UTC, date, datetime

import numpy as np
import pytest

from spark_jobs.telemetry import (
    EVENT_TYPES,
    NUMERIC_FIELDS,
    PLATFORMS,
    REQUIRED_BY_TYPE,
    REQUIRED_FIELDS,
    day_window,
)
from spark_jobs.telemetry.generator import (
    DEFECT_MIX,
    Defect,
    generate_day,
    generate_labelled_day,
    main,
    write_day_to_s3,
)

DAY = date(2026, 11, 23)


def _ts(record: dict) -> datetime:
    return datetime.fromisoformat(record["ts"])


@pytest.fixture(scope="module")
def labelled() -> list[tuple[str, Defect | None]]:
    return list(generate_labelled_day(DAY, 20_000, seed=5, defect_rate=0.03))


def test_the_same_seed_gives_the_same_lines_and_another_seed_others():
    first = list(generate_day(DAY, 3_000, seed=42))
    assert first == list(generate_day(DAY, 3_000, seed=42))
    assert first != list(generate_day(DAY, 3_000, seed=43))
    assert len(first) == 3_000


def test_every_defect_kind_is_planted_in_its_share(labelled):
    kinds = Counter(defect for _, defect in labelled)
    assert len(labelled) == 20_000
    for kind, share in DEFECT_MIX.items():
        assert kinds[kind] == round(20_000 * 0.03 * share), kind
    assert kinds[None] == 20_000 - sum(kinds[k] for k in DEFECT_MIX)


def test_good_lines_are_json_objects_that_follow_the_contract(labelled):
    start, end = day_window(DAY)
    for line, defect in labelled:
        if defect is not None:
            continue
        record = json.loads(line)
        for field in REQUIRED_FIELDS + REQUIRED_BY_TYPE.get(record["event_type"], ()):
            assert record.get(field) is not None, (field, line)
        assert record["event_type"] in EVENT_TYPES
        assert record["platform"] in PLATFORMS
        assert isinstance(record["player_id"], int)
        assert _ts(record).date() == DAY and start <= _ts(record) < end
        assert ("amount" in record) == (record["event_type"] == "purchase")
        assert record.get("amount", 0) >= 0
        assert ("duration_s" in record) == (record["event_type"] == "session_end")


def test_each_defective_line_breaks_the_contract_the_way_its_label_says(labelled):
    good_lines = Counter(line for line, defect in labelled if defect is None)
    start, end = day_window(DAY)
    for line, defect in labelled:
        if defect is None:
            continue
        if defect is Defect.DUPLICATE:
            assert good_lines[line] == 1, "a duplicate copies one good line exactly"
            continue
        if defect is Defect.MALFORMED:
            with pytest.raises(ValueError):
                json.loads(line)
            continue
        record = json.loads(line)
        if defect is Defect.MISSING_REQUIRED:
            required = REQUIRED_FIELDS + REQUIRED_BY_TYPE.get(record.get("event_type"), ())
            assert any(record.get(f) is None for f in required), line
        elif defect is Defect.CLOCK_SKEW:
            assert not start <= _ts(record) < end, line
        elif defect is Defect.BAD_TYPE:
            text_numbers = [f for f in NUMERIC_FIELDS if isinstance(record.get(f), str)]
            assert text_numbers or not isinstance(record["ts"], str), line


def test_player_activity_is_zipf_skewed(labelled):
    per_player = Counter(json.loads(line)["player_id"] for line, defect in labelled if defect is None)
    events = np.array(sorted(per_player.values(), reverse=True))
    top = events[: max(1, events.size // 100)].sum() / events.sum()
    bottom_half = events[events.size // 2 :].sum() / events.sum()
    # Uniform activity would give the top 1% about 1% of the events and the bottom half about half.
    assert top > 0.15
    assert bottom_half < 0.15


def test_sessions_open_with_session_start_and_close_with_session_end_after_their_length(labelled):
    sessions: dict[str, list[dict]] = defaultdict(list)
    for line, defect in labelled:
        if defect is None:
            record = json.loads(line)
            sessions[record["session_id"]].append(record)
    complete = 0
    for records in sessions.values():
        records.sort(key=_ts)
        assert len({r["player_id"] for r in records}) == 1  # a session belongs to one player
        kinds = [r["event_type"] for r in records]
        assert kinds.count("session_start") <= 1 and kinds.count("session_end") <= 1
        if kinds[0] == "session_start" and kinds[-1] == "session_end":
            complete += 1
            length = (_ts(records[-1]) - _ts(records[0])).total_seconds()
            assert records[-1]["duration_s"] == pytest.approx(length, abs=1.0)
    # Defects and duplicates touch a few percent of lines: nearly every session is whole.
    assert complete > 0.7 * len(sessions)


def test_a_million_events_take_well_under_a_minute():
    started = time.monotonic()
    count = sum(1 for _ in generate_day(DAY, 1_000_000, seed=1))
    elapsed = time.monotonic() - started
    assert count == 1_000_000
    assert elapsed < 30, f"{elapsed:.1f}s"


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        list(generate_day(DAY, -1))
    with pytest.raises(ValueError):
        list(generate_day(DAY, 100, defect_rate=0.9))
    with pytest.raises(ValueError):
        list(generate_day(DAY, 5, defect_rate=0.1))  # too few lines for one of each defect
    assert list(generate_day(DAY, 0)) == []
    assert len(list(generate_day(DAY, 5, defect_rate=0.0))) == 5


def test_write_day_to_s3_writes_the_day_as_jsonl_files_in_arrival_order(s3_client, bucket):
    upload = write_day_to_s3(s3_client, bucket, "raw/events/", DAY, 2_001, seed=9, files=3)

    assert upload.uri == f"s3://{bucket}/raw/events/dt=2026-11-23/"
    assert upload.keys == tuple(f"raw/events/dt=2026-11-23/part-{i:05d}.jsonl" for i in range(3))
    bodies = [s3_client.get_object(Bucket=bucket, Key=key)["Body"].read().decode() for key in upload.keys]
    assert all(body.endswith("\n") for body in bodies)
    assert [body.count("\n") for body in bodies] == [667, 667, 667]
    assert "".join(bodies).splitlines() == list(generate_day(DAY, 2_001, seed=9))
    assert upload.lines == 2_001 and upload.bytes == sum(len(b.encode()) for b in bodies)


def test_the_command_line_writes_a_day_to_the_bucket(s3_emulator, s3_client, bucket, monkeypatch, capsys):
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}.items():
        monkeypatch.setenv(name, value)
    argv = ["--date", "2026-11-23", "--events", "500", "--endpoint-url", s3_emulator.endpoint_url]
    argv += ["--bucket", bucket, "--prefix", "raw/events", "--files", "2"]

    assert main(argv) == 0

    listed = s3_client.list_objects_v2(Bucket=bucket, Prefix="raw/events/dt=2026-11-23/")
    assert sorted(o["Key"] for o in listed["Contents"]) == [
        "raw/events/dt=2026-11-23/part-00000.jsonl",
        "raw/events/dt=2026-11-23/part-00001.jsonl",
    ]
    assert "wrote 500 lines" in capsys.readouterr().out
    # The timestamps are UTC: a day's good lines never leave it.
    body = s3_client.get_object(Bucket=bucket, Key="raw/events/dt=2026-11-23/part-00000.jsonl")["Body"].read()
    first = json.loads(body.splitlines()[0])
    assert _ts(first).tzinfo is not None and _ts(first).astimezone(UTC).date() == DAY
