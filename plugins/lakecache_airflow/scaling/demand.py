"""What the cluster is asked to do: applications and cores from the Spark master, pressure from the cache.

``Demand`` is plain data for the policy. It is read from the Spark standalone master's JSON API
(``http://master:webui/json/``: cores in use, applications waiting for executors) and from the cache's admin API
(``GET /admin/v1/status``: ``used_bytes``, ``capacity_bytes``, ``high_watermark``). The parsing functions are pure
(``from_master_json``, ``from_cache_status``); ``read_*`` do the HTTP.
"""

from __future__ import annotations

import ipaddress
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from lakecache_airflow.scaling.base import BackendUnavailableError

DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Demand:
    """The load on the cluster at one moment. None means "not known" (the source could not be read).

    ``used_cores`` are cores running executors; ``waiting_cores`` are cores that waiting applications still ask
    for. The cache fields come from the cache's status; ``cache_pressure`` is true at or above its high watermark.
    ``notes`` say what could not be read.
    """

    used_cores: int | None = None
    waiting_cores: int | None = None
    waiting_apps: int = 0
    running_apps: int = 0
    cache_used_bytes: int | None = None
    cache_capacity_bytes: int | None = None
    cache_high_watermark: float | None = None
    notes: tuple[str, ...] = ()

    @property
    def cache_fill(self) -> float | None:
        """Used over capacity of the cache, or None when unknown."""
        if self.cache_used_bytes is None or not self.cache_capacity_bytes:
            return None
        return self.cache_used_bytes / self.cache_capacity_bytes

    @property
    def cache_pressure(self) -> bool:
        """True when the cache is at or above its high watermark."""
        fill = self.cache_fill
        return fill is not None and self.cache_high_watermark is not None and fill >= self.cache_high_watermark

    def merged(self, other: Demand) -> Demand:
        """This demand with the fields ``other`` knows (Spark from one source, the cache from another)."""
        return Demand(
            used_cores=other.used_cores if other.used_cores is not None else self.used_cores,
            waiting_cores=other.waiting_cores if other.waiting_cores is not None else self.waiting_cores,
            waiting_apps=other.waiting_apps or self.waiting_apps,
            running_apps=other.running_apps or self.running_apps,
            cache_used_bytes=other.cache_used_bytes if other.cache_used_bytes is not None else self.cache_used_bytes,
            cache_capacity_bytes=(
                other.cache_capacity_bytes if other.cache_capacity_bytes is not None else self.cache_capacity_bytes
            ),
            cache_high_watermark=(
                other.cache_high_watermark if other.cache_high_watermark is not None else self.cache_high_watermark
            ),
            notes=self.notes + other.notes,
        )

    def with_note(self, note: str) -> Demand:
        """This demand with one more note."""
        return replace(self, notes=(*self.notes, note))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "used_cores": self.used_cores,
            "waiting_cores": self.waiting_cores,
            "waiting_apps": self.waiting_apps,
            "running_apps": self.running_apps,
            "cache_used_bytes": self.cache_used_bytes,
            "cache_capacity_bytes": self.cache_capacity_bytes,
            "cache_high_watermark": self.cache_high_watermark,
            "cache_pressure": self.cache_pressure,
            "notes": list(self.notes),
        }


def from_master_json(master: Mapping[str, Any], *, app_cores: int) -> Demand:
    """Demand from the Spark standalone master's ``/json/`` answer.

    The master does not publish how many cores an application asked for, only what it was granted: an
    application in state WAITING counts for ``app_cores`` cores (set ``spark.deploy.defaultCores`` or
    ``spark.cores.max`` to the same value so that this holds), less what it already holds.
    """
    apps = [a for a in master.get("activeapps") or [] if isinstance(a, Mapping)]
    waiting = [a for a in apps if a.get("state") == "WAITING"]
    running = [a for a in apps if a.get("state") == "RUNNING"]
    waiting_cores = sum(max(app_cores - int(a.get("cores") or 0), 0) for a in waiting)
    return Demand(
        used_cores=int(master.get("coresused") or 0),
        waiting_cores=waiting_cores,
        waiting_apps=len(waiting),
        running_apps=len(running),
    )


def from_cache_status(status: Mapping[str, Any]) -> Demand:
    """Demand (the cache fields) from the cache's ``GET /admin/v1/status`` answer."""
    try:
        return Demand(
            cache_used_bytes=int(status["used_bytes"]),
            cache_capacity_bytes=int(status["capacity_bytes"]),
            cache_high_watermark=float(status["high_watermark"]),
        )
    except (KeyError, TypeError, ValueError):
        return Demand(notes=("the cache status lacks used_bytes, capacity_bytes or high_watermark",))


def get_json(url: str, *, timeout: float = DEFAULT_TIMEOUT) -> Any:
    """GET ``url`` and decode its JSON. Raises ``BackendUnavailableError`` with a one-line reason."""
    try:
        with _opener(url).open(url, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise BackendUnavailableError(f"GET {url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BackendUnavailableError(f"cannot reach {url}: {reason}") from None
    except ValueError:
        raise BackendUnavailableError(f"GET {url} did not answer JSON") from None


def read_spark_master(webui_url: str, *, app_cores: int, timeout: float = DEFAULT_TIMEOUT) -> Demand:
    """Demand from the Spark master whose web UI is at ``webui_url``. Raises ``BackendUnavailableError``."""
    return from_master_json(get_json(webui_url.rstrip("/") + "/json/", timeout=timeout), app_cores=app_cores)


def read_cache(cache_url: str, *, timeout: float = DEFAULT_TIMEOUT) -> Demand:
    """Cache pressure from the cache whose admin API is at ``cache_url`` (the WebHDFS port).

    Raises ``BackendUnavailableError``.
    """
    return from_cache_status(get_json(cache_url.rstrip("/") + "/admin/v1/status", timeout=timeout))


def _opener(url: str) -> urllib.request.OpenerDirector:
    # A proxy from the environment must not sit between us and a service on this machine.
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    return urllib.request.build_opener(urllib.request.ProxyHandler({})) if loopback else urllib.request.build_opener()
