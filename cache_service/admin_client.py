"""The admin API (``/admin/v1``) as its clients see it: ``cachectl`` and Airflow's ``CacheHook`` both call it here.

One place knows how a client names a cache (``AdminEndpoint``: its URL, the bearer token, the timeout, and whether it
is on this machine), how a request is built (``AdminEndpoint.request``), what an answer means (``decode_answer``:
the JSON of a success, an ``AdminApiError`` for the API's ``{"error": {code, message, field}}``, a
``NotAdminApiError`` for whatever else answered) and why a request got no answer (``unreachable_reason``).

``AdminClient`` sends requests with the standard library, so ``cachectl`` starts fast and needs nothing else. The
Airflow hook sends the same requests with ``requests`` and ``aiohttp`` (an event loop must not block) and decodes
their answers here. Each front end words the errors for its own users: a ``cachectl`` line names ``--token``, a
task log names the connection's password.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from cache_service.loopback import is_loopback

ADMIN_PREFIX = "/admin/v1"
DEFAULT_TIMEOUT = 30.0


class InvalidEndpointError(ValueError):
    """``text`` is not ``http(s)://HOST[:PORT]``; ``bad_port`` when only its port is wrong (not a number)."""

    def __init__(self, text: str, *, bad_port: bool) -> None:
        problem = "the port is not a number" if bad_port else "expected http(s)://HOST[:PORT]"
        super().__init__(f"invalid endpoint {text!r}: {problem}")
        self.text = text
        self.bad_port = bad_port


@dataclass(frozen=True)
class AdminRequest:
    """One request to the admin API of ``endpoint``, ready for any HTTP library to send."""

    endpoint: AdminEndpoint
    method: str
    route: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None = None


@dataclass(frozen=True)
class AdminEndpoint:
    """A cache's admin API: ``url`` (``scheme://host[:port]``, no trailing slash), the ``token`` and the timeout."""

    url: str
    token: str = field(default="", repr=False)  # a secret: never in a log line or a traceback
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_url(cls, text: str, *, token: str = "", timeout: float = DEFAULT_TIMEOUT) -> AdminEndpoint:
        """The endpoint at ``text`` (``http(s)://HOST[:PORT]``). Raises ``InvalidEndpointError``."""
        parts = urlsplit(text.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidEndpointError(text, bad_port=False)
        try:
            parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
        except ValueError:
            raise InvalidEndpointError(text, bad_port=True) from None
        return cls(f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}", token.strip(), timeout)

    @property
    def scheme(self) -> str:
        """``http`` or ``https``."""
        return urlsplit(self.url).scheme

    @property
    def host(self) -> str:
        """The host name or address (an IPv6 address without its brackets)."""
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int | None:
        """The port in the URL, or None when it names none."""
        return urlsplit(self.url).port

    @property
    def is_loopback(self) -> bool:
        """True for a cache on this machine: no proxy from the environment may sit in between."""
        return is_loopback(self.host)

    def headers(self) -> dict[str, str]:
        """Headers every request carries: JSON, and the bearer token when there is one."""
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def request(
        self,
        method: str,
        route: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> AdminRequest:
        """``method /admin/v1/<route>?<params>`` with ``body`` as JSON."""
        url = f"{self.url}{ADMIN_PREFIX}/{route}"
        if params:
            url += "?" + urlencode(params)
        headers = self.headers()
        data = None
        if body is not None:
            data = json.dumps(dict(body)).encode()
            headers["Content-Type"] = "application/json"
        return AdminRequest(self, method, route, url, headers, data)


def job_route(job_id: str) -> str:
    """The route of one job: its id quoted, since it is one URL path segment whatever its characters."""
    return f"jobs/{quote(str(job_id), safe='')}"


# --- failures ------------------------------------------------------------------------------------------------------


class AdminClientError(Exception):
    """A ``request`` to the admin API failed."""

    def __init__(self, message: str, request: AdminRequest) -> None:
        super().__init__(message)
        self.request = request

    @property
    def endpoint(self) -> AdminEndpoint:
        """The cache the request was made to."""
        return self.request.endpoint


class CacheUnreachableError(AdminClientError):
    """No HTTP answer came; ``reason`` says why in a few words (``connection refused``, ``unknown host``...)."""

    def __init__(self, request: AdminRequest, reason: str) -> None:
        super().__init__(f"cannot reach the cache at {request.endpoint.url}: {reason}", request)
        self.reason = reason


class AdminApiError(AdminClientError):
    """The admin API refused a request: HTTP ``status``, its stable ``code``, ``message`` and the ``field`` at fault."""

    def __init__(self, request: AdminRequest, *, status: int, code: str, message: str, field: str | None) -> None:
        super().__init__(f"{code}: {message}", request)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


class NotAdminApiError(AdminClientError):
    """Something answered that is not the admin API: an error ``status`` not in its shape, or a success with no JSON
    (``is_error``: which of the two)."""

    def __init__(self, request: AdminRequest, *, status: int) -> None:
        what = "not an admin API error" if status >= 400 else "no JSON"
        super().__init__(f"{request.url} answered HTTP {status} with {what} (not a Lakecache cache?)", request)
        self.status = status

    @property
    def is_error(self) -> bool:
        """True when the answer was an error status, False when it was a success without JSON."""
        return self.status >= 400


def decode_answer(request: AdminRequest, status: int, payload: bytes) -> Any:
    """The decoded JSON of the answer to ``request``. Raises ``AdminApiError`` or ``NotAdminApiError``."""
    if status < 400:
        try:
            return json.loads(payload)
        except ValueError:
            raise NotAdminApiError(request, status=status) from None
    try:
        error = json.loads(payload)["error"]
        code, message, at = str(error["code"]), str(error["message"]), error.get("field")
    except (ValueError, KeyError, TypeError):
        raise NotAdminApiError(request, status=status) from None
    at = at if isinstance(at, str) and at else None
    raise AdminApiError(request, status=status, code=code, message=message, field=at)


def unreachable_reason(
    error: BaseException, timeout: float, *, disconnected: tuple[type[BaseException], ...] = ()
) -> str:
    """A few words on why a request got no answer, as an operator would say them.

    ``error`` may wrap the cause (urllib's ``reason``, requests' and urllib3's nesting); ``disconnected`` adds an
    HTTP library's own "the server closed the connection" errors to the standard library's.
    """
    for cause in _causes(error):
        match cause:
            case ConnectionRefusedError():
                return "connection refused"
            case socket.gaierror():
                return "unknown host"
            case TimeoutError():
                return f"no answer within {timeout:g}s"
            case ssl.SSLError():
                return f"TLS failed ({cause.reason or cause})"
            case ConnectionResetError() | http.client.RemoteDisconnected():
                return "the connection was closed before an answer came"
            case _ if isinstance(cause, disconnected):
                return "the connection was closed before an answer came"
            case http.client.HTTPException():
                return f"not an HTTP answer ({type(cause).__name__})"
    for cause in _causes(error):
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
    reason = getattr(error, "reason", None)  # urllib's URLError carries its words there
    return str(reason if isinstance(reason, str) and reason else error) or type(error).__name__


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what it wraps: urllib, requests and urllib3 nest the OS error in args, ``reason``, causes."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for inner in (
            getattr(current, "os_error", None),
            getattr(current, "reason", None),
            current.__cause__,
            current.__context__,
            *current.args,
        ):
            if isinstance(inner, BaseException):
                pending.append(inner)


# --- the standard library's client ---------------------------------------------------------------------------------


class AdminClient:
    """Calls the admin API of ``endpoint`` with the standard library; every failure is an ``AdminClientError``."""

    def __init__(self, endpoint: AdminEndpoint) -> None:
        self.endpoint = endpoint
        # A proxy from the environment must not sit between us and a cache on this machine.
        handlers = [urllib.request.ProxyHandler({})] if endpoint.is_loopback else []
        self._opener = urllib.request.build_opener(*handlers)

    def get(self, route: str, **params: str) -> Any:
        """``GET /admin/v1/<route>?<params>``; the decoded JSON answer."""
        return self.call(self.endpoint.request("GET", route, params=params))

    def post(self, route: str, body: Mapping[str, Any] | None = None) -> Any:
        """``POST /admin/v1/<route>`` with a JSON ``body``; the decoded JSON answer."""
        return self.call(self.endpoint.request("POST", route, body=dict(body or {})))

    def delete(self, route: str) -> Any:
        """``DELETE /admin/v1/<route>``; the decoded JSON answer."""
        return self.call(self.endpoint.request("DELETE", route))

    def call(self, request: AdminRequest) -> Any:
        """Send ``request``; the decoded JSON answer. Raises ``CacheUnreachableError``, ``AdminApiError`` or
        ``NotAdminApiError``."""
        sent = urllib.request.Request(request.url, request.body, dict(request.headers), method=request.method)
        try:
            with self._opener.open(sent, timeout=self.endpoint.timeout) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                status, payload = exc.code, exc.read()
        except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
            raise CacheUnreachableError(request, unreachable_reason(exc, self.endpoint.timeout)) from None
        return decode_answer(request, status, payload)
