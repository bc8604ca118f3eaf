"""What a cache worker's ``/metrics`` says about its data path: counters at one moment, or sampled over a while.

``CacheCounters.scrape(url)`` reads the counters once; subtract two snapshots to get what happened in between.
``CounterSampler`` scrapes them in a background thread every ``interval`` seconds, each sample stamped with the
wall clock (``time.time()``), so that what happened can be placed on a timeline: the demo splits a DAG run's
counters among its tasks this way. Given several workers (a cluster), each sample holds every worker's counters
and their sum.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType

from prometheus_client.parser import text_string_to_metric_families

# Straight to loopback: a proxy configured in the environment must not sit between us and the worker.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class CacheMetricsError(RuntimeError):
    """A worker's ``/metrics`` did not answer; the message names the URL and the reason."""


def _minus(now: Mapping[str, float], before: Mapping[str, float]) -> dict[str, float]:
    return {k: now.get(k, 0.0) - before.get(k, 0.0) for k in set(now) | set(before)}


@dataclass(frozen=True)
class CacheCounters:
    """The worker's data-path counters at one moment; subtract two snapshots to get what happened in between."""

    s3_bytes_read: float = 0.0
    bytes_served: Mapping[str, float] = field(default_factory=dict)
    page_hits: Mapping[str, float] = field(default_factory=dict)
    page_misses: float = 0.0
    open_seconds: float = 0.0
    s3_bytes_written: float = 0.0

    @classmethod
    def parse(cls, text: str) -> CacheCounters:
        """Read the counters from a Prometheus text exposition (missing counters count as 0)."""
        s3_read = s3_written = misses = open_seconds = 0.0
        served: dict[str, float] = {}
        hits: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "lakecache_s3_bytes_read_total":
                    s3_read += sample.value
                elif sample.name == "lakecache_s3_bytes_written_total":
                    s3_written += sample.value
                elif sample.name == "lakecache_page_misses_total":
                    misses += sample.value
                elif sample.name == "lakecache_bytes_served_total":
                    tier = sample.labels.get("tier", "")
                    served[tier] = served.get(tier, 0.0) + sample.value
                elif sample.name == "lakecache_page_hits_total":
                    tier = sample.labels.get("tier", "")
                    hits[tier] = hits.get(tier, 0.0) + sample.value
                elif sample.name == "lakecache_request_seconds_sum" and sample.labels.get("op") == "OPEN":
                    open_seconds += sample.value
        return cls(
            s3_bytes_read=s3_read,
            bytes_served=served,
            page_hits=hits,
            page_misses=misses,
            open_seconds=open_seconds,
            s3_bytes_written=s3_written,
        )

    @classmethod
    def scrape(cls, webhdfs_url: str, timeout: float = 10.0) -> CacheCounters:
        """The counters of the worker whose WebHDFS port answers at ``webhdfs_url``.

        Raises ``CacheMetricsError`` if ``/metrics`` does not answer.
        """
        try:
            with _DIRECT.open(f"{webhdfs_url}/metrics", timeout=timeout) as response:
                return cls.parse(response.read().decode())
        except OSError as exc:
            raise CacheMetricsError(f"cannot read {webhdfs_url}/metrics: {exc}") from exc

    @property
    def page_reads(self) -> float:
        """Page reads, hits (any tier) and misses together."""
        return sum(self.page_hits.values()) + self.page_misses

    @property
    def hit_ratio(self) -> float:
        """Page reads served from a tier over all page reads (0 when no page was read)."""
        reads = self.page_reads
        return sum(self.page_hits.values()) / reads if reads else 0.0

    def scaled(self, share: float) -> CacheCounters:
        """Every counter times ``share``: the part of a delta that falls in part of its interval."""
        return CacheCounters(
            s3_bytes_read=self.s3_bytes_read * share,
            bytes_served={k: v * share for k, v in self.bytes_served.items()},
            page_hits={k: v * share for k, v in self.page_hits.items()},
            page_misses=self.page_misses * share,
            open_seconds=self.open_seconds * share,
            s3_bytes_written=self.s3_bytes_written * share,
        )

    def __add__(self, other: CacheCounters) -> CacheCounters:
        def plus(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
            return {k: a.get(k, 0.0) + b.get(k, 0.0) for k in set(a) | set(b)}

        return CacheCounters(
            s3_bytes_read=self.s3_bytes_read + other.s3_bytes_read,
            bytes_served=plus(self.bytes_served, other.bytes_served),
            page_hits=plus(self.page_hits, other.page_hits),
            page_misses=self.page_misses + other.page_misses,
            open_seconds=self.open_seconds + other.open_seconds,
            s3_bytes_written=self.s3_bytes_written + other.s3_bytes_written,
        )

    def __sub__(self, earlier: CacheCounters) -> CacheCounters:
        return CacheCounters(
            s3_bytes_read=self.s3_bytes_read - earlier.s3_bytes_read,
            bytes_served=_minus(self.bytes_served, earlier.bytes_served),
            page_hits=_minus(self.page_hits, earlier.page_hits),
            page_misses=self.page_misses - earlier.page_misses,
            open_seconds=self.open_seconds - earlier.open_seconds,
            s3_bytes_written=self.s3_bytes_written - earlier.s3_bytes_written,
        )


@dataclass(frozen=True)
class CounterSample:
    """The counters as scraped at ``at``, in seconds since the epoch (the clock Airflow stamps task times with)."""

    at: float
    counters: CacheCounters
    """The sum of every scraped worker's counters."""
    workers: Mapping[str, CacheCounters] = field(default_factory=dict)
    """Each worker's own counters, by its WebHDFS URL."""


class CounterSampler:
    """Scrapes a worker's counters (or several workers', summed) every ``interval`` seconds in a background thread,
    while used as a context.

    ``boundary``, if given, is asked every ``poll`` seconds whether something worth a sample of its own has just
    happened (a task started or ended); if it says so, a sample is taken at once, so that what came before and what
    comes after fall in different intervals. Entering takes the first sample before the thread starts, leaving takes
    the last one after it stopped, so the first and last samples bracket everything inside the ``with`` block. A
    scrape that fails in the thread is skipped: the counters only grow, so the next sample covers that interval too.
    """

    def __init__(
        self,
        webhdfs_url: str | Sequence[str],
        interval: float = 0.5,
        *,
        boundary: Callable[[], bool] | None = None,
        poll: float = 0.05,
    ) -> None:
        if not interval > 0 or not poll > 0:
            raise ValueError(f"interval and poll must be positive numbers of seconds, not {interval!r}, {poll!r}")
        self.webhdfs_urls = (webhdfs_url,) if isinstance(webhdfs_url, str) else tuple(webhdfs_url)
        if not self.webhdfs_urls:
            raise ValueError("no worker to sample")
        self.interval = interval
        self.boundary = boundary
        self.poll = poll if boundary is not None else interval
        self._samples: list[CounterSample] = []
        # One scrape at a time, appended in the order taken: samples stay ordered by time and by counter value.
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def samples(self) -> list[CounterSample]:
        """The samples so far, oldest first."""
        with self._lock:
            return list(self._samples)

    def sample(self) -> CounterSample:
        """Scrape every worker once now and keep the sample. Raises ``CacheMetricsError`` if a ``/metrics`` does
        not answer."""
        with self._lock:
            started = time.time()
            workers = {url: CacheCounters.scrape(url) for url in self.webhdfs_urls}
            # Stamped halfway through the scrape: the counters were read somewhere in between.
            taken = CounterSample(
                at=(started + time.time()) / 2, counters=sum(workers.values(), CacheCounters()), workers=workers
            )
            self._samples.append(taken)
        return taken

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.poll):
            marked = self.boundary() if self.boundary is not None else False
            # Within half a poll of being due is due: the next poll would be late by more than that.
            if not marked and time.monotonic() < last + self.interval - self.poll / 2:
                continue
            try:
                self.sample()
            except CacheMetricsError:
                continue
            last = time.monotonic()

    def __enter__(self) -> CounterSampler:
        self.sample()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="cache-counter-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if exc_type is None:
            self.sample()
