"""A policy is validated once, at load: a bad one is refused with a one-line message naming what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lakecache_airflow.scaling.policy import CronSpec, PolicyConfig, PolicyConfigError

BASE: dict[str, Any] = {"min_nodes": 1, "max_nodes": 10}


def refused(data: dict[str, Any]) -> str:
    with pytest.raises(PolicyConfigError) as raised:
        PolicyConfig.from_dict(data)
    message = str(raised.value)
    assert "\n" not in message
    return message


def window(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "target": 4, "start": "06:00", "end": "09:00", **fields}


def test_min_above_max_is_refused() -> None:
    assert refused({"min_nodes": 5, "max_nodes": 3}) == "min_nodes (5) is above max_nodes (3)"


def test_overlapping_windows_with_different_targets_are_refused() -> None:
    message = refused(
        {**BASE, "windows": [window("etl", target=6), window("bi", start="08:30", end="10:00", target=3)]}
    )
    assert message.startswith("windows 'etl' (target 6) and 'bi' (target 3) overlap, e.g. at ")
    assert message.endswith("08:30 UTC: give them the same target or move one")


def test_windows_overlapping_only_across_time_zones_are_refused() -> None:
    # 09:00-10:00 in Paris is 08:00-09:00 UTC in winter: it meets 08:30-09:30 UTC.
    paris = window("paris", start="09:00", end="10:00", timezone="Europe/Paris", target=5)
    utc = window("utc", start="08:30", end="09:30", timezone="UTC", target=2)
    assert "overlap" in refused({**BASE, "windows": [paris, utc]})


def test_a_cron_window_overlapping_a_clock_window_is_refused() -> None:
    clock = window("weekdays", days="mon-fri", start="06:00", end="09:00", target=6)
    cron = {"name": "monday-report", "cron": "30 8 * * mon", "duration": "1h", "target": 2}
    assert "overlap" in refused({**BASE, "windows": [clock, cron]})


def test_overlapping_windows_that_agree_and_windows_that_touch_are_accepted() -> None:
    config = PolicyConfig.from_dict(
        {
            **BASE,
            "windows": [
                window("a", days="mon-fri", target=6),
                window("b", days="mon-fri", start="08:00", end="10:00", target=6),  # overlaps a, same target
                window("c", days="mon-fri", start="10:00", end="12:00", target=2),  # starts when b ends
                window("d", days="sat-sun", start="08:00", end="11:00", target=3),  # days a..c do not run
            ],
        }
    )
    assert [w.name for w in config.windows] == ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    ("cron", "why"),
    [
        ("0 6 * *", "a cron has 5 fields"),
        ("0 6 * * * *", "a cron has 5 fields"),
        ("61 6 * * *", "minute 61 is out of 0-59"),
        ("0 24 * * *", "hour 24 is out of 0-23"),
        ("0 6 0 * *", "day-of-month 0 is out of 1-31"),
        ("0 6 * 13 *", "month 13 is out of 1-12"),
        ("0 6 * * 8", "day-of-week 8 is out of 0-7"),
        ("0 6 * * funday", "day-of-week 'funday' is not a number or a name"),
        ("0 6 * * 5-1", "day-of-week range '5-1' runs backwards"),
        ("*/0 6 * * *", "minute step '0' is not a positive number"),
        ("@daily", "a cron has 5 fields"),
    ],
)
def test_a_bad_cron_is_refused_with_the_field_at_fault(cron: str, why: str) -> None:
    message = refused({**BASE, "windows": [{"name": "w", "cron": cron, "duration": "1h", "target": 2}]})
    assert message.startswith(f"window 'w': bad cron '{cron}': {why}")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**BASE, "timezone": "Mars/Olympus_Mons"}, "timezone: unknown time zone 'Mars/Olympus_Mons'"),
        ({**BASE, "windows": [window("w", timezone="Europe/Pariss")]}, "window 'w': timezone: unknown time zone"),
        ({**BASE, "windows": [window("w", timezone="")]}, "window 'w': timezone: an IANA time zone name"),
        ({**BASE, "timezone": "../etc/passwd"}, "timezone: unknown time zone"),
    ],
)
def test_a_bad_time_zone_is_refused(data: dict[str, Any], message: str) -> None:
    assert refused(data).startswith(message)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"max_nodes": 3}, "min_nodes and max_nodes are required"),
        ({"min_nodes": -1, "max_nodes": 3}, "min_nodes must be at least 0, not -1"),
        ({"min_nodes": 1, "max_nodes": 2.5}, "max_nodes must be a whole number, not 2.5"),
        ({**BASE, "max_nodse": 3}, "policy: unknown setting 'max_nodse'"),
        ({**BASE, "cooldown": "ten minutes"}, "cooldown: a duration like '10m' or '1h30m', not 'ten minutes'"),
        ({**BASE, "cooldown": "30m", "scale_in_cooldown": "10m"}, "scale_in_cooldown (10m) is shorter than cooldown"),
        ({**BASE, "hysteresis": 1.5}, "hysteresis must be in [0, 1), not 1.5"),
        ({**BASE, "max_step": 0}, "max_step must be at least 1, not 0"),
        ({**BASE, "dry_run": "yes"}, "dry_run must be true or false, not 'yes'"),
        ({**BASE, "reactive": {"target_utilization": 0}}, "reactive.target_utilization must be in (0, 1], not 0.0"),
        ({**BASE, "reactive": {"cores": 4}}, "reactive: unknown setting 'cores'"),
        ({**BASE, "windows": [window("w", target=11)]}, "window 'w': target 11 is outside [min_nodes, max_nodes]"),
        ({**BASE, "windows": [window("w", start="06:00", end="06:00")]}, "window 'w': start and end are both 06:00"),
        ({**BASE, "windows": [window("w", start="25:00")]}, "window 'w': start: a time of day as HH:MM"),
        ({**BASE, "windows": [window("w", days="weekdays")]}, "window 'w': days: 'weekdays' is not a day"),
        ({**BASE, "windows": [window("w", cron="0 6 * * *")]}, "window 'w': give either days/start/end or cron"),
        ({**BASE, "windows": [{"name": "w", "cron": "0 6 * * *", "target": 2}]}, "window 'w': give days/start/end, or"),
        ({**BASE, "windows": [window("w", warmup=["warehouse"])]}, "window 'w': warmup must be a list of cache paths"),
        ({**BASE, "windows": [window("w"), window("w", days="sat")]}, "two windows are named 'w'"),
        ({**BASE, "windows": [{"target": 2, "start": "06:00", "end": "07:00"}]}, "windows[0]: a name is required"),
        ({**BASE, "windows": {"name": "w"}}, "windows must be a list of tables"),
    ],
)
def test_other_mistakes_are_refused_with_what_is_wrong(data: dict[str, Any], message: str) -> None:
    assert refused(data).startswith(message)


def test_a_policy_file_is_read_and_its_refusals_name_the_file(tmp_path: Path) -> None:
    good = tmp_path / "policy.toml"
    good.write_text(
        'min_nodes = 1\nmax_nodes = 8\ntimezone = "Europe/Paris"\n[backend]\nkind = "asg"\n'
        '[[windows]]\nname = "etl"\ndays = "mon-fri"\nstart = "06:00"\nend = "09:00"\ntarget = 6\n'
    )
    config = PolicyConfig.load(good)
    assert config.windows[0].described == "mon-fri 06:00-09:00 Europe/Paris"
    bad = tmp_path / "bad.toml"
    bad.write_text("min_nodes = 4\nmax_nodes = 2\n")
    with pytest.raises(PolicyConfigError, match=r"bad\.toml: min_nodes \(4\) is above max_nodes \(2\)$"):
        PolicyConfig.load(bad)
    broken = tmp_path / "broken.toml"
    broken.write_text("min_nodes = \n")
    with pytest.raises(PolicyConfigError, match=r"broken\.toml: not valid TOML"):
        PolicyConfig.load(broken)
    with pytest.raises(PolicyConfigError, match="no such policy file"):
        PolicyConfig.load(tmp_path / "missing.toml")


def test_cron_day_fields_follow_crons_either_rule() -> None:
    # Both day fields restricted: a day matches if either does (the 13th, or any Friday).
    cron = CronSpec.parse("0 9 13 * fri")
    from datetime import date

    assert cron.matches_day(date(2026, 11, 13)) and cron.matches_day(date(2026, 11, 20))
    assert not cron.matches_day(date(2026, 11, 19))
    assert CronSpec.parse("0 9 * jan-mar sun,7").weekdays == frozenset({0})
