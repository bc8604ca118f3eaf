"""Airflow's metrics for Prometheus: an OTLP/HTTP receiver that serves what each Airflow component pushed as
Prometheus text, one scrape target per component.

Why this bridge. Airflow 3 emits metrics as StatsD or as OpenTelemetry (OTLP, pushed). Prometheus's own OTLP receiver
came with Prometheus 2.47 and Debian's is 2.42; StatsD needs ``statsd_exporter`` and the OpenTelemetry Collector,
neither of which Debian or PyPI ships; and Airflow builds its OTel ``MeterProvider`` with its OTLP exporter alone, so
``opentelemetry-exporter-prometheus`` cannot be plugged into it. So Airflow pushes OTLP/HTTP (protobuf) here, decoded
with the OpenTelemetry project's own message definitions (``opentelemetry-proto``, the package Airflow's exporter
encodes with) and served with ``prometheus_client``: the translation in between is the only code of ours.

- ``POST /v1/metrics``: an ``ExportMetricsServiceRequest``. The component is the resource's ``service.name``
  without its ``airflow-`` prefix (``infra.airflow_environment.otel_metrics_env`` sets ``airflow-scheduler``...).
- ``GET /metrics?component=scheduler``: that component's metrics; 503 when it has pushed nothing for
  ``stale_after`` seconds, so Prometheus's ``up`` for its target falls to 0 when the component stops. Without
  ``component``: every component's, labelled ``component``.

One metric is derived, as Airflow has no gauge of it: ``airflow_dag_run_last_success_timestamp_seconds{dag_id}``,
the time of the push in which the count of a DAG's ``dagrun.duration.success`` timer rose (a run succeeded since the
last push), which the ETL's freshness SLO and the autoscaler's alert read.

Translation, as OpenTelemetry's Prometheus compatibility spec says: names lose their dots (``airflow.ti.finish`` is
``airflow_ti_finish``), a monotonic sum is a counter (``_total``; delta points are added up), any other sum and a
gauge a gauge, an explicit-bucket histogram a histogram, an exponential histogram (Airflow's timers) its count and sum
as a summary; point attributes become labels.

A component is many processes: every task the scheduler's LocalExecutor runs is a process of its own that pushes
under the scheduler's name, and ``ti.finish`` is counted there, by the task, each process from 0. So the cumulative
points of a counter are streams told apart by their start time (``start_time_unix_nano``, the process's counter's
birth), and the bridge's counter is what every stream added: a new stream adds its value, a known one what it grew
by. Taking each push's value as the counter's instead made ``airflow_ti_finish_total`` of a task 1 after every run,
never more, so ``rate()`` of it (the ETL's data-quality SLO) never rose above 0.
"""

from __future__ import annotations

import argparse
import gzip
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    SummaryMetricFamily,
)
from prometheus_client.core import Metric as PromMetric

from infra.monitoring.record import BRIDGE_MARKER, OTLP_PATH
from infra.monitoring.servers import MonitoringServer
from infra.ports import LOOPBACK, free_port

METRICS_PATH = "/metrics"
SERVICE_PREFIX = "airflow-"
RUN_SUCCEEDED = "airflow_dagrun_duration_success"
LAST_SUCCESS = "airflow_dag_run_last_success_timestamp_seconds"
_INVALID = re.compile(r"[^a-zA-Z0-9_:]")
Labels = tuple[tuple[str, str], ...]


def prometheus_name(name: str) -> str:
    """An OTel instrument name as a Prometheus metric or label name."""
    cleaned = _INVALID.sub("_", name)
    return f"_{cleaned}" if cleaned[:1].isdigit() else cleaned


def _value(any_value: AnyValue) -> str:
    kind = any_value.WhichOneof("value")
    return "" if kind is None else str(getattr(any_value, kind))


def _labels(attributes: Iterator[KeyValue] | list[KeyValue]) -> Labels:
    return tuple(sorted((prometheus_name(a.key), _value(a.value)) for a in attributes))


STREAM_MEMORY = 3600.0
"""Seconds a counter's stream that pushes no more (its process ended) is remembered; what it added stays counted."""


@dataclass
class Series:
    """The latest state of one metric of one component: its kind and, per label set, its value(s)."""

    kind: str  # counter, gauge, histogram, summary
    help: str
    values: dict[Labels, float] = field(default_factory=dict)
    buckets: dict[Labels, list[tuple[str, float]]] = field(default_factory=dict)
    sums: dict[Labels, float] = field(default_factory=dict)
    counts: dict[Labels, int] = field(default_factory=dict)
    streams: dict[tuple[Labels, int], tuple[float, float]] = field(default_factory=dict)
    """A counter's cumulative streams, by label set and start time: the last value each pushed, and when."""

    def add_cumulative(self, labels: Labels, start: int, value: float, now: float) -> None:
        """Count a cumulative point: what its stream grew by since its last point (all of it for a new stream;
        a stream whose value fell restarted from 0)."""
        last, _ = self.streams.get((labels, start), (0.0, now))
        grown = value - last if value >= last else value
        self.values[labels] = self.values.get(labels, 0.0) + grown
        self.streams[(labels, start)] = (value, now)
        for key, (_, seen) in list(self.streams.items()):
            if now - seen > STREAM_MEMORY:
                del self.streams[key]


@dataclass
class Component:
    """What one Airflow component pushed last, and when."""

    pushed_at: float = 0.0
    metrics: dict[str, Series] = field(default_factory=dict)


class PushedMetrics:
    """Every component's latest metrics, updated by ``receive`` and rendered by ``render``."""

    def __init__(self, stale_after: float) -> None:
        self.stale_after = stale_after
        self.components: dict[str, Component] = {}

    def receive(self, request: ExportMetricsServiceRequest, now: float | None = None) -> None:
        """Take one push: each resource's metrics replace (or, for delta sums, add to) what its component had."""
        for resource_metrics in request.resource_metrics:
            service = next(
                (_value(a.value) for a in resource_metrics.resource.attributes if a.key == "service.name"), "airflow"
            )
            component = self.components.setdefault(service.removeprefix(SERVICE_PREFIX), Component())
            component.pushed_at = time.time() if now is None else now
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    _take(component, metric, component.pushed_at)

    def fresh(self, name: str, now: float | None = None) -> bool:
        """True if component ``name`` pushed within ``stale_after`` seconds."""
        component = self.components.get(name)
        now = time.time() if now is None else now
        return component is not None and now - component.pushed_at <= self.stale_after

    def render(self, name: str | None = None) -> bytes:
        """Prometheus text of component ``name``, or of every component (labelled ``component``) when None."""
        registry = CollectorRegistry(auto_describe=False)
        chosen = {name: self.components[name]} if name is not None else self.components
        registry.register(_Families(chosen, labelled=name is None))
        return generate_latest(registry)


def _take(component: Component, metric: Metric, now: float) -> None:
    base = prometheus_name(metric.name)
    kind = metric.WhichOneof("data")
    if kind == "sum" and metric.sum.is_monotonic:
        series = component.metrics.setdefault(base, Series("counter", metric.description))
        delta = metric.sum.aggregation_temporality == AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
        for point in metric.sum.data_points:
            labels, value = _labels(point.attributes), _number(point)
            if delta:
                series.values[labels] = series.values.get(labels, 0.0) + value
            else:
                series.add_cumulative(labels, point.start_time_unix_nano, value, now)
    elif kind in ("sum", "gauge"):
        series = component.metrics.setdefault(base, Series("gauge", metric.description))
        for point in getattr(metric, kind).data_points:
            series.values[_labels(point.attributes)] = _number(point)
    elif kind == "histogram":
        series = component.metrics.setdefault(base, Series("histogram", metric.description))
        for hist in metric.histogram.data_points:
            labels, running, cumulative = _labels(hist.attributes), 0.0, []
            for bound, count in zip([*hist.explicit_bounds, float("inf")], hist.bucket_counts, strict=False):
                running += count
                cumulative.append(("+Inf" if bound == float("inf") else repr(float(bound)), running))
            series.buckets[labels], series.sums[labels], series.counts[labels] = cumulative, hist.sum, int(hist.count)
    elif kind == "exponential_histogram":
        series = component.metrics.setdefault(base, Series("summary", metric.description))
        for exp in metric.exponential_histogram.data_points:
            labels = _labels(exp.attributes)
            if base == RUN_SUCCEEDED and exp.count > series.counts.get(labels, 0):
                _run_succeeded(component, labels, exp.time_unix_nano / 1e9)
            series.sums[labels], series.counts[labels] = exp.sum, int(exp.count)


def _run_succeeded(component: Component, labels: Labels, at: float) -> None:
    dag = tuple((k, v) for k, v in labels if k == "dag_id")
    help_text = "When a run of the DAG last succeeded (derived by the bridge from dagrun.duration.success)"
    component.metrics.setdefault(LAST_SUCCESS, Series("gauge", help_text)).values[dag] = at


def _number(point: object) -> float:
    kind = point.WhichOneof("value")  # type: ignore[attr-defined]
    return float(getattr(point, kind)) if kind else 0.0


class _Families:
    """A collector of the chosen components' series, for one rendering."""

    def __init__(self, components: dict[str, Component], *, labelled: bool) -> None:
        self.components = components
        self.labelled = labelled

    def collect(self) -> Iterator[PromMetric]:
        families: dict[str, PromMetric] = {}
        for component_name, component in sorted(self.components.items()):
            extra = (("component", component_name),) if self.labelled else ()
            for name, series in sorted(component.metrics.items()):
                for labels in sorted({*series.values, *series.counts}):
                    keys = [k for k, _ in (*extra, *labels)]
                    values = [v for _, v in (*extra, *labels)]
                    family = families.get(name)
                    if family is None:
                        family = _family(name, series, keys)
                        families[name] = family
                    _add(family, series, labels, values)
        yield from families.values()


def _family(name: str, series: Series, keys: list[str]) -> PromMetric:
    help_text = series.help or name
    if series.kind == "counter":
        return CounterMetricFamily(name, help_text, labels=keys)
    if series.kind == "histogram":
        return HistogramMetricFamily(name, help_text, labels=keys)
    if series.kind == "summary":
        return SummaryMetricFamily(name, help_text, labels=keys)
    return GaugeMetricFamily(name, help_text, labels=keys)


def _add(family: PromMetric, series: Series, labels: Labels, values: list[str]) -> None:
    if isinstance(family, CounterMetricFamily | GaugeMetricFamily):
        family.add_metric(values, series.values[labels])
    elif isinstance(family, HistogramMetricFamily):
        family.add_metric(values, series.buckets[labels], series.sums[labels])
    elif isinstance(family, SummaryMetricFamily):
        family.add_metric(values, series.counts[labels], series.sums[labels])


def bridge_app(stale_after: float = 60.0) -> web.Application:
    """The bridge's application (see the module docstring)."""
    pushed = PushedMetrics(stale_after)

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        message = ExportMetricsServiceRequest()
        try:
            message.ParseFromString(body)
        except Exception:  # protobuf's DecodeError; OTLP/HTTP answers 400 for a body it cannot decode
            return web.Response(status=400, text="not an OTLP ExportMetricsServiceRequest")
        pushed.receive(message)
        answer = ExportMetricsServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type="application/x-protobuf")

    async def metrics(request: web.Request) -> web.Response:
        name = request.query.get("component")
        if name is not None and not pushed.fresh(name):
            return web.Response(status=503, text=f"airflow {name} has pushed no metrics for {stale_after:.0f}s")
        return web.Response(body=pushed.render(name), content_type="text/plain", charset="utf-8")

    async def ready(_: web.Request) -> web.Response:
        return web.Response(text="ready")

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post(OTLP_PATH, receive)
    app.router.add_get(METRICS_PATH, metrics)
    app.router.add_get("/-/ready", ready)
    return app


class AirflowMetricsBridge(MonitoringServer):
    """The bridge as a child process on ``host``:``port``, logging to ``log_dir/airflow-metrics.log``."""

    def __init__(
        self,
        log_dir: Path,
        *,
        host: str = LOOPBACK,
        port: int | None = None,
        stale_after: float = 60.0,
        detach: bool = False,
    ) -> None:
        port = port or free_port(host)
        argv = [sys.executable, "-m", BRIDGE_MARKER, "--host", host, "--port", str(port)]
        argv += ["--stale-after", str(stale_after)]
        log_path = log_dir / "airflow-metrics.log"
        super().__init__("Airflow metrics bridge", argv, host=host, port=port, log_path=log_path, detach=detach)

    @property
    def otlp_endpoint(self) -> str:
        """Where Airflow pushes (``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``)."""
        return self.url + OTLP_PATH


def main(argv: list[str] | None = None) -> int:
    """``python -m infra.monitoring.airflow_metrics --port N [--host H] [--stale-after S]``: serve until stopped."""
    parser = argparse.ArgumentParser(prog=f"python -m {BRIDGE_MARKER}", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--stale-after", type=float, default=60.0, help="seconds without a push before 503")
    args = parser.parse_args(argv)
    web.run_app(bridge_app(args.stale_after), host=args.host, port=args.port, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
