"""Alertmanager's side of the spec: routes by team and severity, grouped by service and alert (never by instance),
the inhibitions that keep one incident to one notification, and the receivers.

Routes: each team's alerts go to ``<team>-page`` (critical), ``<team>-ticket`` (warning) or ``none`` (info), as the
spec's ``[routing.severities]`` say. Inhibitions, in order:

1. a service's firing cluster-wide critical alert silences the same service's per-instance alerts;
2. an SLO's page silences the same SLO's ticket;
3. each alert's ``silences`` in the spec (S3 unavailable silences the cache read alerts it causes; Redis down the
   per-worker Redis alerts).
"""

from __future__ import annotations

from typing import Any

from infra.monitoring.model import MonitoringSpec, Scope, Severity
from infra.monitoring.site import Site
from infra.monitoring.standards import duration

DEFAULT_RECEIVER = "default"
NO_RECEIVER = "none"


def receiver_name(team: str, notify: str) -> str:
    """The receiver a team's notifications of one kind go to: ``cache-page``, ``data-ticket``; ``none`` for none."""
    return NO_RECEIVER if notify == "none" else f"{team}-{notify}"


def alertmanager_config(spec: MonitoringSpec, site: Site) -> dict[str, Any]:
    """``alertmanager.yml`` for ``spec``, every receiver a webhook to ``site.webhook_url``."""
    routing = spec.routing
    team_routes = []
    receivers = {DEFAULT_RECEIVER}
    for team in spec.teams:
        severity_routes = []
        for route in routing.severities:
            name = receiver_name(team.name, route.notify)
            receivers.add(name)
            severity_routes.append(
                {
                    "matchers": [f'severity="{route.severity}"'],
                    "receiver": name,
                    "repeat_interval": duration(route.repeat_interval),
                }
            )
        team_routes.append(
            {
                "matchers": [f'team="{team.name}"'],
                "receiver": receiver_name(team.name, "ticket"),
                "routes": severity_routes,
            }
        )
        receivers.add(receiver_name(team.name, "ticket"))
    webhook = [{"url": site.webhook_url, "send_resolved": True}]
    return {
        "route": {
            "receiver": DEFAULT_RECEIVER,
            "group_by": list(routing.group_by),
            "group_wait": duration(routing.group_wait),
            "group_interval": duration(routing.group_interval),
            "repeat_interval": "4h",
            "routes": team_routes,
        },
        "inhibit_rules": inhibit_rules(spec),
        "receivers": [
            {"name": name} if name == NO_RECEIVER else {"name": name, "webhook_configs": webhook}
            for name in sorted(receivers)
        ],
    }


def inhibit_rules(spec: MonitoringSpec) -> list[dict[str, Any]]:
    """The inhibitions: per-instance alerts under a cluster-wide page, tickets under their SLO's page, and the
    spec's ``silences``."""
    rules: list[dict[str, Any]] = [
        {
            "source_matchers": [f'severity="{Severity.CRITICAL}"', f'scope="{Scope.SERVICE}"'],
            "target_matchers": [f'scope="{Scope.INSTANCE}"'],
            "equal": ["service"],
        },
        {
            "source_matchers": [f'severity="{Severity.CRITICAL}"', 'slo=~".+"'],
            "target_matchers": [f'severity="{Severity.WARNING}"', 'slo=~".+"'],
            "equal": ["service", "slo"],
        },
    ]
    for service in spec.services:
        for alert in service.alerts:
            if alert.silences:
                rules.append(
                    {
                        "source_matchers": [f'alertname="{alert.name}"'],
                        "target_matchers": [f'alertname=~"{"|".join(alert.silences)}"'],
                    }
                )
    return rules
