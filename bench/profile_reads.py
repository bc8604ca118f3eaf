"""Where a warm 64 KiB read spends the cache's CPU: py-spy on a worker under wrk's 32-connection load.

    python -m bench.profile_reads [--seconds 10] [--top 15]

Starts the S3 emulator and a worker, writes a 64 MiB file through it and reads it twice (every page in memory),
then samples the worker with ``py-spy record`` while wrk sends the benchmark's random 64 KiB ``OPEN`` reads. Prints
the functions that hold the most samples, by self time (the frame on top) and by total time (anywhere on the
stack), and keeps py-spy's collapsed stacks (``.local/bench/profile/warm_reads.txt``, for flame graph tools).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from bench.http_reads import (
    BUCKET,
    CACHE_PATH,
    CONNECTIONS,
    WRK_SCRIPT,
    blob_cache,
    cache_target,
    put_through_cache,
    read_whole,
    run_wrk,
    write_blob,
)
from bench.nginx import require_command
from bench.report import WORK_ROOT
from bench.section import Section
from infra.s3_emulator import S3Emulator

FILE_BYTES = 64 * 2**20
SAMPLES_PER_SECOND = 1000


def _function(frame: str) -> str:
    """``name (path/to/module.py:line)`` -> ``name (module.py)``: one entry per function, not per line."""
    name, _, where = frame.partition(" (")
    return f"{name} ({Path(where.split(':', 1)[0]).name})" if where else name


def summarise(collapsed: str, top: int) -> str:
    """Tables of the ``top`` functions by self and by total share of samples, from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    anywhere: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            anywhere[name] += count
    if not total:
        return "no samples"
    lines = [f"{total:,} samples", "", "| self % | total % | function |", "|---:|---:|---|"]
    for name, count in own.most_common(top):
        lines.append(f"| {100 * count / total:.1f} | {100 * anywhere[name] / total:.1f} | `{name}` |")
    return "\n".join(lines)


def record(seconds: int, work: Path) -> str:
    """Collapsed stacks of a warm worker sampled for ``seconds`` under wrk's load (files under ``work``).

    Raises ``RuntimeError`` if py-spy fails (it needs to ptrace the worker: root, or ptrace_scope 0).
    """
    wrk = require_command("wrk", "wrk")
    curl = require_command("curl", "curl")
    py_spy = Path(sys.executable).parent / "py-spy"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    script, blob, stacks = work / "ranges.lua", work / "blob.bin", work / "warm_reads.txt"
    script.write_text(WRK_SCRIPT)
    write_blob(blob, FILE_BYTES)
    with (
        S3Emulator(work, buckets=[BUCKET]) as s3,
        blob_cache(work, s3.endpoint_url, FILE_BYTES) as cache,
    ):
        put_through_cache(cache, CACHE_PATH, blob)
        target = cache_target(cache)
        for _ in range(2):  # every page in memory
            read_whole(curl, target.url + target.path, FILE_BYTES)
        argv = [str(py_spy), "record", "--pid", str(cache.pid), "--rate", str(SAMPLES_PER_SECOND)]
        argv += ["--duration", str(seconds), "--format", "raw", "--output", str(stacks), "--nonblocking"]
        load = threading.Thread(
            target=run_wrk,
            args=(wrk, script, target),
            kwargs={"connections": CONNECTIONS, "seconds": seconds + 1, "size": FILE_BYTES, "seed": 1},
        )
        load.start()
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        load.join()
    if done.returncode != 0 or not stacks.exists():
        raise RuntimeError(f"py-spy failed ({done.returncode}): {done.stderr.strip()}")
    return stacks.read_text()


def run(full: bool, *, work_dir: Path | None = None) -> Section:
    """The profile as a ``make bench`` section (no targets: it explains the 64 KiB figures)."""
    seconds = 20 if full else 8
    table = summarise(record(seconds, (work_dir or WORK_ROOT / "profile").resolve()), top=12)
    text = (
        "Where the worker's CPU goes while it serves the 64 KiB reads above: `py-spy record` at "
        f"{SAMPLES_PER_SECOND} samples/s for {seconds} s on a warm worker under wrk at {CONNECTIONS} connections (a "
        f"{FILE_BYTES // 2**20} MiB file, every page in memory). Time in native code (system calls included) counts "
        "to the Python frame that called it: `data_received` holds mostly the `writev` that copies each response into "
        "the socket (a `py-spy --native` sample puts that system call alone at about 40% of the worker's CPU), "
        "`Runner.run` the event loop's own `epoll` and `recv`. The rest is the warm path itself "
        "(`cache_service/api/webhdfs/warm_reads.py`: parsing the request head, finding the pages, counting "
        "metrics).\n\n" + table + "\n"
    )
    return Section(
        name="profile",
        title="Profile of a warm 64 KiB read",
        command=f"python -m bench.profile_reads --seconds {seconds}",
        markdown=text,
        results={"seconds": seconds, "summary": table},
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile_reads", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=int, default=10, help="seconds of load and sampling (default: %(default)s)")
    parser.add_argument("--top", type=int, default=15, help="functions to list (default: %(default)s)")
    parser.add_argument("--work-dir", type=Path, default=WORK_ROOT / "profile", help="default: %(default)s")
    args = parser.parse_args(argv)
    try:
        collapsed = record(args.seconds, args.work_dir.resolve())
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(summarise(collapsed, args.top))
    print(f"\ncollapsed stacks: {args.work_dir.resolve() / 'warm_reads.txt'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
