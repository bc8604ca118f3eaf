"""Giving a running Prometheus and Alertmanager new configuration: check it, put it in place, reload, confirm.

``deploy(files, config_dir, ...)`` takes what ``infra.monitoring.generate.generate`` returns (paths relative to
``config_dir`` -> text). It writes them to a staging folder beside ``config_dir`` and runs ``promtool check config``
and ``amtool check-config`` there, so a configuration they reject is refused (``ConfigRejectedError``, their own
words) and the running servers never see it. Only then does the staged folder replace ``config_dir`` whole (a rule
file no longer generated goes too), and each server is told ``POST /-/reload``: Alertmanager first, so that the
routes of new alerts exist before Prometheus fires them. A reload counts once the server says so itself:
``prometheus_config_last_reload_successful`` (``alertmanager_...`` for Alertmanager) is 1 and its success timestamp
is not older than the reload; otherwise ``ReloadError`` names the server and what its log says.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from infra.monitoring.servers import ALERTMANAGER_CONFIG, PROMETHEUS_CONFIG

# The servers are on loopback: a proxy configured in the environment must not sit between us and them.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ConfigRejectedError(RuntimeError):
    """promtool or amtool rejected the configuration; the message is what the tool said."""


class ReloadError(RuntimeError):
    """A server did not take its new configuration; the message says which and why."""


@dataclass(frozen=True)
class Server:
    """A running server to reload: ``kind`` is ``prometheus`` or ``alertmanager`` (the prefix of its metrics)."""

    kind: str
    url: str


def check(config_dir: Path) -> None:
    """Run ``promtool check config`` (which checks the rule files too) and ``amtool check-config`` on the files in
    ``config_dir``. Raises ``ConfigRejectedError`` with the tool's output when either rejects them."""
    checks = [
        ("promtool", ["promtool", "check", "config", str(config_dir / PROMETHEUS_CONFIG)]),
        ("amtool", ["amtool", "check-config", str(config_dir / ALERTMANAGER_CONFIG)]),
    ]
    for tool, argv in checks:
        if shutil.which(argv[0]) is None:
            raise FileNotFoundError(f"{tool} is not installed: `make system-deps` installs it with Debian's package")
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            said = (done.stdout + done.stderr).strip()
            raise ConfigRejectedError(f"{tool} rejects the configuration:\n{said}")


def write_files(files: Mapping[Path, str], root: Path) -> None:
    """Write ``files`` (paths relative to ``root`` -> text) under ``root``."""
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def install(files: Mapping[Path, str], config_dir: Path) -> None:
    """Check ``files`` in a staging folder and, if the tools accept them, make them the whole of ``config_dir``.

    Raises ``ConfigRejectedError`` (``config_dir`` untouched) when promtool or amtool rejects them.
    """
    config_dir.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{config_dir.name}-", dir=config_dir.parent))
    try:
        write_files(files, staged)
        try:
            check(staged)
        except ConfigRejectedError as exc:  # name the files where they were meant to go, not the staging folder
            raise ConfigRejectedError(str(exc).replace(str(staged), str(config_dir))) from None
        old = config_dir.with_name(f".{config_dir.name}-old")
        shutil.rmtree(old, ignore_errors=True)
        if config_dir.exists():
            config_dir.rename(old)
        staged.rename(config_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def reload(server: Server, timeout: float = 30.0) -> None:
    """``POST /-/reload`` to ``server`` and wait until its own metrics say the reload succeeded.

    Raises ``ReloadError`` if the server refuses the reload or does not confirm it within ``timeout`` seconds.
    """
    asked = int(time.time())  # the servers stamp reloads in whole seconds
    request = urllib.request.Request(server.url + "/-/reload", method="POST", data=b"")
    try:
        with _DIRECT.open(request, timeout=timeout):
            pass
    except urllib.error.HTTPError as exc:
        said = exc.read().decode(errors="replace").strip()
        raise ReloadError(f"{server.kind} at {server.url} refused the reload ({exc.code}): {said}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ReloadError(f"{server.kind} at {server.url} does not answer: {exc}") from None
    deadline = time.monotonic() + timeout
    while True:
        samples = _own_metrics(server.url)
        ok = samples.get(f"{server.kind}_config_last_reload_successful")
        stamp = samples.get(f"{server.kind}_config_last_reload_success_timestamp_seconds", 0.0)
        if ok == 1.0 and stamp >= asked:
            return
        if time.monotonic() > deadline:
            raise ReloadError(
                f"{server.kind} at {server.url} did not confirm the reload within {timeout:.0f}s "
                f"(last_reload_successful={ok}, last success at {stamp:.0f}, asked at {asked}); see its log"
            )
        time.sleep(0.2)


def deploy(files: Mapping[Path, str], config_dir: Path, *, prometheus_url: str, alertmanager_url: str) -> None:
    """Install ``files`` in ``config_dir`` (``install``) and reload Alertmanager, then Prometheus (``reload``).

    Raises ``ConfigRejectedError`` before anything changes when the tools reject the files, ``ReloadError`` when a
    server does not take them.
    """
    install(files, config_dir)
    reload(Server("alertmanager", alertmanager_url))
    reload(Server("prometheus", prometheus_url))


def _own_metrics(url: str) -> dict[str, float]:
    try:
        with _DIRECT.open(url + "/metrics", timeout=10) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return {}
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }
