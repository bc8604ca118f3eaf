"""The local stack: S3 emulator and cache worker come up together, answer health checks, and go down again."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

from infra.cache_process import REPO_ROOT
from infra.service_process import http_ok
from infra.stack import DEMO_BUCKET, LocalStack, StackInfo


def test_local_stack_answers_readyz_and_healthz(tmp_path):
    with LocalStack(tmp_path / "stack") as stack:
        ready = http_ok(stack.webhdfs_url + "/readyz")
        healthy = http_ok(stack.webhdfs_url + "/healthz")
        buckets = {b["Name"] for b in stack.s3.client().list_buckets()["Buckets"]}
        recorded = StackInfo.read(tmp_path / "stack")

    assert ready
    assert healthy
    assert buckets == {DEMO_BUCKET}
    assert recorded == stack.info
    assert stack.webhdfs_uri == stack.webhdfs_url.replace("http://", "webhdfs://")
    assert StackInfo.read(tmp_path / "stack") is None  # stopping removes stack.json


def test_stack_cli_starts_detached_reports_status_and_stops(tmp_path):
    def stack_cli(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "infra.stack", command, "--state-dir", str(tmp_path)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )

    up = stack_cli("up")
    try:
        assert up.returncode == 0, up.stderr
        info = json.loads(up.stdout)
        status = stack_cli("status")
        with urllib.request.urlopen(info["webhdfs_url"] + "/healthz", timeout=5) as health:
            assert health.status == 200
    finally:
        down = stack_cli("down")

    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)["up"] is True
    assert down.returncode == 0, down.stderr
    after = stack_cli("status")
    assert after.returncode == 1
    assert json.loads(after.stdout)["up"] is False
