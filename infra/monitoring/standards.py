"""How an SLO becomes rules, and what every alert carries: the one place these standards live.

An SLO's error ratio is recorded over each window the burn-rate alerts read (``slo:sli_error:ratio_rate<window>``,
labelled ``service`` and ``slo``, as Sloth and Pyrra name them), always summed over the service's instances, so an
instance that starts or terminates changes nothing but the traffic. The alerts are the SRE workbook's multi-window,
multi-burn-rate pairs: a page when the budget of 30 days would be gone in 2 days (14.4x over 1h, confirmed over 5m)
or 5 days (6x over 6h and 30m); a ticket at 3x over 1d and 2h, or 1x over 3d and 6h. The short window makes an alert
stop soon after the burn does.

Every alert carries ``severity`` (critical pages, warning tickets, info shows), ``service``, ``team`` and ``scope``
labels, and ``summary``, ``description`` and ``runbook_url`` annotations. Annotations are plain text (no
``$value``): what an alert says must not change while it fires, and its tests can state it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.monitoring.model import CauseAlert, Scope, Service, Severity, SliKind, Slo

SLO_PERIOD = "30d"
RECORD_PREFIX = "slo:sli_error:ratio_rate"


@dataclass(frozen=True)
class BurnWindow:
    """Alert when the error ratio is above ``factor`` x the budget over both ``long`` and ``short``."""

    long: str
    short: str
    factor: float


@dataclass(frozen=True)
class BurnAlert:
    """One alert of an SLO: its name suffix, severity, windows and how long its condition must hold."""

    suffix: str
    severity: Severity
    windows: tuple[BurnWindow, ...]
    for_: str
    speed: str
    meaning: str


FAST_BURN = BurnAlert(
    "FastBurn",
    Severity.CRITICAL,
    (BurnWindow("1h", "5m", 14.4), BurnWindow("6h", "30m", 6.0)),
    "2m",
    "fast",
    "at this rate the 30-day error budget is gone within 5 days",
)
SLOW_BURN = BurnAlert(
    "SlowBurn",
    Severity.WARNING,
    (BurnWindow("1d", "2h", 3.0), BurnWindow("3d", "6h", 1.0)),
    "15m",
    "steadily",
    "at this rate the 30-day error budget is gone before the 30 days are",
)
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
"""Every window an alert reads, shortest first: each is one recording rule per SLO."""


def camel(*words: str) -> str:
    """``camel("cache", "read-availability", "FastBurn")`` is ``CacheReadAvailabilityFastBurn``."""
    parts = [p for w in words for p in w.replace("_", "-").split("-") if p]
    return "".join(p[:1].upper() + p[1:] for p in parts)


def burn_alerts(slo: Slo) -> tuple[BurnAlert, ...]:
    """The burn-rate alerts an SLO gets: both, or the ticket alone when it must never page."""
    return (FAST_BURN, SLOW_BURN) if slo.page else (SLOW_BURN,)


def burn_alert_name(service: Service, slo: Slo, alert: BurnAlert) -> str:
    """The alert's name, e.g. ``CacheReadAvailabilityFastBurn``."""
    return camel(service.name, slo.name, alert.suffix)


def slo_labels(service: Service, slo: Slo) -> dict[str, str]:
    """The labels every series recorded for ``slo`` carries."""
    return {"service": service.name, "slo": slo.name}


def selector(labels: dict[str, str]) -> str:
    """``{a="1",b="2"}``: a PromQL selector matching ``labels`` exactly."""
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def error_ratio(slo: Slo, window: str, labels: dict[str, str]) -> str:
    """PromQL for the ratio of bad events (or bad moments) over ``window``, summed over every instance."""
    if slo.sli is SliKind.FRESHNESS:
        return f"1 - avg_over_time(slo:sli_good:bool{selector(labels)}[{window}])"
    # A labelled counter has no series until its first event: no error yet is a ratio of 0, not no data (which
    # would leave the budget unknown). No traffic at all is no data: without the "> 0", an idle window would record
    # 0/0, NaN, and one NaN in avg_over_time leaves the 30-day budget NaN for 30 days.
    total = f"(sum(rate({slo.total}[{window}])) > 0)"
    if slo.errors:
        return f"(sum(rate({slo.errors}[{window}])) or vector(0)) / {total}"
    return f"1 - (sum(rate({slo.good}[{window}])) or vector(0)) / {total}"


def slo_recording_rules(service: Service, slo: Slo) -> list[dict[str, Any]]:
    """The recording rules of one SLO: objective, error ratio per window, budget left over the period."""
    labels = slo_labels(service, slo)
    rules: list[dict[str, Any]] = []
    if slo.sli is SliKind.FRESHNESS:
        # One sample per evaluation: 1 while the newest success is younger than max_age. No success recorded at
        # all (the metric absent) records nothing, which an alert reads as no data, not as bad.
        rules.append(
            {
                "record": "slo:sli_good:bool",
                "expr": f"time() - max({slo.timestamp}) <= bool {slo.max_age:g}",
                "labels": labels,
            }
        )
    rules.append({"record": "slo:objective:ratio", "expr": f"vector({slo.objective:g})", "labels": labels})
    for window in WINDOWS:
        rules.append({"record": RECORD_PREFIX + window, "expr": error_ratio(slo, window, labels), "labels": labels})
    sel = selector(labels)
    rules.append(
        {
            "record": RECORD_PREFIX + SLO_PERIOD,
            "expr": f"avg_over_time({RECORD_PREFIX}5m{sel}[{SLO_PERIOD}])",
            "labels": labels,
        }
    )
    rules.append(
        {
            "record": "slo:error_budget_remaining:ratio",
            "expr": f"1 - {RECORD_PREFIX}{SLO_PERIOD}{sel} / {slo.budget:g}",
            "labels": labels,
        }
    )
    return rules


def alert_labels(service: Service, severity: Severity, scope: Scope) -> dict[str, str]:
    """The labels every alert carries: how urgent, whose, and about what."""
    return {"severity": str(severity), "service": service.name, "team": service.owner, "scope": str(scope)}


def runbook_url(base: str, runbook: str) -> str:
    """Where an alert's runbook is: ``<base>/<runbook>.md`` (the runbooks are docs/runbooks/*.md)."""
    return f"{base.rstrip('/')}/{runbook}.md"


def burn_rule(service: Service, slo: Slo, alert: BurnAlert, runbook_base: str) -> dict[str, Any]:
    """The alerting rule of one burn-rate alert of ``slo``."""
    sel = selector(slo_labels(service, slo))
    threshold = [
        f"({RECORD_PREFIX}{w.long}{sel} > {w.factor * slo.budget:g} and {RECORD_PREFIX}{w.short}{sel} > "
        f"{w.factor * slo.budget:g})"
        for w in alert.windows
    ]
    windows = ", or ".join(f"{w.factor:g} times over {w.long} and {w.short}" for w in alert.windows)
    return {
        "alert": burn_alert_name(service, slo, alert),
        "expr": "\n or ".join(threshold),
        "for": alert.for_,
        "labels": {**alert_labels(service, alert.severity, Scope.SERVICE), "slo": slo.name},
        "annotations": {
            "summary": (
                f"{service.title}: the {slo.name} SLO burns its error budget {alert.speed} "
                f"({slo.description}, objective {slo.objective * 100:g}%)"
            ),
            "description": (
                f"The ratio of bad events is above the error budget ({slo.budget:.4g}) {windows}: {alert.meaning}."
            ),
            "runbook_url": runbook_url(runbook_base, slo.runbook),
        },
    }


def cause_rule(service: Service, alert: CauseAlert, runbook_base: str) -> dict[str, Any]:
    """The alerting rule of a cause alert, with the standard labels and annotations."""
    rule: dict[str, Any] = {"alert": alert.name, "expr": alert.expr.strip()}
    if alert.for_seconds:
        rule["for"] = duration(alert.for_seconds)
    rule["labels"] = alert_labels(service, alert.severity, alert.scope)
    rule["annotations"] = {
        "summary": alert.summary,
        "description": alert.description,
        "runbook_url": runbook_url(runbook_base, alert.runbook),
    }
    return rule


def duration(seconds: float) -> str:
    """Prometheus's duration notation for a whole number of seconds: ``90`` is ``1m30s``, ``7200`` is ``2h``."""
    left = int(seconds)
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            out += f"{left // size}{unit}"
            left %= size
    return out or "0s"
