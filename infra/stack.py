"""The local stack: the S3 emulator with the demo bucket, and one cache worker in front of it.

In a program::

    with LocalStack() as stack:
        spark.read.parquet(f"{stack.webhdfs_uri}/warehouse/events")

From a shell, ``python -m infra.stack up`` starts it detached and writes ``.local/stack/stack.json`` (endpoints,
admin token, pids); ``python -m infra.stack status`` and ``python -m infra.stack down`` read that file.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

from infra.cache_process import CACHE_MARKER, REPO_ROOT, CacheProcess
from infra.s3_emulator import EMULATOR_MARKER, S3Emulator
from infra.service_process import ServiceStartError, http_ok, is_running, stop_pid

DEFAULT_STATE_DIR = REPO_ROOT / ".local" / "stack"
DEMO_BUCKET = "lake"
DEMO_MOUNTS = {"/warehouse": f"s3://{DEMO_BUCKET}/warehouse", "/raw": f"s3://{DEMO_BUCKET}/raw"}
STACK_FILE = "stack.json"


@dataclass(frozen=True)
class StackInfo:
    """What ``stack.json`` records of a running stack: its endpoints, admin token and pids."""

    state_dir: str
    s3_endpoint: str
    webhdfs_url: str
    webhdfs_uri: str
    s3_api_url: str
    admin_token: str
    s3_emulator_pid: int
    cache_pid: int

    def write(self, path: Path) -> None:
        """Write this record as JSON to ``path``, readable by the owner only (it holds the admin token)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, state_dir: Path) -> StackInfo | None:
        """The record in ``state_dir``, or None if no stack was started there."""
        path = state_dir / STACK_FILE
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text()))

    @property
    def processes_running(self) -> bool:
        """True if both recorded processes are still alive."""
        return is_running(self.s3_emulator_pid, EMULATOR_MARKER) and is_running(self.cache_pid, CACHE_MARKER)


class LocalStack:
    """The S3 emulator (bucket ``lake``) and a cache worker mounting ``/warehouse`` and ``/raw`` from it.

    Every start begins empty: the emulator keeps S3 in memory, so the worker's disk tier is wiped too rather than
    left holding pages of objects that no longer exist. ``detach`` lets both processes outlive this one.
    """

    def __init__(self, state_dir: Path = DEFAULT_STATE_DIR, *, detach: bool = False) -> None:
        self.state_dir = state_dir.resolve()
        self.detach = detach
        self.s3 = S3Emulator(self.state_dir, buckets=[DEMO_BUCKET], detach=detach)
        self.cache = CacheProcess(
            self.state_dir / "cache", s3_endpoint=self.s3.endpoint_url, mounts=DEMO_MOUNTS, detach=detach
        )

    @property
    def s3_endpoint(self) -> str:
        """The S3 emulator's endpoint (the "real" S3 behind the cache)."""
        return self.s3.endpoint_url

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
        )

    def start(self) -> StackInfo:
        """Start the emulator, then the cache; write ``stack.json``.

        Raises ``RuntimeError`` if a stack already runs in this state directory, and
        ``infra.service_process.ServiceStartError`` (nothing left running) if a process does not come up.
        """
        running = StackInfo.read(self.state_dir)
        if running is not None and running.processes_running:
            raise RuntimeError(f"a stack already runs in {self.state_dir}; stop it with `python -m infra.stack down`")
        shutil.rmtree(self.cache.data_dir, ignore_errors=True)
        self.s3.start()
        try:
            self.cache.start()
        except BaseException:
            self.s3.stop()
            raise
        info = self.info
        info.write(self.state_dir / STACK_FILE)
        return info

    def stop(self) -> None:
        """Stop the cache, then the emulator, and remove ``stack.json``."""
        try:
            self.cache.stop()
        finally:
            self.s3.stop()
            (self.state_dir / STACK_FILE).unlink(missing_ok=True)

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


# --- command line --------------------------------------------------------------------------------------------


def _up(state_dir: Path) -> int:
    existing = StackInfo.read(state_dir)
    if existing is not None and existing.processes_running:
        print(f"the stack is already up (see {state_dir / STACK_FILE})", file=sys.stderr)
        print(json.dumps(asdict(existing), indent=2))
        return 0
    info = LocalStack(state_dir, detach=True).start()
    print(json.dumps(asdict(info), indent=2))
    return 0


def _down(state_dir: Path) -> int:
    info = StackInfo.read(state_dir)
    if info is None:
        print(f"no stack recorded in {state_dir}", file=sys.stderr)
        return 0
    # The cache first: it may still be writing through to S3.
    stopped_cache = stop_pid(info.cache_pid, CACHE_MARKER)
    stopped_s3 = stop_pid(info.s3_emulator_pid, EMULATOR_MARKER)
    (state_dir / STACK_FILE).unlink(missing_ok=True)
    print(
        f"cache: {'stopped' if stopped_cache else 'was not running'}; "
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
        "cache_running": is_running(info.cache_pid, CACHE_MARKER),
        "cache_ready": http_ok(info.webhdfs_url + "/readyz"),
    }
    up = all(report.values())
    print(json.dumps({"up": up, **report, **asdict(info)}, indent=2))
    return 0 if up else 1


def main(argv: list[str] | None = None) -> int:
    """``python -m infra.stack up|down|status``; status exits 1 unless every part of the stack is up and ready."""
    parser = argparse.ArgumentParser(prog="python -m infra.stack", description="Run the local Lakecache stack.")
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="default: %(default)s")
    args = parser.parse_args(argv)
    state_dir = args.state_dir.resolve()
    command = {"up": _up, "down": _down, "status": _status}[args.command]
    try:
        return command(state_dir)
    except (ServiceStartError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
