"""A small client of the admin API (``/admin/v1``) for ``cachectl``: stdlib HTTP, one-line errors.

Every failure becomes a ``CliError`` whose message is what an operator needs to read at 3 a.m.: the cache cannot be
reached, the token is missing or wrong, a path does not exist, an argument is bad. Nothing here prints.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

PREFIX = "/admin/v1"
DEFAULT_TIMEOUT = 30.0


class CliError(Exception):
    """A failure to report as one line (``cachectl: <message>``) and exit code ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        # One line, whatever the server or the OS put in the message.
        super().__init__(" ".join(message.split()))
        self.exit_code = exit_code


class ApiError(CliError):
    """The admin API answered with an error: HTTP ``status``, its ``code`` and the request ``field`` at fault."""

    def __init__(self, message: str, status: int, code: str, field: str | None) -> None:
        # A value the cache refused is a usage mistake, like one argparse refuses: exit code 2.
        super().__init__(message, 2 if status == 400 else 1)
        self.status = status
        self.code = code
        self.field = field


class AdminClient:
    """Calls the admin API of the cache at ``endpoint`` (``http://host:port``), with ``token`` when it has one."""

    def __init__(self, endpoint: str, token: str = "", timeout: float = DEFAULT_TIMEOUT) -> None:
        parts = urlsplit(endpoint.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CliError(
                f"invalid endpoint {endpoint!r}: expected http://HOST:PORT (--endpoint or CACHE_ENDPOINT)", 2
            )
        try:
            parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
        except ValueError:
            raise CliError(f"invalid endpoint {endpoint!r}: the port is not a number", 2) from None
        self.endpoint = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self._token = token.strip()
        self._timeout = timeout
        # A proxy from the environment must not sit between us and a cache on this machine.
        handlers = [urllib.request.ProxyHandler({})] if _is_loopback(parts.hostname) else []
        self._opener = urllib.request.build_opener(*handlers)

    def get(self, route: str, **params: str) -> Any:
        """``GET /admin/v1/<route>?<params>``; the decoded JSON answer. Raises ``CliError``."""
        return self._send("GET", route, params, None)

    def post(self, route: str, body: Mapping[str, Any] | None = None) -> Any:
        """``POST /admin/v1/<route>`` with a JSON ``body``; the decoded JSON answer. Raises ``CliError``."""
        return self._send("POST", route, {}, dict(body or {}))

    def job_route(self, job_id: str) -> str:
        """The route of one job (its id quoted: it is one URL path segment)."""
        return f"jobs/{quote(job_id, safe='')}"

    def _send(self, method: str, route: str, params: Mapping[str, str], body: Mapping[str, Any] | None) -> Any:
        url = f"{self.endpoint}{PREFIX}/{route}"
        if params:
            url += "?" + urlencode(params)
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                raise self._api_error(exc.code, exc.read()) from None
        except urllib.error.URLError as exc:
            raise self._unreachable(exc.reason) from None
        except (OSError, http.client.HTTPException) as exc:
            raise self._unreachable(exc) from None
        try:
            return json.loads(payload)
        except ValueError:
            raise CliError(f"unexpected answer from {url}: not JSON (is {self.endpoint} a Lakecache cache?)") from None

    def _unreachable(self, reason: object) -> CliError:
        match reason:
            case ConnectionRefusedError():
                why = "connection refused"
            case socket.gaierror():
                why = "unknown host"
            case TimeoutError():
                why = f"no answer within {self._timeout:g}s"
            case ConnectionResetError() | http.client.RemoteDisconnected():
                why = "the connection was closed before an answer came"
            case http.client.HTTPException():
                why = f"not an HTTP answer ({type(reason).__name__})"
            case OSError() if reason.strerror:
                why = reason.strerror.lower()
            case _:
                why = str(reason) or type(reason).__name__
        return CliError(f"cannot reach the cache at {self.endpoint}: {why}")

    def _api_error(self, status: int, raw: bytes) -> CliError:
        try:
            error = json.loads(raw)["error"]
            code, message, field = str(error["code"]), str(error["message"]), error.get("field")
        except (ValueError, KeyError, TypeError):
            return CliError(
                f"the server at {self.endpoint} answered HTTP {status}, not an admin API error (not a cache?)"
            )
        if status == 401:
            message = f"the cache at {self.endpoint} needs the admin token: set CACHE_ADMIN_TOKEN or pass --token"
        elif status == 403:
            message = f"the cache at {self.endpoint} refused the admin token: check CACHE_ADMIN_TOKEN or --token"
        elif isinstance(field, str) and message.startswith(f"{field}: "):
            # "paths[0]: no such path: /x" names a JSON field the command line never showed the user.
            message = message[len(field) + 2 :]
        return ApiError(message, status, code, field)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
