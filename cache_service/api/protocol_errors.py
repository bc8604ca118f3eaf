"""Answers for requests too broken to reach a handler (garbage or oversized request lines and headers).

aiohttp answers those itself with text/plain; on the WebHDFS port every error must be a ``RemoteException``, so
the runner's server is given a request handler whose ``handle_error`` speaks WebHDFS.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from cache_service.api.webhdfs_errors import remote_exception

log = logging.getLogger(__name__)


class _RemoteExceptionRequestHandler(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send an error")
        if status >= 500:
            log.error("http: error before any handler ran", exc_info=exc)
            response = remote_exception(status, "IOException", "internal error; see the cache's log")
        else:
            reason = message or HTTPStatus(status).phrase
            response = remote_exception(status, "IllegalArgumentException", f"Bad HTTP request: {reason}")
        response.force_close()
        return response


class _RemoteExceptionServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _RemoteExceptionRequestHandler(self, loop=self._loop, **self._kwargs)


def answer_protocol_errors_as_remote_exceptions(runner: web.AppRunner) -> None:
    """Make the set-up ``runner`` answer unparsable requests with WebHDFS JSON instead of text."""
    server = runner.server
    assert server is not None, "call after runner.setup()"
    server.__class__ = _RemoteExceptionServer
