"""Grafana's side of the spec, built with Grafana's own foundation SDK: one dashboard per service (its SLOs' error
ratios against their budget, budget left, its alerts, its panels) and an overview of every SLO, with the
provisioning files that load them and the Prometheus data source."""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from infra.monitoring.model import MonitoringSpec, Service
from infra.monitoring.site import Site
from infra.monitoring.standards import RECORD_PREFIX, SLO_PERIOD, selector, slo_labels

DATASOURCE_UID = "prometheus"
FOLDER = "Lakecache"
_PROMETHEUS = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)


class _Ids:
    """Panel ids, unique within a dashboard (the SDK leaves them to us)."""

    def __init__(self) -> None:
        self._next = 0

    def __call__(self) -> int:
        self._next += 1
        return self._next


def _query(expr: str, legend: str = "", ref: str = "A") -> Dataquery:
    query = Dataquery().expr(expr).ref_id(ref)
    return query.legend_format(legend) if legend else query


def service_dashboard(service: Service) -> Dashboard:
    """A service's dashboard: SLOs, firing alerts, then the spec's panels."""
    ids = _Ids()
    board = (
        Dashboard(service.title)
        .uid(f"lakecache-{service.name}")
        .description(service.description)
        .tags(["lakecache", "generated", f"team:{service.owner}"])
        .time("now-24h", "now")
        .refresh("1m")
        .timezone("utc")
        .readonly()
    )
    if service.slos:
        board = board.with_row(Row("SLOs").id(ids()))
        for slo in service.slos:
            sel = selector(slo_labels(service, slo))
            ratio = Timeseries().id(ids()).title(f"{slo.name}: error ratio (budget {slo.budget:.3g})")
            ratio = ratio.unit("percentunit").min(0).datasource(_PROMETHEUS).description(slo.description)
            for ref, window in zip("ABC", ("5m", "1h", "1d"), strict=True):
                ratio = ratio.with_target(_query(f"{RECORD_PREFIX}{window}{sel}", window, ref))
            ratio = ratio.with_target(_query(f"vector({slo.budget:g})", "budget", "D"))
            board = board.with_panel(ratio)
            budget = Stat().id(ids()).title(f"{slo.name}: error budget left ({SLO_PERIOD})").unit("percentunit")
            budget = budget.datasource(_PROMETHEUS).with_target(_query(f"slo:error_budget_remaining:ratio{sel}"))
            board = board.with_panel(budget)
    board = board.with_row(Row("Alerts").id(ids()))
    firing = Timeseries().id(ids()).title("Firing alerts").datasource(_PROMETHEUS).min(0)
    firing = firing.with_target(
        _query(f'count by (alertname) (ALERTS{{service="{service.name}",alertstate="firing"}})', "{{alertname}}")
    )
    board = board.with_panel(firing)
    if service.panels:
        board = board.with_row(Row("Signals").id(ids()))
        for panel in service.panels:
            graph = Timeseries().id(ids()).title(panel.title).unit(panel.unit).datasource(_PROMETHEUS)
            board = board.with_panel(graph.with_target(_query(panel.expr, panel.legend)))
    return board


def overview_dashboard(spec: MonitoringSpec) -> Dashboard:
    """Every SLO's budget left, and the alerts firing per service."""
    ids = _Ids()
    board = (
        Dashboard("Lakecache: SLOs and alerts")
        .uid("lakecache-overview")
        .tags(["lakecache", "generated"])
        .time("now-7d", "now")
        .refresh("1m")
        .timezone("utc")
        .readonly()
        .with_row(Row("Error budget left").id(ids()))
    )
    for service in spec.services:
        for slo in service.slos:
            sel = selector(slo_labels(service, slo))
            stat = Stat().id(ids()).title(f"{service.name} {slo.name}").unit("percentunit").datasource(_PROMETHEUS)
            board = board.with_panel(stat.with_target(_query(f"slo:error_budget_remaining:ratio{sel}")))
    board = board.with_row(Row("Alerts").id(ids()))
    firing = Timeseries().id(ids()).title("Firing alerts by service").datasource(_PROMETHEUS).min(0)
    firing = firing.with_target(_query('count by (service) (ALERTS{alertstate="firing"})', "{{service}}"))
    return board.with_panel(firing)


def dashboard_json(board: Dashboard) -> str:
    """The dashboard as Grafana's JSON, keys sorted so that a regenerated file differs only where the spec does."""
    return JSONEncoder(sort_keys=True, indent=2).encode(board.build()) + "\n"


def dashboards(spec: MonitoringSpec) -> dict[str, str]:
    """Every dashboard, by file name."""
    out = {"overview.json": dashboard_json(overview_dashboard(spec))}
    for service in spec.services:
        out[f"{service.name}.json"] = dashboard_json(service_dashboard(service))
    return out


def datasource_provisioning(site: Site) -> dict[str, Any]:
    """Grafana's provisioning of the Prometheus data source the dashboards query."""
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "type": "prometheus",
                "uid": DATASOURCE_UID,
                "access": "proxy",
                "url": site.grafana_datasource_url,
                "isDefault": True,
            }
        ],
    }


def dashboard_provisioning(dashboards_dir: str) -> dict[str, Any]:
    """Grafana's provisioning of the dashboards: the files in ``dashboards_dir``, read-only, in one folder."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "lakecache",
                "folder": FOLDER,
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "options": {"path": dashboards_dir},
            }
        ],
    }
