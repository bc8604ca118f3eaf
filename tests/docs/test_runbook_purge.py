"""Every cachectl command of docs/runbooks/purge.md runs against a real cache; its Airflow part is the DAG's tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "runbooks" / "purge.md"
DAY = "/warehouse/events/dt=2026-11-20"


def _commands(tool: str) -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", RUNBOOK.read_text(), flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip().startswith(tool)]


@pytest.fixture
def cache(cache_factory, s3_client, bucket):
    for part in range(3):
        s3_client.put_object(Bucket=bucket, Key=f"warehouse/events/dt=2026-11-20/part-{part}", Body=b"e" * 200_000)
    return cache_factory({"/warehouse": f"s3://{bucket}/warehouse"}, {"store": {"page_size": "64KiB"}})


def test_every_cachectl_command_of_the_runbook_runs(cache) -> None:
    commands = _commands("cachectl")
    assert len(commands) >= 7
    env = {**os.environ, "CACHE_ENDPOINT": cache.webhdfs_url, "CACHE_ADMIN_TOKEN": cache.token}
    cachectl = f"{sys.executable} -m cache_service"
    subprocess.run(f"{cachectl} load {DAY} --wait", shell=True, env=env, check=True, capture_output=True)
    for command in commands:
        result = subprocess.run(
            command.replace("cachectl", cachectl, 1), shell=True, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"{command}: {result.stderr}"


def test_the_airflow_commands_name_the_real_dag_and_params() -> None:
    for command in _commands("airflow"):
        assert "cache_purge" in command
        conf = re.search(r"--conf '(.*)'", command)
        assert conf is not None
        assert set(__import__("json").loads(conf.group(1))) <= {"target", "dry_run", "paths"}
