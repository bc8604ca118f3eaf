"""``spark-submit`` of a PySpark script on ``local[2]``, with this virtualenv's Spark and Python, loopback only."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path


def spark_submit_path() -> Path:
    """The ``spark-submit`` installed beside this Python (pyspark's wheel puts it in the venv's ``bin``)."""
    return Path(sys.executable).parent / "spark-submit"


def spark_submit_argv(
    job: Path, *args: str, master: str = "local[2]", conf: Mapping[str, str] | None = None
) -> list[str]:
    """The command line that runs PySpark script ``job`` with ``args`` on ``master`` (``local[2, 4]`` retries a
    failed task as a cluster would), UI off, with ``conf`` as more ``--conf`` settings."""
    options = ["--master", master, "--driver-memory", "1g", "--conf", "spark.ui.enabled=false"]
    for key, value in (conf or {}).items():
        options += ["--conf", f"{key}={value}"]
    return [str(spark_submit_path()), *options, str(job), *args]


def spark_submit_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` plus what a local ``spark-submit`` needs: loopback only, and this Python for driver and workers."""
    no_proxy = ",".join(p for p in (environ.get("NO_PROXY", ""), "127.0.0.1,localhost") if p)
    return {
        **environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "NO_PROXY": no_proxy,
        "no_proxy": no_proxy,
    }
