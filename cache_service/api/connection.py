"""The connections of the cache's HTTP ports, and ``serve``: the one way either port is opened.

A connection is aiohttp's ``RequestHandler`` with two additions, made here once for both ports:

- Requests too broken to reach a handler (garbage or oversized request lines and headers) are answered in the API's
  own format (``ApiConnection.protocol_error``: WebHDFS JSON, S3 XML); aiohttp would answer them with text/plain.
- A port may answer some requests as their bytes arrive (``EarlyAnswers``): the WebHDFS port answers warm reads so,
  skipping aiohttp's per-request machinery (a task wake-up, a request object, routing, a response object), when the
  connection is idle: no request being handled or queued, and no partial request in aiohttp's parser.

Telling that a connection is idle takes ``RequestHandler``'s private state, and an early answer restarts its
keep-alive clock (``PRIVATE_STATE`` names every attribute used); error answers come through its ``handle_error``
hook. Nothing else in the cache relies on aiohttp's insides. ``tests/cache_service/api/test_connection.py`` checks
each of them against the installed aiohttp and proves that an idle connection is answered early and a busy one is
not, so a release that changes them fails that test instead of slowing warm reads down or answering out of turn;
``pyproject.toml`` pins aiohttp to the minor releases it passed on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

log = logging.getLogger(__name__)

PRIVATE_STATE = (
    "_waiter",
    "_messages",
    "_close",
    "_force_close",
    "_next_keepalive_close_time",
    "_keepalive_timeout",
    "_loop",
)
"""The private attributes of aiohttp's ``RequestHandler`` that ``ApiConnection`` reads or sets."""

_HEAD_END = b"\r\n\r\n"
_MOST_HEAD_BYTES = 8190  # aiohttp's own default limit on a request line or header field


class EarlyAnswers(Protocol):
    """Answers some requests from their head alone, as it arrives."""

    def answer(self, head: bytes) -> Sequence[bytes | memoryview] | None:
        """The whole response to the complete request ``head`` (ending in a blank line), or None: aiohttp answers."""
        ...


class ApiConnection(RequestHandler):
    """aiohttp's request handler, answering protocol errors in the API's format and, when idle, early answers."""

    __slots__ = ("_at_boundary", "_early")

    def __init__(self, manager: web.Server, *, early: EarlyAnswers | None = None, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._early = early
        # True while every byte given to aiohttp's parser ended a request head: it holds no partial request.
        self._at_boundary = True

    def data_received(self, data: bytes) -> None:
        """Answer a lone request head now if ``early`` can and the connection is idle; give the rest to aiohttp."""
        early, waiter, transport = self._early, self._waiter, self.transport
        if (
            early is not None
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
        ):
            response = early.answer(data)
            if response is not None:
                transport.writelines(response)
                self._next_keepalive_close_time = self._loop.time() + self._keepalive_timeout
                return
        self._at_boundary = data.endswith(_HEAD_END)
        super().data_received(data)

    def protocol_error(self, status: int, exc: BaseException | None, message: str | None) -> web.StreamResponse:
        """The error response for a request aiohttp could not parse (``status`` >= 500: a fault before any handler)."""
        raise NotImplementedError

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's hook: ``protocol_error``'s answer, unless a response has already begun; the connection then
        closes."""
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send an error")
        if status >= 500:
            log.error("http: error before any handler ran", exc_info=exc)
        response = self.protocol_error(status, exc, message)
        response.force_close()
        return response


@dataclass(frozen=True)
class ApiPort:
    """A port being served: the application's runner and the listening server."""

    runner: web.AppRunner
    listener: asyncio.AbstractServer

    async def cleanup(self) -> None:
        """Stop listening, then close the connections and the application (as ``AppRunner.cleanup`` does)."""
        self.listener.close()
        await self.runner.cleanup()


async def serve(
    app: web.Application,
    host: str,
    port: int,
    connection: type[ApiConnection],
    *,
    early: EarlyAnswers | None = None,
    **options: Any,
) -> ApiPort:
    """Serve ``app`` on ``host``:``port``, each connection a ``connection`` that answers early what ``early`` can.

    ``options`` are aiohttp's request handler options (``max_line_size``, ``auto_decompress``...); its access log is
    off. Call ``cleanup()`` on the result at shutdown. Raises ``OSError`` when the port cannot be bound.
    """
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    server = runner.server
    assert server is not None, "AppRunner.setup() makes the server"
    loop = asyncio.get_running_loop()
    options = {"access_log": None, **options}

    # The listening socket is ours rather than a ``web.TCPSite``'s so that its connections are of our class; each
    # still registers with aiohttp's server, which closes it at cleanup.
    def connect() -> ApiConnection:
        return connection(server, loop=loop, early=early, **options)

    try:
        listener = await loop.create_server(connect, host, port, backlog=1024, reuse_address=True)
    except BaseException:
        await runner.cleanup()
        raise
    return ApiPort(runner, listener)
