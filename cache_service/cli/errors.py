"""``cachectl``'s errors: every failure becomes one line an operator can act on at 3 a.m., and an exit code.

The admin client (``cache_service.admin_client``) says what went wrong; this module says it the way ``cachectl``
speaks: the cache cannot be reached, the token is missing or wrong (``CACHE_ADMIN_TOKEN`` or ``--token``), a path
does not exist, an argument is bad. Nothing here prints.
"""

from __future__ import annotations

from cache_service.admin_client import (
    AdminApiError,
    AdminClientError,
    CacheUnreachableError,
    InvalidEndpointError,
    NotAdminApiError,
)


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


def as_cli_error(error: CliError | AdminClientError | InvalidEndpointError) -> CliError:
    """``error`` as ``cachectl`` reports it."""
    match error:
        case CliError():
            return error
        case InvalidEndpointError(bad_port=True):
            return CliError(f"invalid endpoint {error.text!r}: the port is not a number", 2)
        case InvalidEndpointError():
            return CliError(
                f"invalid endpoint {error.text!r}: expected http://HOST:PORT (--endpoint or CACHE_ENDPOINT)", 2
            )
        case CacheUnreachableError():
            return CliError(f"cannot reach the cache at {error.endpoint.url}: {error.reason}")
        case AdminApiError():
            return _refusal(error)
        case NotAdminApiError() if error.is_error:
            url, status = error.endpoint.url, error.status
            return CliError(f"the server at {url} answered HTTP {status}, not an admin API error (not a cache?)")
        case NotAdminApiError():
            url = error.endpoint.url
            return CliError(f"unexpected answer from {error.request.url}: not JSON (is {url} a Lakecache cache?)")
    return CliError(str(error))


def _refusal(error: AdminApiError) -> ApiError:
    url, message, field = error.endpoint.url, error.message, error.field
    if error.status == 401:
        message = f"the cache at {url} needs the admin token: set CACHE_ADMIN_TOKEN or pass --token"
    elif error.status == 403:
        message = f"the cache at {url} refused the admin token: check CACHE_ADMIN_TOKEN or --token"
    elif field is not None and message.startswith(f"{field}: "):
        # "paths[0]: no such path: /x" names a JSON field the command line never showed the user.
        message = message[len(field) + 2 :]
    return ApiError(message, error.status, error.code, field)
