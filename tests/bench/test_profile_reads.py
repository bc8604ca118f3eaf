"""``python -m bench.profile_reads`` samples a loaded worker and names the functions that hold its CPU."""

from __future__ import annotations

from bench import profile_reads

PREFIX = 'process 7:"python -m cache_service";thread (0x1);run (server.py:90)'
COLLAPSED = "\n".join(
    [
        f"{PREFIX};data_received (webhdfs_protocol.py:40);answer (warm_reads.py:77) 6",
        f"{PREFIX};data_received (webhdfs_protocol.py:40) 3",
        f"{PREFIX};render (metrics.py:70) 1",
    ]
)


def test_summary_ranks_functions_by_self_time_with_their_total():
    table = profile_reads.summarise(COLLAPSED, top=2)

    rows = [line for line in table.splitlines() if line.startswith("| ") and "`" in line]
    assert table.startswith("10 samples")
    assert rows == [
        "| 60.0 | 60.0 | `answer (warm_reads.py)` |",
        "| 30.0 | 90.0 | `data_received (webhdfs_protocol.py)` |",
    ]


def test_profile_of_a_loaded_worker_shows_the_warm_path(tmp_path, capsys):
    assert profile_reads.main(["--seconds", "2", "--top", "40", "--work-dir", str(tmp_path)]) == 0

    out = capsys.readouterr().out
    assert "warm_reads.py" in out and "data_received (connection.py)" in out
    assert (tmp_path / "warm_reads.txt").stat().st_size > 0


def test_profile_section_reports_the_table_and_no_targets(tmp_path):
    section = profile_reads.run(False, work_dir=tmp_path)

    assert section.name == "profile" and section.targets == {}
    assert "| self % | total % | function |" in section.markdown
    assert section.command.startswith("python -m bench.profile_reads")
