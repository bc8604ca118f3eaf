"""What ``python -m infra.monitoring snapshots --demo`` watches: a small ``make demo`` on three cache workers, with the
monitoring of ``python -m infra.monitoring up`` started against the demo's stack as soon as it is up.

The demo (``python -m infra.demo --workers 3 --events N``, a child process, its output in ``.local/snapshots/demo.log``)
starts its own stack in ``.local/snapshots/demo`` and stops it when both of its runs are done; the monitoring
(``.local/snapshots/monitoring``) runs from just after the stack is up until the snapshots are taken, and the window
they cover is that of the demo's runs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from infra.cache_process import REPO_ROOT
from infra.monitoring import local
from infra.monitoring.record import MonitoringInfo
from infra.monitoring.snapshots import Window, scrape_interval
from infra.stack import StackInfo

SNAPSHOTS_DIR = REPO_ROOT / ".local" / "snapshots"
DEMO_WORKERS = 3
STACK_TIMEOUT = 180.0
DEMO_TIMEOUT = 1800.0


def demo_window(events: int) -> tuple[str, Window, Callable[[], object]]:
    """Run the demo with ``events`` raw events under the monitoring; Prometheus's URL, the window of the demo's runs,
    and what stops the monitoring (call it once the snapshots are taken).

    Raises ``RuntimeError`` (the demo's log named) when the demo fails or its stack does not come up, or when a
    monitoring already runs in ``.local/snapshots/monitoring``.
    """
    demo_dir, monitoring_dir, log_path = (
        SNAPSHOTS_DIR / "demo",
        SNAPSHOTS_DIR / "monitoring",
        SNAPSHOTS_DIR / "demo.log",
    )
    earlier = MonitoringInfo.read(monitoring_dir)
    if earlier is not None and earlier.running:
        raise RuntimeError(
            f"a monitoring already runs in {monitoring_dir}: `python -m infra.monitoring down "
            f"--state-dir {monitoring_dir}` first"
        )
    shutil.rmtree(monitoring_dir, ignore_errors=True)  # the snapshots show this demo's series only
    SNAPSHOTS_DIR.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "infra.demo",
        "--events",
        str(events),
        "--workers",
        str(DEMO_WORKERS),
        "--state-dir",
        str(demo_dir),
    ]
    print(f"demo: {' '.join(argv[1:])} (log: {log_path})")
    with log_path.open("w") as log:
        demo = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_stack(demo, demo_dir, log_path)
        info = local.up(monitoring_dir, demo_dir)
        start = time.time()
        print(f"monitoring up: Prometheus at {info.prometheus_url}; waiting for the demo's runs")
        status = demo.wait(DEMO_TIMEOUT)
    except BaseException:
        demo.kill()
        demo.wait()
        local.down(monitoring_dir)
        raise
    if status != 0:
        local.down(monitoring_dir)
        raise RuntimeError(f"the demo failed (exit {status}): see {log_path}")
    window = Window(start, time.time(), scrape_interval(info.prometheus_url))
    return info.prometheus_url, window, lambda: local.down(monitoring_dir)


def _wait_for_stack(demo: subprocess.Popen[bytes], demo_dir: Path, log_path: Path) -> None:
    deadline = time.monotonic() + STACK_TIMEOUT
    while True:
        stack = StackInfo.read(demo_dir)
        if stack is not None and stack.processes_running:
            return
        if demo.poll() is not None:
            raise RuntimeError(f"the demo ended (exit {demo.returncode}) before its stack was up: see {log_path}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the demo's stack was not up in {STACK_TIMEOUT:.0f}s: see {log_path}")
        time.sleep(0.5)
