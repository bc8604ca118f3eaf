"""The worker process: exposure rule, structured request logs, health and the baseline metrics."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

from infra.cache_process import CacheProcess
from tests.support.metrics import scrape
from tests.support.webhdfs import WebHdfsClient


def _serve(tmp_path: Path, config: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``cache_service serve`` with ``config`` as its file; for configurations it must refuse before it serves."""
    path = tmp_path / "cache.toml"
    path.write_text(config)
    argv = [sys.executable, "-m", "cache_service", "serve", "--config", str(path)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)


def test_refuses_a_non_loopback_address_without_an_admin_token(tmp_path) -> None:
    config = (
        '[server]\nhost = "0.0.0.0"\n[[mounts]]\npath = "/w"\nuri = "s3://b/w"\n'
        f'[[store.tiers]]\nmedium = "disk"\npath = "{tmp_path}/d"\ncapacity = "1MiB"\n'
    )
    result = _serve(tmp_path, config, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 2
    assert "without an admin token" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_broken_config_is_one_line_per_mistake(tmp_path) -> None:
    result = _serve(tmp_path, '[store]\npage_size = "huge"\nhigh_watermark = 0.1\n[bogus]\nx = 1\n')
    assert result.returncode == 2 and "Traceback" not in result.stderr
    problems = [line for line in result.stderr.splitlines() if line.strip().startswith("- ")]
    assert any("page_size" in p for p in problems) and any("watermarks" in p for p in problems)
    assert any("bogus" in p for p in problems) and any("mounts" in p for p in problems)


def test_debug_logs_one_json_line_per_request(cache_factory, bucket) -> None:
    cache: CacheProcess = cache_factory({"/warehouse": f"s3://{bucket}/warehouse"}, {"server": {"log_level": "debug"}})
    assert WebHdfsClient(cache.webhdfs_url).status("/warehouse").status == 200
    lines = [json.loads(line) for line in cache.log_path.read_text().splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("msg") == "request" and line.get("op") == "GETFILESTATUS"]
    assert requests and requests[0]["status"] == 200 and requests[0]["api"] == "webhdfs"


def test_health_readiness_and_baseline_metrics(cache_factory, bucket, s3_client) -> None:
    cache: CacheProcess = cache_factory({"/warehouse": f"s3://{bucket}/warehouse"})
    for endpoint in ("healthz", "readyz"):
        with urllib.request.urlopen(f"{cache.webhdfs_url}/{endpoint}", timeout=10) as response:
            assert response.status == 200
    s3_client.put_object(Bucket=bucket, Key="warehouse/m", Body=b"m" * 1000)
    hdfs = WebHdfsClient(cache.webhdfs_url)
    hdfs.read("/warehouse/m")
    hdfs.read("/warehouse/m")
    samples = scrape(cache.webhdfs_url)
    assert samples['lakecache_requests_total{api="webhdfs",op="OPEN",status="200"}'] == 2
    assert samples["lakecache_s3_bytes_read_total"] == 1000
    assert samples["lakecache_page_misses_total"] == 1
    assert samples['lakecache_page_hits_total{tier="memory"}'] == 1
    assert samples['lakecache_bytes_served_total{tier="memory"}'] == 1000
    assert samples['lakecache_tier_pages{tier="disk"}'] == 1 and samples['lakecache_tier_pages{tier="memory"}'] == 1
    assert samples['lakecache_tier_capacity_bytes{tier="memory"}'] > 0
    assert samples['lakecache_s3_requests_total{outcome="ok"}'] >= 2  # the HEAD and the GET, at least
    assert samples['lakecache_store_watermark{level="high"}'] == 0.9
    assert samples['lakecache_store_watermark{level="low"}'] < 0.9


def test_the_room_left_on_the_disk_tiers_filesystem_is_exported(cache_factory, bucket) -> None:
    cache: CacheProcess = cache_factory({"/warehouse": f"s3://{bucket}/warehouse"})
    samples = scrape(cache.webhdfs_url)
    disk = shutil.disk_usage(cache.data_dir)
    assert samples['lakecache_disk_size_bytes{tier="disk"}'] == disk.total
    assert abs(samples['lakecache_disk_free_bytes{tier="disk"}'] - disk.free) < 0.01 * disk.total
    assert 'lakecache_disk_free_bytes{tier="memory"}' not in samples  # memory has no filesystem


def test_a_half_configured_s3_api_is_one_line_at_start(tmp_path) -> None:
    config = (
        '[s3_api]\naccess_key = "AKIA"\n[[mounts]]\npath = "/w"\nuri = "s3://b/w"\n'
        f'[[store.tiers]]\nmedium = "disk"\npath = "{tmp_path}/d"\ncapacity = "1MiB"\n'
    )
    result = _serve(tmp_path, config)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "neither secret_key nor secret_key_env" in result.stderr


def test_a_user_whose_secret_variable_is_unset_is_one_line_at_start(tmp_path) -> None:
    config = (
        '[[s3_api.users]]\naccess_key = "etl"\nsecret_key_env = "LAKECACHE_TEST_UNSET_SECRET"\n'
        'grants = [{ bucket = "lake", prefix = "warehouse/", access = "write" }]\n'
        '[[mounts]]\npath = "/w"\nuri = "s3://b/w"\n'
        f'[[store.tiers]]\nmedium = "disk"\npath = "{tmp_path}/d"\ncapacity = "1MiB"\n'
    )
    result = _serve(tmp_path, config, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "cachectl: s3_api.users[0] (etl): secret_key_env names 'LAKECACHE_TEST_UNSET_SECRET', which is unset or empty"
    ]
