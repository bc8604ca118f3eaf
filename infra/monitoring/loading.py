"""Reading the monitoring spec (``spec.toml`` beside this module): TOML into the typed model of
``infra.monitoring.model``, every value checked at once. Every mistake is one line of the one ``SpecError`` raised.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from cache_service.units import parse_duration
from infra.airflow import COMPONENTS as AIRFLOW_COMPONENTS
from infra.cache_process import REPO_ROOT
from infra.monitoring.model import (
    CauseAlert,
    Discovery,
    ExampleSeries,
    MonitoringSpec,
    Panel,
    RecordingRule,
    Role,
    Routing,
    Scenario,
    Scope,
    Scrape,
    Service,
    Severity,
    SeverityRoute,
    SliKind,
    Slo,
    SpecError,
    Team,
)
from infra.monitoring.standards import burn_alert_name, burn_alerts

SPEC_PATH = Path(__file__).with_name("spec.toml")
RUNBOOKS = REPO_ROOT / "docs" / "runbooks"
NOTIFY = ("page", "ticket", "none")

_SERVICE_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
_NAME_RULE = "a name is lowercase letters, digits and dashes, starting with a letter"
_ALERT_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_RECORD_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

_E = TypeVar("_E")


def load_spec(path: str | Path = SPEC_PATH, runbooks: Path = RUNBOOKS) -> MonitoringSpec:
    """Read and validate the spec at ``path``; every runbook it names must exist in ``runbooks``.

    Raises ``SpecError`` listing every problem found, or ``FileNotFoundError`` if ``path`` does not exist.
    """
    text = Path(path).read_text()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError([f"{path}: not valid TOML: {exc}"]) from None
    return parse_spec(raw, runbooks)


def parse_spec(raw: dict[str, Any], runbooks: Path = RUNBOOKS) -> MonitoringSpec:
    """The spec in ``raw`` (parsed TOML), validated. Raises ``SpecError`` with one line per mistake."""
    reader = _Reader(runbooks)
    spec = reader.spec(raw)
    reader.check_references(spec)
    if reader.problems:
        raise SpecError(reader.problems)
    return spec


class _Reader:
    """Builds the model from TOML tables, noting each problem instead of stopping at the first."""

    def __init__(self, runbooks: Path) -> None:
        self.runbooks = runbooks
        self.problems: list[str] = []

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    # --- typed values ----------------------------------------------------------------------------------------

    def keys(self, where: str, table: dict[str, Any], required: set[str], optional: set[str]) -> None:
        for key in sorted(set(table) - required - optional):
            self.problem(where, f"unknown key {key!r} (expected one of {sorted(required | optional)})")
        for key in sorted(required - set(table)):
            self.problem(where, f"missing key {key!r}")

    def text(self, where: str, table: dict[str, Any], key: str, default: str = "") -> str:
        value = table.get(key, default)
        if not isinstance(value, str):
            self.problem(f"{where}.{key}", f"expected a string, got {value!r}")
            return default
        return value

    def seconds(self, where: str, table: dict[str, Any], key: str, default: float = 0.0) -> float:
        if key not in table:
            return default
        try:
            return parse_duration(table[key])
        except ValueError as exc:
            self.problem(f"{where}.{key}", str(exc))
            return default

    def choice(self, where: str, value: Any, kind: type[_E], default: _E) -> _E:
        try:
            return kind(value)  # type: ignore[call-arg]
        except ValueError:
            options = [str(m) for m in kind]  # type: ignore[attr-defined]
            self.problem(where, f"expected one of {options}, got {value!r}")
            return default

    def tables(self, where: str, value: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        """The entries of an array of tables, each with where it is (``services.cache.alerts[2]``)."""
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.problem(where, "expected an array of tables ([[...]])")
            return
        for i, item in enumerate(value):
            yield f"{where}[{i}]", item

    def runbook(self, where: str, table: dict[str, Any]) -> str:
        name = self.text(where, table, "runbook")
        if name and not (self.runbooks / f"{name}.md").is_file():
            self.problem(f"{where}.runbook", f"no runbook docs/runbooks/{name}.md")
        return name

    # --- the spec --------------------------------------------------------------------------------------------

    def spec(self, raw: dict[str, Any]) -> MonitoringSpec:
        self.keys("spec", raw, {"teams", "routing", "services"}, set())
        teams = tuple(
            Team(name, self.text(f"teams.{name}", t, "title")) for name, t in self._named("teams", raw.get("teams"))
        )
        routing = self.routing(raw.get("routing", {}))
        services = tuple(self.service(name, s) for name, s in self._named("services", raw.get("services")))
        return MonitoringSpec(teams=teams, routing=routing, services=services)

    def _named(self, where: str, value: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        if not isinstance(value, dict):
            self.problem(where, "expected a table of tables")
            return
        for name, table in value.items():
            if not isinstance(table, dict):
                self.problem(f"{where}.{name}", "expected a table")
                continue
            if not _SERVICE_NAME.match(name):
                self.problem(
                    f"{where}.{name}", "a name is lowercase letters, digits and dashes, starting with a letter"
                )
            yield name, table

    def routing(self, raw: dict[str, Any]) -> Routing:
        self.keys("routing", raw, {"severities"}, {"group_by", "group_wait", "group_interval"})
        group_by = raw.get("group_by", ["service", "alertname"])
        if not isinstance(group_by, list) or not all(isinstance(g, str) for g in group_by):
            self.problem("routing.group_by", f"expected a list of label names, got {group_by!r}")
            group_by = ["service", "alertname"]
        if "instance" in group_by:
            self.problem("routing.group_by", "group by service and alert, not by instance (one page per incident)")
        routes = []
        for name, table in self._named("routing.severities", raw.get("severities", {})):
            where = f"routing.severities.{name}"
            self.keys(where, table, {"notify", "repeat"}, set())
            notify = self.text(where, table, "notify")
            if notify not in NOTIFY:
                self.problem(f"{where}.notify", f"expected one of {list(NOTIFY)}, got {notify!r}")
            severity = self.choice(where, name, Severity, Severity.INFO)
            routes.append(SeverityRoute(severity, notify, self.seconds(where, table, "repeat", 3600.0)))
        missing = set(Severity) - {r.severity for r in routes}
        for severity in sorted(missing):
            self.problem("routing.severities", f"no route for severity {str(severity)!r}")
        return Routing(
            group_by=tuple(group_by),
            group_wait=self.seconds("routing", raw, "group_wait", 30.0),
            group_interval=self.seconds("routing", raw, "group_interval", 300.0),
            severities=tuple(routes),
        )

    def service(self, name: str, raw: dict[str, Any]) -> Service:
        where = f"services.{name}"
        self.keys(where, raw, {"title", "description", "owner", "scrape"}, {"slos", "alerts", "records", "panels"})
        return Service(
            name=name,
            title=self.text(where, raw, "title"),
            description=self.text(where, raw, "description"),
            owner=self.text(where, raw, "owner"),
            scrape=self.scrape(f"{where}.scrape", raw.get("scrape", {})),
            slos=tuple(self.slo(w, t) for w, t in self.tables(f"{where}.slos", raw.get("slos", []))),
            alerts=tuple(self.alert(w, t) for w, t in self.tables(f"{where}.alerts", raw.get("alerts", []))),
            records=tuple(self.record(w, t) for w, t in self.tables(f"{where}.records", raw.get("records", []))),
            panels=tuple(self.panel(w, t) for w, t in self.tables(f"{where}.panels", raw.get("panels", []))),
        )

    def scrape(self, where: str, raw: Any) -> Scrape:
        if not isinstance(raw, dict):
            self.problem(where, "expected a table")
            raw = {}
        self.keys(where, raw, {"discovery"}, {"metrics_path", "component"})
        discovery = self.choice(f"{where}.discovery", raw.get("discovery"), Discovery, Discovery.DERIVED)
        component = self.text(where, raw, "component")
        if discovery is Discovery.AIRFLOW and component not in AIRFLOW_COMPONENTS:
            self.problem(f"{where}.component", f"expected one of {list(AIRFLOW_COMPONENTS)}, got {component!r}")
        if discovery is not Discovery.AIRFLOW and component:
            self.problem(f"{where}.component", "only an airflow service names a component")
        path = self.text(where, raw, "metrics_path", "/metrics")
        if not path.startswith("/"):
            self.problem(f"{where}.metrics_path", f"must start with '/', got {path!r}")
        return Scrape(discovery, path, component)

    def slo(self, where: str, raw: dict[str, Any]) -> Slo:
        kind = self.choice(f"{where}.sli", raw.get("sli"), SliKind, SliKind.EVENTS)
        common = {"name", "description", "objective", "sli", "runbook"}
        if kind is SliKind.EVENTS:
            self.keys(where, raw, common | {"total", "examples"}, {"errors", "good", "page"})
            if ("errors" in raw) == ("good" in raw):
                self.problem(where, "an events SLI names exactly one of 'errors' and 'good'")
        else:
            self.keys(where, raw, common | {"timestamp", "max_age"}, {"page"})
        objective = raw.get("objective", 0.99)
        if not isinstance(objective, float) or not 0 < objective < 1:
            self.problem(f"{where}.objective", f"expected a ratio between 0 and 1 (0.999), got {objective!r}")
            objective = 0.99
        page = raw.get("page", True)
        if not isinstance(page, bool):
            self.problem(f"{where}.page", f"expected true or false, got {page!r}")
            page = True
        examples = tuple(self.example(w, t) for w, t in self.tables(f"{where}.examples", raw.get("examples", [])))
        roles = {e.role for e in examples}
        if kind is SliKind.EVENTS and roles not in ({Role.GOOD, Role.BAD}, {Role.ALL, Role.GOOD}):
            self.problem(f"{where}.examples", "give a 'good' and a 'bad' series, or an 'all' and a 'good' one")
        name = self.text(where, raw, "name")
        if name and not _SERVICE_NAME.match(name):
            self.problem(f"{where}.name", _NAME_RULE)
        return Slo(
            name=name,
            description=self.text(where, raw, "description"),
            objective=objective,
            sli=kind,
            page=page,
            total=self.text(where, raw, "total"),
            errors=self.text(where, raw, "errors"),
            good=self.text(where, raw, "good"),
            timestamp=self.text(where, raw, "timestamp"),
            max_age=self.seconds(where, raw, "max_age"),
            examples=examples,
            runbook=self.runbook(where, raw),
        )

    def example(self, where: str, raw: dict[str, Any]) -> ExampleSeries:
        self.keys(where, raw, {"series", "role"}, set())
        return ExampleSeries(
            self.text(where, raw, "series"), self.choice(f"{where}.role", raw.get("role"), Role, Role.GOOD)
        )

    def alert(self, where: str, raw: dict[str, Any]) -> CauseAlert:
        required = {"name", "severity", "scope", "expr", "summary", "description", "runbook", "fires", "quiet"}
        self.keys(where, raw, required, {"for", "silences"})
        name = self.text(where, raw, "name")
        if name and not _ALERT_NAME.match(name):
            self.problem(f"{where}.name", f"an alert's name is CamelCase, got {name!r}")
        silences = raw.get("silences", [])
        if not isinstance(silences, list) or not all(isinstance(s, str) for s in silences):
            self.problem(f"{where}.silences", f"expected a list of alert names, got {silences!r}")
            silences = []
        fires = tuple(self.scenario(w, t, fires=True) for w, t in self.tables(f"{where}.fires", raw.get("fires", [])))
        quiet = tuple(self.scenario(w, t, fires=False) for w, t in self.tables(f"{where}.quiet", raw.get("quiet", [])))
        if not self.text(where, raw, "expr").strip():
            self.problem(f"{where}.expr", "empty expression")
        return CauseAlert(
            name=name,
            expr=self.text(where, raw, "expr"),
            severity=self.choice(f"{where}.severity", raw.get("severity"), Severity, Severity.WARNING),
            scope=self.choice(f"{where}.scope", raw.get("scope"), Scope, Scope.SERVICE),
            summary=self.text(where, raw, "summary"),
            description=self.text(where, raw, "description"),
            runbook=self.runbook(where, raw),
            for_seconds=self.seconds(where, raw, "for"),
            silences=tuple(silences),
            fires=fires,
            quiet=quiet,
        )

    def scenario(self, where: str, raw: dict[str, Any], *, fires: bool) -> Scenario:
        self.keys(where, raw, {"name", "at", "series"}, {"expect", "interval"} if fires else {"interval"})
        at = raw.get("at", [])
        times: list[float] = []
        if not isinstance(at, list) or not at:
            self.problem(f"{where}.at", 'expected a list of times to evaluate at, e.g. ["10m"]')
        else:
            times = [self.seconds(where, {"at": t}, "at") for t in at]
        series: list[tuple[str, str]] = []
        for i, pair in enumerate(raw.get("series", [])):
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
                self.problem(f"{where}.series[{i}]", "expected ['metric{labels}', 'values']")
                continue
            series.append((pair[0], pair[1]))
        if not series:
            self.problem(f"{where}.series", "a scenario needs at least one input series")
        expect: list[tuple[tuple[str, str], ...]] = []
        for i, labels in enumerate(raw.get("expect", [{}] if fires else [])):
            if not isinstance(labels, dict) or not all(
                isinstance(v, str) and _LABEL_NAME.match(k) for k, v in labels.items()
            ):
                self.problem(f"{where}.expect[{i}]", f'expected a table of label = "value", got {labels!r}')
                continue
            expect.append(tuple(sorted(labels.items())))
        if fires and not expect:
            self.problem(f"{where}.expect", "a firing scenario expects at least one alert")
        return Scenario(
            name=self.text(where, raw, "name"),
            at=tuple(times),
            series=tuple(series),
            expect=tuple(expect),
            interval=self.seconds(where, raw, "interval", 60.0),
        )

    def record(self, where: str, raw: dict[str, Any]) -> RecordingRule:
        self.keys(where, raw, {"record", "expr"}, set())
        record = self.text(where, raw, "record")
        if not _RECORD_NAME.match(record):
            self.problem(f"{where}.record", f"a recorded name is level:metric:operations, got {record!r}")
        return RecordingRule(record, self.text(where, raw, "expr"))

    def panel(self, where: str, raw: dict[str, Any]) -> Panel:
        self.keys(where, raw, {"title", "expr"}, {"unit", "legend"})
        return Panel(
            self.text(where, raw, "title"),
            self.text(where, raw, "expr"),
            self.text(where, raw, "unit", "short"),
            self.text(where, raw, "legend"),
        )

    # --- across the spec -------------------------------------------------------------------------------------

    def check_references(self, spec: MonitoringSpec) -> None:
        """Owners are teams; alert and SLO names are unique; ``silences`` names alerts that exist."""
        teams = {t.name for t in spec.teams}
        names: dict[str, str] = {}

        def claim(name: str, where: str) -> None:
            if name in names:
                self.problem(where, f"alert {name!r} is already defined in {names[name]}")
            names[name] = where

        for service in spec.services:
            where = f"services.{service.name}"
            if service.owner not in teams:
                self.problem(f"{where}.owner", f"no team {service.owner!r} (teams: {sorted(teams)})")
            slo_names = [s.name for s in service.slos]
            for dup in sorted({n for n in slo_names if slo_names.count(n) > 1}):
                self.problem(f"{where}.slos", f"SLO {dup!r} is defined twice")
            for slo in service.slos:
                for burn in burn_alerts(slo):
                    claim(burn_alert_name(service, slo, burn), f"{where}.slos ({slo.name})")
            for i, alert in enumerate(service.alerts):
                claim(alert.name, f"{where}.alerts[{i}]")
        for service in spec.services:
            for i, alert in enumerate(service.alerts):
                for target in alert.silences:
                    if target not in names:
                        self.problem(f"services.{service.name}.alerts[{i}].silences", f"no alert {target!r}")
                    if target == alert.name:
                        self.problem(f"services.{service.name}.alerts[{i}].silences", "an alert cannot silence itself")
