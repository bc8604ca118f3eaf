"""The local stack: the S3 emulator with the demo bucket, and one cache worker in front of it (or several, forming a
cluster on a local ``redis-server``: ``LocalStack(workers=3)``, ``python -m infra.stack up --workers 3``).

In a program::

    with LocalStack() as stack:
        spark.read.parquet(f"{stack.webhdfs_uri}/warehouse/events")

``LocalStack(s3_model=S3ModelConfig())`` puts the S3 latency model (``infra.s3_model``) between the cache and the
emulator, so that the cache pays for its S3 reads what a real S3 would charge in time; whoever writes or reads the
emulator directly (``stack.s3_endpoint``) does not go through it.

From a shell, ``python -m infra.stack up [--workers N] [--s3-latency-ms MS]`` starts it detached and writes
``.local/stack/stack.json`` (endpoints, admin token, pids); ``python -m infra.stack status`` and
``python -m infra.stack down`` read that file.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from infra.cache_process import CACHE_MARKER, REPO_ROOT, CacheProcess
from infra.redis_server import REDIS_MARKER, RedisServer
from infra.s3_emulator import EMULATOR_MARKER, S3Emulator
from infra.s3_faults import FaultRates, S3Faults
from infra.s3_model import DEFAULT_BANDWIDTH_MBPS, MODEL_MARKER, S3Model, S3ModelConfig
from infra.service_process import ManagedService, ServiceStartError, http_ok, is_running, stop_pid
from infra.state_record import StateRecord
from infra.toml_writer import merge

DEFAULT_STATE_DIR = REPO_ROOT / ".local" / "stack"
DEMO_BUCKET = "lake"
DEMO_MOUNTS = {"/warehouse": f"s3://{DEMO_BUCKET}/warehouse", "/raw": f"s3://{DEMO_BUCKET}/raw"}


@dataclass(frozen=True)
class StackInfo(StateRecord):
    """What ``stack.json`` records of a running stack: its endpoints, admin token and pids."""

    FILE: ClassVar[str] = "stack.json"

    state_dir: str
    s3_endpoint: str
    webhdfs_url: str
    webhdfs_uri: str
    s3_api_url: str
    admin_token: str
    s3_emulator_pid: int
    cache_pid: int
    under_store_endpoint: str = ""
    """Where the cache reads and writes S3: the S3 model's URL if one runs, else ``s3_endpoint``."""
    s3_model_pid: int = 0
    """The S3 model's pid, 0 if the stack runs without one."""
    redis_url: str = ""
    """The cluster's Redis, "" for a single worker."""
    redis_pid: int = 0
    worker_urls: list[str] = field(default_factory=list)
    """Every worker's WebHDFS URL, the first one's (``webhdfs_url``) included."""
    worker_pids: list[int] = field(default_factory=list)

    @property
    def processes_running(self) -> bool:
        """True if every recorded process (emulator, workers, and the S3 model and Redis if any) is still alive."""
        optional = [(self.s3_model_pid, MODEL_MARKER), (self.redis_pid, REDIS_MARKER)]
        return (
            is_running(self.s3_emulator_pid, EMULATOR_MARKER)
            and all(is_running(pid, CACHE_MARKER) for pid in self.worker_pids or [self.cache_pid])
            and all(is_running(pid, marker) for pid, marker in optional if pid)
        )


class LocalStack(ManagedService):
    """The S3 emulator (bucket ``lake``) and a cache worker mounting ``/warehouse`` and ``/raw`` from it.

    With ``s3_model``, the S3 latency model runs in front of the emulator and is the cache's under store; without,
    the cache talks to the emulator directly. Every start begins empty: the emulator keeps S3 in memory, so the
    worker's disk tier is wiped too rather than left holding pages of objects that no longer exist. ``detach`` lets
    the processes outlive this one. With ``workers`` above 1, a Redis holds the cluster's membership and every
    worker mounts the same paths; the first worker is the one ``webhdfs_url`` and friends name. ``s3_faults`` puts
    the S3 fault proxy (``infra.s3_faults``, at those rates; ``stack.s3_faults`` changes them) in front of the rest,
    for the reliability campaigns; ``worker_overrides`` are merged into every worker's config.
    """

    def __init__(
        self,
        state_dir: Path = DEFAULT_STATE_DIR,
        *,
        detach: bool = False,
        s3_model: S3ModelConfig | None = None,
        workers: int = 1,
        s3_faults: FaultRates | None = None,
        worker_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"a stack needs at least one worker, got {workers}")
        if s3_faults is not None and detach:
            raise ValueError("a stack with the S3 fault proxy runs attached (its record has no place for the proxy)")
        self.state_dir = state_dir.resolve()
        self.detach = detach
        self.s3 = S3Emulator(self.state_dir, buckets=[DEMO_BUCKET], detach=detach)
        self.s3_model = (
            S3Model(
                self.s3.endpoint_url,
                self.state_dir,
                latency_ms=s3_model.latency_ms,
                bandwidth_mbps=s3_model.bandwidth_mbps,
                detach=detach,
            )
            if s3_model is not None
            else None
        )
        behind = self.s3_model.url if self.s3_model is not None else self.s3.endpoint_url
        self.s3_faults = S3Faults(behind, self.state_dir, s3_faults) if s3_faults is not None else None
        self.redis = RedisServer(self.state_dir, detach=detach) if workers > 1 else None
        token = secrets.token_urlsafe(24)
        overrides = merge(
            {"cluster": {"redis_url": self.redis.url}} if self.redis is not None else {}, worker_overrides or {}
        )
        self.workers = [
            CacheProcess(
                self.state_dir / ("cache" if i == 0 else f"cache-{i}"),
                s3_endpoint=self.under_store_endpoint,
                mounts=DEMO_MOUNTS,
                admin_token=token,
                overrides=overrides or None,
                detach=detach,
            )
            for i in range(workers)
        ]
        self.cache = self.workers[0]

    @property
    def s3_endpoint(self) -> str:
        """The S3 emulator's endpoint (the "real" S3 behind the cache)."""
        return self.s3.endpoint_url

    @property
    def under_store_endpoint(self) -> str:
        """The S3 endpoint the cache reads and writes through: the fault proxy's if there is one, else the S3 model's
        if there is one, else the emulator's (the proxy sits in front of the model, the model in front of the
        emulator)."""
        if self.s3_faults is not None:
            return self.s3_faults.url
        return self.s3_model.url if self.s3_model is not None else self.s3.endpoint_url

    @property
    def webhdfs_url(self) -> str:
        """HTTP base URL of the cache's WebHDFS port (also the admin API, ``/metrics``, ``/healthz``)."""
        return self.cache.webhdfs_url

    @property
    def webhdfs_uri(self) -> str:
        """The ``webhdfs://`` filesystem URI for Spark."""
        return self.cache.webhdfs_uri

    @property
    def s3_api_url(self) -> str:
        """Endpoint of the cache's S3 API."""
        return self.cache.s3_url

    @property
    def admin_token(self) -> str:
        """Bearer token of the cache's admin API."""
        return self.cache.token

    @property
    def info(self) -> StackInfo:
        """The record written to ``stack.json``."""
        return StackInfo(
            state_dir=str(self.state_dir),
            s3_endpoint=self.s3_endpoint,
            webhdfs_url=self.webhdfs_url,
            webhdfs_uri=self.webhdfs_uri,
            s3_api_url=self.s3_api_url,
            admin_token=self.admin_token,
            s3_emulator_pid=self.s3.pid or 0,
            cache_pid=self.cache.pid or 0,
            under_store_endpoint=self.under_store_endpoint,
            s3_model_pid=(self.s3_model.pid or 0) if self.s3_model is not None else 0,
            redis_url=self.redis.url if self.redis is not None else "",
            redis_pid=(self.redis.pid or 0) if self.redis is not None else 0,
            worker_urls=[w.webhdfs_url for w in self.workers],
            worker_pids=[w.pid or 0 for w in self.workers],
        )

    def start(self) -> StackInfo:
        """Start the emulator, then the S3 model and Redis if any, then the workers; write ``stack.json``.

        Raises ``RuntimeError`` if a stack already runs in this state directory, and
        ``infra.service_process.ServiceStartError`` (nothing left running) if a process does not come up.
        """
        running = StackInfo.read(self.state_dir)
        if running is not None and running.processes_running:
            raise RuntimeError(f"a stack already runs in {self.state_dir}; stop it with `python -m infra.stack down`")
        for worker in self.workers:
            shutil.rmtree(worker.data_dir, ignore_errors=True)
        self.s3.start()
        try:
            if self.s3_model is not None:
                self.s3_model.start()
            if self.s3_faults is not None:
                self.s3_faults.start()
            if self.redis is not None:
                self.redis.start()
            for worker in self.workers:
                worker.start()
        except BaseException:
            self.stop()
            raise
        info = self.info
        info.write(self.state_dir)
        return info

    def stop(self) -> None:
        """Stop the workers, then Redis and the S3 model if any, then the emulator, and remove ``stack.json``."""
        try:
            for worker in self.workers:
                worker.stop()
        finally:
            try:
                if self.redis is not None:
                    self.redis.stop()
                if self.s3_faults is not None:
                    self.s3_faults.stop()
                if self.s3_model is not None:
                    self.s3_model.stop()
            finally:
                self.s3.stop()
                StackInfo.remove(self.state_dir)


# --- command line --------------------------------------------------------------------------------------------


def _up(state_dir: Path, s3_model: S3ModelConfig | None, workers: int) -> int:
    existing = StackInfo.read(state_dir)
    if existing is not None and existing.processes_running:
        print(f"the stack is already up (see {state_dir / StackInfo.FILE})", file=sys.stderr)
        print(json.dumps(asdict(existing), indent=2))
        return 0
    info = LocalStack(state_dir, detach=True, s3_model=s3_model, workers=workers).start()
    print(json.dumps(asdict(info), indent=2))
    return 0


def _down(state_dir: Path) -> int:
    info = StackInfo.read(state_dir)
    if info is None:
        print(f"no stack recorded in {state_dir}", file=sys.stderr)
        return 0
    # The workers first: they may still be writing through to S3 (through the model, if there is one).
    stopped_cache = all([stop_pid(pid, CACHE_MARKER) for pid in info.worker_pids or [info.cache_pid]])
    if info.redis_pid:
        stop_pid(info.redis_pid, REDIS_MARKER)
    stopped_model = bool(info.s3_model_pid) and stop_pid(info.s3_model_pid, MODEL_MARKER)
    stopped_s3 = stop_pid(info.s3_emulator_pid, EMULATOR_MARKER)
    StackInfo.remove(state_dir)
    model = f"S3 model: {'stopped' if stopped_model else 'was not running'}; " if info.s3_model_pid else ""
    print(
        f"cache: {'stopped' if stopped_cache else 'was not running'}; {model}"
        f"S3 emulator: {'stopped' if stopped_s3 else 'was not running'}"
    )
    return 0


def _status(state_dir: Path) -> int:
    info = StackInfo.read(state_dir)
    if info is None:
        print(json.dumps({"up": False, "state_dir": str(state_dir)}, indent=2))
        return 1
    report = {
        "s3_emulator_running": is_running(info.s3_emulator_pid, EMULATOR_MARKER),
        "cache_running": all(is_running(pid, CACHE_MARKER) for pid in info.worker_pids or [info.cache_pid]),
        "cache_ready": all(http_ok(url + "/readyz") for url in info.worker_urls or [info.webhdfs_url]),
    }
    if info.redis_pid:
        report["redis_running"] = is_running(info.redis_pid, REDIS_MARKER)
    if info.s3_model_pid:
        report["s3_model_running"] = is_running(info.s3_model_pid, MODEL_MARKER)
    up = all(report.values())
    print(json.dumps({"up": up, **report, **asdict(info)}, indent=2))
    return 0 if up else 1


def main(argv: list[str] | None = None) -> int:
    """``python -m infra.stack up|down|status``; status exits 1 unless every part of the stack is up and ready."""
    parser = argparse.ArgumentParser(prog="python -m infra.stack", description="Run the local Lakecache stack.")
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="default: %(default)s")
    parser.add_argument(
        "--workers", type=int, default=1, help="up: cache workers; above 1 they form a cluster on a local Redis"
    )
    parser.add_argument(
        "--s3-latency-ms",
        type=float,
        help="up: put the S3 latency model, with this first-byte latency, between the cache and the emulator "
        "(default: no model)",
    )
    parser.add_argument(
        "--s3-bandwidth-mbps",
        type=float,
        default=DEFAULT_BANDWIDTH_MBPS,
        help="up, with --s3-latency-ms: the model's cap per connection in MB/s, 0 = none (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    state_dir = args.state_dir.resolve()
    try:
        model = (
            S3ModelConfig.from_flags(args.s3_latency_ms, args.s3_bandwidth_mbps)
            if args.s3_latency_ms is not None
            else None
        )
    except ValueError as exc:
        parser.error(str(exc))
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    try:
        if args.command == "up":
            return _up(state_dir, model, args.workers)
        return {"down": _down, "status": _status}[args.command](state_dir)
    except (ServiceStartError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
