"""The local stack: S3 emulator and cache worker come up together, answer health checks, and go down again."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from infra.cache_process import REPO_ROOT
from infra.cache_ring import cluster_report, wait_for_ring
from infra.s3_emulator import s3_client
from infra.s3_faults import FaultRates
from infra.s3_model import MODEL_MARKER, S3ModelConfig
from infra.service_process import http_ok, is_running
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


def test_with_an_s3_model_the_cache_reads_s3_through_it_and_direct_writes_bypass_it(tmp_path):
    with LocalStack(tmp_path / "stack", s3_model=S3ModelConfig.from_flags(5, 0)) as stack:
        assert stack.s3_model is not None
        stack.s3.client().put_object(Bucket=DEMO_BUCKET, Key="raw/hello.txt", Body=b"written to the emulator")
        through_cache = s3_client(stack.s3_api_url).get_object(Bucket=DEMO_BUCKET, Key="raw/hello.txt")["Body"].read()
        info = stack.info
        model_ran = is_running(info.s3_model_pid, MODEL_MARKER)
        model_log = (tmp_path / "stack" / "s3-model.log").read_text()

    assert through_cache == b"written to the emulator"
    assert info.under_store_endpoint == stack.s3_model.url != info.s3_endpoint
    assert model_ran
    assert f"-> {info.s3_endpoint}: 5 ms to first byte" in model_log
    assert not is_running(info.s3_model_pid, MODEL_MARKER)  # stopped with the stack


def test_with_the_fault_proxy_the_cache_reaches_s3_through_it_and_survives_its_faults(tmp_path):
    overrides = {"under_store": {"read_timeout": "1s"}}
    with LocalStack(tmp_path / "stack", s3_faults=FaultRates(), worker_overrides=overrides) as stack:
        assert stack.s3_faults is not None
        assert stack.under_store_endpoint == stack.s3_faults.url != stack.s3_endpoint
        assert stack.cache.config["under_store"]["read_timeout"] == "1s"
        stack.s3.client().put_object(Bucket=DEMO_BUCKET, Key="raw/hello.txt", Body=b"written to the emulator")
        stack.s3_faults.set_rates(FaultRates(server_error=1.0))  # every request, until the worker's retries run out
        refused = urllib.request.Request(f"{stack.webhdfs_url}/webhdfs/v1/raw/hello.txt?op=OPEN&user.name=t")
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(refused, timeout=60)
        stack.s3_faults.faults_off()
        through_cache = s3_client(stack.s3_api_url).get_object(Bucket=DEMO_BUCKET, Key="raw/hello.txt")["Body"].read()
        injected = stack.s3_faults.counts()["server_error"]

    assert failed.value.code == 503  # S3 failing is the cache's 503, never a 500
    assert through_cache == b"written to the emulator"
    assert injected > 0


def test_a_stack_with_the_fault_proxy_runs_attached(tmp_path):
    with pytest.raises(ValueError, match="runs attached"):
        LocalStack(tmp_path / "stack", s3_faults=FaultRates(), detach=True)


def test_stack_cli_starts_detached_reports_status_and_stops(tmp_path):
    def stack_cli(command: str) -> subprocess.CompletedProcess[str]:
        return run_stack_cli(tmp_path, command)

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


def run_stack_cli(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.stack", *args, "--state-dir", str(state_dir)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_stack_cli_runs_three_workers_as_one_cluster(tmp_path):
    up = run_stack_cli(tmp_path, "up", "--workers", "3")
    try:
        assert up.returncode == 0, up.stderr
        info = json.loads(up.stdout)
        status = run_stack_cli(tmp_path, "status")
        wait_for_ring(info["worker_urls"], 3)
        members = cluster_report(info["worker_urls"][2])["members"]
    finally:
        down = run_stack_cli(tmp_path, "down")

    assert len(set(info["worker_urls"])) == 3 and info["redis_url"].startswith("redis://127.0.0.1:")
    assert json.loads(status.stdout)["redis_running"] is True
    assert sorted(m["webhdfs_url"] for m in members) == sorted(info["worker_urls"])
    assert down.returncode == 0, down.stderr
    assert not any(is_running(pid, "cache_service") for pid in info["worker_pids"])
    assert not is_running(info["redis_pid"], "redis-server")


def test_a_stack_needs_a_worker(tmp_path):
    refused = run_stack_cli(tmp_path, "up", "--workers", "0")
    assert refused.returncode == 2
    assert "--workers must be at least 1, got 0" in refused.stderr
