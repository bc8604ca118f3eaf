"""Properties of the policy that hold whatever the inputs (hypothesis): bounds, steps, no flapping, windows.

- the target is never below min_nodes nor above max_nodes;
- from within the bounds, a decision never moves more than max_step nodes;
- under constant inputs the size moves one way only, and at most once per cooldown;
- a window is open exactly on its wall-clock hours in its time zone, DST changes included.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lakecache_airflow.scaling.base import ClusterState
from lakecache_airflow.scaling.demand import Demand
from lakecache_airflow.scaling.policy import LastAction, PolicyConfig

ZONES = ("UTC", "Europe/Paris", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "America/Sao_Paulo")
# Days around DST changes (Europe, US, Australia) and ordinary ones.
DAYS = (
    date(2026, 3, 29),
    date(2026, 10, 25),
    date(2026, 3, 8),
    date(2026, 11, 1),
    date(2026, 4, 5),
    date(2026, 10, 4),
    date(2026, 6, 15),
    date(2027, 1, 11),
)
SETTINGS = settings(max_examples=150, deadline=None)


@st.composite
def configs(draw: st.DrawFn, *, windows: bool = True) -> PolicyConfig:
    """A valid policy: bounds, pacing, the reactive part and at most one window."""
    low = draw(st.integers(0, 10))
    high = draw(st.integers(max(low, 1), low + 30))
    cooldown = draw(st.integers(0, 60))
    data: dict[str, Any] = {
        "min_nodes": low,
        "max_nodes": high,
        "cooldown": f"{cooldown}m",
        "scale_in_cooldown": f"{cooldown + draw(st.integers(0, 60))}m",
        "hysteresis": draw(st.floats(0, 0.9)),
        "max_step": draw(st.integers(1, 10)),
        "scale_lead": f"{draw(st.integers(0, 30))}m",
        "reactive": {
            "enabled": draw(st.booleans()),
            "cores_per_node": draw(st.integers(1, 16)),
            "target_utilization": draw(st.floats(0.1, 1.0)),
            "app_cores": draw(st.integers(1, 16)),
            "cache_pressure": draw(st.booleans()),
        },
    }
    if windows and draw(st.booleans()):
        data["windows"] = [draw(window_data(low, high))]
    return PolicyConfig.from_dict(data)


@st.composite
def window_data(draw: st.DrawFn, low: int, high: int) -> dict[str, Any]:
    start = draw(st.integers(0, 24 * 60 - 1))
    length = draw(st.integers(1, 12 * 60))
    end = (start + length) % (24 * 60)
    return {
        "name": "peak",
        "start": f"{start // 60:02d}:{start % 60:02d}",
        "end": f"{end // 60:02d}:{end % 60:02d}",
        "days": draw(st.sampled_from(["daily", "mon-fri", "sat-sun", "wed"])),
        "timezone": draw(st.sampled_from(ZONES)),
        "target": draw(st.integers(low, high)),
        "warmup": ["/warehouse/events"],
    }


moments = st.builds(
    lambda day, minutes, zone: (
        datetime.combine(day, time()).replace(tzinfo=ZoneInfo(zone)) + timedelta(minutes=minutes)
    ),
    st.sampled_from(DAYS) | st.dates(date(2024, 1, 1), date(2034, 12, 31)),
    st.integers(0, 48 * 60),
    st.sampled_from(ZONES),
)
counts = st.integers(0, 10_000)
demands = st.none() | st.builds(
    Demand,
    used_cores=st.none() | counts,
    waiting_cores=st.none() | counts,
    waiting_apps=st.integers(0, 500),
    cache_used_bytes=st.none() | st.integers(0, 10**12),
    cache_capacity_bytes=st.none() | st.integers(0, 10**12),
    cache_high_watermark=st.none() | st.floats(0, 1),
)


def last_actions(around: datetime) -> st.SearchStrategy[LastAction | None]:
    return st.none() | st.builds(
        LastAction,
        at=st.none() | st.integers(-180, 180).map(lambda m: around + timedelta(minutes=m)),
        target=st.none() | st.integers(0, 100),
    )


@SETTINGS
@given(data=st.data(), config=configs(), now=moments, desired=st.integers(0, 200), demand=demands)
def test_the_target_is_always_within_min_and_max(
    data: st.DataObject, config: PolicyConfig, now: datetime, desired: int, demand: Demand | None
) -> None:
    last = data.draw(last_actions(now))
    decision = config.decide(now, ClusterState("test", nodes=desired, desired=desired), demand, last)
    assert config.min_nodes <= decision.target <= config.max_nodes
    assert decision.action == (
        "scale_out" if decision.target > desired else "scale_in" if decision.target < desired else "hold"
    )


@SETTINGS
@given(data=st.data(), config=configs(), now=moments, demand=demands)
def test_from_within_the_bounds_a_decision_moves_at_most_max_step_nodes(
    data: st.DataObject, config: PolicyConfig, now: datetime, demand: Demand | None
) -> None:
    desired = data.draw(st.integers(config.min_nodes, config.max_nodes))
    decision = config.decide(
        now, ClusterState("test", nodes=desired, desired=desired), demand, data.draw(last_actions(now))
    )
    assert abs(decision.target - desired) <= config.max_step


@SETTINGS
@given(
    data=st.data(),
    config=configs(windows=False),
    start=moments,
    demand=demands,
    every=st.integers(1, 20),
    steps=st.integers(5, 60),
)
def test_under_constant_inputs_the_size_moves_one_way_and_at_most_once_per_cooldown(
    data: st.DataObject, config: PolicyConfig, start: datetime, demand: Demand | None, every: int, steps: int
) -> None:
    size = data.draw(st.integers(config.min_nodes, config.max_nodes))
    last: LastAction | None = None
    changes: list[tuple[datetime, int]] = []  # (when, direction)
    for step in range(steps):
        now = start + timedelta(minutes=every * step)
        decision = config.decide(now, ClusterState("test", nodes=size, desired=size), demand, last)
        if decision.target != size:
            changes.append((now, 1 if decision.target > size else -1))
            size = decision.target
        last = (last or LastAction()).after(decision, applied=True, warmed=True)
    assert len({direction for _, direction in changes}) <= 1, f"flapped: {changes}"
    for (before, _), (after, _) in itertools.pairwise(changes):
        assert after - before >= config.cooldown


@SETTINGS
@given(
    zone=st.sampled_from(ZONES),
    day=st.sampled_from(DAYS),
    start=st.integers(0, 24 * 60 - 1),
    length=st.integers(1, 12 * 60),
    offset=st.integers(-24 * 60, 48 * 60),
)
def test_a_window_is_open_exactly_on_its_wall_clock_hours(
    zone: str, day: date, start: int, length: int, offset: int
) -> None:
    end = (start + length) % (24 * 60)
    config = PolicyConfig.from_dict(
        {
            "min_nodes": 1,
            "max_nodes": 50,
            "max_step": 50,
            "scale_lead": "0m",
            "reactive": {"enabled": False},
            "windows": [
                {
                    "name": "peak",
                    "start": f"{start // 60:02d}:{start % 60:02d}",
                    "end": f"{end // 60:02d}:{end % 60:02d}",
                    "timezone": zone,
                    "target": 7,
                }
            ],
        }
    )
    # A wall-clock moment near the window; skipped when it does not exist in the zone (inside a DST gap).
    wall = datetime.combine(day, time()) + timedelta(minutes=start + offset)
    now = wall.replace(tzinfo=ZoneInfo(zone))
    assume(now.astimezone(UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None) == wall)
    minute_of_window = (wall.hour * 60 + wall.minute - start) % (24 * 60)
    expected = 7 if minute_of_window < length else 1
    decision = config.decide(now, ClusterState("test", nodes=1, desired=1), None)
    assert decision.target == expected, decision.reasons
