"""The admin API (``/admin/v1/...``): cache management as JSON over HTTP, for ``cachectl``, Airflow and runbooks.

Reads (GET) need no credentials. Every request that changes state (POST, DELETE) must carry
``Authorization: Bearer <token>`` when ``[admin] token`` is set; without a token the server listens on loopback only
(``server.check_exposure``), so there the operator at the machine is trusted.

Input is validated here, at the edge, field by field, before the ``CacheManager`` sees it. Every error answers
``{"error": {"code": ..., "message": ..., "field": ...}}``: never a stack trace, never a 500 for bad input.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from aiohttp import web

from cache_service.errors import StagedDataError, UnderStoreUnavailableError
from cache_service.management.reports import InvalidFieldError, PathNotFoundError
from cache_service.namespace.paths import normalize
from cache_service.units import parse_duration, parse_size

if TYPE_CHECKING:
    from cache_service.management.manager import CacheManager
    from cache_service.service import CacheService

log = logging.getLogger(__name__)

PREFIX = "/admin/v1"
TIERS = ("disk", "memory")
MAX_PARALLELISM = 256
MAX_PURGES = 1000  # an upper bound for ?limit= on /purges; the record itself keeps fewer
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AdminError(Exception):
    """An answer other than success: HTTP ``status``, a stable ``code``, a message and the request field at fault."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        """The JSON error answer."""
        body = {"error": {"code": self.code, "message": self.message, "field": self.field}}
        return web.json_response(body, status=self.status, headers=self.headers)


def _invalid(field: str | None, message: str) -> NoReturn:
    raise AdminError(400, "InvalidArgument", message, field)


@dataclass(frozen=True)
class _Call:
    """One validated request: query parameters, body fields and the values captured from the URL path."""

    query: Mapping[str, str]
    body: Mapping[str, Any]
    args: Mapping[str, str]


Handler = Callable[[_Call], Awaitable[web.Response]]


@dataclass(frozen=True)
class _Endpoint:
    """A handler and the inputs it accepts; anything else in the request is refused before it runs."""

    handler: Handler
    query: frozenset[str] = frozenset()
    body: frozenset[str] | None = None  # None: the request has no body to read
    path_field: str = "path"  # which request field a bare FileNotFoundError is about


@dataclass(frozen=True)
class _Route:
    name: str  # also the ``op`` label of the request metrics
    pattern: re.Pattern[str]
    methods: dict[str, _Endpoint] = field(default_factory=dict)


class AdminApi:
    """Routes and handlers of the admin API; the work itself is done by ``service.manager``."""

    def __init__(self, service: CacheService) -> None:
        self._service = service
        self._manager: CacheManager = service.manager
        self._routes = [
            _route("status", GET=_Endpoint(self._status)),
            _route("mounts", GET=_Endpoint(self._mounts)),
            _route("stat", GET=_Endpoint(self._stat, query=frozenset({"path"}))),
            _route("ls", GET=_Endpoint(self._ls, query=frozenset({"path"}))),
            _route(
                "load",
                POST=_Endpoint(
                    self._load, body=frozenset({"paths", "parallelism", "bandwidth", "tier"}), path_field="paths"
                ),
            ),
            _route("free", POST=_Endpoint(self._free, body=frozenset({"paths"}), path_field="paths")),
            _route(
                "purge", POST=_Endpoint(self._purge, body=frozenset({"target", "dry_run", "paths"}), path_field="paths")
            ),
            _route("pin", POST=_Endpoint(self._pin, body=frozenset({"path"}))),
            _route("unpin", POST=_Endpoint(self._unpin, body=frozenset({"path"}))),
            _route("purges", GET=_Endpoint(self._purges, query=frozenset({"limit"}))),
            _route("pins", GET=_Endpoint(self._pins)),
            _route("ttl", GET=_Endpoint(self._ttls), POST=_Endpoint(self._set_ttl, body=frozenset({"path", "ttl"}))),
            _route("ttl/sweep", POST=_Endpoint(self._sweep_ttl, body=frozenset())),
            _route("jobs", GET=_Endpoint(self._jobs)),
            _route("jobs/{id}", GET=_Endpoint(self._job), DELETE=_Endpoint(self._cancel)),
            _route("jobs/{id}/cancel", POST=_Endpoint(self._cancel, body=frozenset())),
        ]

    def add_routes(self, app: web.Application) -> None:
        """Mount the API under ``/admin/v1`` (before any catch-all route of ``app``)."""
        # One route for the whole prefix: unknown endpoints and wrong methods must answer admin JSON (404, 405),
        # not fall through to the app's catch-all, which speaks WebHDFS.
        app.router.add_route("*", PREFIX + r"{tail:(/[\s\S]*)?}", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Route, authorize, validate and run one request; map every error to a JSON error answer."""
        started = time.perf_counter()
        name = "unknown"
        try:
            route, args = self._match(request.match_info.get("tail", ""))
            name = route.name
            # HEAD is a GET without the body (aiohttp drops it), as every HTTP client expects.
            endpoint = route.methods.get("GET" if request.method == "HEAD" else request.method)
            if endpoint is None:
                allowed = ", ".join(sorted(route.methods))
                raise AdminError(
                    405,
                    "MethodNotAllowed",
                    f"{request.method} is not allowed on {PREFIX}/{route.name}; use {allowed}",
                    headers={"Allow": allowed},
                )
            if request.method in _MUTATING:
                self._authorize(request)
            call = _Call(_query(request, endpoint.query), await _body(request, endpoint.body), args)
            try:
                response = await endpoint.handler(call)
            except Exception as exc:
                answer = _translate(exc, endpoint.path_field)
                if answer is None:
                    raise
                raise answer from exc
        except AdminError as exc:
            response = exc.response()
        except Exception as exc:  # a bug of ours: logged with its stack, answered without it
            log.error("admin: unexpected error", exc_info=exc)
            response = AdminError(500, "InternalError", "internal error; see the cache's log").response()
        self._service.metrics.requests.labels(api="admin", op=name, status=str(response.status)).inc()
        self._service.metrics.request_seconds.labels(api="admin", op=name).observe(time.perf_counter() - started)
        if request.method in _MUTATING:
            # An audit trail: who changed the cache, and how it went.
            log.info(
                "admin request",
                extra={"method": request.method, "op": name, "status": response.status, "peer": request.remote},
            )
        return response

    def _match(self, tail: str) -> tuple[_Route, dict[str, str]]:
        path = tail.strip("/")
        for route in self._routes:
            match = route.pattern.fullmatch(path)
            if match:
                return route, match.groupdict()
        raise AdminError(404, "NotFound", f"no such admin endpoint: {PREFIX}/{path}")

    def _authorize(self, request: web.Request) -> None:
        token = self._service.config.admin.token
        if not token:
            return  # no token configured: check_exposure keeps the server on loopback
        scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not credentials:
            raise AdminError(
                401,
                "Unauthorized",
                "this request changes the cache: send the admin token as 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": 'Bearer realm="lakecache-admin"'},
            )
        # Constant time: a byte-by-byte compare would tell an attacker how much of a guess is right.
        if not hmac.compare_digest(credentials.encode("utf-8", "surrogatepass"), token.encode()):
            raise AdminError(403, "Forbidden", "the admin token is not valid")

    # --- reads -------------------------------------------------------------------------------------------------

    async def _status(self, _: _Call) -> web.Response:
        return web.json_response((await self._manager.status()).to_json())

    async def _mounts(self, _: _Call) -> web.Response:
        return web.json_response({"mounts": self._manager.mounts()})

    async def _stat(self, call: _Call) -> web.Response:
        path = _path(call.query.get("path"), "path")
        return web.json_response((await self._manager.stat(path)).to_json())

    async def _ls(self, call: _Call) -> web.Response:
        path = _path(call.query.get("path"), "path")
        entries = await self._manager.ls(path)
        return web.json_response({"path": path, "entries": [e.to_json() for e in entries]})

    async def _purges(self, call: _Call) -> web.Response:
        limit = _count(call.query, "limit", low=1, high=MAX_PURGES)
        return web.json_response({"purges": [r.to_json() for r in self._manager.purges(limit)]})

    async def _pins(self, _: _Call) -> web.Response:
        return web.json_response({"pins": self._manager.pins()})

    async def _ttls(self, _: _Call) -> web.Response:
        return web.json_response({"ttls": self._manager.ttls()})

    async def _jobs(self, _: _Call) -> web.Response:
        return web.json_response({"jobs": [job.to_json() for job in self._manager.jobs()]})

    async def _job(self, call: _Call) -> web.Response:
        job_id = call.args["id"]
        try:
            job = self._manager.job(job_id)
        except KeyError:
            raise AdminError(404, "NotFound", f"no such job: {job_id}", "id") from None
        return web.json_response(job.to_json())

    # --- changes -----------------------------------------------------------------------------------------------

    async def _load(self, call: _Call) -> web.Response:
        paths = _paths(call.body, "paths")
        parallelism = _integer(call.body, "parallelism", default=4, low=1, high=MAX_PARALLELISM)
        bandwidth = _bandwidth(call.body)
        tier = _choice(call.body, "tier", TIERS, default="disk")
        job = await self._manager.load(paths, parallelism=parallelism, bandwidth=bandwidth, tier=tier)
        body = job.to_json()
        return web.json_response(body, status=202, headers={"Location": f"{PREFIX}/jobs/{body['id']}"})

    async def _free(self, call: _Call) -> web.Response:
        return web.json_response((await self._manager.free(_paths(call.body, "paths"))).to_json())

    async def _purge(self, call: _Call) -> web.Response:
        target = _fraction(call.body, "target")
        dry_run = _flag(call.body, "dry_run", default=False)
        paths = _paths(call.body, "paths") if call.body.get("paths") is not None else None
        report = await self._manager.purge(target=target, dry_run=dry_run, paths=paths)
        return web.json_response(report.to_json())

    async def _pin(self, call: _Call) -> web.Response:
        path = _path(_required(call.body, "path"), "path")
        return web.json_response((await self._manager.pin(path)).to_json())

    async def _unpin(self, call: _Call) -> web.Response:
        path = _path(_required(call.body, "path"), "path")
        return web.json_response((await self._manager.unpin(path)).to_json())

    async def _set_ttl(self, call: _Call) -> web.Response:
        path = _path(_required(call.body, "path"), "path")
        seconds = _ttl(call.body)
        return web.json_response((await self._manager.set_ttl(path, seconds)).to_json())

    async def _sweep_ttl(self, _: _Call) -> web.Response:
        return web.json_response((await self._manager.sweep_ttl()).to_json())

    async def _cancel(self, call: _Call) -> web.Response:
        job_id = call.args["id"]
        try:
            job = await self._manager.cancel(job_id)
        except KeyError:
            raise AdminError(404, "NotFound", f"no such job: {job_id}", "id") from None
        return web.json_response(job.to_json())


def _route(name: str, **methods: _Endpoint) -> _Route:
    # "jobs/{id}" -> r"jobs/(?P<id>[^/]+)": a job id is one path segment, whatever its characters.
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(name))
    return _Route(name, re.compile(pattern), dict(methods))


def _translate(exc: Exception, path_field: str) -> AdminError | None:
    """The answer for an error raised by a handler or the manager; None for unexpected ones (bugs, to be logged)."""
    match exc:
        case AdminError():
            return exc
        case PathNotFoundError():
            return AdminError(404, "NotFound", str(exc), exc.field)
        case FileNotFoundError():
            return AdminError(404, "NotFound", str(exc), path_field)
        case InvalidFieldError():
            return AdminError(400, "InvalidArgument", str(exc), exc.field)
        case NotADirectoryError() | IsADirectoryError():
            return AdminError(400, "InvalidArgument", str(exc), path_field)
        case StagedDataError() | PermissionError():
            return AdminError(409, "Conflict", str(exc), path_field)
        case UnderStoreUnavailableError():
            return AdminError(503, "Unavailable", f"{exc}; retry later")
        case ValueError():
            return AdminError(400, "InvalidArgument", str(exc))
    return None


# --- reading the request -----------------------------------------------------------------------------------------


def _query(request: web.Request, allowed: frozenset[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in request.query.items():
        if name not in allowed:
            _invalid(name, f"unknown query parameter {name!r}{_expected(allowed)}")
        if name in values:
            _invalid(name, f"{name} is given more than once")
        values[name] = value
    return values


async def _body(request: web.Request, allowed: frozenset[str] | None) -> dict[str, Any]:
    if allowed is None:
        return {}
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise AdminError(413, "PayloadTooLarge", "the request body is too large") from None
    if not raw.strip():
        return {}  # an empty body is an empty object: `curl -X POST .../ttl/sweep` needs none
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise AdminError(400, "MalformedJSON", f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise AdminError(400, "MalformedJSON", "the request body must be a JSON object")
    for name in data:
        if name not in allowed:
            _invalid(name, f"unknown field {name!r}{_expected(allowed)}")
    return data


def _no_constant(name: str) -> NoReturn:
    # NaN and Infinity are not JSON, whatever Python's json module accepts.
    raise ValueError(f"{name} is not a JSON value")


def _expected(allowed: frozenset[str]) -> str:
    return f" (expected: {', '.join(sorted(allowed))})" if allowed else " (this endpoint takes none)"


def _required(body: Mapping[str, Any], name: str) -> Any:
    if body.get(name) is None:
        _invalid(name, f"{name} is required")
    return body[name]


def _path(value: Any, field: str) -> str:
    if value is None:
        _invalid(field, f"{field} is required")
    if not isinstance(value, str) or not value:
        _invalid(field, f"{field} must be a non-empty string")
    try:
        return normalize(value)
    except ValueError as exc:
        _invalid(field, f"{field}: {exc}")


def _paths(body: Mapping[str, Any], name: str) -> list[str]:
    value = _required(body, name)
    if not isinstance(value, list) or not value:
        _invalid(name, f"{name} must be a non-empty list of paths")
    return [_path(item, f"{name}[{i}]") for i, item in enumerate(value)]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _fraction(body: Mapping[str, Any], name: str) -> float:
    value = _required(body, name)
    if not _is_number(value) or not 0 <= value <= 1:
        _invalid(name, f"{name} must be a number in [0, 1]")
    return float(value)


def _integer(body: Mapping[str, Any], name: str, *, default: int, low: int, high: int) -> int:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        _invalid(name, f"{name} must be an integer in [{low}, {high}]")
    return value


def _count(query: Mapping[str, str], name: str, *, low: int, high: int) -> int | None:
    """An optional whole number from the query string (``?limit=20``); None when absent."""
    raw = query.get(name)
    if raw is None:
        return None
    # Digits only, not int(): int() also takes " 20", "+20", "2_0" and other scripts' digits, which no client means.
    if not re.fullmatch(r"[0-9]{1,9}", raw) or not low <= int(raw) <= high:
        _invalid(name, f"{name} must be a whole number in [{low}, {high}], got {raw!r}")
    return int(raw)


def _flag(body: Mapping[str, Any], name: str, *, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        _invalid(name, f"{name} must be true or false")
    return value


def _choice(body: Mapping[str, Any], name: str, choices: tuple[str, ...], *, default: str) -> str:
    value = body.get(name)
    if value is None:
        return default
    if value not in choices:
        _invalid(name, f"{name} must be one of {', '.join(choices)}")
    return str(value)


def _bandwidth(body: Mapping[str, Any]) -> int | None:
    """Bytes per second, from ``"50MiB"`` (or ``"50MiB/s"``) or an integer; null means unlimited."""
    value = body.get("bandwidth")
    if value is None:
        return None
    problem = 'bandwidth must be a size per second ("50MiB"), a positive number of bytes per second, or null'
    if isinstance(value, str):
        value = value.strip().removesuffix("/s")
    elif not isinstance(value, int) or isinstance(value, bool):
        _invalid("bandwidth", problem)
    try:
        rate = parse_size(value)
    except ValueError as exc:
        _invalid("bandwidth", f"{problem}: {exc}")
    if rate <= 0:
        _invalid("bandwidth", problem)
    return rate


def _ttl(body: Mapping[str, Any]) -> float | None:
    """Seconds, from ``"1h"`` or a number; an explicit null clears the TTL (so the key itself is required)."""
    if "ttl" not in body:
        _invalid("ttl", 'ttl is required: a duration ("1h"), a number of seconds, or null to clear it')
    value = body["ttl"]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        _invalid("ttl", 'ttl must be a duration ("1h"), a number of seconds, or null')
    if (isinstance(value, str) and value.strip().startswith("-")) or (not isinstance(value, str) and value < 0):
        _invalid("ttl", "ttl must not be negative")
    if not isinstance(value, str) and not math.isfinite(value):
        _invalid("ttl", "ttl must be finite")
    try:
        return parse_duration(value)
    except ValueError as exc:
        _invalid("ttl", f"ttl must be a duration (250ms, 30s, 5m, 1h, 2d), a number of seconds, or null: {exc}")
