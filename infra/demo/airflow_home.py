"""A local ``AIRFLOW_HOME`` wired to the local stack, ``airflow dags test`` in it, and what a run left behind.

``AirflowHome.test_dag`` runs one DAG run in a subprocess and reads back from the SQLite metadata DB its state,
each task's state, duration, start and end, and the tasks' return values. ``task_log`` and ``failure_excerpt`` find
what a task logged in the run's log, to explain a failure in a few lines.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from infra.airflow_environment import airflow_environment, stack_connections
from infra.cache_process import REPO_ROOT
from infra.demo import DemoError
from infra.demo.cluster import ClusterLayout
from infra.service_process import log_tail
from infra.stack import LocalStack

DAGS_FOLDER = REPO_ROOT / "dags"
DAG_TIMEOUT = 3600.0
MIGRATE_TIMEOUT = 300.0
AIRFLOW = (sys.executable, "-m", "airflow")


@dataclass(frozen=True)
class DagRunRecord:
    """What one ``airflow dags test`` left in the metadata DB and its log."""

    run_id: str
    state: str
    task_states: Mapping[str, str]
    task_seconds: Mapping[str, float]
    task_windows: Mapping[str, tuple[float, float]]
    """Each task's start and end, in seconds since the epoch (tasks that never ran have none)."""
    xcoms: Mapping[str, Any]
    log_path: Path
    wall_seconds: float

    @property
    def failed_tasks(self) -> list[str]:
        """Tasks that did not succeed or get skipped by a branch, in the order they started."""
        return [t for t, s in self.task_states.items() if s not in ("success", "skipped")]


class AirflowHome:
    """A local ``AIRFLOW_HOME``: SQLite metadata DB, the repository's ``dags/``, connections to a running stack.

    Airflow runs in subprocesses whose environment is built here, never inherited (``AIRFLOW__*``, connections and
    ``CACHE_*`` of whoever runs the demo are dropped), so the demo does not depend on the developer's ``~/airflow``.
    The plugins folder is empty: the DAGs import the provider package themselves, and loading every module under
    ``plugins/`` would import Great Expectations into each task for nothing.

    On a cluster (``cluster``), the connection to the cache names the stack's first worker for the admin calls and
    the cluster's nameservice for Spark, and spark-submit finds Hadoop's HA settings for that nameservice in the
    ``spark-defaults.conf`` of ``spark_conf_dir`` (``SPARK_CONF_DIR``).
    """

    def __init__(self, path: Path, stack: LocalStack, *, cluster: ClusterLayout | None = None) -> None:
        self.path = path.resolve()
        self.stack = stack
        self.cluster = cluster
        self.plugins_folder = self.path / "plugins"
        self.spark_conf_dir = self.path / "spark-conf"

    @property
    def db_path(self) -> Path:
        """The SQLite metadata DB."""
        return self.path / "airflow.db"

    def env(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The environment of an Airflow subprocess: this home and the stack's connections (``airflow_environment``),
        and on a cluster the folder of its ``spark-defaults.conf``."""
        nameservice = self.cluster.nameservice if self.cluster is not None else None
        env = airflow_environment(
            self.path,
            dags_folder=DAGS_FOLDER,
            plugins_folder=self.plugins_folder,
            connections=stack_connections(self.stack.info, nameservice=nameservice),
            environ=environ,
        )
        if self.cluster is not None:
            env["SPARK_CONF_DIR"] = str(self.spark_conf_dir)
        return env

    def airflow(self, args: Sequence[str], log_path: Path, timeout: float) -> int:
        """Run ``airflow <args>`` in this home, both streams to ``log_path``; returns the exit code.

        Raises ``DemoError`` if it cannot start or does not finish within ``timeout`` seconds.
        """
        argv = [*AIRFLOW, *args]
        try:
            with log_path.open("wb") as log:
                done = subprocess.run(
                    argv,
                    cwd=REPO_ROOT,
                    env=self.env(os.environ),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=False,
                )
        except subprocess.TimeoutExpired as exc:
            raise DemoError(f"`airflow {' '.join(args)}` did not finish in {timeout:.0f}s; see {log_path}") from exc
        except OSError as exc:
            raise DemoError(f"cannot run {' '.join(argv)}: {exc}") from exc
        return done.returncode

    def migrate(self) -> None:
        """``airflow db migrate``: create the SQLite metadata DB (and, on a cluster, write Spark's HA settings).
        Raises ``DemoError`` (with the log's tail)."""
        self.plugins_folder.mkdir(parents=True, exist_ok=True)
        if self.cluster is not None:
            self.cluster.write_spark_conf(self.spark_conf_dir)
        log_path = self.path / "migrate.log"
        code = self.airflow(["db", "migrate"], log_path, MIGRATE_TIMEOUT)
        if code != 0:
            raise DemoError(
                f"`airflow db migrate` exited with code {code}; last lines of {log_path}:\n" + log_tail(log_path, 25)
            )

    def test_dag(self, dag_id: str, logical_date: date, log_path: Path) -> DagRunRecord:
        """Run ``airflow dags test <dag_id> <logical_date>`` and read back the run it made.

        A failed run is returned, not raised (its ``state`` says so); raises ``DemoError`` if Airflow left no run.
        """
        started = time.monotonic()
        code = self.airflow(["dags", "test", dag_id, logical_date.isoformat()], log_path, DAG_TIMEOUT)
        wall = time.monotonic() - started
        with sqlite3.connect(self.db_path) as db:
            row = db.execute(
                "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
            ).fetchone()
            if row is None:
                raise DemoError(
                    f"`airflow dags test {dag_id}` exited with code {code} and made no run; last lines of {log_path}:\n"
                    + log_tail(log_path, 25)
                )
            run_id, state = row
            tasks = db.execute(
                "SELECT task_id, state, duration, start_date, end_date FROM task_instance "
                "WHERE dag_id = ? AND run_id = ? "
                "ORDER BY start_date IS NULL, start_date",
                (dag_id, run_id),
            ).fetchall()
            xcoms = {
                task_id: json.loads(value)
                for task_id, value in db.execute(
                    "SELECT task_id, value FROM xcom WHERE dag_id = ? AND run_id = ? AND key = 'return_value'",
                    (dag_id, run_id),
                )
            }
        return DagRunRecord(
            run_id=run_id,
            state=str(state),
            task_states={task: str(task_state) for task, task_state, *_ in tasks},
            task_seconds={task: float(seconds or 0.0) for task, _, seconds, *_ in tasks},
            task_windows={task: (_epoch(start), _epoch(end)) for task, _, _, start, end in tasks if start and end},
            xcoms=xcoms,
            log_path=log_path,
            wall_seconds=wall,
        )


def _epoch(stamp: str) -> float:
    # Airflow keeps UTC in SQLite as naive "YYYY-MM-DD HH:MM:SS.ffffff" text.
    moment = datetime.fromisoformat(stamp)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def task_log(log_text: str, task_id: str) -> list[str]:
    """The lines ``airflow dags test`` logged while it ran ``task_id`` (empty if the task never started)."""
    lines = log_text.splitlines()
    start = next((i for i, line in enumerate(lines) if f"[DAG TEST] starting task_id={task_id} " in line), None)
    if start is None:
        return []
    end = next((i for i in range(start, len(lines)) if f"[DAG TEST] end task task_id={task_id} " in lines[i]), None)
    return lines[start : (end if end is not None else len(lines))]


_LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z \[(\w+) *\] ")
_LOG_SUFFIX = re.compile(r" +\[[\w.]+\](?: \w+=\S*)+$")


def failure_excerpt(lines: Sequence[str], context: int = 12) -> list[str]:
    """What explains a failed task, from its log lines: the last ``context`` lines it logged before its traceback,
    then the exception the traceback ends with (without the stack frames). Timestamps and logger names are cut."""
    start = next((i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")), None)
    if start is None:
        return [_compact(line) for line in lines[-context:]]
    end = next((i for i in range(start + 1, len(lines)) if _LOG_PREFIX.match(lines[i])), len(lines))
    # The exception follows the last stack frame, whose lines are indented; it may span lines (a quality report).
    last_frame = max((i for i in range(start, end) if lines[i].startswith("  ")), default=start)
    before = [line for line in lines[:start] if "[DAG TEST]" not in line][-context:]
    return [_compact(line) for line in before] + list(lines[last_frame + 1 : end])


def _compact(line: str) -> str:
    return _LOG_SUFFIX.sub("", _LOG_PREFIX.sub(lambda m: f"{m[1]}: ", line))
