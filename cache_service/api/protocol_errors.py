"""Answers for requests too broken to reach a handler (garbage or oversized request lines and headers).

aiohttp answers those itself with text/plain. Each API's connection protocol derives from ``ProtocolErrorHandler``
and says, in ``protocol_error``, how its clients expect such an error: WebHDFS JSON, S3 XML.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

log = logging.getLogger(__name__)


class ProtocolErrorHandler(RequestHandler):
    """aiohttp's request handler, answering protocol errors in the API's own format; the connection then closes."""

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
        """aiohttp's hook: ``protocol_error``'s answer, unless a response has already begun."""
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send an error")
        if status >= 500:
            log.error("http: error before any handler ran", exc_info=exc)
        response = self.protocol_error(status, exc, message)
        response.force_close()
        return response
