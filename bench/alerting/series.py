"""What the fleet's metrics read, minute by minute, written as OpenMetrics for ``promtool tsdb create-blocks-from``.

Every series is one the spec's rules read, named and labelled as the targets expose it: the cache workers'
``lakecache_*`` (requests and their latency histogram, S3 requests by outcome, disk tier, watermark, purges, staged
bytes, publishes, membership, Redis), Spark's PrometheusServlet gauges, ``redis_up``, the Airflow components'
``up`` and the Airflow metrics bridge's DAG timestamps. Normal load follows the simulated day: a worker's request
rate rises with the cluster's busy cores, a new worker starts cold (most reads miss and go to S3, then fewer as its
disk tier fills), a full worker purges from the high watermark (0.90) to the low (0.75), Spark output is staged
and then published, and telemetry_daily_etl succeeds at 04:10.

Random draws do not depend on the incidents: the same fleet written with and without them (``with_incidents``)
differs only where a fault is in effect. ``up`` of the per-host jobs is written apart (``write_up``), once per way
of finding targets: the service discovery lists a worker from its join to its termination, while the first
generation's static host list keeps every host once added (``up`` 0 when it is gone).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TextIO

import numpy as np

from bench.alerting.fleet import DAY_START, Fleet, Host
from bench.alerting.incidents import Incident, IncidentKind

CAPACITY = 300 * 10**9
"""Each worker's disk tier, bytes."""
HIGH_WATERMARK, LOW_WATERMARK = 0.90, 0.75
BYTES_PER_MISS = 2 * 2**20
CORES = 16
BUCKETS = ("0.01", "0.1", "0.3", "1.0", "3.0", "10.0", "+Inf")
"""The latency histogram's buckets written, as prometheus_client writes their bounds (the worker has more; these
are those the rules and a p99 need)."""
ETL_SUCCESS = 250
"""Minute telemetry_daily_etl succeeds on a normal day (04:10)."""
LATE_ETL_SUCCESS = 535
CACHE_PORT, SPARK_PORT = 9870, 8081
CACHE_JOB, SPARK_JOB = "cache", "spark-workers"
STATIC_JOBS = {CACHE_JOB: "lakecache-hosts", SPARK_JOB: "spark-hosts"}
"""The first generation's jobs: static host lists, their own ``up`` series beside the discovered targets'."""


class View(StrEnum):
    """How Prometheus finds the per-host targets."""

    DISCOVERED = "discovered"
    STATIC = "static"


@dataclass(frozen=True)
class Life:
    """One run of a host's cache worker process: [``begin``, ``end``) minutes, joined at ``begin + 1``."""

    begin: int
    end: int
    drain: int | None


def lives(fleet: Fleet, host: Host, incidents: Sequence[Incident]) -> list[Life]:
    """The runs of ``host``'s cache worker: one, or two around a crash that struck it."""
    end = min(fleet.plan.end, host.end if host.end is not None else fleet.plan.end)
    begin = max(fleet.plan.first, host.start + 1)
    crash = next(
        (i for i in incidents if i.kind is IncidentKind.WORKER_CRASH and host.index in fleet.victims.get(i.kind, ())),
        None,
    )
    if crash is None:
        return [Life(begin, end, host.drain)] if begin < end else []
    return [Life(begin, crash.start, None), Life(crash.end, end, host.drain)]


class OpenMetricsWriter:
    """Samples of many series into one OpenMetrics text file (families may interleave; each series in time order)."""

    def __init__(self, out: TextIO, first: int) -> None:
        self._out = out
        self._first = first
        self.samples = 0
        self._stamps: list[str] = []

    def _stamp(self, minute: int) -> str:
        index = minute - self._first
        while len(self._stamps) <= index:
            self._stamps.append(str(int(DAY_START.timestamp()) + (self._first + len(self._stamps)) * 60))
        return self._stamps[index]

    def series(self, name: str, labels: dict[str, str], minutes: Iterable[int], values: Iterable[float]) -> None:
        """One series' samples; integral values are written as integers."""
        head = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "} "
        lines = [
            f"{head}{int(v) if float(v).is_integer() else repr(float(v))} {self._stamp(int(m))}\n"
            for m, v in zip(minutes, values, strict=True)
        ]
        self._out.writelines(lines)
        self.samples += len(lines)

    def close(self) -> None:
        """The end marker OpenMetrics requires."""
        self._out.write("# EOF\n")


def write_series(fleet: Fleet, path: Path, *, with_incidents: bool) -> int:
    """Every series but the per-host ``up``s, with or without the plan's incidents; returns the samples written."""
    incidents = fleet.plan.incidents if with_incidents else ()
    with path.open("w") as out:
        writer = OpenMetricsWriter(out, fleet.plan.first)
        members = _members(fleet, incidents)
        for host in fleet.hosts:
            for life in lives(fleet, host, incidents):
                _cache_worker(writer, fleet, host, life, incidents, members)
            _spark_worker(writer, fleet, host)
        _singletons(writer, fleet, incidents)
        writer.close()
    return writer.samples


def write_up(fleet: Fleet, path: Path, view: View, *, with_incidents: bool) -> int:
    """``up`` of the cache and Spark worker jobs as Prometheus finds their targets in ``view``."""
    incidents = fleet.plan.incidents if with_incidents else ()
    plan = fleet.plan
    with path.open("w") as out:
        writer = OpenMetricsWriter(out, plan.first)
        for host in fleet.hosts:
            for job, port, runs in (
                (CACHE_JOB, CACHE_PORT, lives(fleet, host, incidents)),
                (SPARK_JOB, SPARK_PORT, [Life(max(plan.first, host.start + 1), _end(fleet, host), None)]),
            ):
                values = _up(fleet, host, runs, view)
                if values:
                    if view is View.DISCOVERED:
                        labels = _target(job, host, port)
                    else:
                        labels = {"job": STATIC_JOBS[job], "instance": f"{host.address}:{port}"}
                    writer.series("up", labels, list(values), list(values.values()))
        writer.close()
    return writer.samples


def _target(job: str, host: Host, port: int) -> dict[str, str]:
    """A discovered target's labels: the generated scrape config adds ``service``, the discovery ``worker_id``."""
    worker = host.worker_id if job == CACHE_JOB else f"worker-{host.index:04d}"
    return {"job": job, "instance": f"{host.address}:{port}", "service": job, "worker_id": worker}


def _end(fleet: Fleet, host: Host) -> int:
    return min(fleet.plan.end, host.end if host.end is not None else fleet.plan.end)


def _up(fleet: Fleet, host: Host, runs: list[Life], view: View) -> dict[int, int]:
    up: dict[int, int] = {}
    for life in runs:
        up.update(dict.fromkeys(range(life.begin, life.end), 1))
    if view is View.DISCOVERED:
        # A worker that dies without leaving is listed until its heartbeat times out and the next refresh: one
        # failed scrape. A drained, terminated one has left the list already.
        for life in runs:
            if life.end < _end(fleet, host) and life.begin < life.end:
                up[life.end] = 0
        return dict(sorted(up.items()))
    # The static list was pruned by hand at 00:00 of the replayed day; a host is added when it boots, never removed.
    if host.end is not None and host.end <= fleet.plan.start:
        return {m: v for m, v in up.items() if m < host.end}
    for minute in range(max(fleet.plan.first, host.start + 1), fleet.plan.end):
        up.setdefault(minute, 0)
    return dict(sorted(up.items()))


FORGET_LOST_AFTER = 60
"""Minutes after its last heartbeat that the cluster forgets a lost worker (the membership's ``_FORGET_LOST_AFTER``)."""


@dataclass(frozen=True)
class _Members:
    joining: np.ndarray
    active: np.ndarray
    draining: np.ndarray
    lost_capacity: np.ndarray
    lost: dict[str, tuple[int, int]]
    """Each crashed worker's id: the minutes [from, to) the others report it lost (its heartbeat timed out, 6 s)."""


def _members(fleet: Fleet, incidents: Sequence[Incident]) -> _Members:
    size = fleet.plan.end - fleet.plan.first
    joining, active, draining = np.zeros(size), np.zeros(size), np.zeros(size)
    lost_capacity = np.zeros(size)
    lost: dict[str, tuple[int, int]] = {}
    for host in fleet.hosts:
        runs = lives(fleet, host, incidents)
        for before, after in itertools.pairwise(runs):
            # Two runs have a crash between them: lost to the others from the crash until back (or forgotten).
            back = after.begin if after.begin < after.end else before.end + FORGET_LOST_AFTER
            end = min(back, before.end + FORGET_LOST_AFTER, fleet.plan.end)
            lost[host.worker_id] = (before.end, end)
            lost_capacity[before.end - fleet.plan.first : end - fleet.plan.first] += CAPACITY
    for host in fleet.hosts:
        for life in lives(fleet, host, incidents):
            for minute in range(life.begin, life.end):
                i = minute - fleet.plan.first
                if minute == life.begin:
                    joining[i] += 1
                elif life.drain is not None and minute >= life.drain:
                    draining[i] += 1
                else:
                    active[i] += 1
    return _Members(joining, active, draining, lost_capacity, lost)


def _in(incidents: Sequence[Incident], kind: IncidentKind, minutes: np.ndarray) -> np.ndarray:
    mask = np.zeros(len(minutes), dtype=bool)
    for incident in incidents:
        if incident.kind is kind:
            mask |= (minutes >= incident.start) & (minutes < incident.end)
    return mask


def _cache_worker(
    writer: OpenMetricsWriter,
    fleet: Fleet,
    host: Host,
    life: Life,
    incidents: Sequence[Incident],
    members: _Members,
) -> None:
    if life.begin >= life.end:
        return
    rng = np.random.default_rng([fleet.plan.seed, host.index, life.begin - fleet.plan.first])
    faults = np.random.default_rng([fleet.plan.seed, host.index, life.begin - fleet.plan.first, 1])
    minutes = np.arange(life.begin, life.end)
    index = minutes - fleet.plan.first
    busy = np.asarray(fleet.busy)[index]
    serving = (minutes > life.begin) & ((minutes < life.drain) if life.drain is not None else True)
    age = np.maximum(0, minutes - life.begin - 1)
    requests = rng.poisson((30 + 170 * busy) * 60) * serving
    misses = rng.binomial(requests, 0.06 + 0.84 * np.exp(-age / 10))
    hits = requests - misses
    tail = rng.binomial(hits, 5e-5)
    errors = rng.binomial(requests, 2e-5)
    fast = rng.binomial(misses, 0.7)
    throttled = rng.binomial(misses, 0.001 + 0.004 * busy)
    s3_errors = rng.binomial(misses, 1e-4)
    slow = _in(incidents, IncidentKind.S3_SLOWDOWN, minutes)
    # Slow S3: every miss takes 1-5 s to its first byte; 5% of attempts time out and 10% are throttled, retried.
    slow_misses = np.where(slow, misses, 0)
    very_slow = faults.binomial(slow_misses, 0.3)
    timeouts = faults.binomial(slow_misses, 0.05)
    throttled = throttled + faults.binomial(slow_misses, 0.10)
    errors = errors + faults.binomial(slow_misses, 0.01)
    fast = np.where(slow, 0, fast)
    mid = np.where(slow, 0, misses - fast)
    # A crash: for the heartbeat timeout (6 s) the others still route the dead workers' blocks to them.
    for incident in incidents:
        if incident.kind is IncidentKind.WORKER_CRASH and host.index not in fleet.victims.get(incident.kind, ()):
            at = minutes == incident.start
            share = incident.hosts / max(1.0, float(members.active[incident.start - fleet.plan.first]))
            errors = errors + faults.binomial(np.where(at, requests, 0), min(1.0, share * 0.1))
    le = {
        "0.01": hits - tail,
        "0.1": hits - tail + fast,
        "0.3": hits - tail + fast + mid,
    }
    le["1.0"] = le["0.3"]
    le["3.0"] = le["1.0"] + tail + slow_misses - very_slow
    le["10.0"] = requests
    le["+Inf"] = requests
    labels = _target(CACHE_JOB, host, CACHE_PORT)
    read = {**labels, "api": "webhdfs", "op": "OPEN"}
    writer.series("lakecache_requests_total", {**read, "status": "200"}, minutes, np.cumsum(requests - errors))
    writer.series("lakecache_requests_total", {**read, "status": "503"}, minutes, np.cumsum(errors))
    for bound in BUCKETS:
        writer.series("lakecache_request_seconds_bucket", {**read, "le": bound}, minutes, np.cumsum(le[bound]))
    writer.series("lakecache_request_seconds_count", read, minutes, np.cumsum(requests))
    for outcome, counts in (
        ("ok", misses),
        ("server_error", s3_errors),
        ("timeout", timeouts),
        ("throttled", throttled),
    ):
        writer.series("lakecache_s3_requests_total", {**labels, "outcome": outcome}, minutes, np.cumsum(counts))
    _disk(writer, fleet, host, labels, minutes, misses, busy * serving, incidents, rng)
    for state, counts in (("joining", members.joining), ("active", members.active), ("draining", members.draining)):
        writer.series("lakecache_cluster_members", {**labels, "state": state}, minutes, counts[index])
    writer.series("lakecache_cluster_lost_capacity_bytes", labels, minutes, members.lost_capacity[index])
    for worker, (begin, end) in members.lost.items():
        seen = minutes[(minutes >= begin) & (minutes < end)]
        if worker != host.worker_id and len(seen):
            writer.series("lakecache_cluster_worker_lost", {**labels, "worker": worker}, seen, np.ones(len(seen)))
    degraded = _in(incidents, IncidentKind.REDIS_DOWN, minutes).astype(int)
    writer.series("lakecache_cluster_degraded", labels, minutes, degraded)


def _disk(
    writer: OpenMetricsWriter,
    fleet: Fleet,
    host: Host,
    labels: dict[str, str],
    minutes: np.ndarray,
    misses: np.ndarray,
    load: np.ndarray,
    incidents: Sequence[Incident],
    rng: np.random.Generator,
) -> None:
    """Disk tier fill: pages from misses, staged Spark output published every 20-40 minutes, pressure purges."""
    stalled = [
        i for i in incidents if i.kind is IncidentKind.DISK_FILLING and host.index in fleet.victims.get(i.kind, ())
    ]
    pages = staged = 0.0
    freed = published = 0
    next_publish = int(rng.integers(20, 40))
    used_s, staged_s, freed_s, published_s = [], [], [], []
    for offset, minute in enumerate(minutes):
        room = CAPACITY - pages - staged
        pages += min(room, float(misses[offset]) * BYTES_PER_MISS)
        staged += min(CAPACITY - pages - staged, float(load[offset]) * 0.5e9)
        next_publish -= 1
        if next_publish <= 0:
            published += int(rng.poisson(20)) if staged else 0
            staged = 0.0
            next_publish = int(rng.integers(20, 40))
        for incident in stalled:
            # A stalled job's output is staged (unevictable) and never published; killed, its staging is dropped.
            if incident.start <= minute < incident.end:
                pages = max(0.0, pages - 4.5e9)
                staged = min(CAPACITY - pages, staged + 4.5e9)
                next_publish = max(next_publish, 2)
            elif minute == incident.end:
                staged = 0.0
        if pages + staged > HIGH_WATERMARK * CAPACITY:
            gone = min(pages, pages + staged - LOW_WATERMARK * CAPACITY)
            pages -= gone
            freed += int(gone)
        used_s.append(int(pages + staged))
        staged_s.append(int(staged))
        freed_s.append(freed)
        published_s.append(published)
    disk = {**labels, "tier": "disk"}
    writer.series("lakecache_tier_used_bytes", disk, minutes, used_s)
    writer.series("lakecache_tier_capacity_bytes", disk, minutes, [CAPACITY] * len(minutes))
    writer.series("lakecache_store_watermark", {**labels, "level": "high"}, minutes, [HIGH_WATERMARK] * len(minutes))
    writer.series("lakecache_purge_freed_bytes_total", {**labels, "trigger": "pressure"}, minutes, freed_s)
    writer.series("lakecache_staged_bytes", labels, minutes, staged_s)
    writer.series("lakecache_published_files_total", labels, minutes, published_s)


def _spark_worker(writer: OpenMetricsWriter, fleet: Fleet, host: Host) -> None:
    begin, end = max(fleet.plan.first, host.start + 1), _end(fleet, host)
    if begin >= end:
        return
    rng = np.random.default_rng([fleet.plan.seed, host.index, 2])
    minutes = np.arange(begin, end)
    busy = np.asarray(fleet.busy)[minutes - fleet.plan.first]
    serving = (minutes < host.drain) if host.drain is not None else np.ones(len(minutes), dtype=bool)
    used = np.minimum(CORES, np.round(CORES * busy * rng.uniform(0.8, 1.2, len(minutes)))) * serving
    labels = {**_target(SPARK_JOB, host, SPARK_PORT), "type": "gauges"}
    writer.series("metrics_worker_coresUsed_Value", labels, minutes, used)
    writer.series("metrics_worker_coresFree_Value", labels, minutes, CORES - used)


def _singletons(writer: OpenMetricsWriter, fleet: Fleet, incidents: Sequence[Incident]) -> None:
    plan = fleet.plan
    minutes = np.arange(plan.first, plan.end)
    ones = np.ones(len(minutes), dtype=int)
    for job, address in (
        ("redis", "10.0.250.2:9121"),
        ("spark-master", "10.0.250.3:8080"),
        ("airflow-scheduler", "10.0.250.4:8793"),
        ("airflow-dag-processor", "10.0.250.4:8794"),
        ("airflow-triggerer", "10.0.250.4:8795"),
        ("airflow-api-server", "10.0.250.4:8080"),
    ):
        writer.series("up", {"job": job, "instance": address, "service": job}, minutes, ones)
    redis = {"job": "redis", "instance": "10.0.250.2:9121", "service": "redis"}
    writer.series("redis_up", redis, minutes, 1 - _in(incidents, IncidentKind.REDIS_DOWN, minutes).astype(int))
    master = {"job": "spark-master", "instance": "10.0.250.3:8080", "service": "spark-master", "type": "gauges"}
    alive = [sum(1 for h in fleet.hosts if h.start + 1 <= m < _end(fleet, h)) for m in minutes]
    writer.series("metrics_master_aliveWorkers_Value", master, minutes, alive)
    writer.series("metrics_master_waitingApps_Value", master, minutes, fleet.waiting)
    _airflow(writer, minutes, incidents)


def _airflow(writer: OpenMetricsWriter, minutes: np.ndarray, incidents: Sequence[Incident]) -> None:
    """What the Airflow metrics bridge serves for the scheduler: DAG runs' last success, the ETL's validations."""
    scheduler = {"job": "airflow-scheduler", "instance": "10.0.250.4:8793", "service": "airflow-scheduler"}
    late = any(i.kind is IncidentKind.LATE_ETL for i in incidents)
    success = LATE_ETL_SUCCESS if late else ETL_SUCCESS
    start = int(DAY_START.timestamp())
    name = "airflow_dag_run_last_success_timestamp_seconds"
    etl = [start + 60 * (success if m >= success else ETL_SUCCESS - 1440) for m in minutes]
    writer.series(name, {**scheduler, "dag_id": "telemetry_daily_etl"}, minutes, etl)
    scaler = [start + 60 * (10 * math.floor((m - 1) / 10) + 1) for m in minutes]
    writer.series(name, {**scheduler, "dag_id": "cluster_autoscale"}, minutes, scaler)
    for task in ("validate_events", "validate_aggregates"):
        labels = {**scheduler, "dag_id": "telemetry_daily_etl", "task_id": task}
        passed = [2 if m >= success else 1 for m in minutes]
        writer.series("airflow_ti_finish_total", {**labels, "state": "success"}, minutes, passed)
        writer.series("airflow_ti_finish_total", {**labels, "state": "failed"}, minutes, [0] * len(minutes))
