"""The cache launcher writes a config the service accepts, and reports why a worker failed to start."""

from __future__ import annotations

import socket

import pytest

from cache_service.config import load_config
from infra.cache_process import CacheProcess
from infra.service_process import ServiceStartError, http_ok


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


def test_a_port_taken_before_the_first_start_is_replaced_but_a_restart_keeps_its_ports(cache_factory, bucket):
    cache = cache_factory({"/w": f"s3://{bucket}/w"}, start=False)
    taken = cache.webhdfs_port
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((cache.host, taken))
        squatter.listen()
        cache.start(timeout=60)
        assert cache.webhdfs_port != taken
        assert http_ok(cache.webhdfs_url + "/readyz")

        cache.stop()
        restarted_on = cache.webhdfs_port
        squatter.close()
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the stopped worker's port is in TIME_WAIT
        squatter.bind((cache.host, restarted_on))
        squatter.listen()
        with pytest.raises(ServiceStartError, match="address already in use"):
            cache.start(timeout=60)  # a restart answers at the same URLs, or fails
    assert cache.webhdfs_port == restarted_on
