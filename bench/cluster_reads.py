"""Warm 64 KiB reads from a two-worker cluster, one worker pinned to each core, against nginx with
``worker_processes auto`` serving the same bytes.

A file of random bytes is written straight into the S3 emulator and warmed with one load job; each block is then read
twice from its owner, which leaves every page in the owner's memory tier. Each client reads from the worker that owns
what it asks for, as Spark does when it follows a redirect or block locations: two wrk processes (1 thread, half the
connections each), the first asking worker A for random 64 KiB-aligned ranges of the blocks A owns, the second
asking B for B's (WebHDFS ``OPEN`` with ``offset`` and ``length``). nginx gets the same two wrk processes asking
the same ranges of the same file (``Range:`` headers) on its one port. Each run measures both, alternating who goes
first; a run's requests/s is the sum of its two wrk processes'. The workers are pinned with ``taskset -a -p -c``
(every thread of worker A on core 0, of B on core 1); nginx, the clients and everything else are not pinned.
"""

from __future__ import annotations

import http.client
import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.cache_cluster import CacheCluster, pin_to_core
from bench.http_reads import BLOCK, USER, WRK_SCRIPT, Target, WrkRun, write_blob, wrk_command, wrk_report
from bench.nginx import Nginx, require_command
from cache_service.admin_client import AdminClient, AdminEndpoint, job_route
from infra.cache_metrics import CacheCounters
from infra.cache_process import CacheProcess
from infra.ports import LOOPBACK
from infra.s3_emulator import S3Emulator

BUCKET = "lake"
KEY = "reads/blob.bin"
CONNECTIONS = 32  # as in http_reads: 16 per wrk process


@dataclass(frozen=True)
class ReadsPlan:
    """The file's size, the runs, and the seconds of each wrk run."""

    file_bytes: int
    runs: int
    seconds: int
    block_size: str = "64MiB"  # the cluster's default: 1 GiB is 16 blocks

    @classmethod
    def choose(cls, full: bool, smoke: bool) -> ReadsPlan:
        """Smoke: 16 MiB in blocks of 1 MiB, two runs of 1 s. Quick: 1 GiB, 5 runs of 3 s. Full: 1 GiB, 9 of 5 s."""
        if smoke:
            return cls(file_bytes=16 * 2**20, runs=2, seconds=1, block_size="1MiB")
        return cls(file_bytes=2**30, runs=9 if full else 5, seconds=5 if full else 3)


@dataclass(frozen=True)
class PairRun:
    """One run against one server: what each of the two wrk processes reported."""

    server: str  # "cluster" or "nginx"
    run: int
    clients: list[WrkRun]

    @property
    def requests_per_second(self) -> float:
        """Both clients' requests/s together."""
        return sum(c.requests_per_second for c in self.clients)


@dataclass(frozen=True)
class Client:
    """One wrk process: where it sends its requests and which 64 KiB blocks it asks for."""

    target: Target
    spans: str  # "first-last,..." in 64 KiB blocks


def run_pair(wrk: str, script: Path, clients: list[Client], *, seconds: int, seed: int) -> list[WrkRun]:
    """Run one wrk process per client at once; returns their reports. Raises ``RuntimeError`` on a failure."""
    processes = []
    for index, client in enumerate(clients):
        connections = CONNECTIONS // len(clients)
        argv = wrk_command(
            wrk,
            script,
            client.target,
            connections=connections,
            seconds=seconds,
            seed=seed * 10 + index,
            spans=client.spans,
        )
        processes.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    reports = []
    for process, client in zip(processes, clients, strict=True):
        out, err = process.communicate(timeout=seconds + 60)
        reports.append(wrk_report(client.target, process.returncode, out, err))
    return reports


def owned_spans(worker: CacheProcess, owners: list[CacheProcess]) -> dict[int, str]:
    """For each worker's WebHDFS port, the 64 KiB blocks of the file it owns, as wrk's spans argument."""
    url = f"{worker.webhdfs_url}/webhdfs/v1/{KEY}?op=GETFILEBLOCKLOCATIONS&user.name={USER}"
    connection = http.client.HTTPConnection(LOOPBACK, worker.webhdfs_port, timeout=30)
    connection.request("GET", url.removeprefix(worker.webhdfs_url))
    locations = json.loads(connection.getresponse().read())["BlockLocations"]["BlockLocation"]
    connection.close()
    spans: dict[int, list[str]] = {w.webhdfs_port: [] for w in owners}
    for block in locations:
        port = int(str(block["names"][0]).rsplit(":", 1)[1])
        first, length = int(block["offset"]) // BLOCK, int(block["length"]) // BLOCK
        spans[port].append(f"{first}-{first + length - 1}")
    return {port: ",".join(s) for port, s in spans.items()}


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> bytes:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=120)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        body = response.read()
        if response.status not in (200, 206):
            raise RuntimeError(f"GET {path} on port {port} answered {response.status}: {body[:200]!r}")
        return body
    finally:
        connection.close()


def _warm(cluster: CacheCluster, spans: dict[int, str], blob: Path) -> None:
    """Load the file on its owners, then read each block from its owner twice (into the memory tier), checked."""
    first = cluster.workers[0]
    admin = AdminClient(AdminEndpoint.from_url(first.webhdfs_url, token=first.token, timeout=60))
    job = admin.post("load", {"paths": [f"/{KEY}"]})
    while job["state"] in ("queued", "running"):
        job = admin.get(job_route(job["id"]))
    if job["state"] != "succeeded":
        raise RuntimeError(f"the load did not warm the file: {job}")
    with blob.open("rb") as local:
        for port, owned in spans.items():
            for span in filter(None, owned.split(",")):
                first_block, last_block = (int(n) for n in span.split("-"))
                offset, length = first_block * BLOCK, (last_block - first_block + 1) * BLOCK
                path = f"/webhdfs/v1/{KEY}?op=OPEN&user.name={USER}&offset={offset}&length={length}"
                for _ in range(2):
                    body = _get(port, path)
                local.seek(offset)
                if body != local.read(length):
                    raise RuntimeError(f"the worker on port {port} served wrong bytes at {offset}")


def measure(full: bool, smoke: bool, work: Path, s3: S3Emulator) -> dict[str, Any]:
    """Measure both servers ``runs`` times; returns the results (plan, runs, ratios, what the cluster read)."""
    plan = ReadsPlan.choose(full, smoke)
    wrk = require_command("wrk", "wrk")
    work.mkdir(parents=True, exist_ok=True)
    script = work / "owned_ranges.lua"
    script.write_text(WRK_SCRIPT)
    (work / "www" / "reads").mkdir(parents=True)
    blob = work / "www" / KEY
    write_blob(blob, plan.file_bytes)
    s3.client().upload_file(str(blob), BUCKET, KEY)
    cluster = CacheCluster(
        work / "reads-cluster",
        2,
        s3_endpoint=s3.endpoint_url,
        mounts={"/reads": f"s3://{BUCKET}/reads"},
        overrides={"metadata": {"sync_interval": "1h"}, "cluster": {"block_size": plan.block_size}},
        memory_capacity=f"{plan.file_bytes // 2**20 + 256}MiB",
        disk_capacity=f"{2 * plan.file_bytes // 2**20 + 256}MiB",
    )
    # nginx at its best for small ranges here (as in http_reads: sendfile and tcp_nopush off; corked responses
    # sometimes wait for a delayed ACK), with a worker per core as ``worker_processes auto`` gives.
    nginx_server = Nginx(work / "www", work / "nginx", workers="auto", sendfile=False, tcp_nopush=False)
    with cluster, nginx_server as nginx:
        for core, worker in enumerate(cluster.workers):
            pin_to_core(worker.pid or 0, core)
        spans = owned_spans(cluster.workers[0], cluster.workers)
        if not all(spans.values()):
            raise RuntimeError(f"a worker owns no block of the file: {spans}")
        _warm(cluster, spans, blob)
        clients = {
            "cluster": [
                Client(
                    Target(f"worker {n}", w.webhdfs_url, f"/webhdfs/v1/{KEY}?op=OPEN&user.name={USER}", "webhdfs"),
                    spans[w.webhdfs_port],
                )
                for n, w in enumerate(cluster.workers)
            ],
            "nginx": [
                Client(Target("nginx", nginx.url, f"/{KEY}", "range"), spans[w.webhdfs_port]) for w in cluster.workers
            ],
        }
        with blob.open("rb") as local:
            for owned in spans.values():
                offset = int(owned.split("-")[0]) * BLOCK
                local.seek(offset)
                if _get(nginx.port, f"/{KEY}", {"Range": f"bytes={offset}-{offset + BLOCK - 1}"}) != local.read(BLOCK):
                    raise RuntimeError(f"nginx served wrong bytes at {offset}")
        before = [CacheCounters.scrape(w.webhdfs_url) for w in cluster.workers]
        runs: list[PairRun] = []
        for index in range(plan.runs):
            order = ("cluster", "nginx") if index % 2 == 0 else ("nginx", "cluster")
            for server in order:
                runs.append(
                    PairRun(server, index, run_pair(wrk, script, clients[server], seconds=plan.seconds, seed=index))
                )
        delta = [CacheCounters.scrape(w.webhdfs_url) - b for w, b in zip(cluster.workers, before, strict=True)]
        nginx_version = nginx.version
    blob.unlink()
    served = sum(sum(d.bytes_served.values()) for d in delta)
    by = {(r.server, r.run): r.requests_per_second for r in runs}
    return {
        "plan": asdict(plan),
        "nginx": nginx_version,
        "blocks_owned": [len(spans[w.webhdfs_port].split(",")) for w in cluster.workers],
        "requests_per_second": {
            s: [r.requests_per_second for r in runs if r.server == s] for s in ("cluster", "nginx")
        },
        "per_client_requests_per_second": {
            s: [[c.requests_per_second for c in r.clients] for r in runs if r.server == s] for s in ("cluster", "nginx")
        },
        "ratio_per_run": [by[("cluster", i)] / by[("nginx", i)] for i in range(plan.runs)],
        "s3_bytes_read_while_measuring": sum(d.s3_bytes_read for d in delta),
        "memory_tier_share": sum(d.bytes_served.get("memory", 0.0) for d in delta) / served if served else 0.0,
        "runs": [{"server": r.server, "run": r.run, "clients": [asdict(c) for c in r.clients]} for r in runs],
    }
