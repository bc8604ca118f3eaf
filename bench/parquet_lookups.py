"""Parquet point lookups through pyarrow: straight from S3 (the latency model) against the warm cache, through its
WebHDFS port and through its S3 API, and against the same lookups in memory (the most any cache could give).

A lookup finds one event by ``event_id`` the way a query engine would: open the file (its size: a HEAD on S3 and on
the cache's S3 API, GETFILESTATUS over WebHDFS), read the footer, pick the row group whose ``event_id`` statistics
hold the id, read that row group (all columns, ranges coalesced by ``pre_buffer``) and filter it. Each lookup opens
the file afresh, so the footer is read every time, as by a fresh task or a new query. Every path keeps its
connections between lookups (pyarrow's S3 client pools them; the WebHDFS client keeps one).
"""

from __future__ import annotations

import http.client
import io
import json
import statistics
import time
import urllib.request
from abc import abstractmethod
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from prometheus_client.parser import text_string_to_metric_families

from bench import plots
from bench.lean_http import LeanHttpConnection
from bench.measured import fresh_work_dir, measured_section
from bench.nginx import Nginx
from bench.report import IMG_DIR, markdown_table
from bench.section import Section
from bench.spark_scan import event_files, parquet_bytes
from infra.cache_metrics import CacheCounters
from infra.cache_process import CacheProcess
from infra.ports import LOOPBACK
from infra.s3_emulator import EMULATOR_CREDENTIALS, S3Emulator
from infra.s3_model import S3Model

BUCKET = "bench"
KEY = "lookups/events.parquet"
USER = "bench"
STRING_COLUMNS = ("event_type", "platform", "country")
S3_MODEL, WEBHDFS, S3_API, IN_MEMORY = "S3 model", "cache, WebHDFS", "cache, S3 API", "in memory"
WEBHDFS_STDLIB = "cache, WebHDFS, http.client"  # the same requests through the standard library's client
NGINX = "nginx, HTTP ranges"  # the same three requests to a native web server: the floor for any server here
CACHE_PATHS = {WEBHDFS: "webhdfs", S3_API: "s3_api"}  # the cache's two doors, and their names in target keys
CACHED = (WEBHDFS, WEBHDFS_STDLIB, S3_API)  # every path through the cache
SERVED = (*CACHED, NGINX)  # every path that asks a local server


@dataclass(frozen=True)
class Plan:
    """The table (rows, rows per row group) and how many lookups to time."""

    events: int
    row_group_rows: int
    runs: int
    lookups: int  # per run and path

    @classmethod
    def choose(cls, full: bool, smoke: bool) -> Plan:
        """Smoke: a tiny table and a handful of lookups. Quick: 1M events, 5 runs of 20. Full: 4M, 9 runs of 40."""
        if smoke:
            return cls(events=50_000, row_group_rows=4096, runs=2, lookups=3)
        if full:
            return cls(events=4_000_000, row_group_rows=16_384, runs=9, lookups=40)
        return cls(events=1_000_000, row_group_rows=16_384, runs=5, lookups=20)


Get = Callable[[str], tuple[int, "bytes | bytearray"]]
"""A client's GET: the status and body for a request target (path and query)."""


def stdlib_get(connection: http.client.HTTPConnection) -> Get:
    """GETs through the standard library's ``http.client`` on one kept-alive ``connection``."""

    def get(target: str) -> tuple[int, bytes]:
        connection.request("GET", target)
        response = connection.getresponse()
        return response.status, response.read()

    return get


class RangedFile(io.RawIOBase):
    """A read-only, seekable file of ``size`` bytes whose every read is one ranged request (``_fetch``).

    Wrap it in ``pyarrow.PythonFile`` to hand it to pyarrow. Not thread-safe, and needs not be: ``PythonFile``
    serialises reads.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self._size = size
        self._position = 0

    @abstractmethod
    def _fetch(self, offset: int, count: int) -> bytes | bytearray:
        """``count`` bytes from ``offset``; raises ``OSError`` when the server refuses."""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def read(self, size: int | None = -1) -> bytes | bytearray:
        """Up to ``size`` bytes from the current position (to the end when ``size`` is negative or None)."""
        count = self._size - self._position if size is None or size < 0 else min(size, self._size - self._position)
        if count <= 0:
            return b""
        data = self._fetch(self._position, count)
        self._position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)


class WebHdfsFile(RangedFile):
    """A file over WebHDFS: ``GETFILESTATUS`` for its size, then one ``OPEN`` with ``offset`` and ``length`` a read.

    ``get`` sends each request (``LeanHttpConnection.get`` or ``stdlib_get``), on a connection kept between files.
    """

    def __init__(self, get: Get, path: str, user: str = USER) -> None:
        self._send = get
        self._path = path
        self._user = user
        status = json.loads(self._get("GETFILESTATUS"))
        super().__init__(int(status["FileStatus"]["length"]))

    def _get(self, op: str, extra: str = "") -> bytes | bytearray:
        status, body = self._send(f"/webhdfs/v1{self._path}?op={op}&user.name={self._user}{extra}")
        if status != 200:
            raise OSError(f"WebHDFS {op} {self._path} answered {status}: {bytes(body[:200])!r}")
        return body

    def _fetch(self, offset: int, count: int) -> bytes | bytearray:
        return self._get("OPEN", f"&offset={offset}&length={count}")


class HttpRangeFile(RangedFile):
    """A file on a plain HTTP server (nginx): ``HEAD`` for its size, then one ``GET`` with a ``Range`` a read."""

    def __init__(self, connection: LeanHttpConnection, target: str) -> None:
        self._connection = connection
        self._target = target
        status, headers, _ = connection.request("HEAD", target)
        if status != 200:
            raise OSError(f"HEAD {target} answered {status}")
        super().__init__(int(headers["content-length"]))

    def _fetch(self, offset: int, count: int) -> bytes | bytearray:
        status, _, body = self._connection.request(
            "GET", self._target, {"Range": f"bytes={offset}-{offset + count - 1}"}
        )
        if status != 206:
            raise OSError(f"GET {self._target} bytes {offset}+{count} answered {status}")
        return body


Opener = Callable[[], Any]  # a new pyarrow-readable file each call


def lookup(open_file: Opener, event_id: int) -> dict[str, Any]:
    """The row of ``event_id``: footer, then the one row group whose statistics hold it. Raises ``KeyError``."""
    with open_file() as source:
        # Low-cardinality strings stay dictionary-encoded, as an Arrow-native engine reads them: decoding them into
        # plain strings would cost more than the storage access measured here, on both paths alike.
        parquet = pq.ParquetFile(source, pre_buffer=True, read_dictionary=STRING_COLUMNS)
        metadata = parquet.metadata
        column = parquet.schema_arrow.get_field_index("event_id")
        for index in range(metadata.num_row_groups):
            stats = metadata.row_group(index).column(column).statistics
            if stats is not None and stats.has_min_max and stats.min <= event_id <= stats.max:
                table = parquet.read_row_group(index)
                rows = table.filter(pc.equal(table["event_id"], event_id)).to_pylist()
                if rows:
                    return dict(rows[0])
    raise KeyError(event_id)


def _timed(open_file: Opener, ids: Sequence[int]) -> tuple[list[float], list[dict[str, Any]], float]:
    """Each lookup's milliseconds, its row, and the CPU seconds this process (every thread) spent on them all."""
    times, rows = [], []
    cpu = time.process_time()
    for event_id in ids:
        started = time.perf_counter()
        rows.append(lookup(open_file, event_id))
        times.append((time.perf_counter() - started) * 1000)
    return times, rows, time.process_time() - cpu


_LOOKUP_OPS = frozenset({"GETFILESTATUS", "OPEN", "HeadObject", "GetObject"})


def _request_seconds(webhdfs_url: str) -> float:
    """The seconds the worker has spent answering the requests of lookups so far (by its own request timer)."""
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(f"{webhdfs_url}/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "lakecache_request_seconds_sum" and sample.labels.get("op") in _LOOKUP_OPS
    )


def _upload(s3: S3Emulator, plan: Plan) -> tuple[bytes, int]:
    """Write the table (one file) straight into the emulator; returns the file and its number of row groups."""
    (_, table), *_ = event_files(plan.events, days=1, files_per_day=1, seed=11)
    body = parquet_bytes(table, plan.row_group_rows)
    s3.client().put_object(Bucket=BUCKET, Key=KEY, Body=body)
    return body, pq.ParquetFile(pa.BufferReader(body)).metadata.num_row_groups


def _warm(cache: CacheProcess) -> None:
    """Two whole reads: every page cached, and promoted to the memory tier by its second hit."""
    with LeanHttpConnection(LOOPBACK, cache.webhdfs_port, timeout=300) as connection:
        for _ in range(2):
            WebHdfsFile(connection.get, f"/{KEY}").read()


def run(full: bool, *, smoke: bool = False, work_dir: Path | None = None, img_dir: Path = IMG_DIR) -> Section:
    """Time point lookups through the S3 model and through the warm cache; returns the section."""
    plan = Plan.choose(full, smoke)
    work = fresh_work_dir("parquet_lookups", work_dir)
    with ExitStack() as stack:
        s3 = stack.enter_context(S3Emulator(work, buckets=[BUCKET]))
        model = stack.enter_context(S3Model(s3.endpoint_url, work))
        body, row_groups = _upload(s3, plan)
        cache = stack.enter_context(
            CacheProcess(
                work / "cache",
                s3_endpoint=model.url,
                mounts={"/lookups": f"s3://{BUCKET}/lookups"},
                # Warm means data and metadata: no revalidation against S3 while measuring.
                overrides={"metadata": {"sync_interval": "1h"}},
            )
        )
        _warm(cache)
        # The same file from nginx, with the settings that served small ranges fastest here (see *Warm HTTP reads*).
        (work / "www" / KEY).parent.mkdir(parents=True)
        (work / "www" / KEY).write_bytes(body)
        nginx = stack.enter_context(Nginx(work / "www", work / "nginx", sendfile=False, tcp_nopush=False))
        keys = {
            "access_key": EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "secret_key": EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            "region": EMULATOR_CREDENTIALS["AWS_DEFAULT_REGION"],
        }
        # pyarrow's own S3 client at its defaults, once against the model and once against the cache's S3 API.
        s3fs = pafs.S3FileSystem(endpoint_override=model.url, scheme="http", **keys)
        cache_s3 = pafs.S3FileSystem(endpoint_override=f"{LOOPBACK}:{cache.s3_port}", scheme="http", **keys)
        lean = stack.enter_context(LeanHttpConnection(LOOPBACK, cache.webhdfs_port))
        to_nginx = stack.enter_context(LeanHttpConnection(LOOPBACK, nginx.port))
        stdlib = http.client.HTTPConnection(LOOPBACK, cache.webhdfs_port, timeout=60)
        stack.callback(stdlib.close)
        openers: dict[str, Opener] = {
            S3_MODEL: lambda: s3fs.open_input_file(f"{BUCKET}/{KEY}"),
            WEBHDFS: lambda: pa.PythonFile(WebHdfsFile(lean.get, f"/{KEY}"), mode="r"),
            WEBHDFS_STDLIB: lambda: pa.PythonFile(WebHdfsFile(stdlib_get(stdlib), f"/{KEY}"), mode="r"),
            S3_API: lambda: cache_s3.open_input_file(f"{BUCKET}/{KEY}"),
            NGINX: lambda: pa.PythonFile(HttpRangeFile(to_nginx, f"/{KEY}"), mode="r"),
            # No I/O at all: what pyarrow itself spends, the floor under every path.
            IN_MEMORY: lambda: pa.BufferReader(body),
        }
        rng = np.random.default_rng(5)
        times: dict[str, list[list[float]]] = {name: [] for name in openers}
        client_cpu = dict.fromkeys(openers, 0.0)
        worker_seconds = dict.fromkeys(CACHED, 0.0)
        before = CacheCounters.scrape(cache.webhdfs_url)
        for index in range(plan.runs):
            ids = [int(i) for i in rng.integers(0, plan.events, size=plan.lookups)]
            answers = []
            for name in sorted(openers, reverse=index % 2 == 1):
                answered = _request_seconds(cache.webhdfs_url) if name in CACHED else 0.0
                run_times, rows, cpu = _timed(openers[name], ids)
                if name in CACHED:
                    worker_seconds[name] += _request_seconds(cache.webhdfs_url) - answered
                times[name].append(run_times)
                client_cpu[name] += cpu
                answers.append(rows)
            if any(rows != answers[0] for rows in answers):
                raise RuntimeError("the paths returned different rows for the same lookups")
        delta = CacheCounters.scrape(cache.webhdfs_url) - before
    lookups = plan.runs * plan.lookups
    costs = {
        "client_cpu_ms_per_lookup": {name: seconds * 1000 / lookups for name, seconds in client_cpu.items()},
        "worker_ms_per_lookup": {name: seconds * 1000 / lookups for name, seconds in worker_seconds.items()},
    }
    return _section(plan, len(body), row_groups, times, costs, delta, model, nginx.version, full=full, img_dir=img_dir)


def _section(
    plan: Plan,
    size: int,
    row_groups: int,
    times: dict[str, list[list[float]]],
    costs: dict[str, dict[str, float]],
    delta: CacheCounters,
    model: S3Model,
    nginx_version: str,
    *,
    full: bool,
    img_dir: Path,
) -> Section:
    medians = {name: [statistics.median(run) for run in runs] for name, runs in times.items()}
    bound = [s / m for s, m in zip(medians[S3_MODEL], medians[IN_MEMORY], strict=True)]
    speedups = {p: [s / c for s, c in zip(medians[S3_MODEL], medians[p], strict=True)] for p in SERVED}
    # A path's speedup over the bound's, run by run: the in-memory time over the path's, measured side by side.
    fractions = {p: [s / b for s, b in zip(speedups[p], bound, strict=True)] for p in SERVED}
    speedup = {p: statistics.median(v) for p, v in speedups.items()}
    fraction = {p: statistics.median(v) for p, v in fractions.items()}
    pooled = {name: [t for run in runs for t in run] for name, runs in times.items()}
    p99 = {name: float(np.percentile(values, 99)) for name, values in pooled.items()}
    results: dict[str, Any] = {
        "plan": asdict(plan),
        "file_bytes": size,
        "row_groups": row_groups,
        "s3_model": {"latency_ms": model.latency_ms, "bandwidth_mb_per_s": model.bandwidth_mbps},
        "lookup_ms": pooled,
        "median_ms_per_run": medians,
        "speedup_per_run": speedups,
        "in_memory_speedup_per_run": bound,
        "fraction_of_bound_per_run": fractions,
        "p99_ms": p99,
        **costs,
        "cache_s3_bytes_read_while_measuring": delta.s3_bytes_read,
        "cache_bytes_served_while_measuring": dict(delta.bytes_served),
    }
    image = plots.parquet_lookups(results, img_dir / "parquet_lookups.png")
    client_cpu, worker = costs["client_cpu_ms_per_lookup"], costs["worker_ms_per_lookup"]
    rows = [
        [
            name,
            f"{statistics.median(medians[name]):.2f}",
            f"{p99[name]:.2f}",
            "-" if name == S3_MODEL else f"{statistics.median(speedups.get(name, bound)):.1f}x",
            f"{fraction[name]:.2f}" if name in fraction else ("1" if name == IN_MEMORY else "-"),
            f"{client_cpu[name]:.2f}",
            f"{worker[name]:.2f}" if name in worker else "-",
        ]
        for name in times
    ]
    mib = {tier: delta.bytes_served.get(tier, 0) / 2**20 for tier in ("memory", "disk", "s3")}
    text = (
        f"Point lookups by `event_id` in one Snappy Parquet file of {plan.events:,} game events "
        f"({size / 2**20:.1f} MiB, {row_groups} row groups of {plan.row_group_rows:,} rows), with pyarrow "
        f"{pa.__version__}: {plan.runs} runs of {plan.lookups} lookups of random ids per path, the same ids on "
        "every path in each run, which answer the same rows. **S3 model**: pyarrow's `S3FileSystem` at its defaults "
        f"through the latency model ({model.latency_ms:g} ms to first byte, {model.bandwidth_mbps:g} MB/s per "
        "connection; see *The S3 latency model* above). **cache, WebHDFS**: pyarrow over WebHDFS `OPEN` with "
        "`offset`/`length`, through a `pyarrow.PythonFile` (`bench.parquet_lookups.WebHdfsFile`) over one kept-alive "
        "connection of a lean client that reads each body straight into one buffer (`bench.lean_http`); **cache, "
        "WebHDFS, http.client**: the same requests through the standard library's `http.client`, whose header "
        "parsing and buffered reads cost more per request than the cache's answer. **cache, S3 API**: the "
        "same `S3FileSystem`, at the same defaults, pointed at the cache's S3 port. **nginx, HTTP ranges**: the same "
        f"three requests (a HEAD, then a `Range:` GET a read) through the lean client to {nginx_version} "
        "serving the same file from the page cache (`sendfile off; tcp_nopush off`, the settings that served small "
        "ranges fastest here: see *Warm HTTP reads*): what a lookup of three requests costs on this host with a "
        "native web server behind them, the floor under any server. The file is warm in the cache's "
        "memory (the cache itself reads S3 through the same model, and read "
        f"{delta.s3_bytes_read:,.0f} bytes of it while measuring; it served {mib['memory']:,.1f} MiB from memory, "
        f"{mib['disk']:,.1f} MiB from disk and {mib['s3']:,.1f} MiB from S3). A lookup is a HEAD or GETFILESTATUS, "
        "the footer, and one row group read with `pre_buffer` (string columns kept as dictionaries): three requests; "
        "per-run medians, and the p99 of every lookup. **in memory**: the same lookups on a copy of the file in "
        "memory, no I/O at all: pyarrow's own time, which every path pays, and the most any cache could give. *Of "
        "the bound* is a path's speedup over the in-memory speedup (the in-memory time over the path's), run by run, "
        "median. *Client CPU* is this process's CPU time per lookup, every thread (pyarrow's decoding included: the "
        "in-memory row is that alone); *worker* is the time the cache spent answering a lookup's requests, by its "
        "own request timer.\n\n"
        + markdown_table(
            [
                "path",
                "median ms per lookup",
                "p99 ms",
                "speedup over S3 model",
                "of the bound",
                "client CPU ms",
                "worker ms",
            ],
            rows,
            "lrrrrrr",
        )
        + f"\nSpeedup over the S3 model, median of per-run ratios: WebHDFS **{speedup[WEBHDFS]:.1f}x**, S3 API "
        f"**{speedup[S3_API]:.1f}x**, against **{statistics.median(bound):.1f}x** in memory, the most any cache could "
        f"give here: **{fraction[WEBHDFS]:.2f}** and **{fraction[S3_API]:.2f}** of it. The same three requests "
        f"to nginx: **{speedup[NGINX]:.1f}x**, **{fraction[NGINX]:.2f}** of it.\n\n" + f"![{image[0]}]({image[1]})\n"
    )
    return measured_section(
        "parquet_lookups",
        "Parquet point lookups: S3 model against warm cache, over WebHDFS and the S3 API",
        full=full,
        markdown=text,
        results=results,
        targets={
            "parquet_lookup_speedup_vs_s3": round(speedup[WEBHDFS], 2),
            "parquet_lookup_speedup_s3_api": round(speedup[S3_API], 2),
            **{f"parquet_lookup_fraction_of_bound_{key}": round(fraction[p], 3) for p, key in CACHE_PATHS.items()},
        },
    )
