"""A service run as a child process: its output in a log file, awaited until it answers, stopped by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

# Probes go straight to loopback: a proxy configured in the environment must not sit between us and our children.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServiceStartError(RuntimeError):
    """A service process exited or did not become ready in time; the message ends with the tail of its log."""


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True if a GET of ``url`` answers 200."""
    try:
        with _DIRECT.open(url, timeout=timeout) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of the log at ``path`` ("" if there is none)."""
    try:
        text = path.read_bytes()[-64 * 1024 :].decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def is_running(pid: int, marker: str) -> bool:
    """True if process ``pid`` is alive and its command line contains ``marker``.

    The marker guards against a recycled pid: a pid recorded by an earlier run may now belong to someone else.
    """
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return marker in cmdline  # a zombie's cmdline is empty, so it counts as gone


def stop_pid(pid: int, marker: str, timeout: float = 10.0) -> bool:
    """Stop process ``pid`` (SIGTERM, then SIGKILL after ``timeout`` seconds) if it still runs ``marker``.

    For processes this process did not start itself (``python -m infra.stack down``). Returns True if it was running.
    """
    if not is_running(pid, marker):
        return False
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_running(pid, marker):
        if time.monotonic() > deadline:
            _signal(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
        time.sleep(0.05)
    return True


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # it exited meanwhile: what we wanted
        os.kill(pid, signum)


class ServiceProcess:
    """One child process running ``argv``, its stdout and stderr appended to ``log_path``.

    ``detach`` starts it in a session of its own, so that it outlives this process and the terminal's Ctrl-C;
    attached children share our process group and stop with us.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str],
        cwd: Path | None = None,
        detach: bool = False,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env)
        self.cwd = cwd
        self.detach = detach
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The pid of the running child, or None when none was started."""
        return self._popen.pid if self._popen else None

    @property
    def running(self) -> bool:
        """True while the child has been started and has not exited."""
        return self._popen is not None and self._popen.poll() is None

    def start(self, ready: Callable[[], bool], timeout: float) -> None:
        """Start the child and wait until ``ready()`` is true.

        Raises ``ServiceStartError`` with the log tail if the child exits first or is not ready within ``timeout``
        seconds (it is killed then). Raises ``RuntimeError`` if it is already running.
        """
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=self.detach,
            )
        deadline = time.monotonic() + timeout
        while not ready():
            code = self._popen.poll()
            if code is not None:
                raise ServiceStartError(self._failure(f"exited with code {code} before it was ready"))
            if time.monotonic() > deadline:
                self.kill()
                raise ServiceStartError(self._failure(f"was not ready after {timeout:.0f}s and was killed"))
            time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the child, SIGKILL it if it has not exited after ``timeout`` seconds; returns its exit code."""
        if self._popen is None:
            return None
        if self._popen.poll() is None:
            self._popen.terminate()
            try:
                return self._popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._popen.kill()
        return self._popen.wait()

    def kill(self) -> int | None:
        """SIGKILL the child at once (a crash, for recovery tests); returns its exit code."""
        if self._popen is None:
            return None
        if self._popen.poll() is None:
            self._popen.kill()
        return self._popen.wait()

    def _failure(self, what: str) -> str:
        tail = log_tail(self.log_path) or "(the log is empty)"
        return f"{self.name} {what}; last lines of {self.log_path}:\n{tail}"


class ManagedService(ABC):
    """A local service (S3 emulator, cache, S3 model, nginx, a test proxy) that ``with`` starts and stops."""

    @abstractmethod
    def start(self) -> object:
        """Start the service and return once it answers."""

    @abstractmethod
    def stop(self) -> object:
        """Stop the service."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


class ProcessService(ManagedService):
    """A managed service that runs as one ``ServiceProcess`` (``_process``; None until it is first started)."""

    _process: ServiceProcess | None

    @property
    def pid(self) -> int | None:
        """The service's pid while it runs."""
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        """True while the service's process is alive."""
        return self._process is not None and self._process.running
