"""``CacheHook``: the Lakecache admin API (``/admin/v1``) behind an Airflow connection of type ``lakecache``.

A ``lakecache`` connection names one cache worker: host, port (default 9870, the WebHDFS port that also serves the
admin API) and, in the password, the admin token that state-changing requests carry as ``Authorization: Bearer``.
``use_https`` (extra) or an ``https://`` host selects TLS. For example::

    AIRFLOW_CONN_LAKECACHE_DEFAULT='{"conn_type": "lakecache", "host": "cache.internal", "port": 9870,
                                     "password": "<token>"}'
    AIRFLOW_CONN_LAKECACHE_DEFAULT='lakecache://:<token>@cache.internal:9870'

Every failure is an ``AirflowException`` whose message a task log can show as is: ``CacheUnavailableError`` when
the cache cannot be reached (``cannot reach the Lakecache cache at http://host:9870: connection refused``),
``CacheApiError`` when the API refused a request (its error code, message and the request field at fault).
Requests are built, and answers decoded, by ``cache_service.admin_client``, the admin client ``cachectl`` uses too;
this hook adds the connection and Airflow's errors. Synchronous calls are sent with ``requests``;
``job_async``/``cancel_async`` with ``aiohttp`` for triggers, which must not block the triggerer's event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

import aiohttp
import requests
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowException

from cache_service.admin_client import (
    ADMIN_PREFIX,
    DEFAULT_TIMEOUT,
    AdminApiError,
    AdminEndpoint,
    AdminRequest,
    InvalidEndpointError,
    NotAdminApiError,
    decode_answer,
    job_route,
    unreachable_reason,
)

if TYPE_CHECKING:
    from airflow.sdk import Connection

DEFAULT_PORT = 9870
#: Job states after which a job never changes again.
FINISHED_STATES = frozenset({"succeeded", "failed", "cancelled"})
#: Consecutive transient failures (see ``is_transient``) that a job wait tolerates: a worker restarting, a blip.
UNAVAILABLE_RETRIES = 3
#: Answers of a proxy or load balancer in front of a cache that is restarting.
_GATEWAY_ERRORS = frozenset({502, 503, 504})
_ERRORS_SHOWN = 5  # per-file errors quoted in a failed job's summary; the rest are counted


class CacheUnavailableError(AirflowException):
    """The cache could not be reached: refused, unknown host, no answer in time, or not an HTTP answer."""


class CacheApiError(AirflowException):
    """The admin API answered with an error: HTTP ``status``, its stable ``code`` and the request ``field``."""

    def __init__(self, message: str, *, status: int, code: str, field: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.field = field


@dataclass(frozen=True)
class CacheEndpoint(AdminEndpoint):
    """Where one cache's admin API answers and with which token: a ``lakecache`` connection, validated."""

    conn_id: str = field(kw_only=True)

    @classmethod
    def from_connection(cls, conn: Connection) -> CacheEndpoint:
        """Read host, port, token (password), ``use_https`` and ``timeout`` (extra). Raises ``AirflowException``."""
        conn_id = conn.conn_id
        raw_host = (conn.host or "").strip()
        if not raw_host:
            raise AirflowException(
                f"connection {conn_id!r} has no host: set the Lakecache cache's host (and port, default {DEFAULT_PORT})"
            )
        extra = conn.extra_dejson
        scheme = "https" if _truthy(extra.get("use_https")) else str(extra.get("scheme") or "").lower()
        if not scheme and (conn.schema or "").lower() in ("http", "https"):
            scheme = (conn.schema or "").lower()
        host, port = raw_host, conn.port
        if "://" in raw_host:  # "https://cache.internal:9443" in the host field: its scheme and port win
            try:
                given = AdminEndpoint.from_url(raw_host)
            except InvalidEndpointError as exc:
                if exc.bad_port:
                    problem = f"the port in {raw_host!r} is not a number"
                else:
                    problem = f"host {raw_host!r} is not http(s)://HOST[:PORT]"
                raise AirflowException(f"connection {conn_id!r}: {problem}") from None
            scheme, host, port = given.scheme, given.host, given.port or port
        scheme = scheme or "http"
        if scheme not in ("http", "https"):
            raise AirflowException(f"connection {conn_id!r}: scheme must be http or https, not {scheme!r}")
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # an IPv6 literal
        return cls(
            url=f"{scheme}://{host}:{port or DEFAULT_PORT}",
            token=(conn.password or "").strip(),
            timeout=_timeout(conn_id, extra.get("timeout")),
            conn_id=conn_id,
        )

    def unreachable(self, error: BaseException) -> CacheUnavailableError:
        """The error for a request that got no HTTP answer."""
        why = unreachable_reason(error, self.timeout, disconnected=(aiohttp.ServerDisconnectedError,))
        return CacheUnavailableError(f"cannot reach the Lakecache cache at {self.url}: {why}")

    def answer(self, request: AdminRequest, status: int, payload: bytes) -> Any:
        """The decoded JSON of a success; ``CacheApiError`` for any other answer to ``request``."""
        try:
            return decode_answer(request, status, payload)
        except AdminApiError as exc:
            raise self._refusal(exc) from None
        except NotAdminApiError as exc:
            called = f"{request.method} {ADMIN_PREFIX}/{request.route} at {self.url} answered HTTP {status}"
            if exc.is_error:
                message, code = f"{called}, not an admin API error", f"HTTP{status}"
            else:
                message, code = f"{called} with no JSON", "NotJSON"
            raise CacheApiError(
                f"{message} (is {self.url} a Lakecache cache?)", status=status, code=code, field=None
            ) from None

    def _refusal(self, error: AdminApiError) -> CacheApiError:
        message, at = error.message, error.field
        if error.status == 401:
            message = f"the cache needs the admin token: put it in the password of connection {self.conn_id!r}"
        elif error.status == 403:
            message = f"the cache refused the admin token in the password of connection {self.conn_id!r}"
        # "paths[0]: no such path: /x" already names its field; other messages get it appended.
        where = f" (field {at})" if at and not message.startswith(f"{at}:") else ""
        method, route = error.request.method, error.request.route
        return CacheApiError(
            f"Lakecache cache at {self.url} refused {method} {route}: {error.code}: {message}{where}",
            status=error.status,
            code=error.code,
            field=at,
        )


class CacheHook(BaseHook):
    """Calls the admin API of the cache named by the ``lakecache`` connection ``lakecache_conn_id``.

    :param lakecache_conn_id: the connection to use (default ``lakecache_default``).
    """

    conn_name_attr = "lakecache_conn_id"
    default_conn_name = "lakecache_default"
    conn_type = "lakecache"
    hook_name = "Lakecache"

    def __init__(self, lakecache_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.lakecache_conn_id = lakecache_conn_id
        self._async_endpoint: CacheEndpoint | None = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form (hidden fields, labels, placeholders), as declared in the provider info."""
        from lakecache_airflow.provider import UI_FIELD_BEHAVIOUR

        return {key.replace("-", "_"): value for key, value in UI_FIELD_BEHAVIOUR.items()}

    # --- connection ----------------------------------------------------------------------------------------------

    @cached_property
    def endpoint(self) -> CacheEndpoint:
        """The cache this hook talks to. Raises ``AirflowException`` for a missing or invalid connection."""
        return CacheEndpoint.from_connection(self.get_connection(self.lakecache_conn_id))

    async def aendpoint(self) -> CacheEndpoint:
        """``endpoint`` without blocking the event loop (the connection lookup may ask the supervisor)."""
        if self._async_endpoint is None:
            conn = await self.aget_connection(self.lakecache_conn_id)
            self._async_endpoint = CacheEndpoint.from_connection(conn)
        return self._async_endpoint

    def get_conn(self) -> requests.Session:
        """A ``requests`` session for the admin API (kept for the hook's lifetime)."""
        return self._session

    @cached_property
    def _session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = not self.endpoint.is_loopback
        session.headers.update(self.endpoint.headers())
        return session

    def _call(self, method: str, route: str, body: Mapping[str, Any] | None = None) -> Any:
        request = self.endpoint.request(method, route, body=body)
        response = self._send(request.method, request.url, data=request.body, headers=request.headers)
        return self.endpoint.answer(request, response.status_code, response.content)

    def _send(
        self, method: str, url: str, *, data: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> requests.Response:
        """One request to ``url`` on the cache; ``CacheUnavailableError`` when no HTTP answer comes."""
        endpoint = self.endpoint
        try:
            return self.get_conn().request(method, url, data=data, headers=headers, timeout=endpoint.timeout)
        except requests.Timeout as exc:
            raise endpoint.unreachable(TimeoutError()) from exc
        except requests.RequestException as exc:
            raise endpoint.unreachable(exc) from exc

    async def _acall(self, method: str, route: str) -> Any:
        endpoint = await self.aendpoint()
        request = endpoint.request(method, route)
        try:
            # One session per call: triggers poll every few seconds, and a session must not outlive its loop.
            async with (
                aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=endpoint.timeout), trust_env=not endpoint.is_loopback
                ) as session,
                session.request(request.method, request.url, headers=request.headers, data=request.body) as response,
            ):
                status, payload = response.status, await response.read()
        except TimeoutError as exc:
            raise endpoint.unreachable(exc) from exc
        except aiohttp.ClientError as exc:
            raise endpoint.unreachable(exc) from exc
        return endpoint.answer(request, status, payload)

    # --- the admin API -------------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Capacity, use, pinned and staged bytes, hit ratio (and ``reads``), watermarks, tiers and mounts."""
        return cast("dict[str, Any]", self._call("GET", "status"))

    def ready(self) -> bool:
        """True when the cache's ``/readyz`` answers 200; False while it answers 503 (still starting).

        Raises ``CacheUnavailableError`` when the cache cannot be reached and ``CacheApiError`` for any other answer
        (whatever answers is then not a Lakecache cache).
        """
        response = self._send("GET", f"{self.endpoint.url}/readyz")
        if response.status_code in (200, 503):
            return response.status_code == 200
        raise CacheApiError(
            f"GET /readyz at {self.endpoint.url} answered HTTP {response.status_code} "
            f"(is {self.endpoint.url} a Lakecache cache?)",
            status=response.status_code,
            code=f"HTTP{response.status_code}",
            field=None,
        )

    def purges(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The cache's record of its purges, newest first (at most ``limit``): manual ones, dry runs included,
        and purges under pressure, each with ``time``, ``trigger``, ``dry_run``, ``target``, ``paths``,
        ``used_bytes_before/after``, ``freed_bytes``, ``reached_target`` and ``shortfall``."""
        route = "purges" if limit is None else f"purges?limit={int(limit)}"
        return cast("list[dict[str, Any]]", self._call("GET", route)["purges"])

    def pins(self) -> list[str]:
        """The pinned paths."""
        return cast("list[str]", self._call("GET", "pins")["pins"])

    def cluster(self) -> dict[str, Any]:
        """The cluster as the connected worker sees it (``GET /admin/v1/cluster``): ``clustered`` (false for a worker
        alone, which answers as a cluster of one), its ``worker`` id, ``degraded``, the ``ring`` digest,
        ``rings_agree`` and every member with its URLs, state, ring share, pages, disk use, hit ratio and heartbeat
        age."""
        return cast("dict[str, Any]", self._call("GET", "cluster"))

    def cluster_at(self, webhdfs_url: str) -> dict[str, Any]:
        """``cluster()`` as another worker of the same cluster sees it (its WebHDFS URL, as members list it; the
        cluster shares one admin token): a worker being drained cannot say that it is gone, the others can."""
        endpoint = replace(self.endpoint, url=webhdfs_url.rstrip("/"))
        request = endpoint.request("GET", "cluster")
        response = self._send(request.method, request.url, headers=request.headers)
        return cast("dict[str, Any]", endpoint.answer(request, response.status_code, response.content))

    def load(
        self,
        paths: str | Sequence[str],
        *,
        parallelism: int = 4,
        bandwidth: str | int | None = None,
        tier: str = "disk",
    ) -> dict[str, Any]:
        """Start a warmup job for ``paths`` (files, directories, globs); returns the job record at once.

        ``bandwidth`` is a size per second (``"50MiB"``) or bytes per second; None means unlimited.
        Raises ``CacheApiError`` for a bad argument or a path that does not exist (``NotFound``).
        """
        body = {"paths": path_list(paths), "parallelism": parallelism, "bandwidth": bandwidth, "tier": tier}
        return cast("dict[str, Any]", self._call("POST", "load", body))

    def job(self, job_id: str) -> dict[str, Any]:
        """The record of job ``job_id``: ``state``, ``progress``, ``errors``, ``message``."""
        return cast("dict[str, Any]", self._call("GET", job_route(job_id)))

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel job ``job_id`` (a finished job stays as it is); returns its record."""
        return cast("dict[str, Any]", self._call("DELETE", job_route(job_id)))

    def purge(
        self, target: float, *, dry_run: bool = False, paths: str | Sequence[str] | None = None
    ) -> dict[str, Any]:
        """Evict until the cache uses at most ``target`` (a fraction) of its capacity; ``dry_run`` only plans.

        Returns the report: ``used_bytes_before/after``, ``freed_bytes``, ``evicted``, ``refused`` (pinned or
        staged data and pages being read are never evicted), ``reached_target`` and, when it is false,
        ``shortfall``: one sentence on what kept the cache above the target.
        """
        body = {"target": target, "dry_run": dry_run, "paths": path_list(paths) if paths is not None else None}
        return cast("dict[str, Any]", self._call("POST", "purge", body))

    def free(self, paths: str | Sequence[str]) -> dict[str, Any]:
        """Drop the cached pages of ``paths``; returns ``freed_bytes``, ``freed_pages`` and ``refused``."""
        return cast("dict[str, Any]", self._call("POST", "free", {"paths": path_list(paths)}))

    def sweep_ttl(self) -> dict[str, Any]:
        """Free every cached object whose TTL has run out; returns ``freed_bytes`` and ``freed_pages``."""
        return cast("dict[str, Any]", self._call("POST", "ttl/sweep"))

    def wait_for_job(self, job_id: str, *, poll_interval: float = 5.0, timeout: float | None = None) -> dict[str, Any]:
        """Poll job ``job_id`` until it finishes; returns its final record.

        Tolerates ``UNAVAILABLE_RETRIES`` consecutive transient failures (``is_transient``), then raises the last
        one. Raises ``CacheApiError`` if the job is unknown, ``AirflowException`` after ``timeout`` seconds.
        """
        return self._poll(
            lambda: self.job(job_id),
            poll_interval=poll_interval,
            timeout=timeout,
            late=f"Lakecache job {job_id} did not finish",
        )

    def _poll(
        self, read: Callable[[], dict[str, Any]], *, poll_interval: float, timeout: float | None, late: str
    ) -> dict[str, Any]:
        """``read`` a job's record until it finishes, tolerating ``UNAVAILABLE_RETRIES`` consecutive transient
        failures; raises ``AirflowException`` saying ``late`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        failures = 0
        while True:
            try:
                record = read()
            except AirflowException as exc:
                if not is_transient(exc):
                    raise
                failures += 1
                if failures > UNAVAILABLE_RETRIES:
                    raise
                self.log.warning("%s; retrying (%d of %d)", exc, failures, UNAVAILABLE_RETRIES)
            else:
                failures = 0
                if record["state"] in FINISHED_STATES:
                    return record
            if deadline is not None and time.monotonic() >= deadline:
                raise AirflowException(f"{late} within {timeout:g}s")
            time.sleep(poll_interval)

    def drain(self, worker: str, budget: int | None = None) -> dict[str, Any]:
        """Start draining cache worker ``worker`` out of the cluster (``POST /admin/v1/cluster/drain``); returns the
        job at once: ``id``, ``state``, ``progress``, ``message``, ``worker`` and ``job_url``, the job on the worker
        being drained (any worker takes the request and hands it to that one).

        ``budget`` caps the bytes of pages handed to their new owners (None: the worker's ``handoff_budget``).
        Raises ``CacheApiError``: ``NotFound`` (no such worker), ``Conflict`` (already draining, or the last active
        worker), ``NotClustered``, ``InvalidArgument``.
        """
        body: dict[str, Any] = {"worker": worker}
        if budget is not None:
            body["budget"] = budget
        return cast("dict[str, Any]", self._call("POST", "cluster/drain", body))

    def drain_job(self, job: Mapping[str, Any]) -> dict[str, Any]:
        """The record of a drain job now, read at its ``job_url`` (the drained worker keeps its jobs)."""
        endpoint, route = self._job_endpoint(job)
        request = endpoint.request("GET", route)
        response = self._send(request.method, request.url, headers=request.headers)
        return cast("dict[str, Any]", endpoint.answer(request, response.status_code, response.content))

    def cancel_drain(self, job: Mapping[str, Any]) -> dict[str, Any]:
        """Cancel a drain job at its ``job_url``: a drain stopped before its worker left makes it active again."""
        endpoint, route = self._job_endpoint(job)
        request = endpoint.request("DELETE", route)
        response = self._send(request.method, request.url, headers=request.headers)
        return cast("dict[str, Any]", endpoint.answer(request, response.status_code, response.content))

    def wait_for_drain(
        self, job: Mapping[str, Any], *, poll_interval: float = 2.0, timeout: float | None = None
    ) -> dict[str, Any]:
        """Poll a drain job (as ``drain`` returned it) at its ``job_url`` until it finishes; its final record.

        Tolerates ``UNAVAILABLE_RETRIES`` consecutive transient failures, then raises the last one. Raises
        ``AirflowException`` after ``timeout`` seconds (the drain goes on: ``cancel_drain`` stops it).
        """
        return self._poll(
            lambda: self.drain_job(job),
            poll_interval=poll_interval,
            timeout=timeout,
            late=f"the drain of cache worker {job.get('worker')} did not finish",
        )

    def _job_endpoint(self, job: Mapping[str, Any]) -> tuple[CacheEndpoint, str]:
        """The worker a job runs on (from its ``job_url``, with this connection's token) and the job's route."""
        url = str(job.get("job_url") or "")
        base, marker, route = url.partition(ADMIN_PREFIX + "/")
        if not marker or not route:
            return self.endpoint, job_route(str(job.get("id")))
        return replace(self.endpoint, url=base.rstrip("/")), route

    def test_connection(self) -> tuple[bool, str]:
        """Check that the cache answers and accepts the token; Airflow's "Test connection" button calls this."""
        try:
            status = self.status()
            # No admin endpoint reads the token, so probe with a state-changing request that changes nothing:
            # cancelling a job that does not exist answers 404 when the token is accepted, 401/403 when not.
            self._call("DELETE", job_route("connection-test"))
        except CacheApiError as exc:
            if exc.code != "NotFound":
                return False, str(exc)
        except AirflowException as exc:
            return False, str(exc)
        capacity, used = status.get("capacity_bytes", 0), status.get("used_bytes", 0)
        return True, f"Lakecache cache at {self.endpoint.url} answers: {used} of {capacity} bytes used"

    async def job_async(self, job_id: str) -> dict[str, Any]:
        """``job`` for triggers: the record of job ``job_id``, without blocking the event loop."""
        return cast("dict[str, Any]", await self._acall("GET", job_route(job_id)))

    async def cluster_async(self) -> dict[str, Any]:
        """``cluster`` for triggers."""
        return cast("dict[str, Any]", await self._acall("GET", "cluster"))

    async def cancel_async(self, job_id: str) -> dict[str, Any]:
        """``cancel`` for triggers."""
        return cast("dict[str, Any]", await self._acall("DELETE", job_route(job_id)))


def path_list(paths: str | Sequence[str]) -> list[str]:
    """``paths`` (one path, or several; as a templated field renders them) as a non-empty list of paths.

    Raises ``AirflowException`` for an empty list or a value that is not a path; the cache checks the rest.
    """
    listed = [paths] if isinstance(paths, str) else list(paths)
    if not listed or not all(isinstance(p, str) and p.strip() for p in listed):
        raise AirflowException(f"paths must be one path or a non-empty list of paths, not {paths!r}")
    return [p.strip() for p in listed]


def is_transient(error: BaseException) -> bool:
    """True for a failure that a later request may not meet: the cache unreachable, or a gateway's 502/503/504."""
    if isinstance(error, CacheUnavailableError):
        return True
    return isinstance(error, CacheApiError) and error.status in _GATEWAY_ERRORS


# --- jobs as tasks report them ---------------------------------------------------------------------------------------


def summarize_job(job: Mapping[str, Any]) -> str:
    """One line about a job: how much it did, or why it failed (its first per-file errors quoted)."""
    kind, job_id, state = job.get("kind", "load"), job.get("id", "?"), job.get("state", "?")
    progress = job.get("progress") or {}
    if state == "succeeded":
        files = progress.get("files_done", 0)
        return (
            f"{kind} job {job_id} succeeded: {files} file{'' if files == 1 else 's'}, "
            f"{progress.get('bytes_done', 0)} bytes ({progress.get('bytes_from_s3', 0)} from S3, "
            f"{progress.get('bytes_skipped', 0)} already cached)"
        )
    if state == "cancelled":
        return f"{kind} job {job_id} was cancelled"
    errors = job.get("errors") or []
    shown = "; ".join(f"{e.get('path')}: {e.get('error')}" for e in errors[:_ERRORS_SHOWN])
    more = f" (and {len(errors) - _ERRORS_SHOWN} more)" if len(errors) > _ERRORS_SHOWN else ""
    reason = job.get("message") or state
    return f"{kind} job {job_id} {state}: {reason}" + (f": {shown}{more}" if shown else "")


def job_summary(job: Mapping[str, Any]) -> dict[str, Any]:
    """What a task pushes to XCom about a finished job: its outcome and counters, small and JSON-ready."""
    progress = job.get("progress") or {}
    started, finished = job.get("started_at"), job.get("finished_at")
    return {
        "job_id": job.get("id"),
        "state": job.get("state"),
        "paths": (job.get("request") or {}).get("paths", []),
        "files_total": progress.get("files_total", 0),
        "files_done": progress.get("files_done", 0),
        "bytes_total": progress.get("bytes_total", 0),
        "bytes_done": progress.get("bytes_done", 0),
        "bytes_from_s3": progress.get("bytes_from_s3", 0),
        "bytes_skipped": progress.get("bytes_skipped", 0),
        "seconds": round(finished - started, 3) if started is not None and finished is not None else None,
        "errors": list(job.get("errors") or []),
        "message": job.get("message", ""),
    }


# --- helpers ---------------------------------------------------------------------------------------------------------


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _timeout(conn_id: str, value: Any) -> float:
    if value in (None, ""):
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not seconds > 0 or seconds == float("inf"):
        raise AirflowException(f"connection {conn_id!r}: timeout must be a positive number of seconds, not {value!r}")
    return seconds
