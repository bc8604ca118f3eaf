"""Warm reads over HTTP: the cache's WebHDFS OPEN against nginx serving the same bytes from the same disk.

Each figure is measured on both servers in the same run, the servers alternating which goes first:

- latency of random 64 KiB-aligned 64 KiB reads on one connection (``wrk -c1``; median and p99 from wrk's latency
  histogram, printed by the Lua script's ``done()``);
- requests/s of the same reads on 32 connections (``wrk -c32``), and the serving processes' CPU time per request
  meanwhile (from ``/proc``), which separates a server's own cost from the noise of a shared machine;
- GB/s of a whole-file sequential read on one connection (``curl`` to ``/dev/null``).

The file is written through the cache (write-through to the S3 emulator, pages kept in the cache) and read twice
before measuring, which leaves every page in the memory tier; nginx reads the same bytes from the page cache. The
run checks that the cache read nothing from S3 while it was measured.
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import shutil
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import plots
from bench.measured import fresh_work_dir, measured_section
from bench.nginx import Nginx, require_command
from bench.report import IMG_DIR, markdown_table
from bench.section import Section
from infra.cache_metrics import CacheCounters
from infra.cache_process import CacheProcess
from infra.ports import LOOPBACK
from infra.s3_emulator import S3Emulator

BLOCK = 64 * 1024
CONNECTIONS = 32
BUCKET = "bench"
CACHE_PATH = "/bench/blob.bin"
USER = "bench"

# wrk calls request() for every request and done() once. Offsets are whole blocks, drawn from the spans of block
# indices given ("first-last,...": the whole file, or the blocks one worker owns); each run gets its own seed.
WRK_SCRIPT = """
local block, mode, path, indices
function init(args)
  block = tonumber(args[1])
  mode = args[2]
  path = args[3]
  math.randomseed(tonumber(args[4]))
  indices = {}
  for first, last in string.gmatch(args[5], "(%d+)-(%d+)") do
    for i = tonumber(first), tonumber(last) do indices[#indices + 1] = i end
  end
end
function request()
  local offset = indices[math.random(1, #indices)] * block
  if mode == "range" then
    return wrk.format("GET", path, {["Range"] = string.format("bytes=%d-%d", offset, offset + block - 1)})
  end
  return wrk.format("GET", string.format("%s&offset=%d&length=%d", path, offset, block))
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "errors": %d, "p50_us": %.1f, "p99_us": %.1f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Plan:
    """How much to measure: the file's size, the number of runs, and the seconds of each wrk run."""

    file_bytes: int
    runs: int
    seconds: int

    @classmethod
    def choose(cls, full: bool, smoke: bool) -> Plan:
        """Smoke: a few MiB, two short runs. Quick: 1 GiB, 5 runs of 3 s. Full: 1 GiB, 9 runs of 5 s."""
        if smoke:
            return cls(file_bytes=8 * 2**20, runs=2, seconds=1)
        return cls(file_bytes=2**30, runs=9 if full else 5, seconds=5 if full else 3)


@dataclass(frozen=True)
class WrkRun:
    """What one wrk run reported."""

    requests: int
    duration_us: int
    bytes: int
    errors: int
    p50_us: float
    p99_us: float

    @property
    def requests_per_second(self) -> float:
        """Completed requests per second of the run."""
        return self.requests / (self.duration_us / 1e6)


@dataclass(frozen=True)
class Target:
    """One server under test: where wrk sends its requests and how it asks for a range."""

    name: str
    url: str  # scheme://host:port
    path: str  # path (and query) of the file
    mode: str  # "range": Range header; "webhdfs": offset and length parameters


def wrk_command(
    wrk: str, script: Path, target: Target, *, connections: int, seconds: int, seed: int, spans: str
) -> list[str]:
    """The command of one wrk run of ``WRK_SCRIPT``: random 64 KiB reads of the blocks in ``spans`` (one thread)."""
    argv = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script)]
    return [*argv, target.url + target.path, "--", str(BLOCK), target.mode, target.path, str(seed), spans]


def wrk_report(target: Target, returncode: int, out: str, err: str) -> WrkRun:
    """What ``WRK_SCRIPT``'s ``done()`` printed. Raises ``RuntimeError`` if wrk failed or saw errors."""
    line = next((ln for ln in out.splitlines() if ln.startswith("WRK_JSON ")), None)
    if returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed against {target.name} ({returncode}): {err or out}")
    result = WrkRun(**json.loads(line.removeprefix("WRK_JSON ")))
    if result.errors or result.requests == 0:
        raise RuntimeError(f"wrk against {target.name}: {result.errors} errors in {result.requests} requests")
    return result


def run_wrk(wrk: str, script: Path, target: Target, *, connections: int, seconds: int, size: int, seed: int) -> WrkRun:
    """One wrk run of random 64 KiB reads of the whole file against ``target``. Raises ``RuntimeError`` on a
    failure."""
    spans = f"0-{size // BLOCK - 1}"
    argv = wrk_command(wrk, script, target, connections=connections, seconds=seconds, seed=seed, spans=spans)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    return wrk_report(target, done.returncode, done.stdout, done.stderr)


def process_cpu_seconds(pids: Sequence[int]) -> tuple[float, float]:
    """User and system CPU seconds used so far by the processes ``pids`` (those gone count 0)."""
    user = system = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        user, system = user + int(fields[11]) / tick, system + int(fields[12]) / tick
    return user, system


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (nginx's workers, for its master)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    children.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return children


def read_whole(curl: str, url: str, size: int) -> float:
    """Read ``url`` once to /dev/null; returns GB/s (10**9 bytes). Raises ``RuntimeError`` on a short read."""
    argv = [curl, "-s", "--noproxy", "*", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    got, seconds = done.stdout.split() if done.returncode == 0 else ("0", "0")
    if int(got) != size or float(seconds) <= 0:
        raise RuntimeError(f"curl read {got} of {size} bytes from {url} ({done.returncode}): {done.stderr}")
    return size / float(seconds) / 1e9


def write_blob(path: Path, size: int, seed: int = 7) -> None:
    """``size`` random bytes (the same for the same seed) into ``path``."""
    rng = np.random.default_rng(seed)
    with path.open("wb") as f:
        left = size
        while left:
            step = min(left, 64 * 2**20)
            f.write(rng.bytes(step))
            left -= step


def put_through_cache(cache: CacheProcess, path: str, local: Path) -> None:
    """Write ``local`` to the cache at ``path`` (WebHDFS CREATE with the data in one request; write-through to S3).

    Raises ``RuntimeError`` unless the cache answers 201.
    """
    connection = http.client.HTTPConnection(LOOPBACK, cache.webhdfs_port, timeout=600, blocksize=2**20)
    try:
        with local.open("rb") as body:
            connection.request(
                "PUT",
                f"/webhdfs/v1{path}?op=CREATE&data=true&overwrite=true&user.name={USER}",
                body=body,
                headers={"Content-Length": str(local.stat().st_size), "Content-Type": "application/octet-stream"},
            )
            response = connection.getresponse()
            text = response.read()
        if response.status != 201:
            raise RuntimeError(f"CREATE {path} answered {response.status}: {text[:300]!r}")
    finally:
        connection.close()


def blob_cache(work: Path, s3_endpoint: str, file_bytes: int) -> CacheProcess:
    """A worker (not started) mounting the bench bucket, with room in memory for a ``file_bytes`` file."""
    return CacheProcess(
        work / "cache",
        s3_endpoint=s3_endpoint,
        mounts={"/bench": f"s3://{BUCKET}/bench"},
        memory_capacity=f"{file_bytes // 2**20 + 256}MiB",
        disk_capacity=f"{2 * file_bytes // 2**20 + 256}MiB",
        # Warm means data and metadata: no revalidation against S3 while measuring.
        overrides={"metadata": {"sync_interval": "1h"}},
    )


def cache_target(cache: CacheProcess) -> Target:
    """Where wrk reads ``CACHE_PATH`` from ``cache``: WebHDFS OPEN, the range in ``offset`` and ``length``."""
    return Target("cache", cache.webhdfs_url, f"/webhdfs/v1{CACHE_PATH}?op=OPEN&user.name={USER}", "webhdfs")


def _same_bytes(cache: Target, nginx: Target, size: int) -> None:
    """Both servers return the same bytes for a few ranges: otherwise the comparison would be meaningless."""
    rng = np.random.default_rng(1)
    for offset in rng.integers(0, size // BLOCK, size=4) * BLOCK:
        got = []
        for target in (cache, nginx):
            host, port = target.url.removeprefix("http://").split(":")
            connection = http.client.HTTPConnection(host, int(port), timeout=30)
            if target.mode == "range":
                connection.request("GET", target.path, headers={"Range": f"bytes={offset}-{offset + BLOCK - 1}"})
            else:
                connection.request("GET", f"{target.path}&offset={offset}&length={BLOCK}")
            got.append(connection.getresponse().read())
            connection.close()
        if got[0] != got[1] or len(got[0]) != BLOCK:
            raise RuntimeError(f"the cache and nginx disagree on the bytes at offset {offset}")


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def run(full: bool, *, smoke: bool = False, work_dir: Path | None = None, img_dir: Path = IMG_DIR) -> Section:
    """Measure warm 64 KiB range reads and a sequential read, cache against nginx; returns the section."""
    plan = Plan.choose(full, smoke)
    work = fresh_work_dir("http_reads", work_dir)
    (work / "www").mkdir()
    wrk = require_command("wrk", "wrk")
    curl = require_command("curl", "curl")
    script = work / "ranges.lua"
    script.write_text(WRK_SCRIPT)
    blob = work / "www" / "blob.bin"
    size = plan.file_bytes
    write_blob(blob, size)
    with (
        S3Emulator(work, buckets=[BUCKET]) as s3,
        blob_cache(work, s3.endpoint_url, plan.file_bytes) as cache,
        # nginx gets the settings that served each workload fastest in trials here: for small ranges no sendfile
        # and no TCP_CORK (corked responses sometimes wait for a delayed ACK); for streaming the package defaults.
        Nginx(work / "www", work / "nginx-ranges", sendfile=False, tcp_nopush=False) as nginx,
        Nginx(work / "www", work / "nginx-stream") as nginx_stream,
    ):
        put_through_cache(cache, CACHE_PATH, blob)
        targets = {
            "cache": cache_target(cache),
            "nginx": Target("nginx", nginx.url, "/blob.bin", "range"),
        }
        whole = {"cache": targets["cache"].url + targets["cache"].path, "nginx": nginx_stream.url + "/blob.bin"}
        # Two whole reads leave every page in the memory tier (a disk page is promoted on its second hit).
        for _ in range(2):
            read_whole(curl, whole["cache"], plan.file_bytes)
        read_whole(curl, whole["nginx"], plan.file_bytes)
        _same_bytes(targets["cache"], targets["nginx"], plan.file_bytes)
        before = CacheCounters.scrape(cache.webhdfs_url)
        measure = functools.partial(run_wrk, wrk, script, seconds=plan.seconds, size=size)
        # The processes that serve, to charge each run's server CPU time to its requests.
        servers = {"cache": [cache.pid or 0], "nginx": child_pids(nginx.pid or 0)}
        latency: dict[str, list[WrkRun]] = {"cache": [], "nginx": []}
        load: dict[str, list[WrkRun]] = {"cache": [], "nginx": []}
        cpu_per_request: dict[str, list[tuple[float, float]]] = {"cache": [], "nginx": []}
        sequential: dict[str, list[float]] = {"cache": [], "nginx": []}
        for index in range(plan.runs):
            # Alternate who goes first, so neither always gets the quieter half of a noisy machine.
            order = ("cache", "nginx") if index % 2 == 0 else ("nginx", "cache")
            for name in order:
                latency[name].append(measure(targets[name], connections=1, seed=index))
            for name in order:
                user, system = process_cpu_seconds(servers[name])
                result = measure(targets[name], connections=CONNECTIONS, seed=index)
                user_after, system_after = process_cpu_seconds(servers[name])
                load[name].append(result)
                per_request = 1e6 / result.requests
                cpu_per_request[name].append(((user_after - user) * per_request, (system_after - system) * per_request))
            for name in order:
                sequential[name].append(read_whole(curl, whole[name], size))
        delta = CacheCounters.scrape(cache.webhdfs_url) - before
        versions = {"nginx": nginx.version, "wrk": _version([wrk, "-v"]), "curl": _version([curl, "--version"])}
    # Two copies of a GiB nobody needs once measured; the logs stay.
    shutil.rmtree(work / "www", ignore_errors=True)
    shutil.rmtree(work / "cache" / "data", ignore_errors=True)
    return _section(plan, latency, load, cpu_per_request, sequential, delta, versions, full=full, img_dir=img_dir)


def _version(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return ((done.stdout or done.stderr).strip().splitlines() or ["unknown"])[0]


def _section(
    plan: Plan,
    latency: dict[str, list[WrkRun]],
    load: dict[str, list[WrkRun]],
    cpu_per_request: dict[str, list[tuple[float, float]]],
    sequential: dict[str, list[float]],
    delta: CacheCounters,
    versions: dict[str, str],
    *,
    full: bool,
    img_dir: Path,
) -> Section:
    p50 = {n: [r.p50_us / 1000 for r in runs] for n, runs in latency.items()}
    p99 = {n: [r.p99_us / 1000 for r in runs] for n, runs in latency.items()}
    rps = {n: [r.requests_per_second for r in runs] for n, runs in load.items()}
    rps_ratio = [c / n for c, n in zip(rps["cache"], rps["nginx"], strict=True)]
    seq_ratio = [c / n for c, n in zip(sequential["cache"], sequential["nginx"], strict=True)]
    served = sum(delta.bytes_served.values())
    memory_share = delta.bytes_served.get("memory", 0.0) / served if served else 0.0
    results: dict[str, Any] = {
        "plan": asdict(plan),
        "latency_ms": {"p50": p50, "p99": p99},
        "requests_per_second": rps,
        "requests_per_second_ratio": rps_ratio,
        "server_cpu_us_per_request": {n: [{"user": u, "system": s} for u, s in v] for n, v in cpu_per_request.items()},
        "sequential_gb_per_s": sequential,
        "sequential_ratio": seq_ratio,
        "s3_bytes_read_while_measuring": delta.s3_bytes_read,
        "memory_tier_share": memory_share,
        "versions": versions,
        "raw": {"latency": {n: [asdict(r) for r in v] for n, v in latency.items()}},
    }
    results["raw"]["load"] = {n: [asdict(r) for r in v] for n, v in load.items()}
    images = [
        plots.range_reads(results, img_dir / "range_reads.png"),
        plots.sequential(results, img_dir / "sequential.png"),
    ]
    gib = plan.file_bytes / 2**30
    size = f"{gib:g} GiB" if gib >= 1 else f"{plan.file_bytes / 2**20:g} MiB"
    rows = [
        ["64 KiB read, 1 connection: median latency (ms)", *_pair(p50, "{:.3f}")],
        ["64 KiB read, 1 connection: p99 latency (ms)", *_pair(p99, "{:.3f}")],
        [f"64 KiB reads, {CONNECTIONS} connections: requests/s", *_pair(rps, "{:,.0f}"), f"{_median(rps_ratio):.2f}x"],
        [f"sequential read of {size}, 1 connection: GB/s", *_pair(sequential, "{:.2f}"), f"{_median(seq_ratio):.2f}x"],
    ]
    user = {n: [u for u, _ in v] for n, v in cpu_per_request.items()}
    system = {n: [s for _, s in v] for n, v in cpu_per_request.items()}
    rows[3:3] = [
        [f"… server CPU per request, user (µs), {CONNECTIONS} connections", *_pair(user, "{:.1f}"), ""],
        [f"… server CPU per request, system (µs), {CONNECTIONS} connections", *_pair(system, "{:.1f}"), ""],
    ]
    rows[3][3] = f"{_median(user['cache']) / _median(user['nginx']):.1f}x"
    rows[4][3] = f"{_median(system['cache']) / _median(system['nginx']):.2f}x"
    rows[0].append(f"{_median(p50['cache']) / _median(p50['nginx']):.2f}x")
    rows[1].append(f"{_median(p99['cache']) / _median(p99['nginx']):.2f}x")
    text = (
        f"Warm reads of one {size} file of random bytes: the cache's WebHDFS `OPEN` (`offset`, `length`) against "
        f"{versions['nginx']} (Debian's package, 1 worker process, logging off) serving the same file with "
        "`Range:` headers from the same disk. nginx runs with the settings that served each workload fastest in "
        "trials on this machine: `sendfile off; tcp_nopush off;` for the 64 KiB ranges, the package's "
        "`sendfile on; tcp_nopush on;` for the sequential read. Random 64 KiB-aligned 64 KiB ranges come from a "
        f"wrk Lua script ({versions['wrk'].split(' [')[0]}, 1 thread); {plan.runs} runs of {plan.seconds} s per "
        "figure and server, the two servers alternating who goes first, so each run gives a same-run ratio. "
        "Figures are medians over runs (a latency's p99 is the median of the runs' p99s); the ratio column is the "
        "median of the per-run ratios, cache over nginx (for latency, lower is better; for throughput, higher). "
        "Server CPU per request is the serving processes' CPU time (from `/proc`) during the 32-connection runs, "
        "over the requests answered: it tells the server's own cost from the machine's noise. "
        f"Sequential: `curl -o /dev/null` of the whole file ({versions['curl'].split(' (')[0]}). The 2 cores are "
        "shared by server and client alike.\n\n"
        + markdown_table(["figure", "cache", "nginx", "cache / nginx"], rows, "lrrr")
        + f"\nWhile measuring, the cache read {delta.s3_bytes_read:,.0f} bytes from S3 and served "
        f"{memory_share:.1%} of its bytes from the memory tier."
        + ("" if full else " Quick mode reads the same file as full mode, in fewer and shorter runs.")
        + "\n\n"
        + "\n".join(f"![{title}]({img})" for title, img in images)
        + "\n"
    )
    return measured_section(
        "http_reads",
        "Warm HTTP reads: cache against nginx",
        full=full,
        markdown=text,
        results=results,
        targets={
            "warm_range_read_median_ms": round(_median(p50["cache"]), 4),
            "warm_range_read_p99_ms": round(_median(p99["cache"]), 4),
            "warm_64k_rps_vs_nginx": round(_median(rps_ratio), 3),
            "sequential_vs_nginx": round(_median(seq_ratio), 3),
        },
    )


def _pair(values: dict[str, list[float]], fmt: str) -> list[str]:
    return [fmt.format(_median(values["cache"])), fmt.format(_median(values["nginx"]))]
