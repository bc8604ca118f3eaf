"""An HTTP proxy in front of an S3 endpoint that injects S3 errors and stalls, for testing retries and timeouts."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from infra.ports import LOOPBACK
from infra.service_process import ManagedService

# Headers about one hop of the connection, not the message; the proxy sets its own.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "host"}
)

_ERROR_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>{code}</Code><Message>injected by the faulty proxy</Message>"
    "<RequestId>faulty-proxy</RequestId></Error>"
)

# (method, raw path with query) -> whether this request may be answered with a fault
RequestFilter = Callable[[str, str], bool]


class FaultyProxy(ManagedService):
    """Forwards every request to ``upstream`` except the first ``faults`` eligible ones, answered with an S3 error.

    A fault is ``status`` with an S3 error body of ``code`` (default 503 SlowDown), after ``stall`` seconds of
    silence (longer than a client's read timeout, that is a timeout); or, with ``truncate`` set, S3's own answer
    cut off after that many body bytes, the connection dropped. ``only`` limits which requests are eligible.
    Runs its own event loop in a thread, so synchronous tests can use it as a context manager.
    """

    def __init__(
        self,
        upstream: str,
        *,
        faults: int = 0,
        status: int = 503,
        code: str = "SlowDown",
        stall: float = 0.0,
        truncate: int | None = None,
        only: RequestFilter | None = None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.status = status
        self.code = code
        self.stall = stall
        self.truncate = truncate
        self.only = only
        self.requests_seen = 0
        self.faults_served = 0
        self._faults = faults
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((LOOPBACK, 0))
        self.port = int(self._sock.getsockname()[1])
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="faulty-proxy", daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        """The proxy's endpoint, to use in place of ``upstream``."""
        return f"http://{LOOPBACK}:{self.port}"

    def inject(self, faults: int) -> None:
        """Answer the next ``faults`` eligible requests with the fault."""
        with self._lock:
            self._faults = faults

    def start(self) -> None:
        """Start listening."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=10)

    def stop(self) -> None:
        """Stop listening and end the proxy's thread."""
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _take_fault(self, method: str, path: str) -> bool:
        with self._lock:
            self.requests_seen += 1
            if self._faults <= 0 or (self.only is not None and not self.only(method, path)):
                return False
            self._faults -= 1
            self.faults_served += 1
            return True

    async def _serve(self) -> None:
        # Bodies pass through byte for byte: no decompression, no redirects followed.
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        fault = self._take_fault(request.method, request.raw_path)
        if fault and self.truncate is None:
            if self.stall:
                await asyncio.sleep(self.stall)
            return web.Response(
                status=self.status, body=_ERROR_XML.format(code=self.code).encode(), content_type="application/xml"
            )
        assert self._session is not None
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP)
        async with self._session.request(
            request.method,
            URL(self.upstream + request.raw_path, encoded=True),
            headers=headers,
            data=body,
            allow_redirects=False,
        ) as upstream:
            payload = await upstream.read()
            reply_headers = CIMultiDict(
                (k, v) for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP | {"content-length"}
            )
        if request.method == "HEAD":
            # A HEAD answer has no body, yet its Content-Length is the object's size: pass it through as is.
            response = web.StreamResponse(status=upstream.status, headers=reply_headers)
            response.content_length = int(upstream.headers.get("Content-Length", 0))
            await response.prepare(request)
            return response
        if fault:  # truncate: the whole length announced, part of the body sent, the connection gone
            response = web.StreamResponse(status=upstream.status, headers=reply_headers)
            response.content_length = len(payload)
            await response.prepare(request)
            await response.write(payload[: self.truncate])
            assert request.transport is not None
            request.transport.close()
            return response
        return web.Response(status=upstream.status, body=payload, headers=reply_headers)
