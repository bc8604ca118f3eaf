"""promtool unit tests of every generated alert: it fires on its incident and stays silent under normal churn.

A cause alert's scenarios are written in the spec beside it. An SLO's are made here from its example series, the
same way for every SLO: an incident that burns the budget twenty times too fast (both alerts fire), and a quiet
night at half the budget's rate while instances terminate, start and restart (counter resets) and a nightly ETL
multiplies the traffic twentyfold (neither fires). A freshness SLO's incident is a last success that never comes
again; its quiet run is three days of daily runs finishing at different hours, and an exporter restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from infra.monitoring.model import CauseAlert, Role, Scenario, Service, SliKind, Slo
from infra.monitoring.prometheus import rule_file
from infra.monitoring.standards import (
    FAST_BURN,
    RECORD_PREFIX,
    BurnAlert,
    burn_alert_name,
    burn_alerts,
    burn_rule,
    cause_rule,
    duration,
    selector,
    slo_labels,
)

EVALUATION_INTERVAL = "1m"
STALE = "stale"
Sample = float | str | None
"""A sample of a test's input: a value, ``None`` for no sample, ``"stale"`` for a stale marker."""


def compress(samples: Sequence[Sample]) -> str:
    """promtool's expanding notation for ``samples``: runs of a constant step become ``a+bxn``, gaps ``_xn``."""
    tokens: list[str] = []
    i = 0
    while i < len(samples):
        value = samples[i]
        if not isinstance(value, float):
            j = i
            while j < len(samples) and samples[j] == value:
                j += 1
            tokens.append(f"_x{j - i}" if value is None else " ".join([STALE] * (j - i)))
            i = j
            continue
        j = i + 1
        step = 0.0
        while j < len(samples):
            nxt = samples[j]
            if not isinstance(nxt, float) or (j > i + 1 and abs(nxt - value - step * (j - i)) > 1e-9 * abs(nxt)):
                break
            if j == i + 1:
                step = nxt - value
            j += 1
        count = j - i - 1
        if count == 0:
            tokens.append(_num(value))
        elif step == 0:
            tokens.append(f"{_num(value)}x{count}")
        else:
            tokens.append(f"{_num(value)}{'+' if step > 0 else '-'}{_num(abs(step))}x{count}")
        i = j
    return " ".join(tokens)


def _num(x: float) -> str:
    return f"{x:.10g}"


def with_label(series: str, name: str, value: str) -> str:
    """``series`` (``metric{a="b"}``) with one more label."""
    if series.endswith("}"):
        head = series[:-1]
        return f'{head}{"," if not head.endswith("{") else ""}{name}="{value}"}}'
    return f'{series}{{{name}="{value}"}}'


def counter(rates: Sequence[float | None], start: int = 0) -> list[Sample]:
    """A counter's samples, one per minute, from its increase in each minute; None ends it (the instance
    terminated: a stale marker, then nothing). ``start`` minutes without a sample come first."""
    samples: list[Sample] = [None] * start
    value = 0.0
    for i, rate in enumerate(rates):
        if rate is None:
            samples.append(STALE)
            samples.extend([None] * (len(rates) - i - 1))
            break
        samples.append(value)
        value += rate
    return samples


def _expected(rule: dict[str, Any], extra: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    return {"exp_labels": {**rule["labels"], **dict(extra)}, "exp_annotations": rule["annotations"]}


def _alert_tests(
    name: str, scenario_at: Sequence[float], rule: dict[str, Any], expect: Sequence[Sequence[tuple[str, str]]]
) -> list[dict[str, Any]]:
    return [
        {
            "eval_time": duration(at),
            "alertname": name,
            "exp_alerts": [_expected(rule, labels) for labels in expect],
        }
        for at in scenario_at
    ]


def cause_tests(service: Service, alert: CauseAlert, runbook_base: str) -> list[dict[str, Any]]:
    """The test groups of a cause alert: its spec's firing and quiet scenarios."""
    rule = cause_rule(service, alert, runbook_base)
    groups = []
    for kind, scenarios in (("fires", alert.fires), ("quiet", alert.quiet)):
        for scenario in scenarios:
            groups.append(_group(f"{alert.name} {kind}: {scenario.name}", scenario, rule))
    return groups


def _group(name: str, scenario: Scenario, rule: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "interval": duration(scenario.interval),
        "input_series": [{"series": s, "values": v} for s, v in scenario.series],
        "alert_rule_test": _alert_tests(rule["alert"], scenario.at, rule, scenario.expect),
    }


# --- SLOs ------------------------------------------------------------------------------------------------------


def _events_series(
    slo: Slo, instance: str, good: Sequence[float | None], bad: Sequence[float | None], start: int
) -> list[dict[str, str]]:
    """Input series of one instance: each example series counts good, bad or all events per minute."""
    out: list[dict[str, str]] = []
    for example in slo.examples:
        if example.role is Role.GOOD:
            rates = good
        elif example.role is Role.BAD:
            rates = bad
        else:
            rates = [None if g is None or b is None else g + b for g, b in zip(good, bad, strict=True)]
        out.append(
            {"series": with_label(example.series, "instance", instance), "values": compress(counter(rates, start))}
        )
    return out


Rates = tuple[list[float | None], list[float | None]]


def _traffic(
    minutes: int, total: float, bad_ratio: float, *, end: int | None = None, surge: tuple[int, int] = (0, 0)
) -> Rates:
    """Per-minute good and bad counts: ``total`` events a minute (twenty times that in ``surge``), until ``end``."""
    good: list[float | None] = []
    bad: list[float | None] = []
    for minute in range(minutes):
        if end is not None and minute >= end:
            good.append(None)
            bad.append(None)
            break
        events = total * (20 if surge[0] <= minute < surge[1] else 1)
        bad.append(events * bad_ratio)
        good.append(events - events * bad_ratio)
    return good, bad


def _incident_time(alert: BurnAlert) -> float:
    return 15 * 60.0 if alert is FAST_BURN else 40 * 60.0


def events_slo_tests(service: Service, slo: Slo, runbook_base: str) -> list[dict[str, Any]]:
    """An events SLO's test groups: a burn twenty times the budget's rate for half an hour (both alerts fire, and
    the page stops within 35 minutes of its end), a quiet night with churn, and a clean run without bad events."""
    alerts = burn_alerts(slo)
    rules = {a: burn_rule(service, slo, a, runbook_base) for a in alerts}
    burning = min(1.0, 20 * slo.budget)
    series: list[dict[str, Any]] = []
    for instance in ("w1:9870", "w2:9870"):
        good, bad = _traffic(30, 1000.0, burning)
        calm_good, calm_bad = _traffic(60, 1000.0, 0.0)
        series += _events_series(slo, instance, good + calm_good, bad + calm_bad, start=0)
    tests = [
        t for a in alerts for t in _alert_tests(burn_alert_name(service, slo, a), [_incident_time(a)], rules[a], [()])
    ]
    if FAST_BURN in alerts:
        tests.append({"eval_time": "65m", "alertname": burn_alert_name(service, slo, FAST_BURN), "exp_alerts": []})
    incident = {
        "name": f"{service.name} {slo.name}: the error ratio is 20x the budget on every instance for 30 minutes",
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": tests,
    }
    calm = 0.5 * slo.budget
    quiet_series: list[dict[str, Any]] = []
    # w1 runs all along, restarts at minute 100 (its counters start over) and takes a nightly surge at 120-150.
    before = _traffic(100, 1000.0, calm)
    after = _traffic(80, 1000.0, calm, surge=(20, 50))
    quiet_series += _restarted(slo, "w1:9870", before, after)
    quiet_series += _events_series(slo, "w2:9870", *_traffic(180, 1000.0, calm, end=60), start=0)
    quiet_series += _events_series(slo, "w3:9870", *_traffic(90, 1000.0, calm), start=90)
    quiet = {
        "name": f"{service.name} {slo.name}: half the budget's rate while instances churn and the nightly ETL surges",
        "interval": "1m",
        "input_series": quiet_series,
        "alert_rule_test": [
            {"eval_time": t, "alertname": burn_alert_name(service, slo, a), "exp_alerts": []}
            for a in alerts
            for t in ("30m", "65m", "95m", "105m", "135m", "175m")
        ],
    }
    clean_series: list[dict[str, Any]] = []
    for example in slo.examples:
        if example.role is not Role.BAD:  # a counter that has never counted a bad event does not exist yet
            clean_series.append({"series": with_label(example.series, "instance", "w1:9870"), "values": "0+1000x60"})
    labels = slo_labels(service, slo)
    clean = {
        "name": f"{service.name} {slo.name}: no bad event yet, so no series of them: the error ratio is 0",
        "interval": "1m",
        "input_series": clean_series,
        "promql_expr_test": [
            {
                "expr": f"{RECORD_PREFIX}1h{selector(labels)}",
                "eval_time": "30m",
                "exp_samples": [{"labels": f"{RECORD_PREFIX}1h{selector(labels)}", "value": 0}],
            }
        ],
    }
    return [incident, quiet, clean]


def _restarted(slo: Slo, instance: str, before: Rates, after: Rates) -> list[dict[str, str]]:
    """An instance whose counters start over at zero after ``before`` (a process restart)."""
    first = _events_series(slo, instance, *before, start=0)
    second = _events_series(slo, instance, *after, start=0)
    return [
        {"series": a["series"], "values": f"{a['values']} {b['values']}"} for a, b in zip(first, second, strict=True)
    ]


def freshness_slo_tests(service: Service, slo: Slo, runbook_base: str) -> list[dict[str, Any]]:
    """A freshness SLO's test groups: a success that never comes again, and three days of daily runs."""
    alerts = burn_alerts(slo)
    rules = {a: burn_rule(service, slo, a, runbook_base) for a in alerts}
    step = 300  # seconds between samples: the runs are days apart
    limit = int(slo.max_age)
    samples_count = (limit + 3 * 3600) // step
    stale_since = limit
    incident = {
        "name": f"{service.name} {slo.name}: the last success is never followed by another",
        "interval": duration(step),
        "input_series": [{"series": with_label(slo.timestamp, "instance", "bridge"), "values": f"0x{samples_count}"}],
        "alert_rule_test": [
            t
            for a in alerts
            for t in _alert_tests(
                burn_alert_name(service, slo, a),
                [stale_since + (30 * 60 if a is FAST_BURN else 150 * 60)],
                rules[a],
                [()],
            )
        ],
    }
    # Runs finish 30 min after 02:00 on day 0, 2 h 50 min after on day 1 (a heavy night), 20 min after on day 2;
    # the exporter is away for 10 minutes on day 1.
    day = 86400
    finishes = [2 * 3600 + 1800, day + 4 * 3600 + 3000, 2 * day + 2 * 3600 + 1200]
    samples: list[Sample] = []
    last = -day + finishes[0]  # the run of the day before
    for t in range(0, 3 * day, step):
        for finished in finishes:
            if finished <= t:
                last = max(last, finished)
        samples.append(None if day + 8 * 3600 <= t < day + 8 * 3600 + 600 else float(last))
    quiet = {
        "name": f"{service.name} {slo.name}: three days of daily runs, one slow, and an exporter restart",
        "interval": duration(step),
        "input_series": [{"series": with_label(slo.timestamp, "instance", "bridge"), "values": compress(samples)}],
        "alert_rule_test": [
            {"eval_time": duration(t), "alertname": burn_alert_name(service, slo, a), "exp_alerts": []}
            for a in alerts
            for t in range(6 * 3600, 3 * day, 6 * 3600)
        ],
    }
    return [incident, quiet]


def test_file(service: Service, runbook_base: str) -> dict[str, Any]:
    """A service's promtool test file: every one of its alerts fires on its incident and stays quiet otherwise."""
    groups: list[dict[str, Any]] = []
    for slo in service.slos:
        if slo.sli is SliKind.FRESHNESS:
            groups += freshness_slo_tests(service, slo, runbook_base)
        else:
            groups += events_slo_tests(service, slo, runbook_base)
    for alert in service.alerts:
        groups += cause_tests(service, alert, runbook_base)
    # Days of a freshness SLO evaluated every minute take promtool half a minute; every 5 minutes suffices there.
    slow = any(slo.sli is SliKind.FRESHNESS for slo in service.slos)
    return {
        "rule_files": [f"../{rule_file(service)}"],
        "evaluation_interval": "5m" if slow else EVALUATION_INTERVAL,
        "tests": groups,
    }
