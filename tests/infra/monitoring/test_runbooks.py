"""The runbooks the alerts link to: each exists, names its alerts, and every ``cachectl`` and ``clusterctl`` line of
its bash blocks is a command line those tools accept (``cache-pressure.md`` is run for real in tests/docs)."""

from __future__ import annotations

import re
import shlex

import pytest

from cache_service.cli.main import _parser as cachectl_parser
from infra.cache_process import REPO_ROOT
from infra.monitoring.loading import load_spec
from infra.monitoring.standards import burn_alert_name, burn_alerts
from lakecache_airflow.scaling.cli import parser as clusterctl_parser
from tests.docs.test_runbook_cache_pressure import bash_commands

RUNBOOKS = REPO_ROOT / "docs" / "runbooks"


def alerts_by_runbook() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for service in load_spec().services:
        for slo in service.slos:
            for burn in burn_alerts(slo):
                out.setdefault(slo.runbook, set()).add(burn_alert_name(service, slo, burn))
        for alert in service.alerts:
            out.setdefault(alert.runbook, set()).add(alert.name)
    return out


@pytest.mark.parametrize(("runbook", "alerts"), sorted(alerts_by_runbook().items()))
def test_a_runbook_names_every_alert_that_links_to_it(runbook: str, alerts: set[str]) -> None:
    text = (RUNBOOKS / f"{runbook}.md").read_text()
    assert {a for a in alerts if f"`{a}`" not in text} == set()


@pytest.mark.parametrize("runbook", sorted(alerts_by_runbook()))
def test_every_cachectl_and_clusterctl_line_parses(runbook: str) -> None:
    for line in bash_commands((RUNBOOKS / f"{runbook}.md").read_text()):
        if line.split()[0] not in ("cachectl", "clusterctl"):
            continue
        argv = shlex.split(re.sub(r'"?\$\w+"?', "1", line.split(" | ")[0]), comments=True)
        if argv[0] == "cachectl":
            cachectl_parser().parse_args(argv[1:])
        elif argv[0] == "clusterctl":
            clusterctl_parser().parse_args(argv[1:])
