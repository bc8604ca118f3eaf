"""Airflow's metrics bridge (``infra.monitoring.airflow_metrics``) as a real process: what OpenTelemetry's own
exporter pushes, and what Airflow's ``Stats`` pushes from a real Airflow process, comes out as Prometheus text, per
component; a component that stopped pushing answers 503."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client.parser import text_string_to_metric_families

from infra.airflow_environment import otel_metrics_env
from infra.monitoring.airflow_metrics import AirflowMetricsBridge


def scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {
        f"{s.name}{{{','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))}}}": s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[AirflowMetricsBridge]:
    with AirflowMetricsBridge(tmp_path, stale_after=30) as running:
        yield running


def test_pushed_counters_gauges_and_histograms_are_served_per_component(bridge: AirflowMetricsBridge) -> None:
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=bridge.otlp_endpoint), 3_600_000)
    provider = MeterProvider([reader], resource=Resource.create({"service.name": "airflow-scheduler"}))
    meter = provider.get_meter("test")
    meter.create_counter("airflow.ti.finish").add(3, {"dag_id": "daily", "state": "success"})
    meter.create_gauge("airflow.executor.open_slots").set(7)
    meter.create_histogram("airflow.dag_processing.last_duration", unit="ms").record(120.0)
    provider.force_flush()
    provider.shutdown()

    scheduler = scrape(bridge.url + "/metrics?component=scheduler")
    assert scheduler["airflow_ti_finish_total{dag_id=daily,state=success}"] == 3
    assert scheduler["airflow_executor_open_slots{}"] == 7
    assert scheduler["airflow_dag_processing_last_duration_count{}"] == 1
    assert scheduler["airflow_dag_processing_last_duration_sum{}"] == 120.0
    assert scheduler["airflow_dag_processing_last_duration_bucket{le=+Inf}"] == 1

    everyone = scrape(bridge.url + "/metrics")
    assert everyone["airflow_executor_open_slots{component=scheduler}"] == 7
    assert status(bridge.url + "/metrics?component=triggerer") == 503  # never pushed: its target is down


def test_a_counter_adds_up_what_every_process_of_a_component_counted(bridge: AirflowMetricsBridge) -> None:
    # Every task the scheduler runs is a process of its own pushing under the scheduler's name, each counting
    # ti.finish from 0: two runs of one task are 2, and a process that pushes twice is counted once.
    labels = {"dag_id": "daily", "task_id": "validate_events", "state": "success"}
    for finished in (1, 2):
        reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=bridge.otlp_endpoint), 3_600_000)
        provider = MeterProvider([reader], resource=Resource.create({"service.name": "airflow-scheduler"}))
        counter = provider.get_meter("task").create_counter("airflow.ti.finish")
        counter.add(1, labels)
        provider.force_flush()
        counter.add(2, labels)  # the same process again: its stream grew by 2
        provider.force_flush()
        provider.shutdown()
        scheduler = scrape(bridge.url + "/metrics?component=scheduler")
        assert scheduler["airflow_ti_finish_total{dag_id=daily,state=success,task_id=validate_events}"] == 3 * finished


def test_airflow_pushes_its_own_metrics_through_the_bridge(bridge: AirflowMetricsBridge, tmp_path: Path) -> None:
    # A real Airflow process with the environment infra.airflow gives each component, its metrics set up as the
    # triggerer sets them up; Stats is Airflow's own facade, exported on exit by the OTel SDK Airflow configures.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "OTEL_"))}
    env.update(otel_metrics_env(bridge.otlp_endpoint, "triggerer"), AIRFLOW_HOME=str(tmp_path / "airflow"))
    script = (
        "from airflow.configuration import conf\n"
        "from airflow.observability.metrics.stats_utils import get_stats_factory\n"
        "from airflow.observability.stats import Stats, initialize\n"
        "initialize(factory=get_stats_factory(), export_legacy_names=conf.getboolean('metrics', 'legacy_names_on'))\n"
        "Stats.incr('triggerer_heartbeat')\n"
        "Stats.gauge('triggers.running', 2, tags={'hostname': 'h1'})\n"
        "Stats.timing('lakecache.test_seconds', 250)\n"
        "Stats.incr('ti.finish', tags={'dag_id': 'daily', 'task_id': 'validate_events', 'state': 'success'})\n"
        "Stats.timing('dagrun.duration.success', 1234, tags={'dag_id': 'daily', 'run_type': 'scheduled'})\n"
    )
    started = time.time()
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]

    triggerer = scrape(bridge.url + "/metrics?component=triggerer")
    assert triggerer.get("airflow_triggerer_heartbeat_total{}") == 1, sorted(triggerer)
    assert 2 in [v for k, v in triggerer.items() if k.startswith("airflow_triggers_running")], sorted(triggerer)
    assert triggerer["airflow_lakecache_test_seconds_count{}"] == 1
    # What the spec's ETL SLOs read: Airflow's ti.finish, and the last success the bridge derives.
    assert triggerer["airflow_ti_finish_total{dag_id=daily,state=success,task_id=validate_events}"] == 1
    assert started <= triggerer["airflow_dag_run_last_success_timestamp_seconds{dag_id=daily}"] <= time.time()
