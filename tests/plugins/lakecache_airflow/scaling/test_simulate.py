"""The simulator: schedule + reactive beats static peak sizing by 40% with no job waiting beyond its SLA."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakecache_airflow.scaling.simulate import BEGIN, END, generate_jobs, main, run, simulate, table
from tests.plugins.airflow_home import REPO_ROOT


@pytest.fixture(scope="module")
def three_days():
    return simulate(days=3, seed=7)


def test_schedule_and_reactive_saves_at_least_40_percent_of_static_peak_with_no_sla_miss(three_days) -> None:
    outcomes, jobs = three_days
    peak, _, _, dynamic = outcomes
    assert peak.missed == 0
    assert dynamic.missed == 0, f"{dynamic.missed} jobs waited beyond their SLA"
    assert dynamic.node_hours <= 0.6 * peak.node_hours, (dynamic.node_hours, peak.node_hours)
    assert len(dynamic.waits) == len(jobs)  # every job ran


def test_the_baselines_show_what_the_policy_avoids(three_days) -> None:
    outcomes, jobs = three_days
    peak, average, scheduled, _ = outcomes
    # Average sizing is cheap and misses SLAs; the schedule alone misses the unannounced backfill.
    assert average.node_hours < peak.node_hours and average.missed > 0
    assert scheduled.missed > 0
    # Static peak is the smallest fixed size without a miss: one node fewer misses.
    size = peak.nodes[0]
    assert run("smaller", jobs, 3 * 1440, fixed=size - 1).missed > 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_savings_hold_on_other_generated_weeks(seed: int) -> None:
    peak, _, _, dynamic = simulate(days=3, seed=seed)[0]
    assert dynamic.missed == 0 and dynamic.node_hours <= 0.6 * peak.node_hours


def test_the_load_is_the_same_for_the_same_seed() -> None:
    assert generate_jobs(2, seed=5) == generate_jobs(2, seed=5)
    assert generate_jobs(2, seed=5) != generate_jobs(2, seed=6)


def test_the_report_replaces_only_its_section_and_draws_the_plot(tmp_path: Path) -> None:
    doc = tmp_path / "docs" / "autoscaling.md"
    doc.parent.mkdir()
    doc.write_text(f"# Autoscaling\n\nHand-written intro.\n\n{BEGIN}\nold table\n{END}\n\n## Configure\n\nMore text.\n")
    assert main(["--days", "1", "--seed", "3", "--out", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("# Autoscaling\n\nHand-written intro.\n\n") and text.endswith(
        "\n## Configure\n\nMore text.\n"
    )
    assert "old table" not in text and "| schedule + reactive |" in text
    assert "![Cluster size per sizing](img/autoscaling.png)" in text
    assert (doc.parent / "img" / "autoscaling.png").read_bytes().startswith(b"\x89PNG")
    main(["--days", "1", "--seed", "3", "--out", str(doc)])
    assert doc.read_text() == text  # deterministic: a second run changes nothing


def test_the_documented_report_is_what_the_simulator_produces(three_days) -> None:
    outcomes, jobs = three_days
    documented = (REPO_ROOT / "docs" / "autoscaling.md").read_text()
    assert table(outcomes, jobs, 3) in documented, "docs/autoscaling.md is stale: rerun the simulator"
    assert (REPO_ROOT / "docs" / "img" / "autoscaling.png").exists()
