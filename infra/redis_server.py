"""Redis, the cluster's membership store: Debian's ``redis-server`` as a child process on a loopback port.

Nothing is persisted (no RDB, no AOF): membership is rebuilt by the workers' heartbeats within one interval, so a
restarted Redis needs no data back. ``pause``/``resume`` (SIGSTOP/SIGCONT) make it stop answering without closing its
port, the way a hung Redis looks to its clients.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
from pathlib import Path

from infra.ports import LOOPBACK, free_port
from infra.service_process import ProcessService, ServiceProcess

REDIS_MARKER = "redis-server"


def redis_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if a Redis server at ``host``:``port`` answers ``PING`` with ``PONG``."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer(ProcessService):
    """``redis-server`` on ``host``:``port`` (a free port if None), logging to ``state_dir/redis.log``."""

    _process: ServiceProcess

    def __init__(self, state_dir: Path, *, host: str = LOOPBACK, port: int | None = None, detach: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed: `make system-deps` installs Debian's package")
        self.host = host
        self.port = port or free_port(host)
        self.log_path = state_dir / "redis.log"
        argv = [binary, "--bind", host, "--port", str(self.port), "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(state_dir), "--protected-mode", "no"]
        self._process = ServiceProcess("Redis", argv, log_path=self.log_path, env=dict(os.environ), detach=detach)

    @property
    def url(self) -> str:
        """The URL workers connect with (``[cluster] redis_url``)."""
        return f"redis://{self.host}:{self.port}/0"

    def start(self, timeout: float = 30.0) -> None:
        """Start Redis and wait until it answers ``PING``. Raises ``ServiceStartError`` with its log tail."""
        self._process.start(lambda: redis_answers(self.host, self.port), timeout)

    def stop(self) -> None:
        """Stop Redis (resumed first if paused, so that it can exit)."""
        self.resume()
        self._process.stop()

    def pause(self) -> None:
        """Freeze Redis: connections stay open and nothing answers."""
        if self.pid is not None:
            os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Unfreeze a paused Redis."""
        if self.pid is not None and self.running:
            os.kill(self.pid, signal.SIGCONT)
