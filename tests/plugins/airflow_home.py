"""An Airflow home for tests: a migrated SQLite metadata DB, a dags folder, and DAG runs with ``airflow dags test``.

Every DAG run is a subprocess (``airflow dags test``, which calls ``dag.test()``: deferred tasks run their trigger
inline) with an environment built here, never inherited from whoever runs the tests, so a run does not depend on
what the test process imported first or on the developer's own ``~/airflow``.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.airflow_environment import airflow_environment
from infra.cache_process import CacheProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
PLUGINS_FOLDER = REPO_ROOT / "plugins"
AIRFLOW = [sys.executable, "-m", "airflow"]


def connection_json(cache: CacheProcess, **extra: Any) -> str:
    """A ``lakecache`` connection to ``cache`` in the JSON form of ``AIRFLOW_CONN_<ID>``."""
    conn: dict[str, Any] = {"conn_type": "lakecache", "host": cache.host, "port": cache.webhdfs_port}
    conn["password"] = cache.token
    if extra:
        conn["extra"] = extra
    return json.dumps(conn)


def connection_uri(cache: CacheProcess) -> str:
    """The same connection in URI form."""
    return f"lakecache://:{cache.token}@{cache.host}:{cache.webhdfs_port}"


@dataclass
class DagRun:
    """What ``airflow dags test`` left behind: the run's state, each task's state and return value, the log."""

    state: str
    task_states: dict[str, str]
    xcoms: dict[str, Any]
    output: str
    seconds: float

    def task_state(self, task_id: str) -> str:
        """The final state of ``task_id`` ("success", "failed", ...)."""
        assert task_id in self.task_states, f"no task {task_id!r} in {sorted(self.task_states)}"
        return self.task_states[task_id]

    def xcom(self, task_id: str) -> Any:
        """The return value ``task_id`` pushed to XCom."""
        assert task_id in self.xcoms, f"{task_id} pushed no return value; the log ends:\n{self.tail()}"
        return self.xcoms[task_id]

    def tail(self, lines: int = 60) -> str:
        """The end of the run's log, for assertion messages."""
        return "\n".join(self.output.splitlines()[-lines:])


@dataclass
class AirflowHome:
    """``AIRFLOW_HOME`` with a migrated SQLite DB; ``run_dag`` writes a DAG file and runs it."""

    path: Path
    plugins_folder: Path = field(init=False)

    def __post_init__(self) -> None:
        self.dags_folder.mkdir(parents=True, exist_ok=True)
        # DAG runs get an empty plugins folder: loading plugins/ would import every module under it (the data
        # quality suites import great_expectations: seconds per run) and our operators need no plugin.
        self.plugins_folder = self.path / "plugins"
        self.plugins_folder.mkdir(exist_ok=True)

    @property
    def dags_folder(self) -> Path:
        """Where DAG files go: ``dag.test()`` serializes the DAG from this folder first."""
        return self.path / "dags"

    def env(self, extra: Mapping[str, str] | None = None, *, plugins_folder: Path | None = None) -> dict[str, str]:
        """The environment of an Airflow subprocess: this home, no examples, and ``extra`` (connections...)."""
        env = airflow_environment(
            self.path, dags_folder=self.dags_folder, plugins_folder=plugins_folder or self.plugins_folder
        )
        env.update(extra or {})
        return env

    def airflow(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """Run the ``airflow`` CLI in this home; stdout and stderr together in ``stdout``."""
        return subprocess.run(
            [*AIRFLOW, *args],
            env=dict(env) if env is not None else self.env(),
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )

    def migrate(self) -> None:
        """``airflow db migrate``: create the SQLite metadata DB."""
        result = self.airflow("db", "migrate")
        assert result.returncode == 0, result.stdout[-4000:]

    def run_dag(
        self,
        dag_id: str,
        source: str,
        *,
        logical_date: str = "2026-11-23",
        env: Mapping[str, str] | None = None,
        conf: Mapping[str, Any] | None = None,
    ) -> DagRun:
        """Write ``source`` as ``<dag_id>.py`` in the dags folder and run it once with ``airflow dags test``."""
        (self.dags_folder / f"{dag_id}.py").write_text(textwrap.dedent(source))
        started = time.monotonic()
        args = ["dags", "test", dag_id, logical_date, *(["--conf", json.dumps(conf)] if conf else [])]
        result = self.airflow(*args, env=self.env(env))
        seconds = time.monotonic() - started
        with sqlite3.connect(self.path / "airflow.db") as db:
            row = db.execute(
                "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
            ).fetchone()
            assert row is not None, f"no run of {dag_id}; the log ends:\n{result.stdout[-4000:]}"
            run_id, state = row
            task_states = dict(
                db.execute("SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", (dag_id, run_id))
            )
            xcoms = {
                task_id: json.loads(value)
                for task_id, value in db.execute(
                    "SELECT task_id, value FROM xcom WHERE dag_id = ? AND run_id = ? AND key = 'return_value'",
                    (dag_id, run_id),
                )
            }
        return DagRun(state=state, task_states=task_states, xcoms=xcoms, output=result.stdout, seconds=seconds)
