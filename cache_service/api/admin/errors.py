"""The admin API's error answers: ``{"error": {"code": ..., "message": ..., "field": ...}}``, never a stack trace."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NoReturn

from aiohttp import web

from cache_service.errors import StagedDataError, UnderStoreUnavailableError
from cache_service.management.reports import InvalidFieldError, PathNotFoundError


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


def invalid(field: str | None, message: str) -> NoReturn:
    """Refuse the request: 400 ``InvalidArgument`` about ``field``."""
    raise AdminError(400, "InvalidArgument", message, field)


def translate(exc: Exception, path_field: str) -> AdminError | None:
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
