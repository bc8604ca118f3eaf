"""The one environment of every Airflow process here: the stack's connections, nothing of the caller's Airflow."""

from __future__ import annotations

import json
from pathlib import Path

from infra.airflow_environment import airflow_environment, stack_connections
from infra.stack import StackInfo


def test_the_connections_point_at_the_stacks_cache_with_its_token() -> None:
    stack = StackInfo(
        state_dir="/tmp/x",
        s3_endpoint="http://127.0.0.1:5000",
        webhdfs_url="http://127.0.0.1:9870",
        webhdfs_uri="webhdfs://127.0.0.1:9870",
        s3_api_url="http://127.0.0.1:9878",
        admin_token="s3cret",
        s3_emulator_pid=1,
        cache_pid=2,
    )
    conns = stack_connections(stack)
    lakecache = json.loads(conns["AIRFLOW_CONN_LAKECACHE_DEFAULT"])
    assert (lakecache["conn_type"], lakecache["host"], lakecache["port"]) == ("lakecache", "127.0.0.1", 9870)
    assert lakecache["password"] == "s3cret"
    assert lakecache["extra"]["s3_endpoint_url"] == lakecache["extra"]["glue_endpoint_url"] == "http://127.0.0.1:5000"
    assert json.loads(conns["AIRFLOW_CONN_SPARK_DEFAULT"])["host"] == "local[2]"


def test_the_callers_airflow_settings_and_cache_variables_are_dropped(tmp_path: Path) -> None:
    caller = {
        "PATH": "/usr/bin",
        "AIRFLOW__CORE__DAGS_FOLDER": "/home/me/airflow/dags",
        "AIRFLOW_CONN_LAKECACHE_DEFAULT": "lakecache://elsewhere",
        "CACHE_SERVER_HOST": "0.0.0.0",
        "HOME": "/home/me",
    }
    env = airflow_environment(
        tmp_path,
        dags_folder=tmp_path / "dags",
        plugins_folder=tmp_path / "plugins",
        connections={"AIRFLOW_CONN_X": "{}"},
        environ=caller,
    )
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(tmp_path / "dags")
    assert "AIRFLOW_CONN_LAKECACHE_DEFAULT" not in env and "CACHE_SERVER_HOST" not in env
    assert env["AIRFLOW_CONN_X"] == "{}" and env["HOME"] == "/home/me"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{tmp_path / 'airflow.db'}"
    assert env["PATH"].endswith("/usr/bin") and env["SPARK_LOCAL_IP"] == "127.0.0.1"
