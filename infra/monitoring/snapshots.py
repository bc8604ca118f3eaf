"""The generated Grafana dashboards against a running Prometheus: ``python -m infra.monitoring snapshots``.

No Grafana runs here, so the dashboards are checked and drawn the way Grafana would query them: every target of every
panel in ``generated/grafana/dashboards/*.json`` is sent to Prometheus's ``/api/v1/query_range`` over a window, with
Grafana's ``$__rate_interval`` and ``$__interval`` replaced as Grafana replaces them. A query fails the check when
Prometheus refuses it (it does not parse, or names an unknown function) or answers no series. A query over
``ALERTS`` answers none while nothing fires, by nature: it is reported as quiet, apart from the failures.

The panels of the dashboards asked for (the cache's by default) are drawn with matplotlib
(``infra.monitoring.snapshot_plots``), one PNG per dashboard, into ``docs/img/monitoring/``. ``--demo`` first runs a
small ``make demo`` with the monitoring watching it (``infra.monitoring.snapshot_demo``) and checks and draws that;
``--platform`` runs the whole platform, Airflow's components, a Spark standalone cluster and two scheduled runs of
the ETL included (``infra.monitoring.snapshot_platform``), so that every dashboard has something to show.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.cache_process import REPO_ROOT
from infra.monitoring.generate import GENERATED_DIR
from infra.monitoring.record import DEFAULT_STATE_DIR, MonitoringInfo

# Prometheus is on loopback: a proxy configured in the environment must not sit between us and it.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))

POINTS = 240
"""About how many points a panel gets over the window (Grafana asks for about one per pixel column)."""


@dataclass(frozen=True)
class Target:
    """One query of a panel: Grafana's ``refId``, the PromQL and its legend template (``{{label}}``)."""

    ref: str
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    """A panel of a generated dashboard: ``kind`` is Grafana's panel type (``timeseries`` or ``stat``)."""

    dashboard: str
    """The dashboard's file name without ``.json`` (``cache``)."""
    title: str
    kind: str
    unit: str
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class Series:
    """One series a query answered: its labels and its ``(unix seconds, value)`` points."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Outcome:
    """What Prometheus answered one target of one panel: its series, or its error."""

    panel: Panel
    target: Target
    query: str
    """The PromQL sent, Grafana's variables replaced."""
    series: tuple[Series, ...] = ()
    error: str = ""

    @property
    def quiet_when_healthy(self) -> bool:
        """True for a query that answers nothing while all is well: the alerts firing."""
        return "ALERTS{" in self.target.expr

    @property
    def status(self) -> str:
        """``error``, ``series``, ``quiet`` (no series, as expected of it while nothing fires) or ``empty``."""
        if self.error:
            return "error"
        if self.series:
            return "series"
        return "quiet" if self.quiet_when_healthy else "empty"

    @property
    def failed(self) -> bool:
        """Refused by Prometheus, or no series where a healthy system has some."""
        return self.status in ("error", "empty")


@dataclass(frozen=True)
class Window:
    """The time range the queries cover, in Unix seconds, and Prometheus's scrape interval (``$__rate_interval``
    depends on it); ``step`` makes about ``POINTS`` points of it."""

    start: float
    end: float
    scrape_interval: float = 15.0
    step: float = field(init=False)

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"the window ends ({self.end:.0f}) before it starts ({self.start:.0f})")
        object.__setattr__(self, "step", max(1.0, math.ceil((self.end - self.start) / POINTS)))

    def grafana_expr(self, expr: str) -> str:
        """``expr`` with Grafana's interval variables replaced as Grafana does: ``$__interval`` is the step,
        ``$__rate_interval`` the larger of the step plus a scrape interval and four scrape intervals."""
        rate = max(self.step + self.scrape_interval, 4 * self.scrape_interval)
        replaced = expr.replace("$__rate_interval", f"{rate:.0f}s").replace("${__rate_interval}", f"{rate:.0f}s")
        return replaced.replace("$__interval", f"{self.step:.0f}s").replace("${__interval}", f"{self.step:.0f}s")


class PrometheusQueryError(RuntimeError):
    """Prometheus did not answer a query (not a refusal of the query itself: that is an ``Outcome``'s error)."""


def dashboard_panels(path: Path) -> list[Panel]:
    """The panels of a Grafana dashboard JSON file that have queries, in the dashboard's order (rows left out)."""
    board = json.loads(path.read_text())
    panels = []
    for raw in board.get("panels", []):
        targets = tuple(
            Target(t["refId"], t["expr"], t.get("legendFormat", "")) for t in raw.get("targets", []) if "expr" in t
        )
        if targets:
            unit = raw.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
            panels.append(Panel(path.stem, raw["title"], raw["type"], unit or "", targets))
    return panels


def query_range(prometheus_url: str, query: str, window: Window) -> tuple[tuple[Series, ...], str]:
    """Prometheus's matrix for ``query`` over ``window``: ``(series, "")``, or ``((), error)`` when Prometheus
    refuses the query. Raises ``PrometheusQueryError`` when Prometheus does not answer at all."""
    form = {"query": query, "start": f"{window.start:.3f}", "end": f"{window.end:.3f}", "step": f"{window.step:g}"}
    request = urllib.request.Request(
        prometheus_url + "/api/v1/query_range", data=urllib.parse.urlencode(form).encode(), method="POST"
    )
    try:
        with _DIRECT.open(request, timeout=60) as response:
            answer: dict[str, Any] = json.load(response)
    except urllib.error.HTTPError as exc:  # 400 and 422 are Prometheus refusing the query, with its reason
        try:
            said = json.loads(exc.read())
        except ValueError:
            raise PrometheusQueryError(f"Prometheus at {prometheus_url} answered {exc.code}") from None
        return (), f"{said.get('errorType', exc.code)}: {said.get('error', '')}"
    except (urllib.error.URLError, OSError) as exc:
        raise PrometheusQueryError(f"Prometheus at {prometheus_url} does not answer: {exc}") from None
    series = tuple(
        Series(
            {k: v for k, v in item["metric"].items()},
            tuple((float(t), float(v)) for t, v in item["values"]),
        )
        for item in answer["data"]["result"]
    )
    return series, ""


def scrape_interval(prometheus_url: str) -> float:
    """The ``global.scrape_interval`` of the running Prometheus, in seconds (its configuration, as it reports it)."""
    try:
        with _DIRECT.open(prometheus_url + "/api/v1/status/config", timeout=10) as response:
            config = json.load(response)["data"]["yaml"]
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        raise PrometheusQueryError(f"Prometheus at {prometheus_url} does not say its configuration: {exc}") from None
    found = re.search(r"^\s+scrape_interval:\s*(\d+)([smh])\s*$", config, re.MULTILINE)
    if found is None:
        return 60.0  # Prometheus's own default
    return float(found.group(1)) * {"s": 1, "m": 60, "h": 3600}[found.group(2)]


def check(prometheus_url: str, panels: Iterable[Panel], window: Window) -> list[Outcome]:
    """Every target of ``panels`` sent to Prometheus over ``window``. Raises ``PrometheusQueryError`` if it does not
    answer."""
    outcomes = []
    for panel in panels:
        for target in panel.targets:
            query = window.grafana_expr(target.expr)
            series, error = query_range(prometheus_url, query, window)
            outcomes.append(Outcome(panel, target, query, series, error))
    return outcomes


def report(outcomes: Sequence[Outcome]) -> list[str]:
    """One line per query: its dashboard, panel, ``refId``, and its series or what went wrong."""
    lines = []
    for outcome in outcomes:
        where = f"{outcome.panel.dashboard}: {outcome.panel.title} [{outcome.target.ref}]"
        status = outcome.status
        if status == "series":
            lines.append(f"ok     {where}: {len(outcome.series)} series")
        elif status == "quiet":
            lines.append(f"quiet  {where}: no series, as expected while no alert fires")
        elif status == "empty":
            lines.append(f"EMPTY  {where}: no series: {outcome.query}")
        else:
            lines.append(f"ERROR  {where}: {outcome.error}: {outcome.query}")
    return lines


# --- command line (python -m infra.monitoring snapshots) -----------------------------------------------------------

DASHBOARDS_DIR = GENERATED_DIR / "grafana" / "dashboards"
IMAGES_DIR = REPO_ROOT / "docs" / "img" / "monitoring"


def generated_panels(dashboards_dir: Path, names: Sequence[str] = ()) -> list[Panel]:
    """The panels of every dashboard in ``dashboards_dir``, or of those named (file names without ``.json``).

    Raises ``FileNotFoundError`` naming a dashboard that is not there."""
    paths = [dashboards_dir / f"{name}.json" for name in names] or sorted(dashboards_dir.glob("*.json"))
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"no dashboard {path}")
    return [panel for path in paths for panel in dashboard_panels(path)]


def snapshot(
    prometheus_url: str,
    window: Window,
    *,
    check_names: Sequence[str],
    render_names: Sequence[str],
    dashboards_dir: Path = DASHBOARDS_DIR,
    out: Path = IMAGES_DIR,
) -> tuple[list[Outcome], list[Path]]:
    """Check the dashboards ``check_names`` (every one if empty) and draw ``render_names`` into ``out`` as
    ``<name>.png``; the outcomes of every query, and the PNGs written. Raises ``PrometheusQueryError`` and
    ``FileNotFoundError``."""
    from infra.monitoring.snapshot_plots import render  # matplotlib only when drawing

    panels = generated_panels(dashboards_dir, check_names)
    drawn = generated_panels(dashboards_dir, render_names)
    outcomes = check(prometheus_url, panels, window)
    extra = check(prometheus_url, [p for p in drawn if p not in panels], window)
    pngs = []
    for name in render_names:
        title = json.loads((dashboards_dir / f"{name}.json").read_text())["title"]
        mine = [o for o in outcomes + extra if o.panel.dashboard == name]
        pngs.append(render(mine, window, out / f"{name}.png", title))
    return outcomes, pngs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``snapshots``'s options."""
    parser.add_argument("--prometheus", default="", help="its URL (default: the one `up` started)")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="`up`'s (default: %(default)s)")
    parser.add_argument("--minutes", type=float, default=30.0, help="the window, ending now (default: 30)")
    parser.add_argument("--check", nargs="*", default=[], metavar="DASHBOARD", help="default: every dashboard")
    parser.add_argument("--render", nargs="*", default=["cache"], metavar="DASHBOARD", help="default: cache")
    parser.add_argument("--out", type=Path, default=IMAGES_DIR, help="where the PNGs go (default: %(default)s)")
    runs = parser.add_mutually_exclusive_group()
    runs.add_argument("--demo", action="store_true", help="first run a small demo with the monitoring watching")
    runs.add_argument(
        "--platform",
        action="store_true",
        help="first run the stack, Spark standalone, Airflow and two ETL runs with the monitoring watching",
    )
    parser.add_argument(
        "--events", type=int, default=20_000, help="raw events of --demo or --platform (default: %(default)s)"
    )


def run(args: argparse.Namespace) -> int:
    """``snapshots``: 0 if every query checked answered series (or is quiet by nature), 1 listing those that did
    not."""
    try:
        if args.demo:
            from infra.monitoring.snapshot_demo import demo_window

            prometheus_url, window, stop = demo_window(args.events)
        elif args.platform:
            from infra.monitoring.snapshot_platform import platform_window

            prometheus_url, window, stop = platform_window(args.events)
        else:
            stop = None
            prometheus_url = args.prometheus or _recorded_prometheus(args.state_dir)
            end = time.time()
            window = Window(end - args.minutes * 60, end, scrape_interval(prometheus_url))
        try:
            outcomes, pngs = snapshot(
                prometheus_url, window, check_names=args.check, render_names=args.render, out=args.out
            )
        finally:
            if stop is not None:
                stop()
    except (PrometheusQueryError, FileNotFoundError, RuntimeError, ValueError) as exc:
        print(f"snapshots: {exc}", file=sys.stderr)
        return 1
    for line in report(outcomes):
        print(line)
    for png in pngs:
        print(f"wrote {png}")
    failed = [o for o in outcomes if o.failed]
    quiet = sum(o.status == "quiet" for o in outcomes)
    print(f"{len(outcomes)} queries: {len(failed)} failed, {quiet} quiet while no alert fires")
    return 1 if failed else 0


def _recorded_prometheus(state_dir: Path) -> str:
    info = MonitoringInfo.read(state_dir)
    if info is None:
        raise RuntimeError(f"no monitoring recorded in {state_dir}: start it with `python -m infra.monitoring up`")
    return info.prometheus_url
