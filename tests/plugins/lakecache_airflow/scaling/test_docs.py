"""``docs/autoscaling.md`` says what the code does: its configuration example loads, for every backend."""

from __future__ import annotations

import re
import tomllib

import pytest

from lakecache_airflow.scaling.backends import KINDS, BackendConfig
from lakecache_airflow.scaling.cli import parser
from lakecache_airflow.scaling.policy import PolicyConfig, PolicyConfigError
from tests.plugins.airflow_home import REPO_ROOT

DOC = (REPO_ROOT / "docs" / "autoscaling.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", DOC, flags=re.S | re.M)


def test_the_configuration_example_is_a_valid_policy() -> None:
    (example,) = blocks("toml")
    data = tomllib.loads(example)
    config = PolicyConfig.from_dict(data)
    assert [w.name for w in config.windows] == ["morning-etl", "month-end"]
    assert config.windows[0].described == "mon-fri 06:00-09:00 Europe/Paris"


@pytest.mark.parametrize("kind", KINDS)
def test_the_example_configures_every_backend(kind: str) -> None:
    data = tomllib.loads(blocks("toml")[0])
    backend = BackendConfig.from_dict(data, kind=kind)
    assert backend.kind == kind and backend.backoff.attempts == 5
    assert backend.cache_url == "http://cache:9870"


def test_the_documented_clusterctl_commands_parse() -> None:
    commands = [
        line.split("#")[0].split()[1:] for line in blocks("sh")[1].splitlines() if line.startswith("clusterctl")
    ]
    assert len(commands) == 4
    for argv in commands:
        parser().parse_args(argv)


def test_the_cache_following_example_configures_spark_and_asg_and_emr_refuses_it() -> None:
    section = DOC.split("## The cache cluster follows the nodes", 1)[1]
    example = re.findall(r"^```\n(.*?)^```", section, flags=re.S | re.M)[0]
    data = tomllib.loads(blocks("toml")[0])
    data["backend"]["cache"] = tomllib.loads(example)["backend"]["cache"]
    for kind in ("spark", "asg"):
        cache = BackendConfig.from_dict(data, kind=kind).cache
        assert cache is not None
        assert (cache.conn_id, cache.drain_timeout, cache.join_timeout) == ("lakecache_default", 1800.0, 600.0)
    with pytest.raises(PolicyConfigError, match="the emr backend cannot drain cache workers yet"):
        BackendConfig.from_dict(data, kind="emr")
