"""Prometheus metrics of one cache worker, in a registry of its own (several workers may share a process in tests)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

PREFIX = "lakecache"
OTHER_USER = "other"
"""The user label of a request whose user is not a configured one (``lakecache_requests_by_user_total``)."""


class CacheMetrics:
    """Counters and histograms updated on the data path; gauges are read from the live state at scrape time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(f"{PREFIX}_requests", "Requests answered", ["api", "op", "status"], registry=r)
        self.request_seconds = Histogram(
            f"{PREFIX}_request_seconds",
            "Time to answer a request (to the last byte)",
            ["api", "op"],
            buckets=(0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30),
            registry=r,
        )
        self.bytes_served = Counter(
            f"{PREFIX}_bytes_served", "Bytes served to clients, by source", ["tier"], registry=r
        )
        self.s3_bytes_read = Counter(f"{PREFIX}_s3_bytes_read", "Bytes read from S3 (the under store)", registry=r)
        self.s3_bytes_written = Counter(f"{PREFIX}_s3_bytes_written", "Bytes written to S3", registry=r)
        self.s3_retries = Counter(
            f"{PREFIX}_s3_retries",
            "S3 requests sent again after a transient failure, by its kind (see under_store.s3.RETRY_REASONS)",
            ["reason"],
            registry=r,
        )
        self.s3_requests = Counter(
            f"{PREFIX}_s3_requests",
            "S3 requests sent, every attempt (retries included), by outcome (see under_store.s3.ATTEMPT_OUTCOMES)",
            ["outcome"],
            registry=r,
        )
        self.page_hits = Counter(f"{PREFIX}_page_hits", "Page reads served from a tier", ["tier"], registry=r)
        self.page_misses = Counter(f"{PREFIX}_page_misses", "Page reads that went to S3", registry=r)
        self.metadata_hits = Counter(f"{PREFIX}_metadata_hits", "Status/listing lookups served from cache", registry=r)
        self.metadata_misses = Counter(f"{PREFIX}_metadata_misses", "Status/listing lookups sent to S3", registry=r)
        self.evictions = Counter(
            f"{PREFIX}_evictions", "Pages dropped, by tier and reason", ["tier", "reason"], registry=r
        )
        self.promotions = Counter(f"{PREFIX}_promotions", "Pages promoted from disk to memory", registry=r)
        self.demotions = Counter(f"{PREFIX}_demotions", "Pages dropped from memory, kept on disk", registry=r)
        self.corrupt_pages = Counter(f"{PREFIX}_corrupt_pages", "Pages whose checksum failed (refetched)", registry=r)
        self.purge_runs = Counter(f"{PREFIX}_purge_runs", "Purges that ran, by trigger", ["trigger"], registry=r)
        self.purge_bytes = Counter(
            f"{PREFIX}_purge_freed_bytes", "Bytes freed by purges, by trigger", ["trigger"], registry=r
        )
        self.warm_requests = Counter(
            f"{PREFIX}_warm_requests",
            "Requests answered from memory as they arrived, by op (OPEN, GETFILESTATUS, GetObject, HeadObject)",
            ["op"],
            registry=r,
        )
        self.requests_by_user = Counter(
            f"{PREFIX}_requests_by_user",
            "Requests by the user they act as and whether access control let them through (outcome allowed or "
            f"denied); only where users are configured, user one of their names or {OTHER_USER!r} for anyone else",
            ["api", "user", "outcome"],
            registry=r,
        )
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.publishes = Counter(f"{PREFIX}_published_files", "Staged files published to S3", registry=r)

    def observe_request(self, api: str, op: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration (label children are memoised: this is the hot path)."""
        key = (api, op, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(api=api, op=op, status=str(status)),
                self.request_seconds.labels(api=api, op=op),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def user_requests(self, api: str, users: Iterable[str]) -> UserRequests:
        """The counter of ``api``'s requests by user, for the configured ``users`` (none: it counts nothing)."""
        return UserRequests(self.requests_by_user, api, users)

    def count_s3_retry(self, reason: str) -> None:
        """Count one S3 request sent again (or one body resumed) after a failure of kind ``reason``."""
        self.s3_retries.labels(reason=reason).inc()

    def count_s3_attempt(self, outcome: str) -> None:
        """Count one attempt at an S3 request, ended as ``outcome``."""
        self.s3_requests.labels(outcome=outcome).inc()

    def add_gauges(self, source: Callable[[], Iterable[Metric]]) -> None:
        """Register a callback that yields gauge families from live state at every scrape."""
        self.registry.register(_CallbackCollector(source))

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class UserRequests:
    """Counts one API's requests in ``lakecache_requests_by_user_total`` by user and outcome.

    A request's user is what the client says (WebHDFS ``user.name`` is free text), so the label takes only the
    configured names, anyone else counting as ``other``: at most two series per configured user, and one pair more,
    whatever clients send. With no users configured it counts nothing.
    """

    def __init__(self, counter: Counter, api: str, users: Iterable[str]) -> None:
        self._counter = counter
        self._api = api
        self._names = frozenset(users)
        self._children: dict[tuple[str, bool], Counter] = {}

    def count(self, user: str, *, allowed: bool) -> None:
        """Count one request of ``user``, ``allowed`` through access control or denied."""
        if not self._names:
            return
        key = (user if user in self._names else OTHER_USER, allowed)
        child = self._children.get(key)
        if child is None:
            outcome = "allowed" if allowed else "denied"
            child = self._children[key] = self._counter.labels(api=self._api, user=key[0], outcome=outcome)
        child.inc()


class _CallbackCollector(Collector):
    def __init__(self, source: Callable[[], Iterable[Metric]]) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        return self._source()

    def describe(self) -> Iterable[Metric]:
        return []


def gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    """A gauge family named with the project prefix."""
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)
