"""A Spark standalone cluster run as local processes, and ``SparkStandaloneScaler`` that resizes it.

``SparkStandaloneCluster`` starts a master and workers from the pyspark install (``SPARK_HOME`` is the pyspark
package folder) with ``spark-class org.apache.spark.deploy.master.Master`` / ``...worker.Worker``, each on free
loopback ports, each worker with its own work dir. Its state (pids, ports) lives in ``state_dir/cluster.json``, so
another process (``clusterctl``, an Airflow task) can ``attach`` to the same cluster and scale it; a file lock keeps
two of them from scaling at once.

Scale-in is Spark's decommissioning, which Spark 4.1 offers in two ways: the master's ``POST /workers/kill/?host=``
(it decommissions every worker of a *host*, and all of ours share 127.0.0.1) or the worker's decommission signal
(``spark.worker.decommission.signal``, SIGPWR by default), which targets one worker. So a worker leaving gets
SIGPWR: the master marks it DECOMMISSIONED and schedules nothing more on it, the drivers decommission its executors,
which finish their running tasks (and migrate their blocks), then exit. Once its executors are gone the worker is
stopped (SIGTERM); a worker never exits on its own after decommissioning.

Applications take part: ``spark.decommission.enabled`` must be on in the application too, or its executors ignore
the request and the worker is stopped under them at the timeout. The cluster writes a ``spark-defaults.conf`` that
says so; submit with ``submit_env()`` (``SPARK_CONF_DIR``) to use it.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from lakecache_airflow.scaling.base import (
    BackendUnavailableError,
    ClusterNotFoundError,
    ClusterState,
    DecommissionTimeoutError,
    Node,
    ScaleResult,
    ScalingError,
    check_target,
)
from lakecache_airflow.scaling.cache_nodes import NodeCaches
from lakecache_airflow.scaling.demand import get_json

LOOPBACK = "127.0.0.1"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
STATE_FILE = "cluster.json"
#: What every process of the cluster and every application submitted with ``submit_env()`` runs with.
DEFAULT_CONF: Mapping[str, str] = {
    "spark.decommission.enabled": "true",
    "spark.worker.decommission.signal": "PWR",
    "spark.executor.decommission.signal": "PWR",
    # Executors decommissioned before they registered with their driver would otherwise be forgotten by it
    # (the default keeps 0), and keep running tasks on a worker that is leaving.
    "spark.scheduler.maxRetainedUnknownDecommissionExecutors": "64",
    # Hand cached and shuffle blocks to the executors that stay, so later stages need not recompute them.
    "spark.storage.decommission.enabled": "true",
    "spark.storage.decommission.rddBlocks.enabled": "true",
    "spark.storage.decommission.shuffleBlocks.enabled": "true",
    # Prometheus text at the master's /metrics/master/prometheus, each worker's and driver's /metrics/prometheus
    # (Spark's own servlet: no exporter, no JMX agent); executors' at the driver's /metrics/executors/prometheus.
    "spark.metrics.conf.*.sink.prometheusServlet.class": "org.apache.spark.metrics.sink.PrometheusServlet",
    "spark.metrics.conf.*.sink.prometheusServlet.path": "/metrics/prometheus",
    "spark.metrics.conf.master.sink.prometheusServlet.path": "/metrics/master/prometheus",
    "spark.metrics.conf.applications.sink.prometheusServlet.path": "/metrics/applications/prometheus",
    "spark.ui.prometheus.enabled": "true",
}


def spark_home() -> Path:
    """The pyspark package folder: it holds ``bin/spark-class`` and ``jars/`` (found without importing pyspark)."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise ScalingError("pyspark is not installed: it provides spark-class and the Spark jars")
    return Path(spec.origin).parent


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct ports nothing listens on now (all held until every one is chosen)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


@dataclass
class DaemonRecord:
    """One process of the cluster, as written to the state file."""

    name: str
    pid: int
    port: int
    webui_port: int
    log: str
    work_dir: str = ""
    started_at: float = field(default_factory=time.time)
    host: str = ""  # a worker's own address; empty: the cluster's host

    @property
    def marker(self) -> str:
        """A string in this process's command line only: guards against a pid recycled since it was recorded."""
        return self.work_dir or f"--port {self.port} --webui-port {self.webui_port}"


@dataclass
class ClusterRecord:
    """The state file: the master, the workers, and how to start more."""

    host: str
    worker_cores: int
    worker_memory: str
    daemon_memory: str
    detach: bool
    master: DaemonRecord | None = None
    workers: list[DaemonRecord] = field(default_factory=list)
    next_worker: int = 1
    last_change: float | None = None
    worker_hosts: list[str] = field(default_factory=list)

    def host_of(self, daemon: DaemonRecord) -> str:
        """The address ``daemon`` listens on."""
        return daemon.host or self.host

    def node(self, worker: DaemonRecord) -> Node:
        """``worker`` as a compute node: its name and its address (where its node's cache worker is found)."""
        return Node(worker.name, (self.host_of(worker),))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClusterRecord:
        """Read the state file's JSON."""
        master = data.get("master")
        return cls(
            host=data["host"],
            worker_cores=int(data["worker_cores"]),
            worker_memory=str(data["worker_memory"]),
            daemon_memory=str(data["daemon_memory"]),
            detach=bool(data["detach"]),
            master=DaemonRecord(**master) if master else None,
            workers=[DaemonRecord(**w) for w in data.get("workers", [])],
            next_worker=int(data.get("next_worker", 1)),
            last_change=data.get("last_change"),
            worker_hosts=[str(h) for h in data.get("worker_hosts", [])],
        )


@dataclass(frozen=True)
class Resize:
    """What ``resize`` did: the ALIVE workers ``before``, the workers ``added`` and ``removed``, and notes."""

    before: int
    added: tuple[DaemonRecord, ...] = ()
    removed: tuple[DaemonRecord, ...] = ()
    notes: tuple[str, ...] = ()


class SparkStandaloneCluster:
    """A master and workers as local processes, their state in ``state_dir``.

    :param worker_cores: cores each worker offers (1 keeps a test cluster small).
    :param worker_memory: memory each worker offers; applications get it as ``spark.executor.memory`` by default.
    :param daemon_memory: heap of the master and worker JVMs (``SPARK_DAEMON_MEMORY``).
    :param detach: start processes in their own session, so that they outlive this process (a cluster started
        from a terminal). Processes started by a process that ``attach``-ed always are.
    :param worker_hosts: addresses for the workers, one each, as if each worker were a node of its own (locally:
        loopback addresses such as 127.0.1.1, 127.0.1.2...; a cache worker of the node listens on the same one). A
        new worker takes the first one no running worker holds, else ``host``.
    :param decommission_timeout: seconds a decommissioned worker's executors get to finish before the worker is
        stopped anyway.
    :param start_timeout: seconds a process gets to answer (JVMs start slowly on a busy machine).
    """

    def __init__(
        self,
        state_dir: str | Path,
        *,
        host: str = LOOPBACK,
        worker_cores: int = 1,
        worker_memory: str = "512m",
        daemon_memory: str = "256m",
        conf: Mapping[str, str] | None = None,
        detach: bool = False,
        worker_hosts: Sequence[str] = (),
        decommission_timeout: float = 300.0,
        start_timeout: float = 180.0,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.spark_home = spark_home()
        self.conf = {**DEFAULT_CONF, "spark.executor.memory": worker_memory, **(conf or {})}
        self.decommission_timeout = decommission_timeout
        self.start_timeout = start_timeout
        self.record = ClusterRecord(
            host=host,
            worker_cores=worker_cores,
            worker_memory=worker_memory,
            daemon_memory=daemon_memory,
            detach=detach,
            worker_hosts=list(worker_hosts),
        )
        self._attached = False
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    # --- where things are ----------------------------------------------------------------------------------------

    @property
    def conf_dir(self) -> Path:
        """``SPARK_CONF_DIR`` of the cluster: its ``spark-defaults.conf`` holds the decommissioning settings."""
        return self.state_dir / "conf"

    @property
    def defaults_path(self) -> Path:
        """The ``spark-defaults.conf`` every process of the cluster reads (``--properties-file``)."""
        return self.conf_dir / "spark-defaults.conf"

    @property
    def master(self) -> DaemonRecord:
        """The master's record. Raises ``ClusterNotFoundError`` before ``start()``."""
        if self.record.master is None:
            raise ClusterNotFoundError(f"no Spark master was started in {self.state_dir}")
        return self.record.master

    @property
    def master_url(self) -> str:
        """``spark://host:port``, for ``spark-submit --master``."""
        return f"spark://{self.record.host}:{self.master.port}"

    @property
    def webui_url(self) -> str:
        """The master's web UI, whose ``/json/`` says which workers and applications there are."""
        return f"http://{self.record.host}:{self.master.webui_port}"

    @property
    def workers(self) -> list[DaemonRecord]:
        """The workers this cluster started that are still running."""
        return [w for w in self.record.workers if self._running(w)]

    def submit_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment for ``spark-submit`` against this cluster: its conf dir, loopback, this Python."""
        env = dict(base if base is not None else os.environ)
        env.update(
            SPARK_HOME=str(self.spark_home),
            SPARK_CONF_DIR=str(self.conf_dir),
            SPARK_LOCAL_IP=self.record.host,
            PYSPARK_PYTHON=sys.executable,
        )
        return env

    def spark_submit(self) -> Path:
        """The ``spark-submit`` script of this Spark."""
        return self.spark_home / "bin" / "spark-submit"

    # --- life cycle ----------------------------------------------------------------------------------------------

    @classmethod
    def attach(cls, state_dir: str | Path, **options: Any) -> SparkStandaloneCluster:
        """The cluster whose state is in ``state_dir``. Raises ``ClusterNotFoundError`` if none runs there."""
        cluster = cls(state_dir, **options)
        path = cluster.state_dir / STATE_FILE
        try:
            cluster.record = ClusterRecord.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise ClusterNotFoundError(
                f"no Spark standalone cluster in {cluster.state_dir} (no {STATE_FILE})"
            ) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ClusterNotFoundError(f"{path} is damaged: {exc}") from None
        if cluster.record.master is None or not cluster._running(cluster.record.master):
            raise ClusterNotFoundError(f"the Spark master of {cluster.state_dir} is not running")
        cluster.conf = _read_conf(cluster.defaults_path) or cluster.conf
        cluster._attached = True
        return cluster

    def start(self, workers: int = 1) -> None:
        """Start the master and ``workers`` workers; returns once they all registered.

        Raises ``ScalingError`` (with the log's last lines) if a process does not come up.
        """
        check_target(workers)
        with self._locked():
            if self.record.master is not None and self._running(self.record.master):
                raise ScalingError(f"a Spark master already runs for {self.state_dir} (pid {self.record.master.pid})")
            self.conf_dir.mkdir(parents=True, exist_ok=True)
            self.defaults_path.write_text("".join(f"{k} {v}\n" for k, v in sorted(self.conf.items())))
            port, webui_port = free_ports(2, self.record.host)
            log = self.state_dir / "logs" / "master.log"
            argv = [
                MASTER_CLASS,
                "--host", self.record.host,
                "--port", str(port),
                "--webui-port", str(webui_port),
                "--properties-file", str(self.defaults_path),
            ]  # fmt: skip
            pid = self._spawn(argv, log)
            self.record.master = DaemonRecord("master", pid, port, webui_port, str(log))
            self._save()
            self._await(lambda: self._master_json_or_none() is not None, "the Spark master", self.record.master)
            self._add_workers(workers)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every worker (at once: no decommissioning), then the master; forget the state."""
        with self._locked():
            for worker in self.record.workers:
                self._terminate(worker, timeout)
            if self.record.master is not None:
                self._terminate(self.record.master, timeout)
            self.record.workers, self.record.master = [], None
            (self.state_dir / STATE_FILE).unlink(missing_ok=True)

    def __enter__(self) -> SparkStandaloneCluster:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # --- what the master says ------------------------------------------------------------------------------------

    def master_json(self, timeout: float = 10.0) -> dict[str, Any]:
        """The master's ``/json/``. Raises ``BackendUnavailableError``."""
        answer = get_json(self.webui_url + "/json/", timeout=timeout)
        if not isinstance(answer, dict):
            raise BackendUnavailableError(f"{self.webui_url}/json/ did not answer a JSON object")
        return answer

    def _master_json_or_none(self) -> dict[str, Any] | None:
        try:
            return self.master_json(timeout=2.0)
        except BackendUnavailableError:
            return None

    def alive_workers(self) -> list[dict[str, Any]]:
        """The master's entries of workers in state ALIVE (ours or not)."""
        return [w for w in self.master_json().get("workers", []) if w.get("state") == "ALIVE"]

    # --- scaling -------------------------------------------------------------------------------------------------

    def resize(
        self,
        target: int,
        *,
        graceful: bool = True,
        force: bool = True,
        before_removal: Callable[[Sequence[DaemonRecord]], Sequence[str]] | None = None,
    ) -> Resize:
        """Start or take away workers until ``target`` are ALIVE; returns what was done.

        Workers taken away are idle ones first, then the newest. Graceful: each is decommissioned and stopped once
        its executors are gone; one still busy after ``decommission_timeout`` is stopped anyway when ``force``
        (Spark retries its tasks elsewhere; a note says so), else ``DecommissionTimeoutError`` is raised and it
        stays decommissioned. ``before_removal`` is called with the workers chosen to leave before anything is done
        to them (its notes are kept): an error it raises stops the scale-in with every worker still running.
        Raises ``BackendUnavailableError`` (master down) or ``ScalingError`` (a worker did not start).
        """
        check_target(target)
        with self._locked():
            before = len(self.alive_workers())
            if target > before:
                return Resize(before, added=tuple(self._add_workers(target - before)))
            if target < before:
                victims, notes = self._remove_workers(
                    before - target, graceful=graceful, force=force, before_removal=before_removal
                )
                return Resize(before, removed=tuple(victims), notes=tuple(notes))
            return Resize(before)

    def _add_workers(self, count: int) -> list[DaemonRecord]:
        if count <= 0:
            return []
        started = []
        for _ in range(count):
            host = self._free_host()
            port, webui_port = free_ports(2, host)
            name = f"worker-{self.record.next_worker}"
            self.record.next_worker += 1
            work_dir = self.state_dir / "workers" / name
            work_dir.mkdir(parents=True, exist_ok=True)
            log = self.state_dir / "logs" / f"{name}.log"
            argv = [
                WORKER_CLASS,
                self.master_url,
                "--host", host,
                "--port", str(port),
                "--webui-port", str(webui_port),
                "--cores", str(self.record.worker_cores),
                "--memory", self.record.worker_memory,
                "--work-dir", str(work_dir),
                "--properties-file", str(self.defaults_path),
            ]  # fmt: skip
            pid = self._spawn(argv, log, host)
            record = DaemonRecord(name, pid, port, webui_port, str(log), str(work_dir), host=host)
            self.record.workers.append(record)
            started.append(record)
        self._save()
        for record in started:
            self._await(functools.partial(self._is_alive, record), f"Spark {record.name}", record)
        self.record.last_change = time.time()
        self._save()
        return started

    def _free_host(self) -> str:
        taken = {w.host for w in self.record.workers if self._running(w)}
        return next((h for h in self.record.worker_hosts if h not in taken), self.record.host)

    def _remove_workers(
        self,
        count: int,
        *,
        graceful: bool,
        force: bool,
        before_removal: Callable[[Sequence[DaemonRecord]], Sequence[str]] | None,
    ) -> tuple[list[DaemonRecord], list[str]]:
        if count <= 0:
            return [], []
        entries = {int(w["port"]): w for w in self.master_json().get("workers", []) if w.get("state") == "ALIVE"}
        ours = [w for w in self.record.workers if w.port in entries and self._running(w)]
        # Idle workers first (nothing to wait for), then the newest (the oldest are the warmest).
        ours.sort(key=lambda w: (int(entries[w.port].get("coresused") or 0) > 0, -w.started_at, w.name))
        victims = ours[:count]
        notes = []
        if len(victims) < count:
            notes.append(f"asked to remove {count} workers; only {len(victims)} were started by this cluster")
        if before_removal is not None and victims:
            notes.extend(before_removal(victims))
        if graceful:
            for worker in victims:
                _signal(worker.pid, signal.SIGPWR)
            deadline = time.monotonic() + self.decommission_timeout
            for worker in victims:
                if not self._drained(worker, deadline):
                    if not force:
                        raise DecommissionTimeoutError(
                            f"{worker.name} still runs executors {self.decommission_timeout:.0f}s after its "
                            "decommissioning; it stays decommissioned (no new work) until they finish"
                        )
                    notes.append(
                        f"{worker.name} still ran executors {self.decommission_timeout:.0f}s after its "
                        "decommissioning: stopped anyway (Spark retries its tasks elsewhere)"
                    )
        for worker in victims:
            self._terminate(worker, 30.0)
        gone = {w.name for w in victims}
        self.record.workers = [w for w in self.record.workers if w.name not in gone]
        self.record.last_change = time.time()
        self._save()
        return victims, notes

    def _drained(self, worker: DaemonRecord, deadline: float) -> bool:
        """Wait until ``worker`` is DECOMMISSIONED at the master and runs no executor; False at ``deadline``."""
        while time.monotonic() < deadline:
            if not self._running(worker):
                return True
            if self._state_of(worker) in ("DECOMMISSIONED", "DEAD", None):
                try:
                    own = get_json(f"http://{self.record.host_of(worker)}:{worker.webui_port}/json/", timeout=5.0)
                except BackendUnavailableError:
                    own = None
                if isinstance(own, dict) and not own.get("executors") and not own.get("drivers"):
                    return True
            time.sleep(0.5)
        return False

    def _is_alive(self, worker: DaemonRecord) -> bool:
        return self._state_of(worker) == "ALIVE"

    def _state_of(self, worker: DaemonRecord) -> str | None:
        status = self._master_json_or_none() or {}
        states = [w.get("state") for w in status.get("workers", []) if int(w.get("port", -1)) == worker.port]
        # A restarted worker on the same port shows twice (DEAD then ALIVE): the live one counts.
        return "ALIVE" if "ALIVE" in states else (states[-1] if states else None)

    # --- processes -----------------------------------------------------------------------------------------------

    def _spawn(self, argv: Sequence[str], log: Path, host: str | None = None) -> int:
        log.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(
            SPARK_HOME=str(self.spark_home),
            SPARK_CONF_DIR=str(self.conf_dir),
            SPARK_LOCAL_IP=host or self.record.host,  # web UIs bind here too, not on every interface
            SPARK_DAEMON_MEMORY=self.record.daemon_memory,
            PYSPARK_PYTHON=env.get("PYSPARK_PYTHON", sys.executable),
        )
        with log.open("ab") as out:
            popen = subprocess.Popen(
                [str(self.spark_home / "bin" / "spark-class"), *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.state_dir,
                # Processes started for another process's cluster must outlive this one (an Airflow task, a CLI).
                start_new_session=self.record.detach or self._attached,
            )
        self._children[popen.pid] = popen
        return popen.pid

    def _await(self, ready: Callable[[], bool], what: str, record: DaemonRecord) -> None:
        deadline = time.monotonic() + self.start_timeout
        while not ready():
            if not self._running(record):
                raise ScalingError(f"{what} exited before it was ready; its log ends: {_tail(record.log)}")
            if time.monotonic() > deadline:
                self._terminate(record, 10.0)
                raise ScalingError(
                    f"{what} was not ready after {self.start_timeout:.0f}s; its log ends: {_tail(record.log)}"
                )
            time.sleep(0.25)

    def _running(self, record: DaemonRecord) -> bool:
        popen = self._children.get(record.pid)
        if popen is not None:
            return popen.poll() is None
        try:
            cmdline = Path(f"/proc/{record.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return False
        return record.marker in cmdline  # a zombie's command line is empty: it counts as gone

    def _terminate(self, record: DaemonRecord, timeout: float) -> None:
        if not self._running(record):
            self._reap(record.pid)
            return
        _signal(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self._running(record):
            if time.monotonic() > deadline:
                _signal(record.pid, signal.SIGKILL)
                deadline = time.monotonic() + timeout
            time.sleep(0.1)
        self._reap(record.pid)

    def _reap(self, pid: int) -> None:
        popen = self._children.pop(pid, None)
        if popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=5)

    # --- state file ----------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the cluster's lock; re-read the state another process may have changed."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with (self.state_dir / "cluster.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                path = self.state_dir / STATE_FILE
                if path.exists():
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        self.record = ClusterRecord.from_json(json.loads(path.read_text()))
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _save(self) -> None:
        path = self.state_dir / STATE_FILE
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self.record), indent=2))
        temporary.replace(path)  # atomic: a reader sees the old state or the new one


class SparkStandaloneScaler:
    """``Scaler`` for a ``SparkStandaloneCluster``: nodes are ALIVE workers; scale-in decommissions.

    With ``cache``, a worker chosen to leave first has the cache worker of its node (its address) drained; a drain
    that fails stops the scale-in before any worker is touched (see ``cache_nodes``).
    """

    backend = "spark"

    def __init__(self, cluster: SparkStandaloneCluster, *, cache: NodeCaches | None = None) -> None:
        self.cluster = cluster
        self.cache = cache

    def current(self) -> ClusterState:
        """ALIVE workers and their cores, from the master's JSON. Raises ``BackendUnavailableError``."""
        status = self.cluster.master_json()
        alive = [w for w in status.get("workers", []) if w.get("state") == "ALIVE"]
        leaving = [w for w in status.get("workers", []) if w.get("state") == "DECOMMISSIONED"]
        apps = status.get("activeapps", [])
        return ClusterState(
            backend="Spark standalone cluster",
            nodes=len(alive),
            desired=len(alive),
            min_nodes=0,
            cores_total=sum(int(w.get("cores") or 0) for w in alive),
            cores_used=sum(int(w.get("coresused") or 0) for w in alive),
            detail={
                "master": self.cluster.master_url,
                "webui": self.cluster.webui_url,
                "workers": sorted(str(w.get("id")) for w in alive),
                "decommissioning": sorted(str(w.get("id")) for w in leaving),
                "apps_running": sum(1 for a in apps if a.get("state") == "RUNNING"),
                "apps_waiting": sum(1 for a in apps if a.get("state") == "WAITING"),
                "last_change": self.cluster.record.last_change,
            },
        )

    def scale_to(self, target: int, *, graceful: bool = True) -> ScaleResult:
        """Start or decommission workers until ``target`` are ALIVE; returns once they joined or left.

        Raises ``ValueError`` (negative target), ``BackendUnavailableError`` (master down), ``ScalingError`` (a
        worker did not start), ``CacheDrainError`` (a cache worker could not be drained: no worker was stopped).
        """
        cache, cluster = self.cache, self.cluster

        def drain(victims: Sequence[DaemonRecord]) -> Sequence[str]:
            return cache.drain_nodes([cluster.record.node(v) for v in victims]) if cache is not None else ()

        done = self.cluster.resize(target, graceful=graceful, before_removal=drain)
        after = self.current().nodes
        return ScaleResult(
            backend=self.backend,
            before=done.before,
            target=target,
            requested=target,
            after=after,
            notes=done.notes,
            added=tuple(cluster.record.node(w) for w in done.added),
            removed=tuple(cluster.record.node(w) for w in done.removed),
        )


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it exited meanwhile: what we wanted anyway
        os.kill(pid, signum)


def _tail(log: str, lines: int = 5) -> str:
    try:
        text = Path(log).read_bytes()[-8192:].decode(errors="replace")
    except OSError:
        return "(no log)"
    return " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip()) or "(empty log)"


def _read_conf(path: Path) -> dict[str, str]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    pairs = (line.split(None, 1) for line in lines if line.strip() and not line.lstrip().startswith("#"))
    return {p[0]: p[1].strip() for p in pairs if len(p) == 2}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lakecache_airflow.scaling.spark_standalone up|down --state-dir DIR``: a cluster for clusterctl."""
    parser = argparse.ArgumentParser(prog="python -m lakecache_airflow.scaling.spark_standalone")
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--worker-cores", type=int, default=1)
    parser.add_argument("--worker-memory", default="512m")
    parser.add_argument(
        "--worker-hosts",
        default="",
        help="comma-separated addresses, one per worker (e.g. 127.0.1.1,127.0.1.2): each worker a node of its own",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            cluster = SparkStandaloneCluster(
                args.state_dir,
                worker_cores=args.worker_cores,
                worker_memory=args.worker_memory,
                worker_hosts=[h.strip() for h in args.worker_hosts.split(",") if h.strip()],
                detach=True,
            )
            cluster.start(args.workers)
            print(f"Spark master {cluster.master_url}, web UI {cluster.webui_url}, {args.workers} workers")
        else:
            SparkStandaloneCluster.attach(args.state_dir).stop()
            print(f"stopped the Spark cluster of {args.state_dir}")
    except (ScalingError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
