"""The policy's decisions: windows in their time zones (DST included), reactive demand, pacing, warmups, reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from lakecache_airflow.scaling.base import ClusterState
from lakecache_airflow.scaling.demand import Demand
from lakecache_airflow.scaling.policy import Decision, LastAction, PolicyConfig

PARIS, NEW_YORK = ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York")
IDLE = Demand(used_cores=0, waiting_cores=0)


def policy(**overrides: Any) -> PolicyConfig:
    """A policy with no window and no pacing unless asked: each test adds what it is about."""
    data: dict[str, Any] = {
        "min_nodes": 1,
        "max_nodes": 20,
        "cooldown": "0m",
        "scale_in_cooldown": "0m",
        "hysteresis": 0.0,
        "max_step": 20,
        "scale_lead": "0m",
        "warmup_lead": "30m",
        "reactive": {"cores_per_node": 4, "target_utilization": 1.0},
    }
    data.update(overrides)
    return PolicyConfig.from_dict(data)


def state(nodes: int) -> ClusterState:
    return ClusterState(backend="test", nodes=nodes, desired=nodes)


def decide(
    config: PolicyConfig, when: datetime, nodes: int = 1, demand: Demand | None = IDLE, **kwargs: Any
) -> Decision:
    return config.decide(when, state(nodes), demand, kwargs.pop("last", None), **kwargs)


MORNING = {
    "name": "morning",
    "days": "mon-fri",
    "start": "06:00",
    "end": "09:30",
    "target": 10,
    "timezone": "Europe/Paris",
}


# --- windows -------------------------------------------------------------------------------------------------------


def test_a_window_opens_and_closes_on_the_wall_clock_of_its_time_zone() -> None:
    config = policy(windows=[MORNING])
    monday = datetime(2026, 11, 23, tzinfo=PARIS)  # CET: UTC+1
    assert decide(config, monday.replace(hour=5, minute=59)).target == 1
    opened = decide(config, monday.replace(hour=6))
    assert (opened.action, opened.target, opened.windows) == ("scale_out", 10, ("morning",))
    assert "window 'morning' (mon-fri 06:00-09:30 Europe/Paris) is open: at least 10 nodes" in opened.reasons
    assert decide(config, datetime(2026, 11, 23, 5, 0, tzinfo=UTC)).target == 10  # 06:00 in Paris
    assert decide(config, monday.replace(hour=9, minute=29), nodes=10).target == 10
    assert decide(config, monday.replace(hour=9, minute=30), nodes=10).target == 1


def test_a_window_is_closed_on_the_days_it_does_not_name() -> None:
    config = policy(windows=[MORNING])
    saturday = datetime(2026, 11, 28, 7, 0, tzinfo=PARIS)
    decision = decide(config, saturday)
    assert decision.target == 1 and decision.windows == ()
    assert "no peak window is open: the schedule asks for min_nodes = 1" in decision.reasons


def test_a_window_that_ends_before_it_starts_crosses_midnight_from_its_start_day() -> None:
    night = {"name": "night", "days": "fri", "start": "22:00", "end": "02:00", "target": 6, "timezone": "Europe/Paris"}
    config = policy(windows=[night])
    friday = datetime(2026, 11, 27, tzinfo=PARIS)
    assert decide(config, friday.replace(hour=23)).target == 6
    assert decide(config, friday + timedelta(days=1, hours=1, minutes=59)).target == 6  # Saturday 01:59
    assert decide(config, friday + timedelta(days=1, hours=2), nodes=6).target == 1
    assert decide(config, friday - timedelta(days=1) + timedelta(hours=23)).target == 1  # Thursday 23:00


def test_the_same_local_window_moves_in_utc_across_a_dst_change() -> None:
    config = policy(windows=[MORNING])
    # Paris leaves summer time on Sunday 2026-10-25: 06:00 is 04:00 UTC on the Friday before, 05:00 UTC after.
    assert decide(config, datetime(2026, 10, 23, 4, 0, tzinfo=UTC)).target == 10
    assert decide(config, datetime(2026, 10, 23, 3, 59, tzinfo=UTC)).target == 1
    assert decide(config, datetime(2026, 10, 26, 4, 30, tzinfo=UTC)).target == 1
    assert decide(config, datetime(2026, 10, 26, 5, 0, tzinfo=UTC)).target == 10


def test_a_start_that_does_not_exist_on_a_spring_forward_day_opens_the_window_when_clocks_jump() -> None:
    # New York: 2027-03-14 02:00 EST jumps to 03:00 EDT; a 02:30-04:00 window opens at 03:00 that day.
    early = {"name": "early", "start": "02:30", "end": "04:00", "target": 5, "timezone": "America/New_York"}
    config = policy(windows=[early])
    assert decide(config, datetime(2027, 3, 14, 6, 59, tzinfo=UTC)).target == 1  # 01:59 EST
    assert decide(config, datetime(2027, 3, 14, 7, 0, tzinfo=UTC)).target == 5  # 03:00 EDT
    assert decide(config, datetime(2027, 3, 14, 3, 59, tzinfo=NEW_YORK), nodes=5).target == 5
    assert decide(config, datetime(2027, 3, 14, 4, 0, tzinfo=NEW_YORK), nodes=5).target == 1


def test_a_repeated_hour_on_a_fall_back_day_keeps_a_window_open_through_both() -> None:
    # Paris 2026-10-25: 02:00-03:00 happens twice (CEST then CET); a 02:00-03:00 window is open for both hours.
    config = policy(
        windows=[{"name": "twice", "start": "02:00", "end": "03:00", "target": 3, "timezone": "Europe/Paris"}]
    )
    for utc_hour in (0, 1):  # 02:xx CEST, then 02:xx CET
        assert decide(config, datetime(2026, 10, 25, utc_hour, 30, tzinfo=UTC)).target == 3
    assert decide(config, datetime(2026, 10, 25, 2, 0, tzinfo=UTC), nodes=3).target == 1


def test_a_cron_window_opens_when_its_cron_fires_and_stays_open_for_its_duration() -> None:
    month_end = {"name": "month-end", "cron": "0 18 28-31 * *", "duration": "6h", "target": 8, "timezone": "UTC"}
    config = policy(windows=[month_end])
    assert decide(config, datetime(2026, 11, 30, 18, 0, tzinfo=UTC)).target == 8
    assert decide(config, datetime(2026, 12, 1, 0, 0, tzinfo=UTC), nodes=8).target == 1  # 6h later
    assert decide(config, datetime(2026, 11, 27, 20, 0, tzinfo=UTC)).target == 1


def test_a_windows_target_applies_from_the_scale_lead_before_it_opens() -> None:
    config = policy(windows=[MORNING], scale_lead="15m")
    decision = decide(config, datetime(2026, 11, 23, 5, 45, tzinfo=PARIS))
    assert decision.target == 10
    assert any("opens at 06:00, within the scale lead of 15m" in r for r in decision.reasons)
    assert decide(config, datetime(2026, 11, 23, 5, 44, tzinfo=PARIS)).target == 1


# --- warmups -------------------------------------------------------------------------------------------------------


def test_a_warmup_of_the_windows_paths_is_asked_for_once_before_it_opens() -> None:
    config = policy(windows=[{**MORNING, "warmup": ["/warehouse/events", "/warehouse/dims"]}], warmup_lead="30m")
    monday = datetime(2026, 11, 23, tzinfo=PARIS)
    assert decide(config, monday.replace(hour=5, minute=29)).warmup is None
    first = decide(config, monday.replace(hour=5, minute=30))
    assert first.warmup == ("/warehouse/events", "/warehouse/dims")
    assert first.warmup_keys == ("morning@2026-11-23T06:00",)
    warmed = LastAction().after(first, applied=True, warmed=True)
    assert decide(config, monday.replace(hour=5, minute=40), last=warmed).warmup is None
    assert decide(config, monday.replace(hour=7), last=warmed).warmup is None  # open, already warmed
    tuesday = decide(config, monday.replace(hour=5, minute=50) + timedelta(days=1), last=warmed)
    assert tuesday.warmup_keys == ("morning@2026-11-24T06:00",)


def test_a_warmup_that_was_not_started_is_asked_for_again() -> None:
    config = policy(windows=[{**MORNING, "warmup": ["/warehouse/events"]}])
    first = decide(config, datetime(2026, 11, 23, 5, 40, tzinfo=PARIS))
    not_warmed = LastAction().after(first, applied=True, warmed=False)
    assert decide(config, datetime(2026, 11, 23, 5, 50, tzinfo=PARIS), last=not_warmed).warmup == ("/warehouse/events",)


# --- the reactive part ---------------------------------------------------------------------------------------------


def test_waiting_cores_scale_out_to_the_nodes_they_need() -> None:
    decision = decide(
        policy(),
        datetime(2026, 11, 23, 12, tzinfo=UTC),
        nodes=2,
        demand=Demand(used_cores=8, waiting_cores=12, waiting_apps=3),
    )
    assert (decision.action, decision.target) == ("scale_out", 5)
    assert (
        "8 cores busy + 12 waiting (3 applications waiting) = 20 cores: 5 nodes of 4 cores at 100% utilization"
        in decision.reasons
    )


def test_waiting_applications_without_a_core_count_count_for_app_cores_each() -> None:
    config = policy(reactive={"cores_per_node": 4, "target_utilization": 1.0, "app_cores": 8})
    decision = decide(config, datetime(2026, 11, 23, 12, tzinfo=UTC), demand=Demand(used_cores=0, waiting_apps=2))
    assert decision.target == 4


def test_a_load_inside_the_hysteresis_band_changes_nothing() -> None:
    config = policy(hysteresis=0.5)
    noon = datetime(2026, 11, 23, 12, tzinfo=UTC)
    # 12 busy cores: 3 nodes would do, but scaling in from 4 needs room for 12 * 1.5 = 18 cores: 5 nodes.
    held = decide(config, noon, nodes=4, demand=Demand(used_cores=12, waiting_cores=0))
    assert (held.action, held.target) == ("hold", 4)
    assert "3 nodes would do but 5 keep the hysteresis margin: holding at 4" in held.reasons
    assert decide(config, noon, nodes=8, demand=Demand(used_cores=12, waiting_cores=0)).target == 5
    assert decide(config, noon, nodes=2, demand=Demand(used_cores=12, waiting_cores=0)).target == 3


def test_cache_pressure_adds_a_node_and_blocks_scale_in() -> None:
    full = Demand(
        used_cores=0, waiting_cores=0, cache_used_bytes=95, cache_capacity_bytes=100, cache_high_watermark=0.9
    )
    decision = decide(policy(), datetime(2026, 11, 23, 12, tzinfo=UTC), nodes=4, demand=full)
    assert (decision.action, decision.target) == ("scale_out", 5)
    assert any(r.startswith("cache at 95% of capacity, at or above its high watermark 90%") for r in decision.reasons)
    off = policy(reactive={"cores_per_node": 4, "target_utilization": 1.0, "cache_pressure": False})
    assert decide(off, datetime(2026, 11, 23, 12, tzinfo=UTC), nodes=4, demand=full).target == 1


def test_without_demand_data_the_policy_holds_rather_than_scaling_in_blind() -> None:
    decision = decide(policy(), datetime(2026, 11, 23, 12, tzinfo=UTC), nodes=6, demand=None)
    assert (decision.action, decision.target) == ("hold", 6)
    assert "no demand data (Spark master unreadable): holding rather than scaling in blind" in decision.reasons


def test_with_the_reactive_part_off_the_schedule_alone_decides() -> None:
    config = policy(windows=[MORNING], reactive={"enabled": False})
    busy = Demand(used_cores=80, waiting_cores=80)
    assert decide(config, datetime(2026, 11, 23, 12, tzinfo=PARIS), nodes=10, demand=busy).target == 1
    assert decide(config, datetime(2026, 11, 23, 7, tzinfo=PARIS), nodes=1, demand=None).target == 10


# --- bounds and pacing ---------------------------------------------------------------------------------------------


def test_targets_are_capped_at_max_nodes_and_raised_to_min_nodes() -> None:
    config = policy(min_nodes=2, max_nodes=6)
    noon = datetime(2026, 11, 23, 12, tzinfo=UTC)
    capped = decide(config, noon, nodes=3, demand=Demand(used_cores=100, waiting_cores=100))
    assert capped.target == 6 and "capped at max_nodes = 6 (50 wanted)" in capped.reasons
    assert decide(config, noon, nodes=3, demand=IDLE).target == 2


def test_a_cluster_outside_the_bounds_is_corrected_at_once_whatever_the_cooldown() -> None:
    config = policy(min_nodes=2, max_nodes=6, cooldown="1h", scale_in_cooldown="1h", max_step=1)
    noon = datetime(2026, 11, 23, 12, tzinfo=UTC)
    just_changed = LastAction(at=noon - timedelta(minutes=1), target=9)
    decision = decide(config, noon, nodes=9, demand=IDLE, last=just_changed)
    assert decision.target == 2
    assert "9 nodes is outside [min_nodes, max_nodes] = [2, 6]: corrected at once" in decision.reasons


def test_a_change_waits_for_the_cooldown_and_a_scale_in_for_the_longer_one() -> None:
    config = policy(cooldown="10m", scale_in_cooldown="30m")
    noon = datetime(2026, 11, 23, 12, tzinfo=UTC)
    last = LastAction(at=noon - timedelta(minutes=9), target=4)
    busy, idle = Demand(used_cores=16, waiting_cores=8), IDLE
    held = decide(config, noon, nodes=4, demand=busy, last=last)
    assert (held.action, held.target) == ("hold", 4)
    assert any(
        r.startswith("cooldown: the last change was at 2026-11-23 11:51 UTC; a change is allowed from 12:01 UTC")
        for r in held.reasons
    )
    assert decide(config, noon + timedelta(minutes=1), nodes=4, demand=busy, last=last).target == 6
    assert decide(config, noon + timedelta(minutes=1), nodes=4, demand=idle, last=last).target == 4
    assert decide(config, noon + timedelta(minutes=21), nodes=4, demand=idle, last=last).target == 1


def test_a_change_larger_than_max_step_is_made_in_steps() -> None:
    config = policy(max_step=3)
    decision = decide(
        config, datetime(2026, 11, 23, 12, tzinfo=UTC), nodes=2, demand=Demand(used_cores=40, waiting_cores=0)
    )
    assert decision.target == 5
    assert "step limit: 8 nodes at once is more than max_step = 3: 5" in decision.reasons


def test_a_dry_run_decision_says_so() -> None:
    config = policy(dry_run=True)
    decision = decide(
        config, datetime(2026, 11, 23, 12, tzinfo=UTC), nodes=2, demand=Demand(used_cores=40, waiting_cores=0)
    )
    assert decision.dry_run and decision.reasons[-1] == "dry run: nothing is changed"
    assert decision.summary() == "scale_out 2 -> 10 (dry run)"
    assert not decide(config, datetime(2026, 11, 23, 12, tzinfo=UTC), dry_run=False).dry_run


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(policy(), datetime(2026, 11, 23, 12))


def test_decisions_and_last_actions_are_json_and_back() -> None:
    config = policy(windows=[{**MORNING, "warmup": ["/warehouse/events"]}])
    decision = decide(config, datetime(2026, 11, 23, 5, 45, tzinfo=PARIS))
    payload = decision.to_json()
    assert payload["warmup"] == ["/warehouse/events"] and payload["action"] == "hold"
    record = LastAction(at=datetime(2026, 11, 23, 11, 0, tzinfo=UTC), target=4).after(
        decision, applied=True, warmed=True
    )
    assert LastAction.from_json(record.to_json()) == record
    assert LastAction.from_json(None) is None
