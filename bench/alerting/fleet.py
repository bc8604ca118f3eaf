"""Which hosts run when over a fleet day: the autoscaler's own simulated day, scaled up to a fleet.

``lakecache_airflow.scaling.simulate`` replays a working day of ETL, report and ad-hoc load against the deployed
scaling policy (morning ETL peak, office hours, evening reports, the reactive part on top). Its node count per
minute, times ``FleetPlan.scale``, is the fleet's size: when it rises, hosts boot; when it falls, hosts are drained
and terminated. On top of that the Auto Scaling group replaces a few hosts an hour (health checks, reclaimed spot
capacity). Every host runs a cache worker and a Spark worker. ``build_fleet`` picks the scale that makes about
``FleetPlan.instances`` distinct hosts run during the replayed window. Deterministic for a seed.

Minutes count from the replayed day's 00:00 (``DAY_START``); the simulator's clock is read as that day's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bench.alerting.incidents import DAY, Incident, IncidentKind
from lakecache_airflow.scaling import simulate
from lakecache_airflow.scaling.policy import PolicyConfig

DAY_START = datetime(2026, 11, 24, tzinfo=UTC)
"""00:00 of the replayed day: the simulator's second day (a Tuesday, with its unannounced afternoon backfill)."""
SIMULATED_DAY = 1
"""Which of the simulator's days is replayed (0 is Monday)."""
SIMULATOR_SEED = 7
"""The simulator's default seed: the day is the one docs/autoscaling.md shows."""
DRAIN_MINUTES = (2, 6)
"""A drain hands the worker's pages and staging over before the host terminates: 2 to 5 minutes."""


@dataclass(frozen=True)
class FleetPlan:
    """How big a fleet day is and what goes wrong in it."""

    instances: int = 1000
    """Distinct hosts that run during the replayed window (about: the scale is a whole number of steps)."""
    start: int = 0
    """Minute of the day the replay begins."""
    minutes: int = 1440
    """Length of the replay."""
    preroll: int = 360
    """Minutes of history before ``start``: the 6-hour windows of the burn-rate alerts read them."""
    incidents: tuple[Incident, ...] = DAY
    seed: int = 15
    replacements_per_hour: float = 0.01
    """Fraction of the running hosts the Auto Scaling group replaces each hour."""

    @property
    def first(self) -> int:
        """First minute with data."""
        return self.start - self.preroll

    @property
    def end(self) -> int:
        """Minute after the replay's last."""
        return self.start + self.minutes


@dataclass
class Host:
    """One instance: a cache worker on ``address:9870`` and a Spark worker on ``address:8081``."""

    index: int
    start: int
    drain: int | None = None
    """Minute its drain begins (the autoscaler scales in, or the group replaces it)."""
    end: int | None = None
    """Minute it terminates; None if it outlives the replay."""

    @property
    def address(self) -> str:
        """Its private IP."""
        return f"10.0.{self.index // 250}.{self.index % 250 + 4}"

    @property
    def worker_id(self) -> str:
        """Its cache worker's identity."""
        return f"w-{self.index:04d}"

    def running(self, minute: int) -> bool:
        """True while the host exists (booted, not terminated)."""
        return self.start <= minute and (self.end is None or minute < self.end)

    def serving(self, minute: int) -> bool:
        """True while its workers serve: joined and not draining."""
        return self.start + 2 <= minute and (self.drain is None or minute < self.drain)


@dataclass
class Fleet:
    """The hosts of a fleet day and the load they carry, per minute from ``plan.first``."""

    plan: FleetPlan
    scale: int
    hosts: list[Host]
    nodes: list[int]
    """The simulator's node count."""
    busy: list[float]
    """Fraction of the fleet's cores the jobs keep busy."""
    waiting: list[int]
    """Spark applications waiting for cores at the master."""
    victims: dict[IncidentKind, tuple[int, ...]] = field(default_factory=dict)
    """Host indices each incident strikes."""

    def at(self, minute: int) -> int:
        """Index of ``minute`` in the per-minute lists."""
        return minute - self.plan.first

    def started_during_replay(self) -> int:
        """Distinct hosts that run at some minute of the replayed window."""
        return sum(1 for h in self.hosts if h.start < self.plan.end and (h.end is None or h.end > self.plan.start))


def build_fleet(plan: FleetPlan) -> Fleet:
    """The fleet day of ``plan``: the scale closest to ``plan.instances`` distinct hosts, and its incidents' hosts."""
    nodes, busy, waiting = _simulated_day(plan)
    best: Fleet | None = None
    for scale in range(1, 400):
        fleet = Fleet(plan, scale, _lifecycle(plan, nodes, scale), nodes, busy, waiting)
        if best is None or abs(fleet.started_during_replay() - plan.instances) < abs(
            best.started_during_replay() - plan.instances
        ):
            best = fleet
        if fleet.started_during_replay() >= plan.instances:
            break
    assert best is not None
    best.victims = _victims(plan, best.hosts)
    return best


def _simulated_day(plan: FleetPlan) -> tuple[list[int], list[float], list[int]]:
    days = SIMULATED_DAY + 2  # the preroll may reach into the day before, the replay past midnight
    jobs = simulate.generate_jobs(days, SIMULATOR_SEED)
    outcome = simulate.run(
        "schedule + reactive", jobs, days * 1440, policy=PolicyConfig.from_dict(simulate.SIMULATED_POLICY)
    )
    demand = simulate.demand_nodes(jobs, days * 1440)
    offset = SIMULATED_DAY * 1440
    window = range(offset + plan.first, offset + plan.end)
    nodes = [outcome.nodes[m] for m in window]
    busy = [min(1.0, demand[m] / max(1, outcome.nodes[m])) for m in window]
    waiting = [outcome.waiting[m] for m in window]
    return nodes, busy, waiting


def _lifecycle(plan: FleetPlan, nodes: list[int], scale: int) -> list[Host]:
    rng = random.Random(plan.seed)
    hosts: list[Host] = []
    serving: list[Host] = []

    def boot(minute: int) -> None:
        host = Host(len(hosts), minute)
        hosts.append(host)
        serving.append(host)

    def retire(minute: int, host: Host) -> None:
        serving.remove(host)
        host.drain = minute
        host.end = minute + rng.randrange(*DRAIN_MINUTES)

    for _ in range(scale * nodes[0]):
        boot(plan.first - rng.randrange(30, 600))
    for offset, count in enumerate(nodes):
        minute = plan.first + offset
        target = max(1, scale * count)
        while len(serving) < target:
            boot(minute)
        if len(serving) > target:
            for host in rng.sample(serving, len(serving) - target):
                retire(minute, host)
        if rng.random() < len(serving) * plan.replacements_per_hour / 60:
            retire(minute, rng.choice(serving))
            boot(minute)
    return hosts


def _victims(plan: FleetPlan, hosts: list[Host]) -> dict[IncidentKind, tuple[int, ...]]:
    """For each incident that strikes hosts: that many hosts serving from an hour before it to 30 minutes after."""
    rng = random.Random(plan.seed + 1)
    chosen: dict[IncidentKind, tuple[int, ...]] = {}
    for incident in plan.incidents:
        if not incident.hosts:
            continue
        steady = [
            h.index
            for h in hosts
            if h.serving(incident.start - 60) and (h.drain is None or h.drain > incident.end + 30)
        ]
        if len(steady) < incident.hosts:
            raise ValueError(f"fewer than {incident.hosts} hosts run through {incident.kind} at {incident.clock}")
        chosen[incident.kind] = tuple(sorted(rng.sample(steady, incident.hosts)))
    return chosen
