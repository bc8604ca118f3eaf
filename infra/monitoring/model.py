"""The monitoring spec's types: the platform's services, each with its SLOs, cause alerts and owner; and ``SpecError``.

A spec is data (``spec.toml``, read by ``infra.monitoring.loading.load_spec``); what Prometheus, Alertmanager and
Grafana are given is derived from it by the generators, with the standards of ``infra.monitoring.standards``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class SpecError(ValueError):
    """The spec is invalid; ``problems`` holds one human-readable line per mistake."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid monitoring spec:\n" + "\n".join(f"  - {p}" for p in problems))


class Severity(StrEnum):
    """How urgent an alert is: critical pages, warning opens a ticket, info only shows on dashboards."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class Scope(StrEnum):
    """What an alert is about: the whole service (its labels aggregate over instances) or one instance of it.

    A firing cluster-wide alert silences the same service's per-instance alerts (Alertmanager inhibition)."""

    SERVICE = "service"
    INSTANCE = "instance"


class Discovery(StrEnum):
    """How Prometheus finds a service's targets. None is a host list: instances come and go without a config change.

    ``derived``: the service has no targets of its own; its signals are other services' metrics (S3 as the cache
    sees it, the ETL as Airflow reports it)."""

    CACHE_CLUSTER = "cache_cluster"  # HTTP SD answered by any cache worker from the cluster's membership
    SPARK_MASTER = "spark_master"  # the master itself
    SPARK_WORKERS = "spark_workers"  # HTTP SD from the master's worker list
    AIRFLOW = "airflow"  # file SD written by the deploy, one target group per component
    REDIS_EXPORTER = "redis_exporter"
    DERIVED = "derived"


class SliKind(StrEnum):
    """How an SLO's good and bad events are counted.

    ``events``: counters; the error ratio is ``errors / total`` or ``1 - good / total``.
    ``freshness``: a timestamp of the last success; a moment is good while it is younger than ``max_age``."""

    EVENTS = "events"
    FRESHNESS = "freshness"


class Role(StrEnum):
    """What a series of a test's traffic counts: good events, bad events, or every event (a histogram's count)."""

    GOOD = "good"
    BAD = "bad"
    ALL = "all"


@dataclass(frozen=True)
class ExampleSeries:
    """One concrete series the generated tests feed Prometheus to exercise an SLO, and what it counts."""

    series: str
    role: Role


@dataclass(frozen=True)
class Slo:
    """A service level objective: ``objective`` (e.g. 0.999) of events good over the standard period (30 days).

    ``page`` false: its budget burns open tickets only, never a page (one bad daily event is not an emergency)."""

    name: str
    description: str
    objective: float
    sli: SliKind
    page: bool = True
    total: str = ""
    errors: str = ""
    good: str = ""
    timestamp: str = ""
    max_age: float = 0.0
    examples: tuple[ExampleSeries, ...] = ()
    runbook: str = ""

    @property
    def budget(self) -> float:
        """The error budget: the ratio of bad events the objective allows."""
        return 1.0 - self.objective


@dataclass(frozen=True)
class Scenario:
    """A promtool test of one alert: input series (promtool's expanding notation), and the times to evaluate at.

    ``expect`` lists the extra labels of each alert expected to fire at every time in ``at`` (beyond the alert's
    own); an empty ``expect`` means the alert must stay silent."""

    name: str
    at: tuple[float, ...]
    series: tuple[tuple[str, str], ...]
    expect: tuple[tuple[tuple[str, str], ...], ...] = ()
    interval: float = 60.0


@dataclass(frozen=True)
class CauseAlert:
    """An alert on a cause (a full cache not purging, Redis down...), written as PromQL in the spec.

    ``silences`` names alerts (any service's) that this one makes redundant while it fires: Alertmanager inhibits
    them. ``fires`` and ``quiet`` are its tests: on its incident, and under normal churn."""

    name: str
    expr: str
    severity: Severity
    scope: Scope
    summary: str
    description: str
    runbook: str
    for_seconds: float = 0.0
    silences: tuple[str, ...] = ()
    fires: tuple[Scenario, ...] = ()
    quiet: tuple[Scenario, ...] = ()


@dataclass(frozen=True)
class RecordingRule:
    """A recording rule a service's alerts or dashboards read (``service:measure:aggregation``)."""

    record: str
    expr: str


@dataclass(frozen=True)
class Panel:
    """A graph on the service's dashboard."""

    title: str
    expr: str
    unit: str = "short"
    legend: str = ""


@dataclass(frozen=True)
class Scrape:
    """How Prometheus scrapes a service: where its targets come from and the path of their metrics."""

    discovery: Discovery
    metrics_path: str = "/metrics"
    component: str = ""
    """For ``airflow``: the component (``scheduler``...) whose target group this service keeps."""


@dataclass(frozen=True)
class Service:
    """One service of the platform: who owns it, how it is scraped, what it promises and what breaks it."""

    name: str
    title: str
    description: str
    owner: str
    scrape: Scrape
    slos: tuple[Slo, ...] = ()
    alerts: tuple[CauseAlert, ...] = ()
    records: tuple[RecordingRule, ...] = ()
    panels: tuple[Panel, ...] = ()

    @property
    def job(self) -> str:
        """Its Prometheus job name (the service's name; none for a derived service)."""
        return "" if self.scrape.discovery is Discovery.DERIVED else self.name


@dataclass(frozen=True)
class Team:
    """An owner of services: the receivers its pages and tickets go to are named after it."""

    name: str
    title: str


@dataclass(frozen=True)
class SeverityRoute:
    """What Alertmanager does with one severity: ``notify`` is ``page``, ``ticket`` or ``none``."""

    severity: Severity
    notify: str
    repeat_interval: float


@dataclass(frozen=True)
class Routing:
    """Alertmanager's grouping and timing, and each severity's route."""

    group_by: tuple[str, ...] = ("service", "alertname")
    group_wait: float = 30.0
    group_interval: float = 300.0
    severities: tuple[SeverityRoute, ...] = ()


@dataclass(frozen=True)
class MonitoringSpec:
    """The whole spec: teams, routing and services."""

    teams: tuple[Team, ...]
    routing: Routing
    services: tuple[Service, ...] = field(default_factory=tuple)

    def service(self, name: str) -> Service:
        """The service called ``name``. Raises ``KeyError`` if there is none."""
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)
