"""The compose file and the container's cache config stay valid, though no Docker engine runs here to start them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cache_service.config import load_config

ROOT = Path(__file__).resolve().parents[2]
WORKERS = ("cache-1", "cache-2", "cache-3")


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def test_compose_file_declares_a_three_worker_cluster_on_redis() -> None:
    services = compose()["services"]
    assert {"redis", "s3", *WORKERS} <= set(services)
    for name in WORKERS:
        cache = services[name]
        assert (ROOT / cache["build"]["dockerfile"]).exists()
        assert "redis" in cache["depends_on"]
        assert cache["environment"]["CACHE_CLUSTER_ADVERTISE_HOST"] == name
    host_ports = [p.split(":")[0] for name in WORKERS for p in services[name]["ports"]]
    assert len(host_ports) == len(set(host_ports)) and "9870" in host_ports
    volumes = [services[name]["volumes"][0].split(":")[0] for name in WORKERS]
    assert len(set(volumes)) == 3, "each worker keeps its own disk tier, hence its own identity"


def test_container_config_is_a_valid_cache_config() -> None:
    config = load_config(ROOT / "infra/docker/cache.toml", env={"CACHE_ADMIN_TOKEN": "x"})
    assert config.server.host == "0.0.0.0" and config.admin.token == "x"
    assert [m.path for m in config.mounts] == ["/warehouse", "/raw"]


def test_each_workers_environment_sets_only_keys_the_config_accepts() -> None:
    # A CACHE_<SECTION>_<KEY> the config does not know would stop the container at start.
    for name in WORKERS:
        env = {k: str(v) for k, v in compose()["services"][name]["environment"].items() if k.startswith("CACHE_")}
        assert env, "the compose file no longer sets any CACHE_ variable: check this test still tests something"
        config = load_config(ROOT / "infra/docker/cache.toml", env=env)
        assert config.cluster.enabled and config.cluster.advertise_host == name
