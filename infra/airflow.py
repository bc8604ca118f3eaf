"""Airflow locally, as users run it: API server, scheduler, DAG processor and triggerer, wired to the local stack.

``make airflow`` (``python -m infra.airflow run``) starts the local stack (S3 emulator and a cache worker, see
``infra.stack``) unless one is already up, then Airflow 3's four components on loopback, with:

- the repository's ``dags/`` and ``plugins/`` (so the "Cache" status page is in the UI's navigation);
- the ``lakecache_default`` connection pointing at the stack's cache worker (its admin token as the password, the
  emulator as S3 and Glue) and ``spark_default`` as ``local[2]``, both as ``AIRFLOW_CONN_*`` variables;
- a SQLite metadata DB and the LocalExecutor, in ``.local/airflow/home``;
- the simple auth manager with one user, ``admin``, whose password is generated on first start and kept in
  ``.local/airflow/home/simple_auth_manager_passwords.json.generated``;
- ``[core] execution_api_server_url`` set to the API server's real port: without it task processes talk to
  ``localhost:8080``, and a triggered run hangs after "Pre Execute" with nothing in its log to say why;
- one JWT secret shared by every component, or the API server would refuse the tokens the scheduler signs for tasks.

It prints the URL and how to log in, and on Ctrl-C stops everything it started. ``python -m infra.airflow up``
does the same detached (``down`` stops it, ``status`` reports), recording pids and URLs in
``.local/airflow/airflow.json``.

New DAGs are paused, as in any Airflow: tick "Unpause on trigger" in the trigger form (or unpause the DAG) for a
triggered run to start.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from infra.airflow_environment import airflow_environment, otel_metrics_env, stack_connections
from infra.cache_process import REPO_ROOT
from infra.monitoring.record import DEFAULT_STATE_DIR as MONITORING_STATE_DIR
from infra.monitoring.record import MonitoringInfo
from infra.ports import LOOPBACK, free_port
from infra.service_process import (
    ManagedService,
    ServiceProcess,
    ServiceStartError,
    is_running,
    log_tail,
    stop_pid,
)
from infra.stack import DEFAULT_STATE_DIR as STACK_STATE_DIR
from infra.stack import LocalStack, StackInfo
from infra.state_record import StateRecord

DEFAULT_STATE_DIR = REPO_ROOT / ".local" / "airflow"
USERNAME = "admin"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
"""Airflow's long-running components, in start order; each is ``airflow <component>``."""
HEALTH_KEYS = {"scheduler": "scheduler", "dag-processor": "dag_processor", "triggerer": "triggerer"}
"""How ``/api/v2/monitor/health`` names each component that heartbeats."""
START_TIMEOUT = 180.0
# Probes go straight to loopback: a proxy configured in the environment must not sit between us and our children.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def process_marker(component: str) -> str:
    """What a component's command line contains, before and after Airflow retitles it (``airflow api_server --``)."""
    return f"airflow {component.split('-')[0]}"


@dataclass(frozen=True)
class AirflowInfo(StateRecord):
    """What ``airflow.json`` records of a running local Airflow: its URL, login, pids, and the stack it uses."""

    FILE: ClassVar[str] = "airflow.json"

    state_dir: str
    url: str
    username: str
    password: str
    pids: dict[str, int]
    stack_state_dir: str
    started_stack: bool

    @property
    def running(self) -> dict[str, bool]:
        """Whether each recorded component still runs."""
        return {name: is_running(pid, process_marker(name)) for name, pid in self.pids.items()}


def health(url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """The API server's ``/api/v2/monitor/health`` answer, or None if it does not answer."""
    try:
        with _DIRECT.open(f"{url}/api/v2/monitor/health", timeout=timeout) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except (urllib.error.URLError, OSError, ValueError):
        return None


def component_healthy(answer: Mapping[str, Any] | None, component: str) -> bool:
    """True if the health answer reports ``component`` (an ``airflow`` subcommand) as healthy."""
    if answer is None:
        return False
    key = HEALTH_KEYS.get(component)
    if key is None:  # the API server itself: it answered
        return True
    return bool((answer.get(key) or {}).get("status") == "healthy")


class LocalAirflow(ManagedService):
    """Airflow's API server, scheduler, DAG processor and triggerer in ``state_dir``, wired to ``stack``.

    ``detach`` lets the components outlive this process (``python -m infra.airflow up``); attached, they stop with it.
    The metadata DB, logs and the password file persist in ``state_dir/home`` across restarts.
    """

    def __init__(
        self,
        state_dir: Path,
        stack: StackInfo,
        *,
        port: int | None = None,
        dags_folder: Path = REPO_ROOT / "dags",
        plugins_folder: Path = REPO_ROOT / "plugins",
        extra_env: Mapping[str, str] | None = None,
        metrics_endpoint: str = "",
        detach: bool = False,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.home = self.state_dir / "home"
        self.stack = stack
        self.port = port or free_port()
        self.dags_folder = dags_folder
        self.plugins_folder = plugins_folder
        self.extra_env = dict(extra_env or {})
        self.metrics_endpoint = metrics_endpoint
        self.detach = detach
        self._processes: dict[str, ServiceProcess] = {}

    @property
    def url(self) -> str:
        """The UI and REST API, e.g. ``http://127.0.0.1:28080``."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def password_file(self) -> Path:
        """The simple auth manager's password file."""
        return self.home / "simple_auth_manager_passwords.json.generated"

    @property
    def password(self) -> str:
        """The ``admin`` user's password (generated on first start)."""
        return str(json.loads(self.password_file.read_text())[USERNAME])

    @property
    def pids(self) -> dict[str, int]:
        """The pid of each running component."""
        return {name: p.pid for name, p in self._processes.items() if p.pid is not None and p.running}

    def env(self, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
        """The environment of every Airflow process: this home, the stack's connections, the servers' settings."""
        env = airflow_environment(
            self.home,
            dags_folder=self.dags_folder,
            plugins_folder=self.plugins_folder,
            connections=stack_connections(self.stack),
            environ=environ,
        )
        env.update(
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{USERNAME}:admin",
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{self.url}/execution/",
            AIRFLOW__API__BASE_URL=self.url,
            AIRFLOW__API__HOST=LOOPBACK,
            AIRFLOW__API__PORT=str(self.port),
            AIRFLOW__API__SECRET_KEY=self._secret("secret_key"),
            AIRFLOW__API_AUTH__JWT_SECRET=self._secret("jwt_secret"),
            # New DAG files show up within seconds, not the default five minutes.
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="10",
            AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR="True",
        )
        env.update(self.extra_env)
        return env

    def _secret(self, name: str) -> str:
        """A secret generated once per home and kept in it (readable by the owner only)."""
        path = self.home / f".{name}"
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(32))
        return path.read_text().strip()

    def _airflow(self, name: str, args: Sequence[str]) -> ServiceProcess:
        env = self.env()
        if self.metrics_endpoint:  # each component pushes its metrics under its own name
            env.update(otel_metrics_env(self.metrics_endpoint, name))
        return ServiceProcess(
            f"airflow {name}",
            [sys.executable, "-m", "airflow", *args],
            log_path=self.state_dir / "logs" / f"{name}.log",
            env=env,
            cwd=REPO_ROOT,
            detach=self.detach,
        )

    def migrate(self) -> None:
        """``airflow db migrate``; raises ``ServiceStartError`` with the log's tail if it fails."""
        log_path = self.state_dir / "logs" / "db-migrate.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            done = subprocess.run(
                [sys.executable, "-m", "airflow", "db", "migrate"],
                env=self.env(),
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=START_TIMEOUT,
                check=False,
            )
        if done.returncode != 0:
            raise ServiceStartError(
                f"airflow db migrate exited with code {done.returncode}; last lines of {log_path}:\n"
                + log_tail(log_path)
            )

    def start(self) -> None:
        """Migrate the DB, write the login, start the four components and wait until each reports healthy.

        Raises ``ServiceStartError`` (with the failing component's log) if one exits or is not healthy in time;
        whatever started is stopped again.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        if not self.password_file.exists():
            self.password_file.touch(mode=0o600)
            self.password_file.write_text(json.dumps({USERNAME: secrets.token_urlsafe(12)}) + "\n")
        self.migrate()
        try:
            for name in COMPONENTS:
                process = self._airflow(name, [name])
                self._processes[name] = process
                process.start(self._healthy_check(name), START_TIMEOUT)
        except BaseException:
            self.stop()
            raise

    def _healthy_check(self, component: str) -> Callable[[], bool]:
        return lambda: component_healthy(health(self.url), component)

    def stop(self) -> None:
        """Stop the components, last started first (each with the processes it forked)."""
        for name in reversed(list(self._processes)):
            process = self._processes.pop(name)
            if process.pid is not None and self.detach:
                _stop_group(process.pid)
            process.stop(timeout=20)

    @property
    def all_running(self) -> bool:
        """True while every started component is still alive."""
        return bool(self._processes) and all(p.running for p in self._processes.values())

    def info(self, *, started_stack: bool) -> AirflowInfo:
        """The record written to ``airflow.json``; ``started_stack`` says whether ``down`` must stop the stack too."""
        return AirflowInfo(
            state_dir=str(self.state_dir),
            url=self.url,
            username=USERNAME,
            password=self.password,
            pids=self.pids,
            stack_state_dir=self.stack.state_dir,
            started_stack=started_stack,
        )


def _stop_group(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM a detached component's whole session (the API server's workers, the executor's), then SIGKILL."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, signum)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


# --- command line --------------------------------------------------------------------------------------------


def _stack(stack_dir: Path) -> tuple[StackInfo, bool]:
    """The running stack in ``stack_dir``, or a new detached one; and whether it was started here."""
    existing = StackInfo.read(stack_dir)
    if existing is not None and existing.processes_running:
        return existing, False
    return LocalStack(stack_dir, detach=True).start(), True


def _stop_stack(stack_dir: Path) -> None:
    from infra.stack import main as stack_main

    stack_main(["down", "--state-dir", str(stack_dir)])


def _banner(info: AirflowInfo) -> str:
    return (
        f"Airflow is up at {info.url}\n"
        f"  log in as {info.username} / {info.password}\n"
        f'  the cache\'s status page: {info.url}/lakecache/ (navigation entry "Cache")\n'
        f"  logs: {Path(info.state_dir) / 'logs'}\n"
        '  new DAGs are paused: tick "Unpause on trigger" in a DAG\'s trigger form, or unpause it'
    )


def _start(state_dir: Path, stack_dir: Path, *, detach: bool) -> tuple[LocalAirflow, AirflowInfo]:
    recorded = AirflowInfo.read(state_dir)
    if recorded is not None and any(recorded.running.values()):
        raise RuntimeError(f"Airflow already runs from {state_dir}; stop it with `python -m infra.airflow down`")
    stack, started_stack = _stack(stack_dir)
    # With the monitoring up (python -m infra.monitoring up), Airflow's metrics go to its bridge.
    monitoring = MonitoringInfo.read(MONITORING_STATE_DIR)
    endpoint = monitoring.airflow_metrics_endpoint if monitoring is not None and monitoring.running else ""
    airflow = LocalAirflow(state_dir, stack, metrics_endpoint=endpoint, detach=detach)
    try:
        airflow.start()
    except BaseException:
        if started_stack:
            _stop_stack(stack_dir)
        raise
    info = airflow.info(started_stack=started_stack)
    info.write(state_dir)
    return airflow, info


def _run(state_dir: Path, stack_dir: Path) -> int:
    airflow, info = _start(state_dir, stack_dir, detach=False)
    print(_banner(info))
    print("Press Ctrl-C to stop Airflow" + (" and the stack." if info.started_stack else "."), flush=True)
    try:
        while airflow.all_running:
            time.sleep(1)
        print("an Airflow component exited; see its log in", Path(info.state_dir) / "logs", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        airflow.stop()
        AirflowInfo.remove(state_dir)
        if info.started_stack:
            _stop_stack(stack_dir)


def _up(state_dir: Path, stack_dir: Path) -> int:
    _, info = _start(state_dir, stack_dir, detach=True)
    print(_banner(info))
    print("Stop it with `python -m infra.airflow down`.")
    return 0


def _down(state_dir: Path, stack_dir: Path) -> int:
    info = AirflowInfo.read(state_dir)
    if info is None:
        print(f"no Airflow recorded in {state_dir}", file=sys.stderr)
        return 0
    for name in reversed(COMPONENTS):
        pid = info.pids.get(name)
        if pid is not None and is_running(pid, process_marker(name)):
            _stop_group(pid)
            stop_pid(pid, process_marker(name))
            print(f"airflow {name}: stopped")
    AirflowInfo.remove(state_dir)
    if info.started_stack:
        _stop_stack(Path(info.stack_state_dir))
    return 0


def _status(state_dir: Path, stack_dir: Path) -> int:
    info = AirflowInfo.read(state_dir)
    if info is None:
        print(json.dumps({"up": False, "state_dir": str(state_dir)}, indent=2))
        return 1
    answer = health(info.url)
    components = {name: running and component_healthy(answer, name) for name, running in info.running.items()}
    up = bool(components) and all(components.values())
    report = {"up": up, "url": info.url, "username": info.username, "healthy": components}
    print(json.dumps(report, indent=2))
    return 0 if up else 1


def main(argv: list[str] | None = None) -> int:
    """``python -m infra.airflow run|up|down|status``; status exits 1 unless every component is healthy."""
    parser = argparse.ArgumentParser(prog="python -m infra.airflow", description="Run Airflow locally on the stack.")
    parser.add_argument(
        "command",
        choices=("run", "up", "down", "status"),
        help="run: in the foreground until Ctrl-C; up: detached; down: stop what up started; status",
    )
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="default: %(default)s")
    parser.add_argument("--stack-dir", type=Path, default=STACK_STATE_DIR, help="default: %(default)s")
    args = parser.parse_args(argv)
    command = {"run": _run, "up": _up, "down": _down, "status": _status}[args.command]
    try:
        return command(args.state_dir.resolve(), args.stack_dir.resolve())
    except (ServiceStartError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
