"""The connections of the WebHDFS port: every error speaks WebHDFS, even for a request too broken to route."""

from __future__ import annotations

from http import HTTPStatus

from aiohttp import web

from cache_service.api.connection import ApiConnection
from cache_service.api.webhdfs.errors import remote_exception


class WebHdfsConnection(ApiConnection):
    """A connection of the WebHDFS port (with ``WarmReads`` as its early answers, see ``api.connection``)."""

    __slots__ = ()

    def protocol_error(self, status: int, exc: BaseException | None, message: str | None) -> web.StreamResponse:
        """A ``RemoteException`` for a request aiohttp could not parse (or an error before any handler ran)."""
        if status >= 500:
            return remote_exception(status, "IOException", "internal error; see the cache's log")
        reason = message or HTTPStatus(status).phrase
        return remote_exception(status, "IllegalArgumentException", f"Bad HTTP request: {reason}")
