"""The compose file and the container's cache config stay valid, though no Docker engine runs here to start them."""

from __future__ import annotations

from pathlib import Path

import yaml

from cache_service.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_declares_the_stack() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert {"s3", "cache"} <= set(compose["services"])
    cache = compose["services"]["cache"]
    assert (ROOT / cache["build"]["dockerfile"]).exists()
    assert "9870:9870" in cache["ports"]


def test_container_config_is_a_valid_cache_config() -> None:
    config = load_config(ROOT / "infra/docker/cache.toml", env={"CACHE_ADMIN_TOKEN": "x"})
    assert config.server.host == "0.0.0.0" and config.admin.token == "x"
    assert [m.path for m in config.mounts] == ["/warehouse", "/raw"]


def test_the_cache_containers_environment_sets_only_keys_the_config_accepts() -> None:
    # A CACHE_<SECTION>_<KEY> the config does not know would stop the container at start.
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = {k: str(v) for k, v in compose["services"]["cache"]["environment"].items() if k.startswith("CACHE_")}
    assert env, "the compose file no longer sets any CACHE_ variable: check this test still tests something"
    load_config(ROOT / "infra/docker/cache.toml", env=env)
