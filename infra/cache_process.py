"""A cache worker (``python -m cache_service serve --config FILE``) as a child process with a generated config."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from infra.ports import LOOPBACK, free_ports
from infra.s3_emulator import EMULATOR_CREDENTIALS
from infra.service_process import ProcessService, ServiceProcess, ServiceStartError, http_ok, log_tail
from infra.toml_writer import dumps, merge

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_MARKER = "cache_service serve"  # in the worker's command line; identifies it by pid later
_BIND_ATTEMPTS = 3
_IN_USE = "address already in use"


class CacheProcess(ProcessService):
    """One cache worker under ``state_dir``: ``cache.toml``, ``cache.log`` and the disk tier in ``data/``.

    The ports are chosen once (a first start that finds one taken meanwhile picks two others), so a restarted worker
    (``stop()`` or ``kill()``, then ``start()``) answers at the same URLs with the same disk tier. ``overrides`` is
    merged into the generated TOML document (tables key by key).
    The admin token reaches the worker as ``CACHE_ADMIN_TOKEN``, the S3 credentials as ``AWS_*`` variables.
    """

    _process: ServiceProcess

    def __init__(
        self,
        state_dir: Path,
        *,
        s3_endpoint: str,
        mounts: Mapping[str, str] | Iterable[tuple[str, str]],
        host: str = LOOPBACK,
        webhdfs_port: int | None = None,
        s3_port: int | None = None,
        admin_token: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        memory_capacity: str = "256MiB",
        disk_capacity: str = "4GiB",
        aws_credentials: Mapping[str, str] = EMULATOR_CREDENTIALS,
        detach: bool = False,
    ) -> None:
        # Absolute paths: the worker runs in the repository root, whatever our working directory is.
        self.state_dir = state_dir = state_dir.resolve()
        self.host = host
        spare = iter(free_ports(2, host))
        self.webhdfs_port = webhdfs_port or next(spare)
        self.s3_port = s3_port or next(spare)
        self._chosen_ports = webhdfs_port is None and s3_port is None
        self._started = False
        self.token = admin_token or secrets.token_urlsafe(24)
        self.config_path = state_dir / "cache.toml"
        self.data_dir = state_dir / "data"
        self.log_path = state_dir / "cache.log"
        self.config = merge(
            {
                "server": {"host": host, "webhdfs_port": self.webhdfs_port, "s3_port": self.s3_port},
                "under_store": {"endpoint_url": s3_endpoint, "region": aws_credentials.get("AWS_DEFAULT_REGION", "")},
                "mounts": [{"path": path, "uri": uri} for path, uri in dict(mounts).items()],
                "store": {
                    "tiers": [
                        {"medium": "memory", "capacity": memory_capacity},
                        {"medium": "disk", "path": str(self.data_dir), "capacity": disk_capacity},
                    ]
                },
            },
            overrides or {},
        )
        self._process = ServiceProcess(
            "cache service",
            [sys.executable, "-m", "cache_service", "serve", "--config", str(self.config_path)],
            log_path=self.log_path,
            env=self._environment(aws_credentials),
            # The checkout's code, even where the venv holds another install of the package.
            cwd=REPO_ROOT,
            detach=detach,
        )

    def _environment(self, aws_credentials: Mapping[str, str]) -> dict[str, str]:
        # CACHE_* variables of whoever runs us would silently override the generated config: drop them.
        env = {k: v for k, v in os.environ.items() if not k.startswith("CACHE_")}
        no_proxy = ",".join(p for p in (env.get("NO_PROXY", ""), "127.0.0.1,localhost") if p)
        env.update(aws_credentials)
        env.update(CACHE_ADMIN_TOKEN=self.token, PYTHONUNBUFFERED="1", NO_PROXY=no_proxy, no_proxy=no_proxy)
        return env

    @property
    def webhdfs_url(self) -> str:
        """Base URL of the WebHDFS port (also admin API, ``/metrics``, ``/healthz``), e.g. ``http://127.0.0.1:9870``."""
        return f"http://{self.host}:{self.webhdfs_port}"

    @property
    def webhdfs_uri(self) -> str:
        """The filesystem URI Spark and Hadoop use, e.g. ``webhdfs://127.0.0.1:9870``."""
        return f"webhdfs://{self.host}:{self.webhdfs_port}"

    @property
    def s3_url(self) -> str:
        """Endpoint of the cache's S3 API."""
        return f"http://{self.host}:{self.s3_port}"

    def write_config(self) -> Path:
        """Write the TOML config (and create the disk tier's directory); returns its path."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(dumps(self.config))
        return self.config_path

    def start(self, timeout: float = 60.0) -> None:
        """Write the config, start the worker and wait until ``/readyz`` answers 200.

        Raises ``infra.service_process.ServiceStartError`` with the tail of ``cache.log`` if it exits or is not
        ready within ``timeout`` seconds.
        """
        for attempt in range(1, _BIND_ATTEMPTS + 1):
            self.write_config()
            try:
                self._process.start(lambda: http_ok(self.webhdfs_url + "/readyz"), timeout)
            except ServiceStartError as exc:
                # A port chosen free at construction may be taken by the time the worker binds it (an outgoing
                # connection's ephemeral port): a first start tries two fresh ones; a restart keeps its ports.
                if self._started or not self._chosen_ports or attempt == _BIND_ATTEMPTS or _IN_USE not in str(exc):
                    raise
                self.webhdfs_port, self.s3_port = free_ports(2, self.host)
                self.config["server"].update(webhdfs_port=self.webhdfs_port, s3_port=self.s3_port)
                continue
            self._started = True
            return

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop the worker gracefully (SIGTERM, then SIGKILL after ``timeout`` seconds); returns its exit code."""
        return self._process.stop(timeout)

    def kill(self) -> int | None:
        """SIGKILL the worker, as a crash would; returns its exit code."""
        return self._process.kill()

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the worker's log."""
        return log_tail(self.log_path, lines)
