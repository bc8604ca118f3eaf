"""The monitoring spec: the committed one loads, and a spec with mistakes is refused with one line per mistake."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest

from infra.monitoring.loading import SPEC_PATH, load_spec, parse_spec
from infra.monitoring.model import Discovery, SpecError
from infra.monitoring.rule_tests import compress


def committed() -> dict[str, Any]:
    return tomllib.loads(SPEC_PATH.read_text())


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(raw)
    return caught.value.problems


def test_the_committed_spec_names_every_service_of_the_platform() -> None:
    spec = load_spec()
    names = {s.name for s in spec.services}
    assert {
        "cache",
        "redis",
        "s3",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-api-server",
        "spark-master",
        "spark-workers",
        "autoscaler",
        "etl",
    } <= names
    slos = {(s.name, slo.name) for s in spec.services for slo in s.slos}
    assert {("cache", "read-availability"), ("cache", "read-latency"), ("etl", "freshness")} <= slos
    assert ("etl", "data-quality") in slos
    # No fleet is a host list: cache and Spark workers come from service discovery.
    assert spec.service("cache").scrape.discovery is Discovery.CACHE_CLUSTER
    assert spec.service("spark-workers").scrape.discovery is Discovery.SPARK_WORKERS


def test_every_mistake_is_one_line_naming_where_it_is() -> None:
    raw = committed()
    raw["services"]["cache"]["owner"] = "nobody"
    raw["services"]["cache"]["slos"][0]["objective"] = 99.9
    raw["services"]["cache"]["alerts"][0]["severity"] = "urgent"
    raw["services"]["cache"]["alerts"][0]["for"] = "soon"
    raw["services"]["redis"]["alerts"][0]["silences"] = ["NoSuchAlert"]
    raw["services"]["redis"]["alerts"][0]["runbook"] = "nowhere"
    raw["services"]["etl"]["colour"] = "blue"
    raw["routing"]["group_by"] = ["service", "alertname", "instance"]

    lines = problems(raw)

    assert "services.cache.owner: no team 'nobody' (teams: ['cache', 'data', 'platform'])" in lines
    assert any(line.startswith("services.cache.slos[0].objective: expected a ratio between 0 and 1") for line in lines)
    assert any(line.startswith("services.cache.alerts[0].severity: expected one of") for line in lines)
    assert any(line.startswith("services.cache.alerts[0].for: not a duration: 'soon'") for line in lines)
    assert "services.redis.alerts[0].silences: no alert 'NoSuchAlert'" in lines
    assert "services.redis.alerts[0].runbook: no runbook docs/runbooks/nowhere.md" in lines
    assert any(line.startswith("services.etl: unknown key 'colour'") for line in lines)
    assert any(line.startswith("routing.group_by: group by service and alert, not by instance") for line in lines)
    assert len(lines) == 8
    assert all("\n" not in line for line in lines)


def test_an_alert_without_its_tests_is_refused() -> None:
    raw = committed()
    del raw["services"]["redis"]["alerts"][0]["quiet"]
    assert problems(raw) == ["services.redis.alerts[0]: missing key 'quiet'"]


def test_an_alert_name_taken_twice_is_refused_even_by_an_slo() -> None:
    raw = committed()
    raw["services"]["redis"]["alerts"][0]["name"] = "CacheReadLatencyFastBurn"
    lines = problems(raw)
    assert any("alert 'CacheReadLatencyFastBurn' is already defined in services.cache.slos" in line for line in lines)


def test_an_events_slo_names_errors_or_good_but_not_both() -> None:
    raw = copy.deepcopy(committed())
    raw["services"]["cache"]["slos"][1]["errors"] = 'x{status="500"}'
    assert problems(raw) == ["services.cache.slos[1]: an events SLI names exactly one of 'errors' and 'good'"]


def test_a_spec_that_is_not_toml_is_one_line(tmp_path) -> None:
    path = tmp_path / "spec.toml"
    path.write_text("[services\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert len(caught.value.problems) == 1 and "not valid TOML" in caught.value.problems[0]


def test_series_values_are_written_in_promtools_expanding_notation() -> None:
    assert compress([0.0, 1.0, 2.0, 3.0, None, None, "stale", 5.0, 5.0, 7.0]) == "0+1x3 _x2 stale 5x1 7"
    assert compress([10.0, 8.0, 6.0]) == "10-2x2"
