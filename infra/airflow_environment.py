"""The environment every Airflow process of this project runs with: one home, the project's folders, its connections.

Airflow reads its settings from the environment, so what a subprocess inherits decides what it does. Every Airflow
process started here (the local UI's four components, ``make demo``'s ``airflow dags test``, the tests' DAG runs)
gets an environment built by ``airflow_environment``: whoever runs it keeps their ``PATH`` and the like, but their
``AIRFLOW__*`` settings, ``AIRFLOW_CONN_*``/``AIRFLOW_VAR_*`` and ``CACHE_*`` variables are dropped, so a run never
depends on the developer's ``~/airflow`` or shell.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from infra.s3_emulator import EMULATOR_CREDENTIALS
from infra.spark_submit import spark_submit_env
from infra.stack import StackInfo

DROPPED_PREFIXES = ("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "CACHE_")


def stack_connections(stack: StackInfo, *, nameservice: str | None = None) -> dict[str, str]:
    """The connections the project's DAGs use, as ``AIRFLOW_CONN_*`` variables, for a running local stack.

    ``lakecache_default`` is the stack's (first) cache worker (its admin token as password) with the emulator as the
    S3 and Glue endpoint of metastore sync; ``spark_default`` submits to ``local[2]``. With ``nameservice`` (a
    cluster), the connection's ``nameservice`` extra tells the DAGs to address the cache as
    ``webhdfs://<nameservice>``, Hadoop's HA nameservice whose settings Spark must then be given.
    """
    host, _, port = stack.webhdfs_url.removeprefix("http://").partition(":")
    lakecache = {
        "conn_type": "lakecache",
        "host": host,
        "port": int(port),
        "password": stack.admin_token,
        "extra": {
            "s3_endpoint_url": stack.s3_endpoint,
            "glue_endpoint_url": stack.s3_endpoint,
            "region": EMULATOR_CREDENTIALS["AWS_DEFAULT_REGION"],
            **({"nameservice": nameservice} if nameservice else {}),
        },
    }
    return {
        "AIRFLOW_CONN_LAKECACHE_DEFAULT": json.dumps(lakecache),
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
    }


def otel_metrics_env(endpoint: str, component: str, *, interval_ms: int = 10_000) -> dict[str, str]:
    """The variables that make an Airflow process push its metrics as OTLP/HTTP to ``endpoint`` (the metrics bridge
    of ``infra.monitoring.airflow_metrics``, which serves them to Prometheus) every ``interval_ms``, named
    ``airflow-<component>`` so that the bridge serves each component as a target of its own."""
    return {
        "AIRFLOW__METRICS__OTEL_ON": "True",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
        "OTEL_METRIC_EXPORT_INTERVAL": str(interval_ms),
        "OTEL_SERVICE_NAME": f"airflow-{component}",
    }


def airflow_environment(
    home: Path,
    *,
    dags_folder: Path,
    plugins_folder: Path,
    connections: Mapping[str, str] | None = None,
    environ: Mapping[str, str] = os.environ,
) -> dict[str, str]:
    """The environment of an Airflow process with ``AIRFLOW_HOME=home`` and a SQLite DB in it.

    The tasks run ``spark-submit`` on loopback (this Python's ``bin`` first on ``PATH``) and reach the S3 emulator
    with its fixed credentials; ``connections`` are ``AIRFLOW_CONN_*`` variables (``stack_connections``).
    """
    env = spark_submit_env({k: v for k, v in environ.items() if not k.startswith(DROPPED_PREFIXES)})
    bin_dir = str(Path(sys.executable).parent)
    env.update(EMULATOR_CREDENTIALS)
    env.update(connections or {})
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(dags_folder),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(plugins_folder),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        PATH=os.pathsep.join(p for p in (bin_dir, env.get("PATH", "")) if p),
        PYTHONUNBUFFERED="1",
    )
    return env
