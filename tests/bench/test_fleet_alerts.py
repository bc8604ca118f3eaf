"""The fleet-day alerting replay: its parts on their own, then a small fleet through the whole pipeline (promtool,
Prometheus, Alertmanager) with the generated configuration of ``infra/monitoring/generated/``."""

from __future__ import annotations

import subprocess
from typing import Any

from bench import fleet_alerts
from bench.alerting import engine, first_generation, notify
from bench.alerting.fleet import FleetPlan, build_fleet
from bench.alerting.incidents import Incident, IncidentKind

RULE = engine.AlertRule("Test", "x", for_seconds=120, keep_firing_for_seconds=0, labels={"severity": "critical"})


def _matrix(*steps: int, start: float = 0, step: float = 60) -> list[dict[str, object]]:
    return [{"metric": {"__name__": "x", "instance": "a"}, "values": [[start + s * step, "1"] for s in steps]}]


def test_an_alert_fires_after_its_for_and_resolves_at_the_first_evaluation_without_it():
    (firing,) = engine.alert_states(RULE, _matrix(0, 1, 2, 3, 4), 0, 600, 60)

    assert (firing.start, firing.end) == (120, 300)
    assert dict(firing.labels) == {"alertname": "Test", "instance": "a", "severity": "critical"}


def test_an_alert_pending_shorter_than_its_for_never_fires():
    assert engine.alert_states(RULE, _matrix(0, 1, 3, 4, 6, 7), 0, 600, 60) == []


def test_keep_firing_for_bridges_a_gap_shorter_than_it():
    rule = engine.AlertRule("Test", "x", 0, 120, {})

    (firing,) = engine.alert_states(rule, _matrix(0, 1, 3, 4), 0, 600, 60)

    assert (firing.start, firing.end) == (0, 420)


def test_recording_rules_come_in_passes_that_read_only_earlier_records():
    groups = [
        {
            "rules": [
                {"record": "b:second", "expr": "avg_over_time(a:first[1h])"},
                {"record": "a:first", "expr": "sum(rate(x_total[5m]))"},
                {"record": "c:third", "expr": "1 - b:second / 2"},
            ]
        }
    ]

    passes = engine.recording_passes(groups)

    assert [[r["record"] for r in p] for p in passes] == [["a:first"], ["b:second"], ["c:third"]]


def test_scaled_alertmanager_config_divides_every_timer_and_points_every_webhook_at_the_counter():
    config: dict[str, Any] = {
        "route": {"receiver": "r", "group_by": ["alertname"], "routes": [{"receiver": "p", "repeat_interval": "1h"}]},
        "receivers": [{"name": "r", "webhook_configs": [{"url": "http://elsewhere"}]}, {"name": "p"}],
    }

    scaled = notify.scaled_config(config, 600, "http://127.0.0.1:1/notify")

    root = scaled["route"]
    assert (root["group_wait"], root["group_interval"], root["repeat_interval"]) == ("50ms", "500ms", "24000ms")
    assert root["routes"][0]["repeat_interval"] == "6000ms"
    assert scaled["global"]["resolve_timeout"] == "500ms"
    assert scaled["receivers"][0]["webhook_configs"][0]["url"] == "http://127.0.0.1:1/notify"
    assert config["route"].get("group_wait") is None  # the original is left alone


def test_first_generation_rules_are_one_group_per_host_that_promtool_accepts(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text(first_generation.rule_file(["10.0.0.4", "10.0.0.5"]))

    # Its linter calls the copies duplicates, as it does in every hand-copied rule file; Prometheus loads them.
    argv = ["promtool", "check", "rules", "--lint=none", str(path)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 23 rules found" in done.stdout


def test_a_per_host_rule_for_many_hosts_keeps_each_host_apart():
    rule = first_generation.PER_HOST[0]

    assert rule.expr_for("10.0.0.4") == 'up{job="lakecache-hosts",instance="10.0.0.4:9870"} == 0'
    assert rule.expr_for_hosts(["10.0.0.4", "10.0.1.5"]) == (
        'up{job="lakecache-hosts",instance=~"10\\\\.0\\\\.0\\\\.4:9870|10\\\\.0\\\\.1\\\\.5:9870"} == 0'
    )


def test_the_fleet_follows_the_autoscaler_and_is_the_same_for_the_same_seed():
    plan = FleetPlan(instances=120, start=300, minutes=240, preroll=60, incidents=())

    first, again = build_fleet(plan), build_fleet(plan)

    assert abs(first.started_during_replay() - 120) <= first.scale * 8
    assert [(h.start, h.end) for h in first.hosts] == [(h.start, h.end) for h in again.hosts]
    running = [sum(h.running(m) for h in first.hosts) for m in range(plan.start, plan.end)]
    assert max(running) > 3 * min(running)  # the morning peak


def test_a_small_fleet_day_pages_each_incident_and_nothing_for_churn(tmp_path):
    section = fleet_alerts.run(False, smoke=True, work_dir=tmp_path / "work", img_dir=tmp_path / "img")

    first = section.results["outcomes"][fleet_alerts.FIRST]
    generated = section.results["outcomes"][fleet_alerts.GENERATED_CONFIG]
    assert generated["paged"] == ["redis_down", "s3_slowdown"]
    assert generated["churn_pages"] == 0
    assert generated["minutes_to_page"]["redis_down"] <= 5  # its 2 minutes of for, then group_wait
    assert first["notifications"] > 10 * generated["notifications"]
    assert first["churn_pages"] > 0  # terminated hosts left in the static list
    assert section.targets["alert_incidents_paged"] == 2
    assert (tmp_path / "img" / "fleet_alerts.png").stat().st_size > 0
    assert section.command == "python -m bench.run --only fleet_alerts"


def test_three_workers_crashing_while_the_autoscaler_drains_one_are_paged(tmp_path, monkeypatch):
    crash = (Incident(IncidentKind.WORKER_CRASH, 410, 440, "3 cache workers crash", hosts=3),)
    monkeypatch.setattr(
        fleet_alerts,
        "plan_for",
        lambda full, smoke: FleetPlan(instances=50, start=330, minutes=120, preroll=60, incidents=crash),
    )

    section = fleet_alerts.run(False, smoke=True, work_dir=tmp_path / "work", img_dir=tmp_path / "img")

    assert section.results["outcomes"][fleet_alerts.GENERATED_CONFIG]["paged"] == ["worker_crash"]
