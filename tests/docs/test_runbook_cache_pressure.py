"""The cache-pressure runbook works as written: every command in its bash blocks runs against a real cache.

The runbook's example paths are loaded (and one is pinned, and a warmup is running) first, so the state the on-call
engineer meets is the state the commands are run against. A command that cannot run here is a runbook bug.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.cache_process import REPO_ROOT, CacheProcess

RUNBOOK = REPO_ROOT / "docs" / "runbooks" / "cache-pressure.md"
SIZE = 200 * 1024 + 17
DAYS = ("2026-11-23", "2026-11-22", "2026-11-21")


def bash_commands(markdown: str) -> list[str]:
    """Every command line of the ```bash blocks, in document order (blank lines and comments skipped)."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", markdown, flags=re.S | re.M):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


@pytest.fixture
def cache(cache_factory, bucket: str, s3_client) -> Iterator[CacheProcess]:
    for day in DAYS:
        for part in range(3):
            s3_client.put_object(Bucket=bucket, Key=f"warehouse/events/dt={day}/part-{part}.parquet", Body=b"r" * SIZE)
    yield cache_factory({"/warehouse": f"s3://{bucket}/warehouse"}, {"store": {"page_size": "64KiB"}})


def environment(cache: CacheProcess, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CACHE_")}
    env.update(
        # `cachectl` as the runbook calls it: the console script of this checkout's virtualenv.
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        CACHE_ENDPOINT=cache.webhdfs_url,
        CACHE_ADMIN_TOKEN=cache.token,
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        **extra,
    )
    return env


def sh(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def cachectl_json(env: dict[str, str], *args: str) -> dict:
    done = sh(" ".join(["cachectl", "--json", *args]), env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_runbook_commands_are_one_per_line_with_dry_run_before_purge() -> None:
    commands = bash_commands(RUNBOOK.read_text())
    assert commands, "the runbook has no bash blocks"
    assert not [c for c in commands if c.endswith("\\")], "one command per line, no continuations"
    assert commands.index("cachectl purge --target 0.6 --dry-run") < commands.index("cachectl purge --target 0.6")
    for needed in ("cachectl status", "cachectl jobs", "cachectl unpin", "cachectl free", "cachectl ttl"):
        assert any(c.startswith(needed) for c in commands), needed
    assert any(c.startswith("cachectl load") and c.endswith("--wait") for c in commands)


def test_every_runbook_command_runs(cache: CacheProcess) -> None:
    env = environment(cache)
    # The state of the night: two days warm, one of them pinned, and a slow warmup of a third still running.
    for day in DAYS[:2]:
        assert sh(f"cachectl load /warehouse/events/dt={day} --wait", env).returncode == 0
    assert sh("cachectl pin /warehouse/events/dt=2026-11-23", env).returncode == 0
    job = cachectl_json(env, "load", "/warehouse/events/dt=2026-11-21", "--bandwidth", "4KiB", "--parallelism", "1")
    env["JOB_ID"] = job["id"]

    for command in bash_commands(RUNBOOK.read_text()):
        done = sh(command, env)
        assert done.returncode == 0, f"runbook command failed: {command}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr, command

    # The runbook's undo left the pinned day pinned and warm again, and its cancel stopped the warmup.
    day = cachectl_json(env, "stat", "/warehouse/events/dt=2026-11-23")
    assert day["pinned"] is True
    assert day["cached_bytes"] == 3 * SIZE
    assert cachectl_json(env, "jobs", job["id"])["state"] == "cancelled"
    assert cachectl_json(env, "ttl")["ttls"] == {}


def test_runbook_names_only_metrics_the_cache_exports(cache: CacheProcess) -> None:
    named = set(re.findall(r"\blakecache_[a-z0-9_]+", RUNBOOK.read_text()))
    assert {"lakecache_tier_used_bytes", "lakecache_evictions_total"} <= named
    with urllib.request.urlopen(f"{cache.webhdfs_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    # HELP lines name every family, even one without samples yet (no eviction, no read has happened).
    families = set(re.findall(r"^# HELP (\w+)", text, flags=re.M))

    def exported(name: str) -> bool:
        base = re.sub(r"_(bucket|sum|count|total)$", "", name)
        return bool({name, base, f"{base}_total"} & families)

    missing = sorted(n for n in named if not exported(n))
    assert not missing, f"the runbook names metrics the cache does not export: {missing}"
