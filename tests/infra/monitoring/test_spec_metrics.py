"""The spec reads the cache's metrics as a real worker exposes them: every ``lakecache_*`` name it uses exists, and
every example series of its SLOs has the worker's label names and, for a histogram bucket, one of its bounds (a
``le="1"`` where the client writes ``le="1.0"`` would match nothing, and the SLO would say nothing)."""

from __future__ import annotations

import re
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from infra.cache_process import CacheProcess
from infra.monitoring.loading import load_spec
from infra.monitoring.model import MonitoringSpec
from tests.support.webhdfs import WebHdfsClient

_NAME = re.compile(r"\blakecache_[a-z0-9_]+")
_SERIES = re.compile(r"^(\w+)\{(.*)\}$")
_MATCHER = re.compile(r'(\w+)\s*(=~|!=|!~|=)\s*"([^"]*)"')
_SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


class Exposition:
    """What a worker's ``/metrics`` declares: sample names, and the label names and ``le`` bounds of each."""

    def __init__(self, text: str) -> None:
        self.labels: dict[str, set[str]] = {}
        self.bounds: dict[str, set[str]] = {}
        for family in text_string_to_metric_families(text):
            # A labelled counter with no child yet has no sample: its declared names still exist.
            for name in [family.name, *(family.name + s for s in _SUFFIXES)]:
                self.labels.setdefault(name, set())
            for sample in family.samples:
                self.labels.setdefault(sample.name, set()).update(sample.labels)
                if "le" in sample.labels:
                    self.bounds.setdefault(sample.name, set()).add(sample.labels["le"])


def cache_expressions(spec: MonitoringSpec) -> list[str]:
    texts = []
    for service in spec.services:
        texts += [r.expr for r in service.records] + [a.expr for a in service.alerts] + [p.expr for p in service.panels]
        for slo in service.slos:
            texts += [slo.total, slo.errors, slo.good, slo.timestamp]
    return texts


def test_every_cache_metric_the_spec_reads_exists(cache_factory, bucket, s3_client) -> None:
    exposed = worker_exposition(cache_factory, bucket, s3_client)
    names = {n for text in cache_expressions(load_spec()) for n in _NAME.findall(text)}
    assert names and names - set(exposed.labels) == set()


def test_every_example_series_looks_like_the_workers(cache_factory, bucket, s3_client) -> None:
    exposed = worker_exposition(cache_factory, bucket, s3_client)
    for service in load_spec().services:
        for slo in service.slos:
            for example in slo.examples:
                match = _SERIES.match(example.series)
                assert match, example.series
                name, matchers = match.group(1), dict((k, v) for k, _, v in _MATCHER.findall(match.group(2)))
                if not name.startswith("lakecache_"):
                    continue  # another exporter's (Airflow's bridge)
                assert name in exposed.labels, example.series
                assert set(matchers) - {"job", "instance"} <= exposed.labels[name], example.series
                if "le" in matchers:
                    assert matchers["le"] in exposed.bounds[name], example.series


def worker_exposition(cache_factory, bucket: str, s3_client) -> Exposition:
    """A worker's metrics after one cold and one warm read (so the request families have children)."""
    cache: CacheProcess = cache_factory({"/warehouse": f"s3://{bucket}/warehouse"})
    s3_client.put_object(Bucket=bucket, Key="warehouse/m", Body=b"m" * 1000)
    hdfs = WebHdfsClient(cache.webhdfs_url)
    hdfs.read("/warehouse/m")
    hdfs.read("/warehouse/m")
    with urllib.request.urlopen(f"{cache.webhdfs_url}/metrics", timeout=10) as response:
        return Exposition(response.read().decode())
