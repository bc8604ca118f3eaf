"""A private nginx (Debian's package) serving one directory on a free loopback port: the bar for the cache's reads.

Its configuration is the package's defaults where they matter to speed (``sendfile on``, ``tcp_nopush on``,
keep-alive) with logging off, as one would serve static files in production; ``sendfile`` and ``tcp_nopush`` can be
turned off for small responses, where they cost more than they save. ``workers`` is 1 by default: on this 2-core
machine the load generator needs the other core, and the cache serves from one process too; ``"auto"`` is a worker
per core, nginx's own choice, for comparisons with as many cache workers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from infra.ports import LOOPBACK, free_port, is_listening
from infra.service_process import ProcessService, ServiceProcess, ServiceStartError

# nginx creates these at startup; the packaged defaults under /var/lib/nginx are root's.
TEMP_KINDS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


class PackageInstallError(RuntimeError):
    """A Debian package the benchmarks need is missing and could not be installed."""


def require_command(command: str, package: str) -> str:
    """The path of ``command``, installing Debian package ``package`` with apt-get first if it is missing.

    apt-get runs as root (directly, or through sudo when we are not root). Raises ``PackageInstallError`` if the
    command is still missing afterwards.
    """
    found = shutil.which(command) or shutil.which(command, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in ([*sudo, "apt-get", "update"], [*sudo, "apt-get", "install", "-y", "--no-install-recommends", package]):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise PackageInstallError(f"`{' '.join(argv)}` failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    found = shutil.which(command) or shutil.which(command, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if not found:
        raise PackageInstallError(f"installed {package} but `{command}` is still not on the PATH")
    return found


def nginx_version(binary: str) -> str:
    """What ``nginx -v`` says, e.g. ``nginx/1.22.1``."""
    done = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False)
    return (done.stderr or done.stdout).strip().removeprefix("nginx version: ")


class Nginx(ProcessService):
    """nginx serving the files under ``root`` at ``url``, its config, pid and error log under ``state_dir``.

    A context manager, or ``start()`` and ``stop()``.
    """

    def __init__(
        self,
        root: Path,
        state_dir: Path,
        *,
        workers: int | str = 1,
        sendfile: bool = True,
        tcp_nopush: bool = True,
        port: int | None = None,
    ) -> None:
        self.root = root.resolve()
        self.state_dir = state_dir.resolve()
        self.workers = workers
        self.sendfile = sendfile
        self.tcp_nopush = tcp_nopush
        self.port = port or free_port()
        self.binary = ""
        self.version = ""
        self._process: ServiceProcess | None = None

    @property
    def url(self) -> str:
        """Base URL; a file ``root/a/b`` is at ``url + "/a/b"``."""
        return f"http://{LOOPBACK}:{self.port}"

    def config_text(self) -> str:
        """The nginx.conf this instance runs with."""
        state = self.state_dir
        # As root the workers would switch to "nobody", who may not read the served files; stay who we are.
        user = "user root;\n" if os.geteuid() == 0 else ""
        temp = "\n".join(f"    {kind}_temp_path {state / 'tmp' / kind};" for kind in TEMP_KINDS)
        return f"""{user}worker_processes {self.workers};
pid {state / "nginx.pid"};
error_log {state / "error.log"} warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile {"on" if self.sendfile else "off"};
    tcp_nopush {"on" if self.tcp_nopush else "off"};
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 100000000;
    default_type application/octet-stream;
{temp}
    server {{
        listen {LOOPBACK}:{self.port};
        root {self.root};
        location / {{ }}
    }}
}}
"""

    def start(self, timeout: float = 20.0) -> None:
        """Install nginx if needed, check the config and start it; returns once it accepts connections.

        Raises ``PackageInstallError`` if nginx cannot be installed, ``ServiceStartError`` if it does not start.
        """
        self.binary = require_command("nginx", "nginx-light")
        self.version = nginx_version(self.binary)
        for kind in TEMP_KINDS:
            (self.state_dir / "tmp" / kind).mkdir(parents=True, exist_ok=True)
        config = self.state_dir / "nginx.conf"
        config.write_text(self.config_text())
        # -e: the error log before the config is read (else the packaged default path, not writable by everyone).
        base = [self.binary, "-e", str(self.state_dir / "error.log"), "-p", str(self.state_dir), "-c", str(config)]
        check = subprocess.run([*base, "-t", "-q"], capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise ServiceStartError(f"nginx rejects its config {config}: {check.stderr.strip()}")
        self._process = ServiceProcess(
            "nginx", [*base, "-g", "daemon off;"], log_path=self.state_dir / "nginx.log", env=dict(os.environ)
        )
        self._process.start(lambda: is_listening(self.port), timeout)

    def stop(self) -> None:
        """Stop nginx (SIGTERM to the master, which stops its workers)."""
        if self._process is not None:
            self._process.stop()
