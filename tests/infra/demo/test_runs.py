"""The run's log tells the counter sampler when a task starts or ends, even when a line arrives in two writes."""

from __future__ import annotations

from infra.demo.runs import TaskMarkers

START = b"2026-12-04T18:55:46.783056Z [info     ] [DAG TEST] starting task_id=warm_inputs map_index=-1\n"
END = b"2026-12-04T18:56:02.519329Z [info     ] [DAG TEST] end task task_id=warm_inputs map_index=-1\n"
OTHER = b"2026-12-04T18:55:47.277036Z [info     ] [DAG TEST] running trigger in line\n"


def test_each_start_or_end_of_a_task_is_reported_once_and_nothing_else_is(tmp_path):
    log = tmp_path / "airflow-cold.log"
    markers = TaskMarkers(log)

    assert markers() is False  # no log yet
    log.write_bytes(OTHER)
    assert markers() is False
    with log.open("ab") as out:
        out.write(START + OTHER)
    assert markers() is True
    assert markers() is False  # already reported
    with log.open("ab") as out:
        out.write(END[:40])
    assert markers() is False  # half a line: not yet
    with log.open("ab") as out:
        out.write(END[40:])
    assert markers() is True


def test_a_new_log_in_place_of_the_old_one_is_read_from_its_start(tmp_path):
    log = tmp_path / "airflow-warm.log"
    log.write_bytes(OTHER * 3)
    markers = TaskMarkers(log)
    assert markers() is False

    log.write_bytes(START)  # shorter than what was read: truncated and rewritten

    assert markers() is True
