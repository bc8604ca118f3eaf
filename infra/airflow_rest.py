"""A DAG run through a running Airflow's REST API (``/api/v2``), as a user would trigger one from the UI.

``AirflowRest`` logs in as the simple auth manager's user (``POST /auth/token``), waits until the DAG processor has
parsed a DAG, unpauses it, triggers a run with a logical date and ``conf``, and waits until the scheduler has
finished it. ``python -m infra.airflow up`` prints the URL and the login; ``AirflowInfo`` records them.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from typing import Any

# Airflow is on loopback: a proxy configured in the environment must not sit between us and it.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
FINISHED = ("success", "failed")


class AirflowRestError(RuntimeError):
    """Airflow refused a request or did not answer; the message says which and what it said."""


class AirflowRest:
    """The REST API of the Airflow at ``url``, logged in as ``username``."""

    def __init__(self, url: str, username: str, password: str, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.username = username
        self.password = password
        self.timeout = timeout
        self._token = ""

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None, *, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json"}
        if auth:
            if not self._token:
                self._token = self._login()
            headers["Authorization"] = f"Bearer {self._token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with _DIRECT.open(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            said = exc.read().decode(errors="replace")[:500]
            raise AirflowRestError(f"{method} {path}: Airflow answered {exc.code}: {said}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise AirflowRestError(f"{method} {path}: Airflow at {self.url} does not answer: {exc}") from None

    def _login(self) -> str:
        answer = self._call("POST", "/auth/token", {"username": self.username, "password": self.password}, auth=False)
        return str(answer["access_token"])

    def wait_for_dag(self, dag_id: str, timeout: float = 180.0) -> dict[str, Any]:
        """Wait until the DAG processor has parsed ``dag_id``; the DAG as the API describes it (its
        ``next_dagrun_logical_date`` included). Raises ``AirflowRestError`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                answer: dict[str, Any] = self._call("GET", f"/api/v2/dags/{urllib.parse.quote(dag_id)}")
                return answer
            except AirflowRestError as exc:
                if " 404: " not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(2)

    def unpause(self, dag_id: str) -> None:
        """Unpause ``dag_id`` (new DAGs are paused, and a paused DAG's runs wait)."""
        self._call("PATCH", f"/api/v2/dags/{urllib.parse.quote(dag_id)}", {"is_paused": False})

    def trigger(self, dag_id: str, logical_date: datetime, conf: Mapping[str, Any] | None = None) -> str:
        """Trigger a run of ``dag_id`` for ``logical_date`` (timezone-aware) with ``conf``; its run id."""
        body = {"logical_date": logical_date.isoformat(), "conf": dict(conf or {})}
        answer = self._call("POST", f"/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns", body)
        return str(answer["dag_run_id"])

    def wait_for_first_run(self, dag_id: str, timeout: float = 180.0) -> str:
        """Wait until ``dag_id`` has a run (the scheduler's, once it is unpaused); its run id. Raises
        ``AirflowRestError`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not (runs := self._call("GET", f"/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns")["dag_runs"]):
            if time.monotonic() > deadline:
                raise AirflowRestError(f"{dag_id} has no run after {timeout:.0f}s")
            time.sleep(2)
        return str(runs[0]["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        """The run's state: ``queued``, ``running``, ``success`` or ``failed``."""
        path = f"/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns/{urllib.parse.quote(run_id, safe='')}"
        return str(self._call("GET", path)["state"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        """Each task of the run and its state (None for one not yet scheduled is ``none``)."""
        path = f"/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances"
        answer = self._call("GET", path)
        return {str(t["task_id"]): str(t["state"] or "none") for t in answer["task_instances"]}

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        """Wait until the run has finished; its final state. Raises ``AirflowRestError`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while (state := self.run_state(dag_id, run_id)) not in FINISHED:
            if time.monotonic() > deadline:
                raise AirflowRestError(f"{dag_id} run {run_id} is still {state} after {timeout:.0f}s")
            time.sleep(5)
        return state
