"""The connection protocol of the WebHDFS port: aiohttp's, with two changes.

- Requests too broken to reach a handler (garbage or oversized request lines and headers) are answered with a
  ``RemoteException``: aiohttp answers those itself with text/plain, and on this port every error speaks WebHDFS.
- Warm reads (``WarmReads``) are answered as their bytes arrive, without aiohttp's per-request machinery, when the
  connection is idle: no request being handled or queued, and no partial request in aiohttp's parser.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from cache_service.api.protocol_errors import ProtocolErrorHandler
from cache_service.api.warm_reads import WarmReads
from cache_service.api.webhdfs_errors import remote_exception

log = logging.getLogger(__name__)

_HEAD_END = b"\r\n\r\n"
_MOST_HEAD_BYTES = 8190  # aiohttp's own limit on a request line or header field


class WebHdfsRequestHandler(ProtocolErrorHandler):
    """aiohttp's request handler, answering protocol errors as ``RemoteException`` and warm reads at once."""

    __slots__ = ("_at_boundary", "_warm")

    def __init__(self, manager: web.Server, *, warm: WarmReads | None, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._warm = warm
        # True while every byte given to aiohttp's parser ended a request head: it holds no partial request.
        self._at_boundary = True

    def data_received(self, data: bytes) -> None:
        """Answer a lone warm-read request head now; give everything else to aiohttp."""
        warm, waiter, transport = self._warm, self._waiter, self.transport
        if (
            warm is not None
            and self._at_boundary
            and waiter is not None  # aiohttp's loop is waiting for the next request ...
            and not waiter.done()
            and not self._messages  # ... and has none queued
            and not self._force_close
            and not self._close
            and transport is not None
            and not transport.is_closing()
            and transport.get_write_buffer_size() == 0  # the client keeps up: no flow control needed
            and len(data) <= _MOST_HEAD_BYTES
            and data.endswith(_HEAD_END)
            and data.find(_HEAD_END) == len(data) - len(_HEAD_END)  # one request, not pipelined ones
            and not log.isEnabledFor(logging.DEBUG)  # the handler writes the per-request debug line
        ):
            response = warm.answer(data)
            if response is not None:
                transport.writelines(response)
                self._next_keepalive_close_time = self._loop.time() + self._keepalive_timeout
                return
        self._at_boundary = data.endswith(_HEAD_END)
        super().data_received(data)

    def protocol_error(self, status: int, exc: BaseException | None, message: str | None) -> web.StreamResponse:
        """A ``RemoteException`` for a request aiohttp could not parse (or an error before any handler ran)."""
        if status >= 500:
            return remote_exception(status, "IOException", "internal error; see the cache's log")
        reason = message or HTTPStatus(status).phrase
        return remote_exception(status, "IllegalArgumentException", f"Bad HTTP request: {reason}")


class _WebHdfsServer(web.Server):
    _warm: WarmReads | None = None

    def __call__(self) -> RequestHandler:
        return WebHdfsRequestHandler(self, warm=self._warm, loop=self._loop, **self._kwargs)


def use_webhdfs_protocol(runner: web.AppRunner, warm: WarmReads | None) -> None:
    """Make the set-up ``runner`` speak WebHDFS at the protocol level (see the module's docstring)."""
    server = runner.server
    assert server is not None, "call after runner.setup()"
    server.__class__ = _WebHdfsServer
    server._warm = warm  # type: ignore[attr-defined]
