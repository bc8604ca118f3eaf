"""Replay days of generated load against four sizings and report node-hours and SLA misses.

    python -m lakecache_airflow.scaling.simulate --days 3 --out docs/autoscaling.md

The load is a working week's: a morning ETL batch, an evening reporting batch, ad-hoc queries following a diurnal
curve, and one unannounced backfill on the second day; every job has a waiting-time SLA. The sizings:

- **static peak**: the smallest fixed size with no job waiting beyond its SLA (found by search);
- **static average**: a fixed size for the average load;
- **schedule only**: the policy's peak windows, reactive part off;
- **schedule + reactive**: the policy as deployed (``SIMULATED_POLICY``), evaluated every 10 minutes like the
  ``cluster_autoscale`` DAG.

Nodes take ``boot_minutes`` to join; nodes taken away drain (finish their jobs) first and count until then, as with
Spark's decommissioning. The report replaces the part of ``--out`` between the ``simulate:begin``/``end`` markers
(the rest of the document is left alone) and draws ``img/autoscaling.png`` next to it.
"""

from __future__ import annotations

import argparse
import math
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from lakecache_airflow.scaling.base import ClusterState
from lakecache_airflow.scaling.demand import Demand
from lakecache_airflow.scaling.policy import LastAction, PolicyConfig

BEGIN, END = "<!-- simulate:begin -->", "<!-- simulate:end -->"
ZONE = "Europe/Paris"
START = datetime(2026, 11, 23, tzinfo=ZoneInfo(ZONE))  # a Monday
CORES_PER_NODE = 4

#: The policy the simulation evaluates: the same file format as production (see docs/autoscaling.md).
SIMULATED_POLICY: dict[str, object] = {
    "min_nodes": 2,
    "max_nodes": 32,
    "timezone": ZONE,
    "cooldown": "10m",
    "scale_in_cooldown": "30m",
    "hysteresis": 0.25,
    "max_step": 8,
    "scale_lead": "30m",
    "warmup_lead": "45m",
    "reactive": {"enabled": True, "cores_per_node": CORES_PER_NODE, "target_utilization": 0.85, "app_cores": 4},
    "windows": [
        {
            "name": "morning-etl",
            "days": "mon-fri",
            "start": "06:00",
            "end": "09:00",
            "target": 14,
            "warmup": ["/warehouse/events"],
        },
        {"name": "office-hours", "days": "mon-fri", "start": "09:00", "end": "17:00", "target": 4},
        {
            "name": "evening-reports",
            "days": "mon-fri",
            "start": "17:00",
            "end": "19:00",
            "target": 8,
            "warmup": ["/warehouse/aggregates"],
        },
    ],
}


@dataclass(frozen=True)
class Job:
    """One application: arrives at minute ``arrival``, needs ``cores`` (on one node) for ``minutes``."""

    kind: str
    arrival: int
    cores: int
    minutes: int
    sla: int  # minutes it may wait before it starts


@dataclass
class Node:
    """A simulated worker node."""

    ready_at: int
    draining: bool = False
    running: list[tuple[int, int]] = field(default_factory=list)  # (ends at, cores)

    def free(self) -> int:
        """Cores not running a job."""
        return CORES_PER_NODE - sum(cores for _, cores in self.running)


@dataclass
class Outcome:
    """What one sizing did over the run."""

    name: str
    node_minutes: int = 0
    waits: list[int] = field(default_factory=list)
    missed: int = 0
    nodes: list[int] = field(default_factory=list)  # per minute
    waiting: list[int] = field(default_factory=list)  # jobs waiting, per minute
    changes: int = 0
    warmups: int = 0

    @property
    def node_hours(self) -> float:
        """Node-hours used, booting and draining nodes included."""
        return self.node_minutes / 60

    def percentile(self, q: float) -> int:
        """The ``q`` quantile of the waits, in minutes."""
        ordered = sorted(self.waits)
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] if ordered else 0


def generate_jobs(days: int, seed: int) -> list[Job]:
    """The load of ``days`` days from Monday 00:00 local time; the same for the same seed."""
    rng = random.Random(seed)
    jobs: list[Job] = []
    for day in range(days):
        base = day * 1440
        weekday = day % 7 < 5
        if weekday:
            # The morning ETL: daily pipelines released between 06:00 and 07:00, one node each.
            for _ in range(rng.randint(34, 42)):
                jobs.append(Job("etl", base + 360 + rng.randrange(60), 4, _duration(rng, 40, 0.35), sla=30))
            # Evening reports: 17:00-18:00.
            for _ in range(rng.randint(18, 24)):
                jobs.append(Job("report", base + 1020 + rng.randrange(60), 4, _duration(rng, 25, 0.3), sla=30))
        # Ad-hoc queries: a diurnal curve, quiet at night, busiest mid-afternoon.
        for minute in range(1440):
            hour = minute / 60
            rate = 0.01 + (0.09 if weekday else 0.03) * max(0.0, math.sin(math.pi * (hour - 8) / 11)) ** 2
            if rng.random() < rate:
                jobs.append(Job("adhoc", base + minute, rng.choice((1, 2, 2, 4)), _duration(rng, 12, 0.5), sla=15))
        if day == 1:
            # An unannounced backfill at 14:10 on Tuesday: no window knows about it.
            for _ in range(10):
                jobs.append(Job("backfill", base + 850 + rng.randrange(10), 4, _duration(rng, 30, 0.2), sla=30))
    return sorted(jobs, key=lambda j: (j.arrival, j.kind))


def _duration(rng: random.Random, median: float, sigma: float) -> int:
    return max(2, round(rng.lognormvariate(math.log(median), sigma)))


def run(
    name: str,
    jobs: Sequence[Job],
    minutes: int,
    *,
    fixed: int | None = None,
    policy: PolicyConfig | None = None,
    boot_minutes: int = 4,
    every: int = 10,
) -> Outcome:
    """Replay ``jobs`` for ``minutes`` with a fixed size, or with ``policy`` evaluated every ``every`` minutes."""
    outcome = Outcome(name)
    nodes = [Node(ready_at=0) for _ in range(fixed if fixed is not None else (policy.min_nodes if policy else 1))]
    queue: deque[Job] = deque()
    arrivals = deque(jobs)
    last = LastAction()
    for now in range(minutes):
        for node in nodes:
            node.running = [(end, cores) for end, cores in node.running if end > now]
        nodes = [n for n in nodes if not (n.draining and not n.running)]
        while arrivals and arrivals[0].arrival <= now:
            queue.append(arrivals.popleft())
        if policy is not None and now % every == 0:
            last = _evaluate(policy, now, nodes, queue, last, outcome, boot_minutes)
        _schedule(now, nodes, queue, outcome)
        outcome.node_minutes += len(nodes)
        outcome.nodes.append(len(nodes))
        outcome.waiting.append(len(queue))
    for job in queue:  # still waiting when the run ends
        outcome.waits.append(minutes - job.arrival)
        outcome.missed += minutes - job.arrival > job.sla
    return outcome


def _evaluate(
    policy: PolicyConfig,
    now: int,
    nodes: list[Node],
    queue: deque[Job],
    last: LastAction,
    outcome: Outcome,
    boot_minutes: int,
) -> LastAction:
    serving = [n for n in nodes if not n.draining]
    state = ClusterState(backend="simulated", nodes=sum(n.ready_at <= now for n in serving), desired=len(serving))
    demand = Demand(
        used_cores=sum(cores for n in nodes for _, cores in n.running),
        waiting_cores=sum(j.cores for j in queue),
        waiting_apps=len(queue),
    )
    decision = policy.decide(START + timedelta(minutes=now), state, demand, last)
    if decision.target > len(serving):
        nodes.extend(Node(ready_at=now + boot_minutes) for _ in range(decision.target - len(serving)))
    elif decision.target < len(serving):
        # Idle (or booting) nodes go first, then the least busy: the fewest tasks to wait for.
        for node in sorted(serving, key=lambda n: (len(n.running), -n.ready_at))[: len(serving) - decision.target]:
            node.draining = True
    outcome.changes += decision.action != "hold"
    outcome.warmups += bool(decision.warmup)
    return last.after(decision, applied=True, warmed=True)


def _schedule(now: int, nodes: list[Node], queue: deque[Job], outcome: Outcome) -> None:
    """FIFO with backfill: each waiting job, oldest first, starts on the first ready node with room for it."""
    still: deque[Job] = deque()
    ready = [n for n in nodes if n.ready_at <= now and not n.draining]
    while queue:
        job = queue.popleft()
        node = next((n for n in ready if n.free() >= job.cores), None)
        if node is None:
            still.append(job)
            continue
        node.running.append((now + job.minutes, job.cores))
        wait = now - job.arrival
        outcome.waits.append(wait)
        outcome.missed += wait > job.sla
    queue.extend(still)


def static_peak(jobs: Sequence[Job], minutes: int, *, high: int = 64) -> Outcome:
    """The smallest fixed size with no SLA miss (binary search; more nodes never miss more)."""
    low = 1
    while low < high:
        middle = (low + high) // 2
        if run("probe", jobs, minutes, fixed=middle).missed == 0:
            high = middle
        else:
            low = middle + 1
    return run(f"static peak ({low} nodes)", jobs, minutes, fixed=low)


def simulate(days: int = 3, seed: int = 7) -> tuple[list[Outcome], list[Job]]:
    """Run the four sizings on ``days`` days of load; returns their outcomes (static peak first) and the jobs."""
    minutes = days * 1440
    jobs = generate_jobs(days, seed)
    policy = PolicyConfig.from_dict(SIMULATED_POLICY)
    scheduled = PolicyConfig.from_dict({**SIMULATED_POLICY, "reactive": {"enabled": False}})
    average = max(1, math.ceil(sum(j.cores * j.minutes for j in jobs) / minutes / CORES_PER_NODE))
    outcomes = [
        static_peak(jobs, minutes),
        run(f"static average ({average} nodes)", jobs, minutes, fixed=average),
        run("schedule only", jobs, minutes, policy=scheduled),
        run("schedule + reactive", jobs, minutes, policy=policy),
    ]
    return outcomes, jobs


def demand_nodes(jobs: Sequence[Job], minutes: int) -> list[float]:
    """Nodes the jobs would occupy per minute if each started on arrival: the load curve."""
    delta = [0] * (minutes + 1)
    for job in jobs:
        if job.arrival < minutes:
            delta[job.arrival] += job.cores
            delta[min(minutes, job.arrival + job.minutes)] -= job.cores
    load, total = [], 0
    for minute in range(minutes):
        total += delta[minute]
        load.append(total / CORES_PER_NODE)
    return load


def table(outcomes: Sequence[Outcome], jobs: Sequence[Job], days: int) -> str:
    """The Markdown report: one row per sizing."""
    peak = outcomes[0].node_hours
    rows = [
        "| sizing | node-hours | vs static peak | jobs waiting beyond SLA | p95 wait (min) | worst wait (min) | "
        "scaling changes |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for o in outcomes:
        saving = f"{(o.node_hours - peak) / peak:+.0%}" if o is not outcomes[0] else "—"
        rows.append(
            f"| {o.name} | {o.node_hours:.0f} | {saving} | {o.missed} of {len(jobs)} | {o.percentile(0.95)} | "
            f"{max(o.waits, default=0)} | {o.changes} |"
        )
    kinds = sorted({j.kind for j in jobs})
    counts = ", ".join(f"{sum(j.kind == k for j in jobs)} {k}" for k in kinds)
    return (
        f"{days} days from Monday 00:00 ({ZONE}), {len(jobs)} jobs ({counts}); SLA: ETL, report and backfill jobs "
        f"start within 30 minutes, ad-hoc queries within 15. Nodes have {CORES_PER_NODE} cores and take 4 minutes "
        "to join; the policy is evaluated every 10 minutes.\n\n" + "\n".join(rows) + "\n"
    )


def plot(outcomes: Sequence[Outcome], jobs: Sequence[Job], minutes: int, path: Path) -> None:
    """Nodes over time per sizing over the load curve, and the waiting jobs of the dynamic sizings."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a file only
    import matplotlib.pyplot as plt

    hours = [m / 60 for m in range(minutes)]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(12, 7), sharex=True, height_ratios=(3, 1))
    top.fill_between(
        hours, demand_nodes(jobs, minutes), color="0.85", label="load: nodes busy if every job started on arrival"
    )
    styles = ("--", ":", "-", "-")
    for outcome, style in zip(outcomes, styles, strict=True):
        top.plot(hours, outcome.nodes, style, linewidth=1.4, label=f"{outcome.name}: {outcome.node_hours:.0f} node-h")
    top.set_ylabel("nodes")
    top.legend(loc="upper right", fontsize=8)
    top.set_title("Cluster size per sizing over the generated load")
    for outcome in outcomes[2:]:
        bottom.plot(hours, outcome.waiting, linewidth=1, label=outcome.name)
    bottom.set_ylabel("jobs waiting")
    bottom.set_xlabel(f"hours since Monday 00:00 ({ZONE})")
    bottom.legend(loc="upper right", fontsize=8)
    for axis in (top, bottom):
        axis.set_xticks(range(0, minutes // 60 + 1, 6))
        axis.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(out: Path, days: int, seed: int) -> list[Outcome]:
    """Simulate, draw ``img/autoscaling.png`` next to ``out`` and put the table between the markers of ``out``."""
    outcomes, jobs = simulate(days, seed)
    image = out.parent / "img" / "autoscaling.png"
    plot(outcomes, jobs, days * 1440, image)
    section = (
        f"{BEGIN}\n<!-- generated by: python -m lakecache_airflow.scaling.simulate --days {days} --seed {seed} "
        f"--out {out.as_posix()} -->\n\n{table(outcomes, jobs, days)}\n"
        f"![Cluster size per sizing]({image.relative_to(out.parent).as_posix()})\n{END}"
    )
    text = out.read_text() if out.exists() else "# Autoscaling\n\n"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: simulate and write the report."""
    parser = argparse.ArgumentParser(
        prog="python -m lakecache_airflow.scaling.simulate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--days", type=int, default=3, help="days of load to replay (from a Monday)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated load")
    parser.add_argument("--out", type=Path, default=Path("docs/autoscaling.md"), help="the Markdown file to update")
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error("--days must be at least 1")
    outcomes = write_report(args.out, args.days, args.seed)
    jobs = sum(1 for _ in outcomes[0].waits)
    for outcome in outcomes:
        print(f"{outcome.name:28} {outcome.node_hours:8.0f} node-h  {outcome.missed:4d} of {jobs} jobs beyond SLA")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
