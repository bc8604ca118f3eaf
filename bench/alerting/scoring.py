"""What a configuration's notifications amount to: how many per hour, which incidents they paged, what paged for
churn alone.

An alert is *caused by an incident* at a time if the same alert (same labels) is not firing at that time in the
churn-only twin of the day: the same fleet, the same load, the same random draws, without the incidents. A page is a
notification carrying a firing critical alert. An incident is *paged* if a page carrying an alert it caused arrives
while it is in effect or within ``GRACE_MINUTES`` after; *notified* if any notification does (a ticket counts). A page
none of whose critical alerts is caused by an incident is a page for churn alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.alerting.engine import Firing
from bench.alerting.incidents import Incident, covering
from bench.alerting.notify import Notification

GRACE_MINUTES = 30


@dataclass
class Outcome:
    """One configuration's replayed day."""

    config: str
    notifications: int
    pages: int
    per_hour: list[int]
    pages_per_hour: list[int]
    alerts_fired: int
    paged: list[str] = field(default_factory=list)
    """Kinds of the incidents it paged, in the day's order."""
    notified: list[str] = field(default_factory=list)
    churn_pages: int = 0
    churn_page_alerts: dict[str, int] = field(default_factory=dict)
    """Alert names in the churn pages, with how many pages carried each."""
    by_alert: dict[str, int] = field(default_factory=dict)
    """Notifications per alert name (a notification counts once for each alert name it carries)."""
    fired_by_alert: dict[str, int] = field(default_factory=dict)
    """Alerts that fired (Prometheus's side, before Alertmanager), per alert name."""
    incident_alerts: dict[str, list[str]] = field(default_factory=dict)
    """For each incident paged, the names of the critical alerts it caused in its pages."""
    minutes_to_page: dict[str, float] = field(default_factory=dict)
    """For each incident paged, minutes from its start to its first page."""


def _key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def _firing_at(twin: dict[tuple[tuple[str, str], ...], list[Firing]], labels: dict[str, str], at: float) -> bool:
    return any(f.start <= at and (f.end is None or at < f.end) for f in twin.get(_key(labels), []))


def score(
    config: str,
    sent: Sequence[Notification],
    firings: Sequence[Firing],
    twin: Sequence[Firing],
    incidents: Sequence[Incident],
    start: float,
    first_minute: int,
    hours: int,
) -> Outcome:
    """Count ``sent`` per hour from ``start`` (minute ``first_minute`` of the day) and judge it against
    ``incidents`` with the churn-only ``twin``."""
    by_labels: dict[tuple[tuple[str, str], ...], list[Firing]] = {}
    for firing in twin:
        by_labels.setdefault(firing.labels, []).append(firing)
    outcome = Outcome(config, len(sent), 0, [0] * hours, [0] * hours, len(firings))
    for firing in firings:
        name = firing.label("alertname")
        outcome.fired_by_alert[name] = outcome.fired_by_alert.get(name, 0) + 1
    paged: set[str] = set()
    notified: set[str] = set()
    for note in sent:
        hour = min(hours - 1, int((note.at - start) // 3600))
        outcome.per_hour[hour] += 1
        for name in {a["labels"].get("alertname", "") for a in note.alerts}:
            outcome.by_alert[name] = outcome.by_alert.get(name, 0) + 1
        caused = [labels for labels in note.firing() if not _firing_at(by_labels, labels, note.at)]
        incident = covering(tuple(incidents), first_minute + (note.at - start) / 60, GRACE_MINUTES)
        if caused and incident is not None:
            notified.add(incident.kind)
        if not note.is_page:
            continue
        outcome.pages += 1
        outcome.pages_per_hour[hour] += 1
        critical_caused = [labels for labels in caused if labels.get("severity") == "critical"]
        if critical_caused and incident is not None:
            paged.add(incident.kind)
            delay = round(first_minute + (note.at - start) / 60 - incident.start, 1)
            outcome.minutes_to_page.setdefault(incident.kind.value, delay)
            names = outcome.incident_alerts.setdefault(incident.kind.value, [])
            names += sorted({labels.get("alertname", "") for labels in critical_caused} - set(names))
        if not critical_caused:
            outcome.churn_pages += 1
            for name in {labels.get("alertname", "") for labels in note.firing("critical")}:
                outcome.churn_page_alerts[name] = outcome.churn_page_alerts.get(name, 0) + 1
    outcome.paged = [i.kind.value for i in incidents if i.kind in paged]
    outcome.notified = [i.kind.value for i in incidents if i.kind in notified]
    return outcome
