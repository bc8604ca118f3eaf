"""Streaming a read's bytes into an HTTP response, shared by the WebHDFS ``OPEN`` and the S3 ``GetObject``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.client_exceptions import ClientConnectionResetError

log = logging.getLogger(__name__)


class DataResponse(web.StreamResponse):
    """A streamed data response whose headers leave in the same write as the first bytes of the body.

    aiohttp's ``StreamResponse`` sends headers on ``prepare``: one more syscall and packet per range read, which is
    a third of the cost of a warm 64 KiB read.
    """

    _send_headers_immediately = False


async def stream_body(
    request: web.Request,
    response: web.StreamResponse,
    first: bytes | memoryview | None,
    chunks: AsyncIterator[bytes | memoryview],
    *,
    what: str,
) -> web.StreamResponse:
    """Send ``response`` (its length already set) with ``first`` then the rest of ``chunks``; ``what`` names the
    read in logs.

    Once the headers are gone an error can no longer be reported: the connection is closed, so the client sees a
    short body, never wrong bytes. ``chunks`` is closed whatever happens.
    """
    await response.prepare(request)
    try:
        if first is not None:
            await response.write(first)
        async for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
    except (ConnectionResetError, ClientConnectionResetError):
        log.debug("%s: the client went away", what)
    except Exception as exc:
        log.warning("%s: aborted after the headers were sent: %s", what, exc)
        response.force_close()
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
    return response
