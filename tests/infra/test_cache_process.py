"""The cache launcher writes a config the service accepts, and reports why a worker failed to start."""

from __future__ import annotations

import pytest

from cache_service.config import load_config
from infra.cache_process import CacheProcess
from infra.service_process import ServiceStartError


def test_generated_config_is_valid_and_holds_ports_mounts_and_tiers(tmp_path):
    cache = CacheProcess(
        tmp_path / "cache",
        s3_endpoint="http://127.0.0.1:5000",
        mounts={"/warehouse": "s3://lake/warehouse", "/raw": "s3://lake/raw"},
        overrides={"metadata": {"sync_interval": "1s"}, "store": {"page_size": "64KiB"}},
    )

    config = load_config(cache.write_config(), env={})

    assert (config.server.webhdfs_port, config.server.s3_port) == (cache.webhdfs_port, cache.s3_port)
    assert config.under_store.endpoint_url == "http://127.0.0.1:5000"
    assert [(m.path, m.uri) for m in config.mounts] == [
        ("/warehouse", "s3://lake/warehouse"),
        ("/raw", "s3://lake/raw"),
    ]
    assert config.store.page_size == 64 * 1024
    assert config.store.disk_tier is not None
    assert config.store.disk_tier.path == str(cache.data_dir)
    assert [t.medium for t in config.store.tiers] == ["memory", "disk"]
    assert config.metadata.sync_interval == 1.0


def test_worker_that_exits_at_startup_reports_its_log_tail(cache_factory, bucket):
    cache = cache_factory({"/w": f"s3://{bucket}/w"}, {"store": {"eviction": "no-such-policy"}}, start=False)

    with pytest.raises(ServiceStartError, match="exited with code") as failure:
        cache.start(timeout=60)

    assert "store.eviction" in str(failure.value)
