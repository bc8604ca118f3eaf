"""``python -m infra.airflow``: Airflow's four components on the local stack, up, healthy, and all gone after down."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest

from infra.airflow import COMPONENTS, AirflowInfo, process_marker
from infra.cache_process import REPO_ROOT
from infra.service_process import is_running
from infra.stack import StackInfo

pytestmark = pytest.mark.airflow


def _cli(*args: str, timeout: float = 420) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.airflow", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_status_and_down_without_an_airflow_say_so(tmp_path) -> None:
    status = _cli("status", "--state-dir", str(tmp_path))
    assert status.returncode == 1 and json.loads(status.stdout)["up"] is False
    down = _cli("down", "--state-dir", str(tmp_path))
    assert down.returncode == 0 and "no Airflow recorded" in down.stderr


def test_up_starts_every_component_with_a_login_and_down_stops_them_and_the_stack(tmp_path) -> None:
    state_dir, stack_dir = tmp_path / "airflow", tmp_path / "stack"
    dirs = ("--state-dir", str(state_dir), "--stack-dir", str(stack_dir))
    up = _cli("up", *dirs)
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        info = AirflowInfo.read(state_dir)
        assert info is not None and info.started_stack
        assert f"Airflow is up at {info.url}" in up.stdout and f"log in as admin / {info.password}" in up.stdout
        assert set(info.pids) == set(COMPONENTS) and all(info.running.values())

        status = _cli("status", *dirs)
        assert status.returncode == 0, status.stdout
        assert json.loads(status.stdout)["healthy"] == dict.fromkeys(COMPONENTS, True)

        # The simple auth manager accepts the printed login.
        request = urllib.request.Request(
            f"{info.url}/auth/token",
            data=json.dumps({"username": "admin", "password": info.password}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=30) as response:
            assert json.loads(response.read())["access_token"]
    finally:
        down = _cli("down", *dirs)
    assert down.returncode == 0, down.stderr
    assert not any(is_running(pid, process_marker(name)) for name, pid in info.pids.items())
    assert AirflowInfo.read(state_dir) is None
    stack = StackInfo.read(stack_dir)
    assert stack is None  # the stack `up` started is gone with it
