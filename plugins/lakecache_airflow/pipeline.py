"""What the telemetry DAGs share: where the Spark jobs are, how spark-submit runs, where quality results go."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import spark_jobs

SPARK_JOBS = Path(spark_jobs.__file__).resolve().parent
WEBHDFS = (
    "{% if conn.lakecache_default.extra_dejson.get('nameservice') %}"
    "webhdfs://{{ conn.lakecache_default.extra_dejson.nameservice }}"
    "{% else %}webhdfs://{{ conn.lakecache_default.host }}:{{ conn.lakecache_default.port or 9870 }}{% endif %}"
)
"""The cache's WebHDFS root, rendered from the ``lakecache_default`` connection: the worker it names, or, when its
``nameservice`` extra is set (a cluster), ``webhdfs://<nameservice>``, Hadoop's HA nameservice listing every worker
(whose settings spark-submit finds in its ``spark-defaults.conf``: ``cachectl cluster spark-conf``)."""
DAY = "{{ params.day or macros.ds_add(ds, -1) }}"
"""The day a run processes: the day before its logical date (a 02:00 run handles the day that just ended)."""
SPARK_CONF = {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4", "spark.driver.memory": "1g"}


def spark_env() -> dict[str, str]:
    """Environment for spark-submit: this interpreter for Python workers, its bin folder first on PATH."""
    bin_dir = str(Path(sys.executable).parent)
    return {
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
    }


def quality_dir(dag_id: str, run_id: str) -> Path:
    """Where a run's data-quality results are kept: beside the run, under ``$AIRFLOW_HOME/quality``."""
    home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
    safe_run = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in run_id)
    return home / "quality" / dag_id / safe_run
