"""Issue #15's headline figure: a fleet day's alerts under the first generation's configuration and the generated one.

About 1,000 hosts start and terminate with the autoscaler's peaks over 24 hours, carry the day's ETL load and suffer
five incidents (``bench.alerting.incidents.DAY``). Their metrics, minute by minute, are backfilled into a Prometheus
TSDB twice: the day as it happened and its churn-only twin (the same day without the incidents). On each,
Prometheus's engine evaluates both configurations' rules (``bench.alerting.engine``); the day's alerts then go
through a real Alertmanager per configuration, 24 hours in about ``SPEEDUP``-fold compressed time, to a webhook that
records every notification (``bench.alerting.notify``). ``bench.alerting.scoring`` says which incidents each
configuration paged and what it paged for churn alone.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from bench import plots, report
from bench.alerting import engine, first_generation, notify, scoring
from bench.alerting.fleet import DAY_START, Fleet, FleetPlan, build_fleet
from bench.alerting.incidents import DAY, SMOKE, Incident
from bench.alerting.series import View, write_series, write_up
from bench.measured import fresh_work_dir, measured_section
from bench.section import Section
from infra.monitoring.servers import ALERTMANAGER_CONFIG, Alertmanager
from infra.monitoring.standards import duration

NAME = "fleet_alerts"
ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "infra" / "monitoring" / "generated"
SPEEDUP = 600.0
"""A day in 144 s of Alertmanager's time."""
FIRST, GENERATED_CONFIG = "first generation", "generated"
RUNNING_EVERY = 5
"""Minutes between the samples of hosts running kept in the results (for the plot)."""


@dataclass(frozen=True)
class GeneratedConfig:
    """What the replay takes from ``infra/monitoring/generated/``."""

    groups: list[dict[str, Any]]
    evaluation_interval: float
    external_labels: dict[str, str]
    alertmanager: dict[str, Any]

    @classmethod
    def load(cls, directory: Path) -> GeneratedConfig:
        """Read the generated Prometheus configuration, its rule files and Alertmanager's configuration."""
        prometheus = yaml.safe_load((directory / "prometheus" / "prometheus.yml").read_text())
        settings = prometheus.get("global", {})
        files = [directory / "prometheus" / f for f in prometheus.get("rule_files", [])]
        return cls(
            engine.load_groups(files),
            engine.parse_duration(settings.get("evaluation_interval", "1m")),
            {k: str(v) for k, v in (settings.get("external_labels") or {}).items()},
            yaml.safe_load((directory / "alertmanager" / "alertmanager.yml").read_text()),
        )


def generated_version(directory: Path) -> str:
    """The commit that last changed ``directory``, and whether the working tree changes it further."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    commit = git("log", "-1", "--format=%h", "--", ".") or "uncommitted"
    return commit + (" with uncommitted changes" if git("status", "--porcelain", "--", ".") else "")


def _log(message: str) -> None:
    print(f"bench: {NAME}: {message}", file=sys.stderr, flush=True)


def plan_for(full: bool, smoke: bool) -> FleetPlan:
    """The full day (``full`` changes nothing: the day is the figure), or the smoke test's two hours and 50 hosts."""
    del full
    if smoke:
        return FleetPlan(instances=50, start=330, minutes=150, preroll=60, incidents=SMOKE)
    return FleetPlan(incidents=DAY)


def _static_hosts(fleet: Fleet) -> list[str]:
    """The first generation's host list: every host running at 00:00 or booted since (its rules are copied per host)."""
    plan = fleet.plan
    return [h.address for h in fleet.hosts if h.start < plan.end and (h.end is None or h.end > plan.start)]


def evaluate_day(
    fleet: Fleet, generated: GeneratedConfig, work: Path, *, with_incidents: bool
) -> dict[str, list[engine.Firing]]:
    """Backfill one variant of the day and evaluate both configurations' alerts on it."""
    variant = work / ("day" if with_incidents else "churn-only")
    data = variant / "data"
    data.mkdir(parents=True)
    began = time.monotonic()
    samples = 0
    for name, write in (
        ("series.om", lambda p: write_series(fleet, p, with_incidents=with_incidents)),
        ("up-discovered.om", lambda p: write_up(fleet, p, View.DISCOVERED, with_incidents=with_incidents)),
        ("up-static.om", lambda p: write_up(fleet, p, View.STATIC, with_incidents=with_incidents)),
    ):
        path = variant / name
        samples += write(path)
        engine.backfill(path, data)
        path.unlink()
    _log(f"{variant.name}: {samples} samples backfilled in {time.monotonic() - began:.0f} s")
    plan = fleet.plan
    t0 = DAY_START.timestamp()
    first, start, end = t0 + plan.first * 60 + 30, t0 + plan.start * 60 + 30, t0 + plan.end * 60 - 30
    with engine.QueryEngine(data, variant / "prometheus.log") as prometheus:
        began = time.monotonic()
        passes = engine.backfill_records(prometheus, generated.groups, first, end, generated.evaluation_interval)
        _log(f"{variant.name}: recording rules in {passes} passes, {time.monotonic() - began:.0f} s")
        began = time.monotonic()
        rules = engine.alerting_rules(generated.groups)
        ours = engine.evaluate_alerts(
            prometheus, rules, start, end, generated.evaluation_interval, generated.external_labels
        )
        baseline = engine.evaluate_alerts(
            prometheus,
            first_generation.rules_for_evaluation(_static_hosts(fleet)),
            start,
            end,
            first_generation.EVALUATION_INTERVAL,
        )
        _log(f"{variant.name}: alerts evaluated in {time.monotonic() - began:.0f} s")
    return {GENERATED_CONFIG: ours, FIRST: baseline}


async def _replay_all(
    configs: dict[str, dict[str, Any]],
    firings: dict[str, list[engine.Firing]],
    work: Path,
    clock_span: tuple[float, float],
) -> dict[str, list[notify.Notification]]:
    """Every configuration's alerts through its own Alertmanager at once, on one clock."""
    hooks = {name: notify.Webhook() for name in configs}
    managers: dict[str, Alertmanager] = {}
    try:
        for name, config in configs.items():
            await hooks[name].start()
            folder = work / "alertmanager" / name.replace(" ", "-")
            path = folder / "config" / ALERTMANAGER_CONFIG
            path.parent.mkdir(parents=True)
            path.write_text(yaml.safe_dump(notify.scaled_config(config, SPEEDUP, hooks[name].url), sort_keys=False))
            managers[name] = Alertmanager(folder / "config", folder / "state")
            managers[name].start()
        clock = notify.Clock(clock_span[0], clock_span[1], SPEEDUP, time.time() + notify.LEAD)
        await asyncio.gather(*(notify.replay(managers[n].url, firings[n], clock) for n in configs))
        await asyncio.sleep(1.0)  # the last group's notification in flight
        return {name: notify.notifications(hooks[name], clock) for name in configs}
    finally:
        for manager in managers.values():
            manager.stop()
        for hook in hooks.values():
            await hook.stop()


def run(
    full: bool,
    *,
    smoke: bool = False,
    work_dir: Path | None = None,
    img_dir: Path = report.IMG_DIR,
    generated_dir: Path = GENERATED,
) -> Section:
    """Replay the fleet day under both configurations; the section with its table, plot and targets."""
    work = fresh_work_dir(NAME, work_dir)
    plan = plan_for(full, smoke)
    generated = GeneratedConfig.load(generated_dir)
    began = time.monotonic()
    fleet = build_fleet(plan)
    _log(f"{fleet.started_during_replay()} hosts ({fleet.scale} per simulated node), {len(plan.incidents)} incidents")
    day = evaluate_day(fleet, generated, work, with_incidents=True)
    twin = evaluate_day(fleet, generated, work, with_incidents=False)
    t0 = DAY_START.timestamp()
    span = (t0 + plan.start * 60, t0 + plan.end * 60)
    configs = {FIRST: first_generation.alertmanager_config("http://replaced"), GENERATED_CONFIG: generated.alertmanager}
    _log(f"replaying through Alertmanager, {plan.minutes * 60 / SPEEDUP:.0f} s per configuration (both at once)")
    sent = asyncio.run(_replay_all(configs, day, work, span))
    hours = math.ceil(plan.minutes / 60)
    outcomes = {
        name: scoring.score(name, sent[name], day[name], twin[name], plan.incidents, span[0], plan.start, hours)
        for name in configs
    }
    results = _results(fleet, outcomes, time.monotonic() - began)
    results["generated_version"] = generated_version(generated_dir)
    title, link = plots.fleet_alerts(results, img_dir / "fleet_alerts.png")
    markdown = _markdown(results, plan.incidents) + f"\n\n![{title}]({link})\n"
    return measured_section(
        NAME,
        "Alerting on a fleet day: first generation against generated configuration",
        full=full,
        markdown=markdown,
        results=results,
        targets={
            "alert_notifications_reduction": results["reduction"],
            "alert_incidents_paged": len(outcomes[GENERATED_CONFIG].paged),
            "alert_churn_pages": outcomes[GENERATED_CONFIG].churn_pages,
        },
    )


def _results(fleet: Fleet, outcomes: dict[str, scoring.Outcome], seconds: float) -> dict[str, Any]:
    plan = fleet.plan
    first, ours = outcomes[FIRST], outcomes[GENERATED_CONFIG]
    running = [sum(1 for h in fleet.hosts if h.running(m)) for m in range(plan.start, plan.end)]
    every = RUNNING_EVERY
    drains = [(h.drain, h.end) for h in fleet.hosts if h.drain is not None and h.end is not None]
    shadowed = sum(1 for m in range(plan.start, plan.end) if any(d <= m and e > m - 15 for d, e in drains))
    return {
        "hosts": fleet.started_during_replay(),
        "hosts_per_simulated_node": fleet.scale,
        "hosts_running_at_most": max(running),
        "hosts_running_at_least": min(running),
        "hosts_running_every": every,
        "hosts_running": running[::every],
        "start_minute": plan.start,
        "minutes": plan.minutes,
        "incidents": [
            {
                "kind": i.kind.value,
                "start": i.start,
                "end": i.end,
                "title": i.title,
                "hosts": list(fleet.victims.get(i.kind, ())),
            }
            for i in plan.incidents
        ],
        "drain_shadow": shadowed / plan.minutes,
        "speedup": SPEEDUP,
        "outcomes": {name: asdict(o) for name, o in outcomes.items()},
        "reduction": round(first.notifications / max(1, ours.notifications), 1),
        "seconds": round(seconds),
    }


def _markdown(results: dict[str, Any], incidents: tuple[Incident, ...]) -> str:
    outcomes = results["outcomes"]
    first, ours = outcomes[FIRST], outcomes[GENERATED_CONFIG]
    rows = [
        [
            name,
            str(o["notifications"]),
            str(o["pages"]),
            str(o["alerts_fired"]),
            f"{len(o['paged'])} of {len(incidents)}",
            f"{len(o['notified'])} of {len(incidents)}",
            str(o["churn_pages"]),
        ]
        for name, o in outcomes.items()
    ]
    table = report.markdown_table(
        [
            "configuration",
            "notifications",
            "pages",
            "alerts fired",
            "incidents paged",
            "incidents notified",
            "churn pages",
        ],
        rows,
        "lrrrrrr",
    )
    per_incident = []
    for incident in incidents:
        cells = [f"{incident.clock} {incident.kind.value}: {incident.title}"]
        for o in outcomes.values():
            if incident.kind.value in o["paged"]:
                alerts = ", ".join(o["incident_alerts"].get(incident.kind.value, []))
                cells.append(f"paged after {o['minutes_to_page'][incident.kind.value]:g} min ({alerts})")
            elif incident.kind.value in o["notified"]:
                cells.append("ticket only")
            else:
                cells.append("**missed**")
        per_incident.append(cells)
    incident_table = report.markdown_table(["incident", *outcomes], per_incident, "lll")
    noisiest = {
        name: ", ".join(f"{a} {n}" for a, n in sorted(o["by_alert"].items(), key=lambda kv: -kv[1])[:6])
        for name, o in outcomes.items()
    }
    churn = {
        name: ", ".join(f"{a} {n}" for a, n in sorted(o["churn_page_alerts"].items(), key=lambda kv: -kv[1])) or "none"
        for name, o in outcomes.items()
    }
    return "\n".join(
        [
            "A fleet day replayed through Prometheus's rule engine and a real Alertmanager: "
            f"**{first['notifications']}** notifications with the first generation's configuration, "
            f"**{ours['notifications']}** with the generated one (**{results['reduction']:g}x** fewer). "
            "The generated configuration paged "
            f"{len(ours['paged'])} of the {len(incidents)} incidents ({', '.join(ours['paged']) or 'none'}) and paged "
            f"{ours['churn_pages']} times for churn alone; the first generation paged {len(first['paged'])} "
            f"({', '.join(first['paged']) or 'none'}) and {first['churn_pages']} times for churn alone.",
            "",
            table,
            incident_table,
            f"Pages for churn alone, by alert: first generation {churn[FIRST]}; generated {churn[GENERATED_CONFIG]}. "
            f"Noisiest alerts (notifications carrying them): first generation {noisiest[FIRST]}; generated "
            f"{noisiest[GENERATED_CONFIG]}.",
            "",
            _method(results, incidents),
        ]
    )


def _method(results: dict[str, Any], incidents: tuple[Incident, ...]) -> str:
    per_host = "; ".join(
        f"`{r.name}` `{r.expr_for('HOST')}` for {r.for_} ({r.severity})" for r in first_generation.PER_HOST
    )
    single = "; ".join(
        f"`{r.name}` `{r.expr}` for {duration(r.for_seconds)} ({r.labels['severity']})" for r in first_generation.SINGLE
    )
    return "\n".join(
        [
            "**The day.** "
            f"{results['hosts']} hosts run over the day, {results['hosts_per_simulated_node']} for each node of the "
            "autoscaler's simulated Tuesday (`lakecache_airflow.scaling.simulate`, the deployed policy: morning ETL "
            "peak, office hours, evening reports, the reactive part), plus the Auto Scaling group's replacements (1% "
            f"of the hosts an hour); at most {results['hosts_running_at_most']} and at least "
            f"{results['hosts_running_at_least']} at once. A worker is draining within any 15 minutes for "
            f"{results['drain_shadow']:.0%} of the day. Every host runs a cache worker and a Spark worker; their "
            "metrics, minute by minute, are what the rules read (`bench/alerting/series.py`): requests and their "
            "latency histogram (a new worker starts cold and reads from S3), S3 attempts by outcome, the disk tier "
            "between its watermarks (0.90 and 0.75), staged bytes published every 20-40 minutes, membership, Redis, "
            "Spark's cores, the Airflow bridge's DAG timestamps. Incidents: "
            + "; ".join(f"{i.clock} {i.title}" for i in incidents)
            + ".",
            "",
            f"The generated configuration is `infra/monitoring/generated/` at {results['generated_version']}.",
            "",
            "**Evaluation.** The series are backfilled (`promtool tsdb create-blocks-from openmetrics`) twice: the "
            "day, and its churn-only twin (the same fleet, load and random draws without the incidents). A Prometheus "
            "serves queries over each; the generated recording rules are backfilled by `promtool tsdb "
            "create-blocks-from rules` in dependency order, and every alerting rule's expression is evaluated by "
            "range queries at its configuration's evaluation interval (generated: 30 s; first generation: 1 m), "
            "with `for` and `keep_firing_for` applied as the rule manager does. OpenMetrics cannot carry stale "
            "markers, so the Prometheus runs with a 59 s lookback over minute samples: a series that stops is gone "
            "at the next evaluation, as a stale marker makes it. An alert is caused by an incident when the same "
            "alert is not firing at that moment of the twin.",
            "",
            "**Notification.** Each configuration's alerts are posted to its own Alertmanager (Debian's 0.25) as they "
            "fire and resolve, the day compressed "
            f"{results['speedup']:g} times (24 h in {86400 / results['speedup']:.0f} s); every group_wait, "
            "group_interval, repeat_interval and resolve_timeout of the configuration is divided by the same "
            "factor, mechanically (`bench.alerting.notify.scaled_config`), and every receiver's webhook points at a "
            "counter. A notification is one webhook call; a page is one carrying a firing critical alert.",
            "",
            "**The first generation** (`bench/alerting/first_generation.py`), as written by hand: static host lists "
            "(pruned at 00:00, then only added to, so a terminated host stays a target with `up` 0), these rules "
            f"copied into a group per host: {per_host}; and once: {single}. Alertmanager: `group_by: ['...']`, "
            "default timers (30s, 5m, 4h), critical to the pager and the rest to mail, no inhibition.",
        ]
    )
